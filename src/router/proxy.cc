// One client connection: read a request head (checked against the smuggling vectors), pick a
// ready instance, send the request on a pooled keep-alive connection, stream the bodies both
// ways through fixed buffers, and loop while the client keeps the connection alive. Requests
// that failed before any response byte reached the client are retried on another instance
// when that is safe (the instance never got it, or the method is idempotent and has no body).
#include <fmt/format.h>

#include <array>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/http.hpp>
#include <cstring>
#include <optional>
#include <span>

#include "router/access_log.h"
#include "router/http_rules.h"
#include "router/router_internal.h"

namespace phoenix::router {
namespace {

namespace beast = boost::beast;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;
constexpr size_t kBodyChunk = 16 * 1024;
// A request whose client leaves after it waited this long for its answer is abandoned (see
// Deadline::client); a quick one is answered anyway, as to a client that half-closed after
// sending it (HAProxy's default; nginx abandons at once).
constexpr auto kAbandonAfter = std::chrono::seconds(1);
constexpr size_t kCoalesce = 4 * 1024;
constexpr size_t kMaxResponseHead = 64 * 1024;
constexpr int kMaxInformational = 16;  // 1xx heads before a response's final one
constexpr int kMaxLostSends = 2;
constexpr size_t kSpareChunks = 64;   // body buffers a loop keeps for its next requests (1 MiB)
constexpr size_t kFieldBlock = 4096;  // the first block of a request's head fields
// How long a keep-alive connection waits for its next request before it parks (Session::Park).
constexpr std::chrono::milliseconds kParkAfter{250};
// A tunnel one side has closed its half of, without a byte either way (TunnelIdle::HalfClosed).
constexpr std::chrono::milliseconds kTunnelHalfClosed{5000};
// How long an answer is awaited after a request body's write timed out (the instance stopped
// reading: its early answer is there already, or none is coming).
using RequestParser = http::request_parser<http::buffer_body, Alloc>;
using ResponseParser = http::response_parser<http::buffer_body, Alloc>;

int64_t MsSince(Time t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
  }
  return "Error";
}

// A request counted in flight on a backend, released exactly once.
struct Held {
  std::shared_ptr<Backend> b;
  Held() = default;
  Held(const Held&) = delete;
  Held& operator=(const Held&) = delete;
  ~Held() { Reset(); }
  void Reset() {
    if (b) Backends::Release(*b);
    b.reset();
  }
  Backend* operator->() const { return b.get(); }
  explicit operator bool() const { return b != nullptr; }
};

// A request of `backend` that is a tunnel while this lives (ended before the request's Held,
// which releases it).
struct TunnelCount {
  Backend& b;
  explicit TunnelCount(Backend& backend) : b(backend) { Backends::TunnelStarted(b); }
  TunnelCount(const TunnelCount&) = delete;
  TunnelCount& operator=(const TunnelCount&) = delete;
  ~TunnelCount() { Backends::TunnelEnded(b); }
};

// A piece of a body as it goes on, at bufs[k...]: framed as a chunk when the body is chunked
// (its size line written into `frame`), then the last chunk when `last`. Returns the new k.
// (Used both ways: a request body by the pump, a response body by Respond.)
template <size_t N>
size_t AppendBodyPiece(std::array<asio::const_buffer, N>& bufs, size_t k, char (&frame)[24],
                       const char* data, size_t n, bool chunked, bool last) {
  static constexpr char kCrlf[] = "\r\n";
  static constexpr char kLastChunk[] = "0\r\n\r\n";
  if (n > 0 && chunked) {
    auto end = fmt::format_to(frame, "{:x}\r\n", n);
    bufs[k++] = asio::buffer(frame, static_cast<size_t>(end - frame));
    bufs[k++] = asio::buffer(data, n);
    bufs[k++] = asio::buffer(kCrlf, 2);
  } else if (n > 0) {
    bufs[k++] = asio::buffer(data, n);
  }
  if (last && chunked) bufs[k++] = asio::buffer(kLastChunk, 5);
  return k;
}

// `Content-Type: text/event-stream` (Server-Sent Events), parameters and case aside.
bool IsEventStream(const ResponseHead& res) {
  auto it = res.find(http::field::content_type);
  if (it == res.end()) return false;
  std::string_view v = it->value();
  constexpr std::string_view kType = "text/event-stream";
  if (v.size() < kType.size() || !beast::iequals(v.substr(0, kType.size()), kType)) return false;
  return v.size() == kType.size() || v[kType.size()] == ';' || v[kType.size()] == ' ';
}

// Why no response reached the client, for the log: an answer came but could not be passed on,
// or none did. (A function, so that the request's frame keeps no local for it.)
const char* NoResponseDesc(bool timed_out, const error_code& ec, bool got_byte) {
  if (timed_out) return "Request timeout";
  if (ec == http::error::header_limit) return "Response head too large";
  return got_byte ? "Bad response from the instance" : "Connection closed without response";
}

// What one request went through, for its access-log line.
struct Outcome {
  int status = 0;
  uint64_t bytes = 0;
  const char* code = nullptr;
  const char* desc = nullptr;
  std::string instance;
  Time connected{};
};

inline constexpr auto kYield = asio::use_awaitable_t<Executor>{};

class Session {
 public:
  ~Session() {
    for (auto& u : kept_) w_.Unkeep(*u);
    ReleaseChunk();
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Session(Worker& w, Socket sock, const tcp::endpoint& peer) : w_(w), client_(std::move(sock)) {
    client_deadline_.sock = &client_;
    // Unparsed bytes of the client's: a head (max_header_bytes, ReadHead reads 16 KiB at a
    // time), or a chunk-size line or trailer of a body, which the head's limit does not bound:
    // one longer than this is a 400, not a buffer that grows as long as the client sends.
    buf_.max_size(static_cast<size_t>(w.router.config.max_header_bytes) + 16 * 1024);
    client_ip_ = peer.address().to_string();
    trusted_ = InRanges(w.router.config.trusted_proxies, client_ip_);
  }

  Task<void> Run() {
    Watch watch(w_, client_deadline_);
    ++w_.counters.connections;  // (`active` was counted when the connection was dispatched)
    bool first = true;
    for (;;) {
      // Between requests the connection waits here, not in OneRequest: an idle connection then
      // holds no request's coroutine frame (~1 KiB).
      if (!first && buf_.size() == 0) {
        // Inline rather than a coroutine of its own: no frame to allocate a request.
        ReleaseChunk();
        IdleDeadline();
        auto [ec, n] = co_await client_.async_read_some(buf_.prepare(16 * 1024), kTuple);
        if (ec == asio::error::operation_aborted && client_deadline_.park &&
            !client_deadline_.fired) {
          if (!co_await Park()) break;
          continue;
        }
        if (ec) break;
        buf_.commit(n);
      }
      bool keep_alive = co_await OneRequest(first);
      // A body still on its way to the instance ends with its request (its sockets' operations
      // were cancelled): the pump uses the parser and the buffer the next request needs.
      while (pump_ && pump_->running) {
        // Again on every pass: a composed read (Beast's, which reads until it can parse) whose
        // read had completed when the first cancel came starts another one, uncancelled.
        StopPump();
        co_await asio::post(client_.get_executor(), kYield);
      }
      up_.reset();
      if (pump_) {
        pump_->end = PumpEnd::kNone;
        GiveSpare(std::move(pump_->chunk));
      }
      // The request's heads are gone, then their fields' arena.
      res_parser_.reset();
      parser_.reset();
      arena_.release();
      first = false;
      if (!keep_alive) break;
      idle_end_ = CoarseNow() + w_.router.config.idle_timeout;
    }
    --w_.counters.active;
    ReleaseKept();
    error_code ec;
    client_.shutdown(Socket::shutdown_send, ec);
    // Bytes of the client's still unread (a pipelined request behind a response that ends the
    // connection) would make close() send a RST, and the client's kernel drop the end of that
    // response: linger (RFC 9112 9.6).
    if (linger_ || buf_.size() > 0 || client_.available(ec) > 0) co_await Linger();
    client_.close(ec);
  }

 private:
  // Lingering close, as nginx and Apache do: after an answer that ends the connection while
  // the client may still be sending (a refused head, a body never read), close() with unread
  // bytes sends a RST, and the client's kernel then drops our answer before it was read. So
  // read and discard what still comes, until the client closes, for at most a second.
  Task<void> Linger() {
    ClientDeadline(std::chrono::seconds(1));
    for (;;) {
      auto [ec, n] = co_await client_.async_read_some(asio::buffer(Chunk(), kBodyChunk), kTuple);
      if (ec) break;
    }
  }

  // Times for the access log are exact; without a log, the coarse clock does (retry_timeout).
  Time Stamp() const { return w_.router.log ? Clock::now() : CoarseNow(); }

  void ClientDeadline(std::chrono::milliseconds d) {
    client_deadline_.fired = false;
    client_deadline_.at = CoarseNow() + d;
    client_deadline_.park = false;
    client_deadline_.park_at = Time::max();
  }

  // Waiting for the next request of a keep-alive connection: the idle timeout, and after
  // kParkAfter the read is cancelled by the sweep so the connection can park (ReadHead).
  // The idle time runs from the end of the last request: empty lines (CRLF) sent meanwhile, or
  // a wake from parking, do not start it again (a client sending a CRLF every few seconds would
  // hold the connection for ever).
  void IdleDeadline() {
    ClientDeadline(w_.router.config.idle_timeout);
    client_deadline_.at = std::min(client_deadline_.at, idle_end_);
    client_deadline_.park_at = CoarseNow() + kParkAfter;
  }

  // A connection idle past kParkAfter gives back its read buffer and its last head's text and
  // waits for readability with no buffer at all (an epoll wait, as nginx's and HAProxy's idle
  // connections): ~5.7 KiB of RSS an idle connection instead of ~13. Not on every request: the
  // wait costs a syscall (epoll_ctl) that a busy connection should not pay. False: close it.
  Task<bool> Park() {
    ReleaseKept();  // an idle client holds no instance's connection either
    buf_.shrink_to_fit();
    head_ = std::string();
    extra_ = std::string();
    request_id_ = std::string();
    ++w_.counters.parked;
    auto [ec] = co_await client_.async_wait(Socket::wait_read, kTuple);
    --w_.counters.parked;
    client_deadline_.park = false;
    client_deadline_.park_at = Time::max();
    co_return !ec;
  }

  // Reads a request head into parser_. Returns false when the connection should just close
  // (idle timeout, client gone) after `refusal` (if any) was answered.
  Task<bool> ReadHead(RequestParser& parser, bool first, std::optional<Refusal>& refusal) {
    const RouterConfig& cfg = w_.router.config;
    bool version_fixed = false;
    // Waiting for a next request is the keep-alive idle time; once a byte came (or for a new
    // connection), the whole head must arrive within header_timeout (slowloris).
    bool idle = !first && buf_.size() == 0;
    if (idle) {
      ReleaseChunk();
      IdleDeadline();
    } else {
      ClientDeadline(cfg.header_timeout);
    }
    // Beast takes whole fields as they come and applies header_limit to each put() alone, so
    // the head stays in buf_ until it is complete: its size counts whole, and CheckRequest
    // sees all of it (an obs-fold in an early read included). `parsed`: bytes Beast took.
    size_t parsed = 0;
    size_t stalled = 0;  // parse again only once buf_ holds more than this
    const auto limit = static_cast<size_t>(cfg.max_header_bytes);
    for (;;) {
      if (parsed == 0 && SkipEmptyLines() && buf_.size() == 0 && !first) {
        idle = true;  // the CRLF a client sent after a body: waiting for the next request
        IdleDeadline();
      }
      if (parsed == 0 && buf_.size() == 1 &&
          *static_cast<const char*>(buf_.data().data()) == '\r') {
        stalled = 1;  // the LF of an empty line may come in the next read
      }
      if (buf_.size() > parsed && buf_.size() > stalled) {
        error_code ec;
        auto data = buf_.data();
        const std::string_view buffered(static_cast<const char*>(data.data()), data.size());
        size_t n = parser.put(asio::buffer(data) + parsed, ec);
        if (ec == http::error::need_more) ec = {};
        if (ec == http::error::bad_version && parsed == 0 && !version_fixed) {
          // HTTP/1.2 is read as 1.1; HTTP/2.0 (or 0.9) gets 505, not 400. Beast judges the
          // version before the line's end has come: without it, wait for more and parse again.
          if (buffered.find('\n') != std::string_view::npos) {
            refusal = FixRequestVersion({static_cast<char*>(data.data()), data.size()});
            if (refusal) co_return false;
            version_fixed = true;
            NewParser();
            continue;
          }
          if (buf_.size() >= limit) {
            refusal = HeadTooLarge(buffered, limit);
            co_return false;
          }
          stalled = buf_.size();
          NewParser();
          ec = {};
          n = 0;
        }
        if (ec) {
          refusal = ec == http::error::header_limit ? HeadTooLarge(buffered, limit)
                                                    : Refusal{400, ec.message()};
          co_return false;
        }
        parsed += n;
        if (parser.is_header_done()) {
          if (parsed > limit) {
            refusal = HeadTooLarge(buffered, limit);
            co_return false;
          }
          std::string_view head(static_cast<const char*>(data.data()), parsed);
          refusal = CheckRequest(parser.get().base(), head);
          buf_.consume(parsed);
          co_return !refusal;
        }
        if (buf_.size() >= limit) {
          refusal = HeadTooLarge(buffered, limit);
          co_return false;
        }
      }
      auto [ec, n] = co_await client_.async_read_some(buf_.prepare(16 * 1024), kTuple);
      if (ec == asio::error::operation_aborted && idle && client_deadline_.park &&
          !client_deadline_.fired && buf_.size() == 0) {  // (after a CRLF between requests)
        if (!co_await Park()) co_return false;
        continue;
      }
      if (ec) {
        if (client_deadline_.fired && buf_.size() > 0) refusal = Refusal{408, "header timeout"};
        co_return false;
      }
      buf_.commit(n);
      if (idle) {
        idle = false;
        ClientDeadline(cfg.header_timeout);
      }
    }
  }

  // "HTTP/1.1 200\r\n": a status line without the space before its (empty) reason phrase,
  // which Beast refuses and nginx and HAProxy accept. The space goes in, and the head is parsed
  // again. False when the buffer does not start so (or has no room).
  static bool AddReasonSpace(beast::flat_buffer& buf) {
    const size_t n = buf.size();
    const std::string_view text(static_cast<const char*>(buf.data().data()), n);
    const size_t at = MissingReasonSpace(text);
    if (at == 0 || n >= buf.max_size()) return false;
    buf.commit(asio::buffer_copy(buf.prepare(1), asio::buffer(" ", 1)));
    char* d = static_cast<char*>(buf.data().data());
    std::memmove(d + at + 1, d + at, n - at);
    d[at] = ' ';
    return true;
  }

  // The response's framing fields as its parser read them (a plain function: the optional
  // stays out of the request's coroutine frame).
  // True when the client reads the body to the connection's close: a Transfer-Encoding whose
  // last coding is not chunked, whatever framing the router used to read it.
  bool NormalizeResponseFraming() {
    const auto length = res_parser_->content_length();  // (a boost::optional)
    return NormalizeFraming(res_parser_->get().base(), res_parser_->chunked(),
                            length ? std::optional<uint64_t>(*length) : std::nullopt);
  }

  // Empty lines before a request line are ignored (RFC 9112 2.2; some clients send a CRLF
  // after a POST body), as nginx and HAProxy do. Whether any went.
  bool SkipEmptyLines() {
    const auto* p = static_cast<const char*>(buf_.data().data());
    const size_t n = buf_.size();
    size_t skip = 0;
    while (skip < n &&
           (p[skip] == '\n' || (p[skip] == '\r' && skip + 1 < n && p[skip + 1] == '\n'))) {
      skip += p[skip] == '\r' ? 2 : 1;
    }
    buf_.consume(skip);
    return skip > 0;
  }

  Task<void> SendError(int status, const std::string& request_id, bool close,
                       std::string_view extra = {}) {
    std::string body = fmt::format("{} {}\n", status, ReasonPhrase(status));
    std::string msg = fmt::format(
        "HTTP/1.1 {} {}\r\nDate: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n", status,
        ReasonPhrase(status), HttpDateNow(), body.size());
    msg += extra;
    if (!request_id.empty()) msg += fmt::format("X-Request-Id: {}\r\n", request_id);
    if (close) msg += "Connection: close\r\n";
    // A slow client cut at header_timeout gets no more time.
    if (close && status != 408) linger_ = true;
    msg += "\r\n";
    // A HEAD's answer has no content (RFC 9110 9.3.2): bytes after its head would be read as
    // the next response on the connection. Content-Length says what a GET would get.
    if (!head_request_) msg += body;
    ClientDeadline(w_.router.config.response_timeout);
    co_await asio::async_write(client_, asio::buffer(msg), kTuple);
  }

  // phoenix answers instead of an instance: counted, and logged with its Heroku-style code.
  Task<void> Fail(const RequestHead& req, const std::string& request_id, Time start, int status,
                  const char* code, const char* desc, bool close, std::string_view extra = {}) {
    if (PumpFailedOnClient()) {
      // The instance's side failed because the client's body did (the pump closed it).
      co_await ClientBodyFailed(true);
      Log(req, request_id, start, outcome_);
      co_return;
    }
    ++w_.counters.router_errors;
    // (A HEAD refused before Prepare too: its answer is a head alone.)
    head_request_ = req.method() == http::verb::head;
    co_await SendError(status, request_id, close, extra);
    Outcome& o = outcome_;
    o.status = status;
    o.code = code;
    o.desc = desc;
    Log(req, request_id, start, o);
  }

  // The sweep abandons the request if its client leaves once it waited kAbandonAfter
  // (Deadline::client).
  void WatchClient() {
    // Not with a pipelined request already read: the client's close is no sign it left
    // (a peek sees only what the kernel still holds).
    if (buf_.size() > 0) return;
    up_deadline_.client = &client_;
    up_deadline_.watch_from = CoarseNow() + kAbandonAfter;
  }
  // The request no longer waits for its answer's head.
  void UnwatchClient() {
    up_deadline_.client = nullptr;
    awaiting_head_ = false;
  }

  // The client left while its request was on the way (a 1xx or a 100 Continue could not be
  // written to it): logged as a response write that failed.
  void ClientLeft(const RequestHead& req, Time start, const char* desc = "Client went away") {
    outcome_.status = 499;
    outcome_.code = "H27";
    outcome_.desc = desc;
    Log(req, request_id_, start, outcome_);
  }

  bool PumpFailedOnClient() const {
    return pump_ && (pump_->end == PumpEnd::kClientIdle || pump_->end == PumpEnd::kMalformed ||
                     pump_->end == PumpEnd::kClientGone);
  }

  // The request's body stopped coming (408, nginx's client_body_timeout), was malformed (a bad
  // chunk size: 400, as a bad head) or its client left (499, nothing sent). `answer`: no byte
  // of a response reached the client yet, so an error response can still go.
  Task<void> ClientBodyFailed(bool answer) {
    Outcome& o = outcome_;
    int status = 499;
    if (pump_->end == PumpEnd::kClientIdle) {
      status = 408;
      o.code = "H28";
      o.desc = "Client connection idle";
    } else if (pump_->end == PumpEnd::kMalformed) {
      status = 400;
      o.code = "H400";
      o.desc = "bad request body";
    } else {
      o.code = "H27";
      o.desc = "Client request interrupted";
    }
    if (!answer) co_return;
    o.status = status;
    if (status != 499) {
      ++w_.counters.router_errors;
      co_await SendError(status, request_id_, true);
    }
  }

  void Log(const RequestHead& req, const std::string& request_id, Time start, const Outcome& o) {
    ++w_.counters.requests;
    if (o.status >= 100 && o.status < 600) ++w_.counters.status[o.status / 100];
    if (!w_.router.log) return;
    AccessEntry e;
    e.method = req.method_string();
    e.path = req.target();
    auto host = req.find(http::field::host);
    if (host != req.end()) e.host = host->value();
    e.request_id = request_id;
    e.client_ip = fwd_ip_.empty() ? client_ip_ : fwd_ip_;
    if (log_https_) e.protocol = "https";
    e.instance = o.instance;
    e.status = o.status;
    e.connect_ms =
        o.connected == Time{}
            ? 0
            : std::chrono::duration_cast<std::chrono::milliseconds>(o.connected - start).count();
    e.service_ms = MsSince(o.connected == Time{} ? start : o.connected);
    e.bytes = o.bytes;
    e.code = o.code;
    e.desc = o.desc;
    AppendAccessLine(e, w_.log_buf);
    fwd_ip_.clear();  // (this request's only)
    log_https_ = false;
    if (w_.log_buf.size() > 32 * 1024) w_.FlushLog();
  }

  // The connection this client kept to `b` after an earlier request, if it may carry the next.
  std::unique_ptr<Upstream> TakeKept(const Backend& b, bool replayable) {
    // Those the sweep closed (idle too long, their instance left) go now: a client that never
    // idles would otherwise gather one per instance it ever used.
    std::erase_if(kept_, [](const std::unique_ptr<Upstream>& u) { return !u->kept; });
    for (size_t i = 0; i < kept_.size(); ++i) {
      if (kept_[i]->backend->info.id != b.info.id) continue;
      std::unique_ptr<Upstream> u = std::move(kept_[i]);
      kept_[i] = std::move(kept_.back());
      kept_.pop_back();
      w_.Unkeep(*u);
      if (w_.Reusable(*u, replayable)) return u;
      return nullptr;
    }
    return nullptr;
  }

  // After a response: the connection stays with this client for its next request to the same
  // instance (one per instance; see kCool for why not the worker's pool).
  void Keep(std::unique_ptr<Upstream> u) {
    if (u->backend->OutOfRotation()) return;  // closes it
    for (auto& k : kept_) {
      if (k->backend->info.id == u->backend->info.id) {
        w_.Unkeep(*k);
        k = std::move(u);
        w_.Keep(*k);
        return;
      }
    }
    w_.Keep(*u);
    kept_.push_back(std::move(u));
  }

  // The client left or went idle: its connections go to the pool (after kCool).
  void ReleaseKept() {
    for (auto& u : kept_) {
      const bool listed = u->kept;
      w_.Unkeep(*u);
      if (listed) w_.Put(std::move(u));
    }
    kept_.clear();
  }

  // An upstream connection to `b`: this client's own, one from the pool, or a new one within
  // connect_timeout.
  Task<std::unique_ptr<Upstream>> Connect(const std::shared_ptr<Backend>& b, bool fresh,
                                          bool replayable) {
    if (!fresh) {
      if (auto u = TakeKept(*b, replayable)) co_return u;
      if (auto u = w_.Take(b, replayable)) co_return u;
    }
    auto u = std::make_unique<Upstream>(w_.io);
    u->backend = b;
    // Beast reads at most the buffer's free capacity (512 bytes at least): without room, a
    // body would come 512 bytes a recv(2).
    u->buf.reserve(kBodyChunk);
    // What the parser has not taken yet: a head (64 KiB at most), or a chunk-size line or a
    // trailer, which Beast's header limit does not bound. Past this the response is refused
    // (buffer_overflow), rather than an endless chunk extension growing the buffer.
    u->buf.max_size(kMaxResponseHead + kBodyChunk);
    Deadline d;
    d.sock = &u->sock;
    d.at = CoarseNow() + w_.router.config.connect_timeout;
    Watch watch(w_, d);
    const tcp::endpoint ep(b->info.ipv6 ? asio::ip::address(asio::ip::address_v6::loopback())
                                        : asio::ip::address(asio::ip::address_v4::loopback()),
                           static_cast<unsigned short>(b->info.port));
    auto [ec] = co_await u->sock.async_connect(ep, kTuple);
    if (ec) co_return nullptr;
    u->sock.Tune();
    co_return u;
  }

  // What a request's head says for the exchange, once its forwarding fields are in place.
  struct Prepared {
    bool keep_alive = false;
    unsigned version = 11;
    bool head_method = false;
    bool has_body = false;
    bool upgrade = false;
  };

  // Sets request_id_ and pin_, and rewrites the head for the instance (a plain function: what
  // it needs stays out of the request's coroutine frame).
  Prepared Prepare(RequestParser& parser) {
    auto& req = parser.get();
    const RouterConfig& cfg = w_.router.config;
    const RequestFacts facts = Facts(req.base());
    std::string& request_id = request_id_;
    Prepared pre;
    if (!facts.request_id.empty() && SaneRequestId(facts.request_id)) {
      request_id.assign(facts.request_id);
    } else {
      NewRequestId(w_.rng(), w_.rng(), request_id);
    }
    // phoenix audit: the request says which instance serves it.
    pin_.clear();
    if (cfg.audit) {
      if (auto it = req.find("X-Phoenix-Instance"); it != req.end()) {
        pin_.assign(it->value());
        req.erase("X-Phoenix-Instance");
      }
    }
    pre.keep_alive = facts.keep_alive;
    pre.version = req.version();
    pre.head_method = req.method() == http::verb::head;
    head_request_ = pre.head_method;
    pre.has_body = !parser.is_done();
    const bool chunked = parser.chunked();
    // An upgrade whose request has a body is ignored (RFC 9110 7.8 lets a server): the body
    // would stream beside a tunnel. WebSocket handshakes have none.
    pre.upgrade = facts.upgrade && !pre.has_body;
    std::optional<uint64_t> length;
    if (!chunked && parser.content_length()) length = *parser.content_length();
    // An HTTP/1.0 request without Host goes on as HTTP/1.1: it gets the address it reached.
    std::string local_host;
    if (!facts.has_host) {
      error_code lec;
      auto local = client_.local_endpoint(lec);
      if (!lec) {
        std::string addr = local.address().to_string();
        if (local.address().is_v6()) addr = "[" + addr + "]";
        local_host = fmt::format("{}:{}", addr, local.port());
      }
    }
    const Forwarding fwd{client_ip_, w_.router.port(), request_id, local_host, trusted_};
    ForwardedValues values = PrepareRequest(req.base(), fwd, pre.upgrade, length);
    // The head is written by hand: the forwarding fields go in as text.
    extra_.clear();
    AppendForwardingLines(fwd, values, extra_);
    // The access log names the client behind a trusted proxy, as Heroku's `fwd` does.
    if (trusted_ && w_.router.log) {
      log_https_ = values.proto == "https";
      fwd_ip_ = ClientBehindProxies(std::string_view(values.xff).substr(0, values.xff.rfind(',')),
                                    client_ip_, w_.router.config.trusted_proxies);
    }
    return pre;
  }

  // A fresh request parser in parser_, its fields in the request's arena.
  void NewParser() {
    parser_.emplace(std::piecewise_construct, std::make_tuple(), std::make_tuple(Alloc(&arena_)));
    parser_->header_limit(static_cast<uint32_t>(w_.router.config.max_header_bytes));
    parser_->body_limit(std::numeric_limits<uint64_t>::max());
    parser_->on_chunk_header(chunk_extension_check_);
    head_request_ = false;
  }

  // One request and its response. Returns whether to keep the client connection.
  Task<bool> OneRequest(bool first) {
    const RouterConfig& cfg = w_.router.config;
    NewParser();
    auto& parser = *parser_;
    std::optional<Refusal>& refusal = refusal_;
    refusal.reset();
    bool ok = co_await ReadHead(parser, first, refusal);
    Time start = Stamp();
    auto& req = parser.get();
    if (!ok) {
      if (refusal) {
        // The framing of what follows cannot be trusted: answer and close (RFC 9112 11.2).
        outcome_ = Outcome{};
        co_await Fail(req.base(), "", start, refusal->status, "H400", refusal->reason.c_str(),
                      true);
      }
      co_return false;
    }

    const Prepared pre = Prepare(parser);
    const std::string& request_id = request_id_;
    const bool client_keep_alive = pre.keep_alive;
    const unsigned version = pre.version;
    const bool head_method = pre.head_method;
    const bool has_body = pre.has_body;
    const bool upgrade = pre.upgrade;
    const std::string& pin = pin_;

    Outcome& o = outcome_;  // (a member: the request's frame stays small)
    o = Outcome{};
    int attempts = 0;
    lost_sends_ = 0;
    uint64_t avoid = 0;
    bool body_started = false;
    bool fresh = false;  // a pooled connection failed: no more pooled ones for this request
    Time wait_until = start + cfg.retry_timeout;
    std::unique_ptr<Upstream>& up = up_;  // a member: a body pump may outlive this frame
    Held backend;
    auto& rp_slot = res_parser_;

    // ---- pick, connect, send, read the response head; retry while it is safe
    for (;;) {
      backend.Reset();
      w_.Refresh();
      backend.b = pin.empty() ? Backends::Pick(*w_.snapshot, cfg.balance, w_.cursor, avoid)
                              : Backends::PickInstance(*w_.snapshot, pin);
      if (!backend) {
        if (Clock::now() < wait_until && !body_started) {
          // No instance ready (all booting, a drill): wait a little for one, as HAProxy's
          // queue does, rather than fail at once.
          co_await Pause();
          continue;
        }
        const bool close = has_body || !client_keep_alive;
        co_await Fail(req.base(), request_id, start, 503, "H14", "No web instances running", close,
                      "Retry-After: 1\r\n");
        co_return !close;
      }
      o.instance = backend->info.instance;
      // Replayable: idempotent, no body, and no send lost yet (a dead pooled connection would
      // count as a second lost send, and a request of death stops at that; Worker::Take).
      up = co_await Connect(backend.b, upgrade || fresh,
                            !has_body && IsIdempotent(req.method()) && lost_sends_ == 0);
      if (!up) {
        // The instance never got the request: always safe to try another.
        avoid = backend->info.id;
        ++w_.counters.retries;
        if (++attempts < 4) continue;
        if (Clock::now() < wait_until && !body_started) {
          // Every instance refused: they died (a drill, kill --now) and the supervisor has not
          // taken them out yet, or they are being reborn. Wait for one, as when none is ready.
          co_await Pause();
          attempts = 0;
          avoid = 0;
          fresh = true;
          continue;
        }
        const bool close = has_body || !client_keep_alive;
        co_await Fail(req.base(), request_id, start, 502, "H19", "Backend connection failed",
                      close);
        co_return !close;
      }
      o.connected = Stamp();

      Deadline& ud = up_deadline_;  // (a member: the request's frame stays small)
      ud.sock = &up->sock;
      UnwatchClient();
      ud.client_gone = false;
      Watch uwatch(w_, ud);
      auto up_deadline = [&ud](std::chrono::milliseconds d) {
        ud.fired = false;
        ud.at = CoarseNow() + d;
      };
      bool sent = false;
      error_code ec;
      up_deadline(cfg.response_timeout);
      head_.clear();
      AppendRequestHead(req.base(), head_, extra_);
      out_ = asio::buffer(head_);
      if (!up->sock.SendNow(out_, ec)) {
        std::tie(ec, std::ignore) = co_await asio::async_write(up->sock, out_, kTuple);
      }
      sent = !ec;
      if (sent && has_body) {
        // The body streams to the instance beside its answer coming back, as in a tunnel: an
        // app that answers as it reads (`req.pipe(res)`) would otherwise fill both ways' socket
        // buffers and wait for ever; an early answer (413) comes at once.
        StartBody(*up);
        body_started = true;  // from here on it is consumed: the request cannot be retried
      }
      // ---- the response head (1xx heads forwarded: a 100 is the app's answer to an Expect)
      bool got_byte = false;
      const char* bad_head = nullptr;  // BadResponseHead's reason
      int informational = 0;
      uint32_t informational_bytes = 0;
      // The request is whole (no pump reads the client; else when the pump is done, which may
      // be already: it runs at once until it waits): from now until its answer's head, a client
      // that leaves abandons it.
      if (sent && (!PumpRunning() || pump_->end == PumpEnd::kSent)) WatchClient();
      if (sent) {
        awaiting_head_ = true;
        for (;;) {
          rp_slot.emplace(std::piecewise_construct, std::make_tuple(),
                          std::make_tuple(Alloc(&arena_)));
          rp_slot->body_limit(std::numeric_limits<uint64_t>::max());
          rp_slot->header_limit(kMaxResponseHead);
          if (head_method) rp_slot->skip(true);
          // While a body pump runs, the answer's time is its to keep: from its last write, or
          // none while it waits on the client (whose own deadline, a 408, governs then).
          if (!PumpRunning()) up_deadline(cfg.response_timeout);
          size_t before = up->buf.size(), head_bytes = 0;
          std::tie(ec, head_bytes) =
              co_await http::async_read_header(up->sock, up->buf, *rp_slot, kTuple);
          got_byte = got_byte || up->buf.size() != before || rp_slot->is_header_done();
          if (ec == http::error::bad_status && AddReasonSpace(up->buf)) continue;
          if (ec) break;
          if ((bad_head = BadResponseHead(rp_slot->get().base(), head_method))) {
            ec = http::error::bad_value;
            break;
          }
          int code = static_cast<int>(rp_slot->get().result_int());
          if (code >= 200 || code == 101) break;
          // Each head is kept in the request's arena until it ends, and each pushes the
          // response's time back: an instance that sends 1xx heads without end would hold the
          // request, and grow phoenix, for ever.
          // Their bytes together are held to one head's limit (16 heads of 60 KB each held
          // 1.2 MB a request, measured; HAProxy's and nginx's 16 and 4-8 KB buffers take less).
          informational_bytes +=
              static_cast<uint32_t>(std::min<size_t>(head_bytes, kMaxResponseHead + 1));
          if (++informational > kMaxInformational || informational_bytes > kMaxResponseHead) {
            ec = http::error::bad_status;
            break;
          }
          // An HTTP/1.0 client would take a 1xx for the answer (RFC 9110 15.2: none is sent to
          // it); the instance sent one because the request went on as HTTP/1.1. A 100 Continue
          // is the app's answer to the client's Expect, which went on to it.
          if (version != 10 && !co_await Informational(version)) {
            UnwatchClient();
            ClientLeft(req.base(), start);
            co_return false;
          }
          if (code == 100) ContinueSent();
        }
      }
      UnwatchClient();
      if (sent && !ec) {
        // A response head is here (if its client left as it came, the writes will say so).
        ud.client_gone = false;
        break;
      }

      if (ud.client_gone) {
        // Its client left while the app worked on it: the app's connection closes, so the app
        // sees the request abandoned (Node: the request's 'close') and its work, a long poll
        // above all, does not hold a drain up; nothing is retried, nothing answered.
        error_code ignored;
        up->sock.close(ignored);
        ud.sock = nullptr;
        StopPump();
        if (!pump_ || !pump_->running) up.reset();
        ClientLeft(req.base(), start, "Client left before the answer");
        co_return false;
      }

      // ---- failed before any response byte reached the client
      bool timed_out = ud.fired;
      // No answer within response_timeout: others get the next requests for a while (a hung
      // instance would otherwise time out every other request until it dies).
      // (Not while the client's Expect waits on a 100: a client could have every instance
      // marked slow by sending Expect to an app that reads bodies without answering it.)
      if (timed_out && !got_byte && !AwaitingContinue()) Backends::MarkSlow(*backend.b);
      error_code ignored;
      up->sock.close(ignored);
      ud.sock = nullptr;  // its deadline stays registered for this attempt: no socket to cancel
      bool reused = up->reused;
      // (A body pump may still hold it until it sees it was stopped: Run lets it go then. No
      // retry follows a body that started.)
      StopPump();
      if (!pump_ || !pump_->running) up.reset();
      // Safe to retry: nothing of the body was consumed, and either the method is idempotent
      // or a reused keep-alive connection failed before the instance answered anything (it
      // closed as we sent: the app never saw the request).
      bool safe = !body_started && !timed_out && !got_byte &&
                  (IsIdempotent(req.method()) || (reused && !sent));
      // Sent once more at most: a request that kills the instance serving it (a "request of
      // death") must not be fed to the next instance, and the next, and their successors; one
      // retry covers an instance that died under it by chance (nginx tries each server once,
      // HAProxy retries only failed connects).
      // (An instance phoenix killed itself, in a drill or by chaos, does not count.)
      if (sent && !backend->killed.load() && ++lost_sends_ >= kMaxLostSends) safe = false;
      if (safe && attempts >= 3 && Clock::now() < wait_until) {
        co_await Pause();  // as above: the instances died; wait for their successors
        attempts = 0;
      }
      if (safe && ++attempts < 4) {
        ++w_.counters.retries;
        // The wait for an instance (none ready: its successor is booting) runs from this
        // failure, not from the request's start: a long poll whose instance died is as
        // retryable as a fresh request (HAProxy's queue timeout runs from the queueing).
        if (sent) wait_until = Clock::now() + cfg.retry_timeout;
        avoid = reused ? 0 : backend->info.id;  // (reused: it may be alive; fresh below)
        if (reused) {
          // Either it went stale or its instance died (kill --now): then every pooled
          // connection to it is dead too, and retrying on them would use up the attempts. The
          // retry connects afresh, which an instance that died refuses at once.
          fresh = true;
          w_.ForgetBackend(backend->info.id);
        }
        continue;
      }
      co_await Fail(req.base(), request_id, start, timed_out ? 504 : 502, timed_out ? "H12" : "H13",
                    bad_head ? bad_head : NoResponseDesc(timed_out, ec, got_byte), true);
      co_return false;
    }

    // ---- a response head arrived: send it and stream the body back
    auto& res = rp_slot->get();
    o.status = static_cast<int>(res.result_int());
    if (o.status == 101 && upgrade) {
      o.bytes = co_await Tunnel(*up, res);  // the instance's bytes to the client, as a body's
      ++w_.counters.upgrades;
      Log(req.base(), request_id, start, o);
      co_return false;
    }
    if (o.status == 101) {
      // A switch nobody asked for (RFC 9110 15.2.2: only in answer to an Upgrade): what follows
      // on that connection is no HTTP the router can frame, and the client would think its own
      // connection switched.
      error_code ignored;
      up->sock.close(ignored);
      co_await Fail(req.base(), request_id, start, 502, "H13", "Unrequested protocol switch",
                    !client_keep_alive || !parser.is_done());
      co_return client_keep_alive&& parser.is_done();
    }
    // Connection is hop-by-hop (RFC 9110 7.6.1): an instance that closes its connection does not
    // close the client's, unless the body ends with that close.
    bool keep_alive = client_keep_alive && parser.is_done();
    // Answered before its body was all read (an early 413): the client may still be sending it.
    if (!parser.is_done()) linger_ = true;
    // Transfer-Encoding without a final chunked: the client reads to the close (RFC 9112 6.3).
    const bool to_close = NormalizeResponseFraming();
    if (rp_slot->need_eof() && version == 11 &&
        res.find(http::field::transfer_encoding) == res.end()) {
      // A body that ends with the instance's close and has no coding goes to an HTTP/1.1 client
      // chunked, as nginx sends it: a body cut by a reset then lacks its last chunk instead of
      // looking whole, and the client's connection outlives the instance's. (Behind another
      // coding, chunked would make "gzip, chunked", which clients that know only "chunked" read
      // to a close that never comes: those, and HTTP/1.0 clients, read to the close.)
      res.chunked(true);
    } else if (to_close || rp_slot->need_eof()) {
      keep_alive = false;
    }
    if (version == 10 && res.chunked()) {
      // HTTP/1.0 has no chunked coding: send the body as is and close to end it.
      res.chunked(false);
      keep_alive = false;
    }
    RewriteResponse(res.base(), keep_alive, version);
    if (cfg.audit) {
      res.base().set("X-Phoenix-Instance",
                     fmt::format("{}#{}", backend->info.instance, backend->info.incarnation));
    }
    const bool upstream_ok = co_await Respond(*up, head_method, keep_alive);
    if (!upstream_ok) {
      keep_alive = false;
      if (!o.code) {
        o.code = "H18";
        o.desc = "Server response interrupted";
      }
    }
    // Bytes read past the response's end (a body to a HEAD or a 204, a second response) are not
    // an answer to anything: such a connection is closed, never pooled.
    // (The parser's keep_alive: the instance's own; `res` was rewritten for the client.)
    // Nor is one whose request body is not all sent (an early answer): the instance still
    // waits for the rest of it.
    if (StopPump() && upstream_ok && rp_slot->is_done() && rp_slot->keep_alive() &&
        up->buf.size() == 0) {
      up->peek_before_reuse = head_method || o.status == 204 || o.status == 304;
      Keep(std::move(up));
    }
    Log(req.base(), request_id, start, o);
    // The client meant to go on (it may have sent its next request already): the close lingers.
    if (client_keep_alive && !keep_alive) linger_ = true;
    co_return keep_alive;
  }

  // Sends the response head and streams its body to the client. Returns false when the
  // instance cut the body short (the client then sees the connection close). Its own coroutine,
  // so that its buffers are not in every request's frame (a frame over 1,020 bytes is not
  // recycled by Asio: one malloc a request).
  Task<bool> Respond(Upstream& up, bool head_method, bool& keep_alive) {
    Outcome& o = outcome_;
    const RouterConfig& cfg = w_.router.config;
    auto& res = res_parser_->get();
    bool upstream_ok = true;
    // Framing is ours: the head in one piece, the body as it comes (re-chunked when the
    // response is chunked), the last chunk after it; each write gathers what is ready.
    const bool chunked_out = res.chunked();
    const int status = o.status;
    const bool body_allowed = !head_method && status != 204 && status != 304;
    head_.clear();
    AppendResponseHead(res.base(), head_);
    bool head_sent = false;
    const bool early_head_ok = chunked_out || res_parser_->content_length().has_value();
    // An event stream never ends by itself either: counted as a tunnel, it does not hold up a
    // drain (the app gets its SIGTERM and ends it; EventSource reconnects to another instance).
    std::optional<TunnelCount> stream;
    if (IsEventStream(res) && up.backend) {
      stream.emplace(*up.backend);
      ReleaseKept();  // a stream lasts: others may use this client's idle connections
    }
    char* chunk = Chunk();
    char frame[24];
    for (;;) {
      size_t n = 0;
      bool done = res_parser_->is_done();
      if (!head_sent && !done && up.buf.size() == 0 && early_head_ok && NothingWaiting(up.sock)) {
        // No byte of the body is here yet (an event stream, a slow report): the head goes on
        // now, as nginx and HAProxy pass it on once read, and the client sees its status at
        // once (an EventSource opens). Only when the client can tell a body cut short from a
        // whole one (a length, or chunks): a body that ends with the connection would look
        // complete, an empty 200 instead of the 502/504 it gets when nothing was sent.
        ClientDeadline(cfg.response_timeout);
        error_code wec;
        out_ = asio::buffer(head_);
        if (!client_.SendNow(out_, wec)) {
          std::tie(wec, std::ignore) = co_await asio::async_write(client_, out_, kTuple);
        }
        if (wec) {
          ClientWentAway(keep_alive);
          break;
        }
        WriteDone();
        head_sent = true;
      }
      if (!done) {
        res.body().data = chunk;
        res.body().size = kBodyChunk;
        // The request's deadline with the instance: each byte of the answer pushes it back, and
        // so does each body byte the pump writes; while the pump waits on the client, none.
        Deadline& ud = up_deadline_;
        ud.sock = &up.sock;
        if (!PumpRunning() || ud.at != Time::max()) {
          ud.fired = false;
          ud.at = CoarseNow() + cfg.response_timeout;
        }
        Watch uwatch(w_, ud);
        error_code rec;
        if (!ParseBuffered(*res_parser_, up.buf, rec)) {
          std::tie(rec, std::ignore) =
              co_await http::async_read_some(up.sock, up.buf, *res_parser_, kTuple);
        }
        if (rec == http::error::need_buffer) rec = {};
        // A framing field in a trailer (Content-Length after a chunked body, which RFC 9110
        // 6.5.1 forbids there) makes Beast refuse the trailer, past the last chunk: the body is
        // whole, and trailers are dropped anyway (RFC 9112 7.1.2). The parse stopped inside
        // the trailer, so the connection is not reused (the parser is not done).
        const bool bad_trailer =
            (rec == http::error::bad_content_length || rec == http::error::bad_transfer_encoding) &&
            res_parser_->is_header_done() && res_parser_->chunked();
        if (bad_trailer) rec = {};
        if (rec) {
          upstream_ok = false;  // cut mid-body: the client sees the connection close
          if (PumpFailedOnClient()) {
            // The client's body failed (the pump closed the instance's connection): its error
            // is the answer, if none has started.
            co_await ClientBodyFailed(!head_sent);
            break;
          }
          if (head_sent) ++w_.counters.interrupted;  // the client sees a cut answer
          if (head_sent && ud.fired) {
            o.code = "H18";
            o.desc = "Server response interrupted (no byte within response_timeout)";
          }
          if (!head_sent) {
            // Nothing of it reached the client yet (a bad first chunk, no byte in time): the
            // client gets a 502 (504) rather than a connection closed without an answer.
            const bool timed_out = ud.fired;
            ++w_.counters.router_errors;
            co_await SendError(timed_out ? 504 : 502, request_id_, true);
            o.status = timed_out ? 504 : 502;
            o.code = timed_out ? "H12" : "H13";
            o.desc = timed_out ? "Request timeout" : "Bad response from the instance";
          }
          break;
        }
        n = kBodyChunk - res.body().size;
        done = res_parser_->is_done() || bad_trailer;
        o.bytes += n;
        if (n == 0 && !done) continue;  // a chunk header alone: nothing to send yet
      }
      std::array<asio::const_buffer, 5> bufs;
      size_t k = 0;
      if (!head_sent) bufs[k++] = asio::buffer(head_);
      k = AppendBodyPiece(bufs, k, frame, chunk, n, chunked_out, done && body_allowed);
      if (!head_sent && k > 1 && asio::buffer_size(bufs) - head_.size() <= kCoalesce) {
        // A small response goes out in one piece: one send(2) of one buffer, not a
        // gathered sendmsg(2) that the kernel copies piece by piece.
        for (size_t i = 1; i < k; ++i) {
          head_.append(static_cast<const char*>(bufs[i].data()), bufs[i].size());
        }
        bufs[0] = asio::buffer(head_);
        k = 1;
      }
      if (k > 0) {
        ClientDeadline(cfg.response_timeout);
        error_code wec;
        if (!client_.SendNow(std::span(bufs.data(), k), wec)) {
          // (The socket's buffer is full: what is left goes when it drains.)
          std::tie(wec, std::ignore) = co_await asio::async_write(
              client_, std::span<const asio::const_buffer>(bufs.data(), k), kTuple);
        }
        if (wec) {
          ClientWentAway(keep_alive);
          break;
        }
        WriteDone();
      }
      head_sent = true;
      if (done) break;
    }
    co_return upstream_ok;
  }

  // A write of the response to the client failed: it left (H27), and its connection ends.
  void ClientWentAway(bool& keep_alive) {
    keep_alive = false;
    outcome_.code = "H27";
    outcome_.desc = "Client went away";
  }

  // A 1xx head (100 Continue, 103 Early Hints...), passed on. False: the client went away.
  Task<bool> Informational(unsigned version) {
    ResponseHead info = res_parser_->get().base();
    RewriteResponse(info, true, version);
    std::string raw;
    for (auto& f : info) raw += fmt::format("{}: {}\r\n", f.name_string(), f.value());
    raw = fmt::format("HTTP/1.1 {} {}\r\n{}\r\n", info.result_int(), info.reason(), raw);
    ClientDeadline(w_.router.config.response_timeout);
    auto [ec, n] = co_await asio::async_write(client_, asio::buffer(raw), kTuple);
    WriteDone();
    co_return !ec;
  }

  // Parses what `buf` already holds, as Beast's read does before it reads; true when that was
  // enough (a piece of body, its end, or an error in `ec`), false when bytes must come first.
  // Why not Beast's read alone: when it needs no I/O (a body that came with its head) it posts
  // its completion, and the request waits a round of a busy loop.
  template <class Parser>
  static bool ParseBuffered(Parser& parser, beast::flat_buffer& buf, error_code& ec) {
    if (buf.size() == 0) return false;
    buf.consume(parser.put(buf.data(), ec));
    if (ec != http::error::need_more) return true;
    ec = {};
    return false;
  }

  // No byte waits on the socket: the reactor's word (no syscall), or, when it has seen an event
  // since the last read emptied the socket (often one for bytes that read already took), the
  // kernel's. A "maybe" taken for a "yes" held an event stream's head until its first event.
  static bool NothingWaiting(Socket& sock) { return sock.Quiet() || sock.Empty(); }

  // A write to the client is done: its deadline must not fire later and cancel the client's
  // socket under a body pump still reading from it.
  void WriteDone() { client_deadline_.at = Time::max(); }

  // Starts the request's body on its way to the instance, after its head: BodyPump, in a
  // coroutine of its own. A client that sent `Expect: 100-continue` waits for the app's 100
  // Continue (passed on as any 1xx) or its refusal before it sends the body.
  void StartBody(Upstream& up) {
    if (!pump_) pump_ = std::make_unique<Pump>();
    Pump& p = *pump_;
    p.running = true;
    p.stop = false;
    p.end = PumpEnd::kNone;
    // (Any other Expect was refused with a 417, and an HTTP/1.0 client's was dropped.)
    const auto& req = parser_->get();
    p.awaiting_continue =
        req.version() >= 11 && req.find(http::field::expect) != req.end() && buf_.size() == 0;
    if (!p.chunk) p.chunk = TakeSpare();
    asio::co_spawn(client_.get_executor(), BodyPump(up),
                   [this](std::exception_ptr) { pump_->running = false; });
  }

  // Reads the request's body from the client and writes it to the instance (chunks framed
  // again, trailers dropped as RFC 9112 7.1.2 allows) while OneRequest reads the answer. A
  // client-side failure closes the instance's connection, which ends that read; the request
  // then answers for it (ClientBodyFailed). After StopPump it touches nothing and ends.
  Task<void> BodyPump(Upstream& up) {
    Pump& p = *pump_;
    const RouterConfig& cfg = w_.router.config;
    auto& req = parser_->get();
    const bool chunked = parser_->chunked();
    char* chunk = p.chunk.get();
    // Its own deadline for the client's body, apart from the answer's writes (which push
    // client_deadline_): a client that stops sending gets its 408 while the answer streams.
    p.deadline.sock = &client_;
    p.deadline.fired = false;
    p.deadline.at = Time::max();
    Watch watch(w_, p.deadline);
    char frame[24];
    for (;;) {
      size_t n = 0;
      bool done = parser_->is_done();
      if (!done) {
        req.body().data = chunk;
        req.body().size = kBodyChunk;
        if (p.awaiting_continue) {
          // The client waits for the app's 100 Continue (or its refusal) before it sends: it
          // is the app that is late if nothing comes, a 504, not the client (a 408).
          p.deadline.at = Time::max();
          if (!up_deadline_.fired) up_deadline_.at = CoarseNow() + cfg.response_timeout;
        } else {
          p.deadline.at = CoarseNow() + cfg.response_timeout;
          // While the body comes from the client, the instance's answer is not late: its time
          // (response_timeout) runs from the last body byte written, as when the two took turns.
          if (!up_deadline_.fired) up_deadline_.at = Time::max();
        }
        error_code rec;
        if (!ParseBuffered(*parser_, buf_, rec)) {
          std::tie(rec, std::ignore) =
              co_await http::async_read_some(client_, buf_, *parser_, kTuple);
        }
        p.awaiting_continue = false;
        p.deadline.at = Time::max();
        if (p.stop) co_return;
        if (rec == http::error::need_buffer) rec = {};
        if (rec) {
          const auto& parse_errors = http::make_error_code(http::error::bad_chunk).category();
          if (p.deadline.fired && rec == asio::error::operation_aborted) {
            p.end = PumpEnd::kClientIdle;
          } else if (rec.category() == parse_errors && rec != http::error::partial_message &&
                     rec != http::error::end_of_stream && rec != http::error::short_read) {
            p.end = PumpEnd::kMalformed;
          } else {
            p.end = PumpEnd::kClientGone;
          }
          error_code ignored;
          up.sock.close(ignored);  // the instance gets no more of it, and the answer's read ends
          co_return;
        }
        n = kBodyChunk - req.body().size;
        done = parser_->is_done();
        if (n == 0 && !done) continue;  // a chunk header alone: nothing to send yet
      }
      std::array<asio::const_buffer, 4> bufs;
      size_t k = 0;
      k = AppendBodyPiece(bufs, k, frame, chunk, n, chunked, done);
      if (k > 0) {
        // (Never `fired` reset: a deadline that fired has cancelled the socket, and the answer's
        // read must see it as a timeout.)
        if (!up_deadline_.fired) up_deadline_.at = CoarseNow() + cfg.response_timeout;
        error_code wec;
        if (!up.sock.SendNow(std::span(bufs.data(), k), wec)) {
          std::tie(wec, std::ignore) = co_await asio::async_write(
              up.sock, std::span<const asio::const_buffer>(bufs.data(), k), kTuple);
        }
        if (p.stop) co_return;
        if (wec) {
          // The instance stopped taking it: it answered already (an upload limit's 413, then
          // closed), and that answer is read as any; or it died, and the read fails too.
          p.end = PumpEnd::kUpstreamFailed;
          co_return;
        }
      }
      if (done) {
        p.end = PumpEnd::kSent;
        if (awaiting_head_) WatchClient();
        co_return;
      }
    }
  }

  // The request is over (answered, failed, or its connection ends): a body still being pumped
  // stops, its socket operations cancelled (the instance's connection is not reused). True
  // when the whole body reached the instance (or there was none).
  bool StopPump() {
    if (!pump_) return true;
    if (!pump_->running) return pump_->end == PumpEnd::kNone || pump_->end == PumpEnd::kSent;
    pump_->stop = true;
    error_code ignored;
    client_.cancel(ignored);
    if (up_) up_->sock.close(ignored);
    return false;
  }

  // 101 Switching Protocols: the head goes to the client, then bytes flow both ways until
  // either side closes (WebSocket, h2c, anything).
  Task<uint64_t> Tunnel(Upstream& up, http::response<http::buffer_body, Fields>& res) {
    RewriteResponse(res.base(), true, 11);
    std::string head =
        fmt::format("HTTP/1.1 101 {}\r\n",
                    res.reason().empty() ? "Switching Protocols" : std::string(res.reason()));
    for (auto& f : res) head += fmt::format("{}: {}\r\n", f.name_string(), f.value());
    head += "\r\n";
    client_deadline_.at = Time::max();
    client_deadline_.fired = false;  // the header deadline may have fired while the 101 came
    auto [ec, n] = co_await asio::async_write(client_, asio::buffer(head), kTuple);
    if (ec) co_return 0;
    uint64_t to_client = 0, to_upstream = 0;
    // Bytes that came early on either side, behind the heads.
    if (up.buf.size()) {
      std::tie(ec, n) = co_await asio::async_write(client_, up.buf.data(), kTuple);
      to_client += n;
      up.buf.consume(up.buf.size());
    }
    if (!ec && buf_.size()) {
      std::tie(ec, n) = co_await asio::async_write(up.sock, buf_.data(), kTuple);
      buf_.consume(buf_.size());
    }
    if (ec) co_return to_client;
    // The heads' buffers are not needed any more: a long-lived tunnel should not keep them.
    up.buf.shrink_to_fit();
    buf_.shrink_to_fit();
    head_ = std::string();
    ReleaseChunk();
    ReleaseKept();  // nor its idle connections to the instances
    // Counted as a tunnel of its instance while the bytes pass: no drain waits for it. (Here,
    // in the tunnel's own frame: the request's has no byte to spare.)
    const TunnelCount counted(*up.backend);
    // No byte either way for tunnel_timeout: both sides' operations are cancelled (by the
    // sweep), so a tunnel whose peer vanished, or that nobody reads, ends.
    Deadline ud;
    ud.sock = &up.sock;
    Watch uwatch(w_, ud);
    TunnelIdle idle{&client_deadline_, &ud, w_.router.config.tunnel_timeout};
    idle.websocket = beast::iequals(res[http::field::upgrade], "websocket");
    idle.Touch();
    co_await (Pipe(client_, up.sock, idle, to_upstream) && Pipe(up.sock, client_, idle, to_client));
    error_code ignored;
    up.sock.close(ignored);
    co_return to_client;
  }

  // The two deadlines of a tunnel, pushed back by every byte that passes either way.
  struct TunnelIdle {
    Deadline* client;
    Deadline* upstream;
    std::chrono::milliseconds timeout;
    void Touch() const {
      client->at = upstream->at = CoarseNow() + timeout;
      client->fired = upstream->fired = false;  // (a fired deadline is never swept again)
    }
    bool websocket = false;
    // One side of a WebSocket closed its half: the other gets kTunnelHalfClosed without a byte
    // to finish (as HAProxy's `timeout client-fin` / `server-fin`). WebSocket ends with close
    // frames, not a half-close (RFC 6455 7.1.1), so a FIN means that peer is gone; a server that
    // never answers it would otherwise keep the tunnel, and its instance's drain, for
    // tunnel_timeout. Other upgrades may half-close on purpose (a stream whose client has said
    // all it had to say) and keep tunnel_timeout.
    void HalfClosed() {
      if (websocket) timeout = std::min(timeout, kTunnelHalfClosed);
      Touch();
    }
  };

  // One direction of a tunnel. A buffer only while bytes are passing: between them the pipe
  // waits for readability with none (a WebSocket is mostly idle, and two 16 KiB buffers each
  // for its whole life made ~33 KiB a connection). Non-blocking reads until one would block,
  // then a wait: a busy stream pays the wait's epoll_ctl only when it runs dry.
  Task<void> Pipe(Socket& from, Socket& to, TunnelIdle& idle, uint64_t& passed) {
    error_code ec;
    from.non_blocking(true, ec);
    constexpr int kMaxUnyielded = 16;
    int unyielded = 0;
    while (!ec) {
      std::unique_ptr<char[]> data = TakeSpare();
      size_t n = from.read_some(asio::buffer(data.get(), kBodyChunk), ec);
      if (ec == asio::error::would_block) {
        GiveSpare(std::move(data));
        std::tie(ec) = co_await from.async_wait(Socket::wait_read, kTuple);
        unyielded = 0;
        continue;
      }
      if (ec) {
        GiveSpare(std::move(data));
        break;
      }
      idle.Touch();
      asio::const_buffer b(data.get(), n);
      error_code wec;
      const bool all = to.SendNow(b, wec);
      size_t wn = n - b.size();  // (b: what is left)
      if (!all) {
        auto [aec, an] = co_await asio::async_write(to, b, kTuple);
        wec = aec;
        wn += an;
        unyielded = 0;
      } else if (!wec && ++unyielded == kMaxUnyielded) {
        // Read and sent at once, again and again (a bulk stream between two fast peers): the
        // loop's other connections get their turn.
        co_await asio::post(to.get_executor(), kYield);
        unyielded = 0;
      }
      GiveSpare(std::move(data));
      passed += wn;
      if (wec) break;
      idle.Touch();
    }
    error_code ignored;
    to.shutdown(Socket::shutdown_send, ignored);
    idle.HalfClosed();
  }

  Task<void> Pause() {
    Timer t(w_.io.get_executor(), std::chrono::milliseconds(20));
    co_await t.async_wait(kTuple);
  }

  // The response's body buffer, made on first use (the request's body has its own, in the
  // pump: the two stream at the same time). In the coroutine frame it would be allocated per
  // request.
  char* Chunk() {
    if (!chunk_) chunk_ = TakeSpare();
    return chunk_.get();
  }

  // A kBodyChunk buffer from the loop's spares (or a new one), and back.
  std::unique_ptr<char[]> TakeSpare() {
    if (w_.spare_chunks.empty()) return std::make_unique<char[]>(kBodyChunk);
    std::unique_ptr<char[]> c = std::move(w_.spare_chunks.back());
    w_.spare_chunks.pop_back();
    return c;
  }
  void GiveSpare(std::unique_ptr<char[]> c) {
    if (c && w_.spare_chunks.size() < kSpareChunks) w_.spare_chunks.push_back(std::move(c));
  }

  // A connection waiting for its next request holds no body buffer: it goes back to the loop
  // for the next request of any connection (idle keep-alive connections cost ~16 KiB less each;
  // HAProxy likewise frees a stream's buffers between requests). A few are kept spare.
  void ReleaseChunk() { GiveSpare(std::move(chunk_)); }

  Worker& w_;
  // The heads' fields of one request, released after each: blocks from the loop's pool, so
  // a connection waiting for its next request holds none (most heads fit the first block).
  std::pmr::monotonic_buffer_resource arena_{kFieldBlock, &w_.field_blocks};
  // Refuses a request chunk whose extensions hold a control character (ValidChunkExtensions).
  struct ChunkExtensionCheck {
    void operator()(std::uint64_t, beast::string_view ext, error_code& ec) const {
      if (!ValidChunkExtensions(std::string_view(ext.data(), ext.size()))) {
        ec = http::error::bad_chunk_extension;
      }
    }
  };
  ChunkExtensionCheck chunk_extension_check_;  // (the parser holds a reference to it)
  // The request's and its response's parsers: here rather than in OneRequest's coroutine
  // frame, which is then small enough for Asio to recycle instead of a malloc a request.
  std::optional<RequestParser> parser_;
  std::optional<ResponseParser> res_parser_;
  std::unique_ptr<char[]> chunk_;
  std::string head_;           // a head on its way out, reused by every request of the connection
  asio::const_buffer out_;     // what of it is left to send (SendNow), outside the frame
  std::string extra_;          // the forwarding fields of a request, as text
  std::string request_id_;     // the request's X-Request-Id, reused
  bool head_request_ = false;  // the request is a HEAD: phoenix's own answers have no body
  std::string pin_;            // phoenix audit: the instance the request asked for
  std::optional<Refusal> refusal_;  // why a request head was refused
  Outcome outcome_;                 // the request's, for its log line
  int lost_sends_ = 0;              // the request's sends whose connection failed before any answer
  // A request body on its way to the instance (BodyPump), and how it ended.
  enum class PumpEnd { kNone, kSent, kUpstreamFailed, kClientIdle, kMalformed, kClientGone };
  struct Pump {
    bool running = false;  // its coroutine has not ended
    bool stop = false;     // its request is over: it touches nothing more
    PumpEnd end = PumpEnd::kNone;
    std::unique_ptr<char[]> chunk;   // its own body buffer: the response streams beside it
    Deadline deadline;               // of its client reads (the client's socket)
    bool awaiting_continue = false;  // Expect: 100-continue, and no 100 and no body byte yet
  };
  bool PumpRunning() const { return pump_ && pump_->running; }
  bool AwaitingContinue() const { return PumpRunning() && pump_->awaiting_continue; }
  // The app's 100 Continue went to the client: from now on the body is the client's to send
  // (its 408 deadline runs), and the answer waits on it.
  void ContinueSent() {
    if (!AwaitingContinue()) return;
    pump_->awaiting_continue = false;
    pump_->deadline.at = CoarseNow() + w_.router.config.response_timeout;
    if (!up_deadline_.fired) up_deadline_.at = Time::max();
  }
  std::unique_ptr<Pump> pump_;    // made at a connection's first request with a body
  std::unique_ptr<Upstream> up_;  // the request's instance connection (the pump's too)
  std::vector<std::unique_ptr<Upstream>> kept_;  // between requests, one per instance (Keep)
  Deadline up_deadline_;                         // the response's, while an upstream exchange runs
  bool awaiting_head_ = false;                   // the request waits for its answer's head
  bool linger_ = false;  // an answer ended the connection: drain what the client still sends
  Socket client_;
  Deadline client_deadline_;
  Time idle_end_ = Time::max();  // when the keep-alive wait after the last request ends
  beast::flat_buffer buf_;
  std::string client_ip_;
  bool trusted_ = false;    // the client is a trusted proxy (Forwarding::trusted)
  std::string fwd_ip_;      // the client behind it, for the access log
  bool log_https_ = false;  // and the scheme it said, for the same
};

}  // namespace

Task<void> Serve(Worker& w, Socket client, tcp::endpoint peer) {
  Session s(w, std::move(client), peer);
  co_await s.Run();
}

}  // namespace phoenix::router
