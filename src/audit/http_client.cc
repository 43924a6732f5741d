#include "audit/http_client.h"

#include <fmt/format.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <optional>

namespace phoenix::audit {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (beast::iequals(k, name)) return v;
  return "";
}

std::vector<std::string> HttpResponse::All(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers)
    if (beast::iequals(k, name)) out.push_back(v);
  return out;
}

struct HttpClient::Impl {
  std::string host;
  int port;
  asio::io_context io;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
};

HttpClient::HttpClient(std::string host, int port) : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
}

HttpClient::~HttpClient() { Close(); }

void HttpClient::Close() {
  if (impl_->stream) {
    beast::error_code ec;
    impl_->stream->socket().shutdown(tcp::socket::shutdown_both, ec);
    impl_->stream.reset();
  }
  impl_->buffer.clear();
}

Result<HttpResponse> HttpClient::Send(const HttpRequest& request,
                                      std::chrono::milliseconds timeout) {
  http::request<http::string_body> req;
  req.method_string(request.method);
  req.target(request.target);
  req.version(11);
  req.set(http::field::host, fmt::format("{}:{}", impl_->host, impl_->port));
  for (const auto& [k, v] : request.headers) req.insert(k, v);
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
      request.method == "PATCH") {
    req.body() = request.body;
    req.prepare_payload();
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = impl_->stream.has_value();
    beast::error_code ec;
    auto start = std::chrono::steady_clock::now();
    if (!impl_->stream) {
      impl_->stream.emplace(impl_->io);
      impl_->stream->expires_after(timeout);
      tcp::endpoint ep(asio::ip::make_address(impl_->host, ec),
                       static_cast<unsigned short>(impl_->port));
      if (ec) return Error{fmt::format("bad address {}: {}", impl_->host, ec.message())};
      impl_->stream->connect(ep, ec);
      if (ec) {
        Close();
        return Error{fmt::format("connect to {}:{}: {}", impl_->host, impl_->port, ec.message())};
      }
    }
    impl_->stream->expires_after(timeout);
    size_t sent = 0;
    // tcp_stream's timeout applies to async operations; the blocking ones below are bounded by
    // running them as async ones on the private io_context.
    http::async_write(*impl_->stream, req, [&](beast::error_code e, size_t n) {
      ec = e;
      sent = n;
    });
    impl_->io.restart();
    impl_->io.run();
    std::optional<http::response_parser<http::string_body>> parser;
    if (!ec) {
      // 1xx answers (but 101) are interim: read on.
      for (;;) {
        parser.emplace();
        parser->body_limit(256 * 1024 * 1024);
        parser->header_limit(1024 * 1024);
        if (request.method == "HEAD") parser->skip(true);
        http::async_read(*impl_->stream, impl_->buffer, *parser,
                         [&](beast::error_code e, size_t) { ec = e; });
        impl_->io.restart();
        impl_->io.run();
        if (ec || parser->get().result_int() >= 200 || parser->get().result_int() == 101) break;
      }
    }
    if (ec) {
      Close();
      // A keep-alive connection the server closed meanwhile: once more on a fresh one, as
      // browsers do.
      if (reused && attempt == 0 &&
          (ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe)) {
        continue;
      }
      if (ec == beast::error::timeout) {
        return Error{fmt::format("no answer within {} ms", timeout.count())};
      }
      return Error{fmt::format("{} (after {} bytes sent)", ec.message(), sent)};
    }
    HttpResponse res;
    auto& msg = parser->get();
    res.status = static_cast<int>(msg.result_int());
    for (const auto& f : msg)
      res.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    res.body = std::move(msg.body());
    res.ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!msg.keep_alive()) Close();
    return res;
  }
  return Error{"connection closed"};
}

}  // namespace phoenix::audit
