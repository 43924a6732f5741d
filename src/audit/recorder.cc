#include "audit/recorder.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace phoenix::audit {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct Recorder::Impl {
  asio::io_context io;
  std::optional<tcp::acceptor> acceptor;
  Handler handler;
  std::mutex serial;  // one request at a time, in arrival order
  std::mutex mu;      // guards the fields below
  std::set<int> open_fds;
  std::vector<std::thread> threads;
  std::thread accept_thread;
  bool stopping = false;

  void Serve(tcp::socket sock) {
    int fd = sock.native_handle();
    beast::flat_buffer buf;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(256 * 1024 * 1024);
      parser.header_limit(64 * 1024);
      beast::error_code ec;
      http::read(sock, buf, parser, ec);
      if (ec) break;
      auto& req = parser.get();
      http::response<http::string_body> res;
      res.version(11);
      if (req.find(http::field::upgrade) != req.end()) {
        res.result(http::status::not_implemented);
        res.body() = "phoenix audit: Upgrade (WebSocket) is not recorded; use long polling\n";
      } else {
        HttpRequest r;
        r.method = std::string(req.method_string());
        r.target = std::string(req.target());
        for (const auto& f : req) {
          std::string_view name = f.name_string();
          if (beast::iequals(name, "Host") || beast::iequals(name, "Content-Length") ||
              beast::iequals(name, "Transfer-Encoding") || beast::iequals(name, "Connection") ||
              beast::iequals(name, "Keep-Alive"))
            continue;
          r.headers.emplace_back(std::string(name), std::string(f.value()));
        }
        r.body = std::move(req.body());
        Result<HttpResponse> answer = Error{"stopped"};
        {
          std::lock_guard lock(serial);
          answer = handler(std::move(r));
        }
        if (!answer.ok()) {
          res.result(http::status::bad_gateway);
          res.set(http::field::content_type, "text/plain");
          res.body() = fmt::format("phoenix audit: {}\n", answer.error().message);
        } else {
          res.result(static_cast<unsigned>(answer->status));
          for (const auto& [k, v] : answer->headers) {
            if (beast::iequals(k, "Content-Length") || beast::iequals(k, "Transfer-Encoding") ||
                beast::iequals(k, "Connection") || beast::iequals(k, "Keep-Alive"))
              continue;
            res.insert(k, v);
          }
          res.body() = std::move(answer->body);
        }
      }
      res.keep_alive(req.keep_alive());
      if (req.method() == http::verb::head) {
        res.content_length(res.body().size());
        http::response_serializer<http::string_body> sr{res};
        sr.split(true);
        http::write_header(sock, sr, ec);
      } else {
        res.prepare_payload();
        http::write(sock, res, ec);
      }
      if (ec || !res.keep_alive()) break;
    }
    beast::error_code ignored;
    sock.shutdown(tcp::socket::shutdown_both, ignored);
    std::lock_guard lock(mu);
    open_fds.erase(fd);
  }
};

Recorder::Recorder() : impl_(std::make_unique<Impl>()) {}
Recorder::~Recorder() { Stop(); }

Result<int> Recorder::Start(Handler handler) {
  impl_->handler = std::move(handler);
  beast::error_code ec;
  tcp::endpoint ep(asio::ip::address_v4::loopback(), 0);
  impl_->acceptor.emplace(impl_->io);
  impl_->acceptor->open(ep.protocol(), ec);
  if (!ec) impl_->acceptor->bind(ep, ec);
  if (!ec) impl_->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error{fmt::format("recorder: {}", ec.message())};
  int port = impl_->acceptor->local_endpoint().port();
  impl_->accept_thread = std::thread([impl = impl_.get()] {
    for (;;) {
      beast::error_code aec;
      tcp::socket sock(impl->io);
      impl->acceptor->accept(sock, aec);
      std::lock_guard lock(impl->mu);
      if (impl->stopping) break;
      if (aec) continue;
      impl->open_fds.insert(sock.native_handle());
      impl->threads.emplace_back(
          [impl, s = std::move(sock)]() mutable { impl->Serve(std::move(s)); });
    }
  });
  return port;
}

void Recorder::Stop() {
  if (!impl_->acceptor) return;
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    // Blocked reads and accept return at once.
    for (int fd : impl_->open_fds) ::shutdown(fd, SHUT_RDWR);
    ::shutdown(impl_->acceptor->native_handle(), SHUT_RDWR);
  }
  if (impl_->accept_thread.joinable()) impl_->accept_thread.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(impl_->mu);
    threads.swap(impl_->threads);
  }
  for (auto& t : threads) t.join();
  beast::error_code ec;
  impl_->acceptor->close(ec);
  impl_->acceptor.reset();
}

}  // namespace phoenix::audit
