#include "cli/admin.h"

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>
#include <set>

namespace phoenix::cli {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

// A scraper or a browser needs a handful; more is somebody holding connections open.
constexpr size_t kMaxConnections = 64;
constexpr size_t kMaxHeadBytes = 8 * 1024;
// A whole request head, or a whole answer to a reader that stopped reading, within this.
constexpr auto kIoTimeout = std::chrono::seconds(10);
// An idle keep-alive connection (Prometheus keeps one per target between scrapes).
constexpr auto kIdleTimeout = std::chrono::seconds(120);

struct Session;

// What sessions share with the server; it outlives the server while they do.
struct Shared {
  AdminServer::PageFunction page;
  std::set<Session*> sessions;
  bool stopped = false;
};

struct Session : std::enable_shared_from_this<Session> {
  Session(tcp::socket s, std::shared_ptr<Shared> sh)
      : sock(std::move(s)), timer(sock.get_executor()), shared(std::move(sh)) {
    shared->sessions.insert(this);
  }
  ~Session() { shared->sessions.erase(this); }

  tcp::socket sock;
  asio::steady_timer timer;
  std::shared_ptr<Shared> shared;
  beast::flat_buffer buffer{kMaxHeadBytes};
  std::optional<http::request_parser<http::empty_body>> parser;
  http::response<http::string_body> res;
  bool first = true;
  bool idle = false;  // between requests, nothing of the next one read yet

  void Close() {
    boost::system::error_code ec;
    timer.cancel();
    sock.shutdown(tcp::socket::shutdown_both, ec);
    sock.close(ec);
  }

  void Arm(std::chrono::seconds after) {
    timer.expires_after(after);
    timer.async_wait([self = shared_from_this()](auto ec) {
      if (!ec) self->Close();
    });
  }

  // The next request: an idle keep-alive wait first (nothing buffered), then its head within
  // kIoTimeout of its first byte, so that a slow head cannot ride on the long idle timeout.
  void Read() {
    if (first || buffer.size() > 0) return ReadHead();
    idle = true;
    Arm(kIdleTimeout);
    sock.async_wait(tcp::socket::wait_read, [self = shared_from_this()](auto ec) {
      self->idle = false;
      if (ec || self->shared->stopped) return self->Close();
      self->ReadHead();
    });
  }

  void ReadHead() {
    parser.emplace();
    parser->header_limit(kMaxHeadBytes);
    Arm(kIoTimeout);
    http::async_read_header(sock, buffer, *parser,
                            [self = shared_from_this()](auto ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (shared->stopped || ec == asio::error::operation_aborted) return Close();
    if (ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset) {
      return Close();
    }
    first = false;
    if (ec) {
      // Malformed, too big, or a body (nothing here takes one): 400 and close, as the router.
      int status = ec == http::error::header_limit ? 431 : 400;
      return Send(Plain(status, fmt::format("{}\n", ec.message())), false, false);
    }
    const auto& req = parser->get();
    bool head = req.method() == http::verb::head;
    // Nothing here reads a body: after a request with one, the connection closes rather than
    // read what follows as the next request.
    bool keep_alive = req.keep_alive() && parser->is_done();
    if (req.method() != http::verb::get && !head) {
      auto r = Plain(405, "only GET and HEAD\n");
      r.set(http::field::allow, "GET, HEAD");
      return Send(std::move(r), keep_alive, false);
    }
    std::string_view target = req.target();
    // Absolute form (RFC 9112 3.2.2, which a server must accept): the path after the authority.
    if (size_t scheme = target.find("://");
        scheme != std::string_view::npos && !target.empty() && target.front() != '/') {
      size_t slash = target.find('/', scheme + 3);
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
    std::string_view path = target.substr(0, target.find('?'));
    AdminPage page = shared->page(path);
    http::response<http::string_body> r{static_cast<http::status>(page.status), req.version()};
    r.set(http::field::content_type, page.content_type);
    r.set(http::field::cache_control, "no-store");
    r.body() = std::move(page.body);
    Send(std::move(r), keep_alive, head);
  }

  static http::response<http::string_body> Plain(int status, std::string body) {
    http::response<http::string_body> r{static_cast<http::status>(status), 11};
    r.set(http::field::content_type, "text/plain; charset=utf-8");
    r.body() = std::move(body);
    return r;
  }

  void Send(http::response<http::string_body> r, bool keep_alive, bool head) {
    r.set(http::field::server, "phoenix");
    r.keep_alive(keep_alive);
    r.prepare_payload();
    if (head) r.body().clear();  // Content-Length stays: the size a GET would get
    res = std::move(r);
    Arm(kIoTimeout);
    http::async_write(sock, res, [self = shared_from_this(), keep_alive](auto ec, size_t) {
      if (ec || !keep_alive || self->shared->stopped) return self->Close();
      self->Read();
    });
  }
};

class AdminServerImpl : public AdminServer {
 public:
  AdminServerImpl(asio::io_context& io, PageFunction page)
      : acceptor_(io), retry_(io), shared_(std::make_shared<Shared>()) {
    shared_->page = std::move(page);
  }
  ~AdminServerImpl() override { Stop(); }

  Status Listen(const AdminConfig& config) {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(config.host, ec);
    if (!ec) {
      tcp::endpoint endpoint(address, static_cast<unsigned short>(config.port));
      acceptor_.open(endpoint.protocol(), ec);
      if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
      // "[::]" is every address, IPv4 too, as Prometheus exporters' --web.listen-address;
      // "[::1]" and the like are IPv6 only.
      if (!ec && address.is_v6()) {
        acceptor_.set_option(asio::ip::v6_only(!address.is_unspecified()), ec);
      }
      if (!ec) acceptor_.bind(endpoint, ec);
      if (!ec) acceptor_.listen(64, ec);
    }
    std::string where = address.is_v6() ? fmt::format("[{}]:{}", config.host, config.port)
                                        : fmt::format("{}:{}", config.host, config.port);
    if (ec) {
      return Error{
          fmt::format("admin address {}: {} (set [admin] listen in phoenix.toml, or \"\" "
                      "to turn it off)",
                      where, ec.message())};
    }
    auto local = acceptor_.local_endpoint(ec);
    url_ = address.is_v6() ? fmt::format("http://[{}]:{}", config.host, local.port())
                           : fmt::format("http://{}:{}", config.host, local.port());
    Accept();
    return OkStatus();
  }

  std::string url() const override { return url_; }

  void Stop() override {
    if (shared_->stopped) return;
    shared_->stopped = true;
    boost::system::error_code ec;
    acceptor_.close(ec);
    retry_.cancel();
    // Close() makes each session's pending operation complete; copy, as they leave the set.
    std::vector<Session*> open(shared_->sessions.begin(), shared_->sessions.end());
    for (Session* s : open) s->Close();
  }

 private:
  void Accept() {
    acceptor_.async_accept([this, shared = shared_](auto ec, tcp::socket sock) {
      if (shared->stopped || ec == asio::error::operation_aborted) return;
      if (ec) {
        // Out of descriptors: try again shortly rather than spin or go deaf.
        retry_.expires_after(std::chrono::milliseconds(100));
        retry_.async_wait([this, shared](auto ec2) {
          if (!ec2 && !shared->stopped) Accept();
        });
        return;
      }
      // At the limit, an idle keep-alive connection makes room (as nginx reuses its idle ones):
      // connections that each asked once and then sit must not lock scrapers out.
      bool room = shared_->sessions.size() < kMaxConnections;
      for (auto it = shared_->sessions.begin(); !room && it != shared_->sessions.end(); ++it) {
        if ((*it)->idle) {
          (*it)->idle = false;
          (*it)->Close();  // it leaves the set when its wait completes: one over, briefly
          room = true;
        }
      }
      if (room) std::make_shared<Session>(std::move(sock), shared_)->Read();
      // else dropped: closed as `sock` goes
      Accept();
    });
  }

  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  std::shared_ptr<Shared> shared_;
  std::string url_;
};

}  // namespace

Result<std::unique_ptr<AdminServer>> AdminServer::Start(asio::io_context& io,
                                                        const AdminConfig& config,
                                                        PageFunction page) {
  auto server = std::make_unique<AdminServerImpl>(io, std::move(page));
  RETURN_IF_ERROR(server->Listen(config));
  return std::unique_ptr<AdminServer>(std::move(server));
}

}  // namespace phoenix::cli
