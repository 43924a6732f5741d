#include "router/http_rules.h"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace phoenix::router {
namespace {

using boost::system::error_code;

// A request head parsed from raw text the way the router reads one (proxy.cc's ReadHead): the
// whole head through Beast's parser, then CheckRequest on the result and on the raw bytes.
struct Parsed {
  std::unique_ptr<http::request_parser<http::empty_body, Alloc>> parser =
      std::make_unique<http::request_parser<http::empty_body, Alloc>>();
  error_code ec;  // Beast's verdict on the head
  std::string head;

  RequestHead& req() { return parser->get().base(); }
};

Parsed Parse(const std::string& raw, uint32_t header_limit = 32 * 1024) {
  Parsed p;
  p.parser->header_limit(header_limit);
  p.parser->body_limit(std::numeric_limits<uint64_t>::max());  // as the router's
  size_t n = p.parser->put(boost::asio::buffer(raw), p.ec);
  if (!p.ec && !p.parser->is_header_done()) p.ec = http::error::need_more;
  p.head = raw.substr(0, n);
  return p;
}

// What the router answers to a raw head: the refusal status, or 0 when it is forwarded.
int Verdict(const std::string& raw) {
  Parsed p = Parse(raw);
  if (p.ec == http::error::header_limit) return 431;
  if (p.ec == http::error::need_more) return -1;  // the test's text is incomplete
  if (p.ec) return 400;
  auto refusal = CheckRequest(p.req(), p.head);
  return refusal ? refusal->status : 0;
}

// A request head that Beast accepts; CheckRequest's own verdict on it.
std::optional<Refusal> Check(const std::string& raw) {
  Parsed p = Parse(raw);
  EXPECT_FALSE(p.ec) << "Beast refused: " << p.ec.message() << "\n" << raw;
  if (p.ec) return Refusal{-1, "beast"};
  return CheckRequest(p.req(), p.head);
}

// Feeds a whole request (head and body) to a parser; the first error, or none.
error_code ParseWhole(const std::string& raw) {
  http::request_parser<http::string_body, Alloc> parser;
  parser.eager(true);
  error_code ec;
  size_t done = 0;
  while (done < raw.size() && !parser.is_done()) {
    size_t n = parser.put(boost::asio::buffer(raw.data() + done, raw.size() - done), ec);
    if (ec) return ec;
    if (n == 0) break;
    done += n;
  }
  if (!parser.is_done()) return http::error::need_more;
  return {};
}

std::string Field(const Fields& f, std::string_view name) {
  auto it = f.find(name);
  return it == f.end() ? "<none>" : std::string(it->value());
}

// Whether a head says chunked as a reader of the message sees it (Beast's serializer).
template <bool isRequest>
bool Chunked(const http::header<isRequest, Fields>& h) {
  http::message<isRequest, http::empty_body, Fields> m{http::header<isRequest, Fields>(h)};
  return m.chunked();
}

size_t CountOf(const Fields& f, std::string_view name) {
  size_t n = 0;
  for (const auto& x : f) n += boost::beast::iequals(x.name_string(), name) ? 1 : 0;
  return n;
}

// ---------------------------------------------------------------- accepted requests

TEST(CheckRequestTest, AcceptsNormalRequests) {
  EXPECT_EQ(Verdict("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), 0);
  EXPECT_EQ(Verdict("GET /a/b?c=d HTTP/1.1\r\nHost: example.com:5000\r\nAccept: */*\r\n"
                    "User-Agent: curl/8\r\n\r\n"),
            0);
  EXPECT_EQ(Verdict("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"), 0);
  EXPECT_EQ(Verdict("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"), 0);
  EXPECT_EQ(Verdict("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"), 0);
  EXPECT_EQ(Verdict("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
  EXPECT_EQ(Verdict("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
  EXPECT_EQ(Verdict("DELETE /r/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 0);
  EXPECT_EQ(Verdict("PUT /r/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"), 0);
  // HTTP/1.0 needs no Host.
  EXPECT_EQ(Verdict("GET / HTTP/1.0\r\n\r\n"), 0);
  EXPECT_EQ(Verdict("GET / HTTP/1.0\r\nHost: x\r\nContent-Length: 3\r\n\r\n"), 0);
  // Expect: 100-continue, any case, is answered by the router.
  EXPECT_EQ(
      Verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n"),
      0);
  // A WebSocket handshake.
  EXPECT_EQ(
      Verdict("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"),
      0);
  // Field values may hold tabs and spaces, and optional whitespace around them.
  EXPECT_EQ(Verdict("GET / HTTP/1.1\r\nHost:x\r\nX-A: a\tb  c \r\n\r\n"), 0);
}

// RFC 9112 3.2: each form of request-target only where it belongs.
TEST(CheckRequestTest, RequestTargetForms) {
  EXPECT_EQ(Verdict("GET http://x/a?b HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
  EXPECT_EQ(Verdict("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
  for (const char* bad :
       {"GET * HTTP/1.1", "GET ftp://evil/echo HTTP/1.1", "GET evil:80 HTTP/1.1",
        "GET /echo#frag HTTP/1.1", "GET http://x/a#f HTTP/1.1", "GET echo HTTP/1.1"}) {
    EXPECT_EQ(Verdict(std::string(bad) + "\r\nHost: x\r\n\r\n"), 400) << bad;
  }
  EXPECT_EQ(Verdict("CONNECT evil:443 HTTP/1.1\r\nHost: evil:443\r\n\r\n"), 501);
}

TEST(CheckRequestTest, HostMustBeAHostAndPort) {
  for (const char* ok : {"example.com", "example.com:8080", "127.0.0.1:80", "[::1]:3000",
                         "[2001:db8::7]", "xn--bcher-kva.example", "a_b.local", "%41.example",
                         "Example.COM.", "host:", "[::ffff:1.2.3.4]:1"}) {
    EXPECT_EQ(Verdict(std::string("GET / HTTP/1.1\r\nHost: ") + ok + "\r\n\r\n"), 0) << ok;
  }
  for (const char* bad :
       {"a b", "a/b", "user@evil.example", "evil.example:80:80", "example.com:8o", "[::1", "[::1]x",
        "[zz::1]", "a\"b", "a<b>", "%", "a%4", "a%zz", ":80", "[]", "[1.2.3.4]"}) {
    EXPECT_EQ(Verdict(std::string("GET / HTTP/1.1\r\nHost: ") + bad + "\r\n\r\n"), 400) << bad;
  }
}

TEST(CheckRequestTest, RepeatedEqualContentLengthIsAccepted) {
  // RFC 9110 8.6: the same value repeated may be taken as one.
  EXPECT_EQ(Verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            0);
  EXPECT_EQ(Verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n"), 0);
}

// ---------------------------------------------------------------- smuggling vectors

TEST(CheckRequestTest, ObsFoldIsRefused) {
  const std::string space = "GET / HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n";
  const std::string tab = "GET / HTTP/1.1\r\nHost: x\r\nX-A: one\r\n\ttwo\r\n\r\n";
  EXPECT_EQ(Verdict(space), 400);
  EXPECT_EQ(Verdict(tab), 400);
  // Beast itself unfolds it: the refusal must come from CheckRequest reading the raw head.
  auto r = Check(space);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->reason, "obs-fold");
  // A folded Transfer-Encoding, the classic smuggling form.
  EXPECT_EQ(Verdict("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"), 400);
}

TEST(CheckRequestTest, ContentLengthWithTransferEncodingIsRefused) {
  EXPECT_EQ(Verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n"),
            400);
  EXPECT_EQ(Verdict("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                    "Content-Length: 4\r\n\r\n"),
            400);
  EXPECT_EQ(Verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n"),
            400);
}

TEST(CheckRequestTest, DifferingDuplicateContentLengthIsRefused) {
  EXPECT_EQ(Verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            400);
  EXPECT_EQ(Verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n"), 400);
  EXPECT_EQ(
      Verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 10\r\n\r\n"),
      400);
}

TEST(CheckRequestTest, ContentLengthOver63BitsIsRefused) {
  EXPECT_EQ(Verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775807\r\n\r\n"),
            0);
  EXPECT_EQ(Verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0000000000000000009\r\n\r\n"),
            0);
  EXPECT_EQ(Verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775808\r\n\r\n"),
            400);
  EXPECT_EQ(Verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n"),
            400);
}

TEST(CheckRequestTest, NonNumericContentLengthIsRefused) {
  for (const char* value :
       {"abc", "-1", "+5", "0x10", "1e3", "5 5", "", "5;", "1.0", "99999999999999999999999"}) {
    SCOPED_TRACE(value);
    EXPECT_EQ(
        Verdict(std::string("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ") + value + "\r\n\r\n"),
        400);
  }
}

TEST(CheckRequestTest, TransferEncodingOtherThanASingleFinalChunkedIsRefused) {
  // Codings we cannot frame: 400 (or 501 Not Implemented for a coding before chunked, RFC 9112
  // 6.1). Either way the request is refused and the connection closed.
  auto refused = [](int status) { return status == 400 || status == 501; };
  for (const char* te : {"gzip", "identity", "chunked, gzip", "chunked;foo=bar, identity",
                         "xchunked", "chunked-false", "\"chunked\""}) {
    SCOPED_TRACE(te);
    EXPECT_EQ(
        Verdict(std::string("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ") + te + "\r\n\r\n"),
        400);
  }
  for (const char* te : {"gzip, chunked", "chunked, chunked", "identity, chunked"}) {
    SCOPED_TRACE(te);
    EXPECT_PRED1(refused, Verdict(std::string("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ") +
                                  te + "\r\n\r\n"));
  }
  // Two Transfer-Encoding fields.
  EXPECT_PRED1(refused, Verdict("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n"));
  EXPECT_PRED1(refused, Verdict("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n"));
  // An empty one.
  EXPECT_EQ(Verdict("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n"), 400);
  // Whitespace before the colon (a proxy that trims it would see chunked, the app would not).
  EXPECT_EQ(Verdict("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n"), 400);
}

TEST(CheckRequestTest, TransferEncodingInHttp10IsRefused) {
  EXPECT_EQ(Verdict("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
  EXPECT_EQ(Verdict("POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
}

TEST(CheckRequestTest, MissingOrDuplicateHostIsRefused) {
  EXPECT_EQ(Verdict("GET / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(Verdict("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"), 400);
  EXPECT_EQ(Verdict("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
  EXPECT_EQ(Verdict("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(Verdict("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 400);
  EXPECT_EQ(Verdict("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
}

TEST(CheckRequestTest, BareCrOrLfIsRefused) {
  EXPECT_EQ(Verdict("GET / HTTP/1.1\rHost: x\r\n\r\n"), 400);
  EXPECT_EQ(Verdict("GET / HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n"), 400);
  EXPECT_EQ(Verdict("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n"), 400);
  EXPECT_EQ(Verdict("GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n"), 400);
  EXPECT_EQ(Verdict("GET / HTTP/1.1\nHost: x\r\n\r\n"), 400);
  // A NUL byte in a value.
  EXPECT_EQ(Verdict(std::string("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 37)), 400);
}

TEST(CheckRequestTest, BadChunkSizesAreRefusedByTheParser) {
  const std::string head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_FALSE(ParseWhole(head + "5\r\nhello\r\n0\r\n\r\n"));
  EXPECT_FALSE(ParseWhole(head + "A\r\n0123456789\r\n0\r\n\r\n"));
  EXPECT_FALSE(ParseWhole(head + "5;ext=1\r\nhello\r\n0\r\n\r\n"));
  for (const char* body :
       {"zz\r\nhello\r\n0\r\n\r\n", "-5\r\nhello\r\n0\r\n\r\n", "0x5\r\nhello\r\n0\r\n\r\n",
        "ffffffffffffffffff\r\nx\r\n0\r\n\r\n", "5\r\nhelloXX0\r\n\r\n", "5\nhello\r\n0\r\n\r\n",
        " 5\r\nhello\r\n0\r\n\r\n"}) {
    SCOPED_TRACE(body);
    error_code ec = ParseWhole(head + body);
    EXPECT_TRUE(ec && ec != http::error::need_more) << ec.message();
  }
}

TEST(CheckRequestTest, HugeHeadIs431) {
  std::string raw = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(40000, 'a') + "\r\n\r\n";
  EXPECT_EQ(Verdict(raw), 431);
}

TEST(CheckRequestTest, OtherRefusals) {
  EXPECT_EQ(Verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 200-ok\r\n\r\n"),
            417);
  // Every Expect line counts, not the first alone; empty list elements are none.
  EXPECT_EQ(Verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n"
                    "Expect:\r\n\r\n"),
            0);
  EXPECT_EQ(
      Verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue,\r\n\r\n"),
      0);
  EXPECT_EQ(Verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n"
                    "Expect: foo\r\n\r\n"),
            417);
  EXPECT_EQ(Verdict("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), 501);
  // Versions other than 1.0 and 1.1: Beast refuses them (400) before CheckRequest would (505).
  auto refused_version = [](int status) { return status == 400 || status == 505; };
  EXPECT_PRED1(refused_version, Verdict("GET / HTTP/2.0\r\nHost: x\r\n\r\n"));
  EXPECT_PRED1(refused_version, Verdict("GET / HTTP/0.9\r\nHost: x\r\n\r\n"));
  EXPECT_PRED1(refused_version, Verdict("GET / HTTP/1.2\r\nHost: x\r\n\r\n"));
  // Not HTTP at all.
  EXPECT_EQ(Verdict("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"), 400);
  EXPECT_EQ(Verdict("GET /\r\n\r\n"), 400);
  EXPECT_EQ(Verdict("GET  / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
}

// ---------------------------------------------------------------- rewrites

Forwarding Fwd() { return Forwarding{"10.0.0.7", 5000, "abcdefghijklmnopqrstuvwxyz"}; }

TEST(RewriteRequestTest, AddsForwardingFields) {
  Parsed p = Parse(
      "GET /x HTTP/1.1\r\nHost: example.com\r\nX-Request-Id: client-chosen-id-123456\r\n"
      "X-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n\r\n");
  ASSERT_FALSE(p.ec);
  RewriteRequest(p.req(), Fwd(), false, std::nullopt);
  EXPECT_EQ(Field(p.req(), "X-Forwarded-For"), "10.0.0.7");
  EXPECT_EQ(Field(p.req(), "X-Forwarded-Proto"), "http");
  EXPECT_EQ(Field(p.req(), "X-Forwarded-Port"), "5000");
  EXPECT_EQ(Field(p.req(), "X-Request-Id"), "abcdefghijklmnopqrstuvwxyz");
  EXPECT_EQ(CountOf(p.req(), "X-Forwarded-Proto"), 1u);
  EXPECT_EQ(CountOf(p.req(), "X-Forwarded-Port"), 1u);
  EXPECT_EQ(CountOf(p.req(), "X-Request-Id"), 1u);
  EXPECT_EQ(Field(p.req(), "Host"), "example.com");
  EXPECT_EQ(p.req().target(), "/x");
  EXPECT_EQ(p.req().version(), 11u);
}

TEST(RewriteRequestTest, AppendsToXForwardedFor) {
  Parsed one = Parse("GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n");
  RewriteRequest(one.req(), Fwd(), false, std::nullopt);
  EXPECT_EQ(Field(one.req(), "X-Forwarded-For"), "1.2.3.4, 10.0.0.7");

  Parsed two = Parse(
      "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8\r\n"
      "x-forwarded-for: 9.9.9.9\r\n\r\n");
  RewriteRequest(two.req(), Fwd(), false, std::nullopt);
  EXPECT_EQ(Field(two.req(), "X-Forwarded-For"), "1.2.3.4, 5.6.7.8, 9.9.9.9, 10.0.0.7");
  EXPECT_EQ(CountOf(two.req(), "X-Forwarded-For"), 1u);
}

TEST(RewriteRequestTest, ATrustedProxysProtoAndPortGoOnWhenSane) {
  const std::string head =
      "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n\r\n";
  Forwarding trusted = Fwd();
  trusted.trusted = true;
  Parsed p = Parse(head);
  RewriteRequest(p.req(), trusted, false, std::nullopt);
  EXPECT_EQ(Field(p.req(), "X-Forwarded-Proto"), "https");
  EXPECT_EQ(Field(p.req(), "X-Forwarded-Port"), "443");
  EXPECT_EQ(CountOf(p.req(), "X-Forwarded-Proto"), 1u);

  // The hot path's text form says the same.
  Parsed q = Parse(head);
  ForwardedValues v = PrepareRequest(q.req(), trusted, false, std::nullopt);
  std::string lines;
  AppendForwardingLines(trusted, v, lines);
  EXPECT_EQ(lines,
            "X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n"
            "X-Request-Id: abcdefghijklmnopqrstuvwxyz\r\n");
  EXPECT_EQ(CountOf(q.req(), "X-Forwarded-Proto"), 0u);  // (the lines carry it)

  // A chain of proxies: the nearest one's word (the last element of the last line), lowercase.
  Parsed chain = Parse(
      "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: http, javascript\r\n"
      "x-forwarded-proto: http, HTTPS\r\nX-Forwarded-Port: 80,\t0443\r\n\r\n");
  RewriteRequest(chain.req(), trusted, false, std::nullopt);
  EXPECT_EQ(Field(chain.req(), "X-Forwarded-Proto"), "https");
  EXPECT_EQ(Field(chain.req(), "X-Forwarded-Port"), "443");

  // No port from the proxy: the scheme's own, not ours (nginx's `proxy_set_header
  // X-Forwarded-Proto $scheme` alone; an app would build https://host:5000/ links).
  for (auto [sent, port] : {std::pair{"https", "443"}, {"http", "80"}}) {
    Parsed b =
        Parse(std::string("GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: ") + sent + "\r\n\r\n");
    RewriteRequest(b.req(), trusted, false, std::nullopt);
    EXPECT_EQ(Field(b.req(), "X-Forwarded-Proto"), sent);
    EXPECT_EQ(Field(b.req(), "X-Forwarded-Port"), port);
  }

  // Anything else is the router's pair, trusted or not: both values or neither.
  for (const char* bad :
       {"X-Forwarded-Proto: ftp", "X-Forwarded-Proto: https, gopher", "X-Forwarded-Proto: https,",
        "X-Forwarded-Proto: ", "X-Forwarded-Port: 443",
        "X-Forwarded-Proto: https\r\nX-Forwarded-Port: 0",
        "X-Forwarded-Proto: https\r\nX-Forwarded-Port: 65536",
        "X-Forwarded-Proto: https\r\nX-Forwarded-Port: 443x",
        "X-Forwarded-Proto: https\r\nX-Forwarded-Port: 000443",
        "X-Forwarded-Proto: https\r\nX-Forwarded-Port: -1"}) {
    Parsed b = Parse(std::string("GET / HTTP/1.1\r\nHost: x\r\n") + bad + "\r\n\r\n");
    RewriteRequest(b.req(), trusted, false, std::nullopt);
    EXPECT_EQ(Field(b.req(), "X-Forwarded-Proto"), "http") << bad;
    EXPECT_EQ(Field(b.req(), "X-Forwarded-Port"), "5000") << bad;
  }
}

TEST(RewriteRequestTest, FieldsOnlyAProxyMaySetGoOnFromTrustedProxiesOnly) {
  const std::string head =
      "GET / HTTP/1.1\r\nHost: x\r\nForwarded: for=192.0.2.60;proto=https\r\n"
      "X-Forwarded-Host: evil.example\r\nX-Forwarded-Ssl: on\r\nX-Forwarded-Scheme: https\r\n"
      "X-Url-Scheme: https\r\nFront-End-Https: on\r\nX-Real-IP: 192.0.2.60\r\n"
      "X-Forwarded-Server: edge\r\nX-Original-URL: /admin\r\nTrue-Client-IP: 192.0.2.60\r\n"
      "X-Kept: k\r\n\r\n";
  const char* only_proxy[] = {"Forwarded",          "X-Forwarded-Host",   "X-Forwarded-Ssl",
                              "X-Forwarded-Scheme", "X-Url-Scheme",       "Front-End-Https",
                              "X-Real-IP",          "X-Forwarded-Server", "X-Original-URL",
                              "True-Client-IP"};
  Parsed untrusted = Parse(head);
  RewriteRequest(untrusted.req(), Fwd(), false, std::nullopt);
  for (const char* f : only_proxy) EXPECT_EQ(CountOf(untrusted.req(), f), 0u) << f;
  EXPECT_EQ(Field(untrusted.req(), "X-Kept"), "k");

  Forwarding trusted = Fwd();
  trusted.trusted = true;
  Parsed proxied = Parse(head);
  RewriteRequest(proxied.req(), trusted, false, std::nullopt);
  for (const char* f : only_proxy) EXPECT_EQ(CountOf(proxied.req(), f), 1u) << f;
  EXPECT_EQ(Field(proxied.req(), "X-Forwarded-Host"), "evil.example");
}

TEST(ClientBehindProxiesTest, WalksFromTheRightPastTrustedAddresses) {
  const std::vector<AddressRange> trusted = {*ParseAddressRange("10.0.0.0/8"),
                                             *ParseAddressRange("127.0.0.1")};
  EXPECT_EQ(ClientBehindProxies("", "127.0.0.1", trusted), "127.0.0.1");
  EXPECT_EQ(ClientBehindProxies("203.0.113.9", "127.0.0.1", trusted), "203.0.113.9");
  EXPECT_EQ(ClientBehindProxies("203.0.113.9, 10.1.2.3", "127.0.0.1", trusted), "203.0.113.9");
  // The client may write anything left of the first untrusted hop: it is not believed.
  EXPECT_EQ(ClientBehindProxies("1.1.1.1, 203.0.113.9, 10.1.2.3", "127.0.0.1", trusted),
            "203.0.113.9");
  // Every hop trusted: the leftmost.
  EXPECT_EQ(ClientBehindProxies("10.9.9.9,10.1.1.1", "127.0.0.1", trusted), "10.9.9.9");
  // Not an address: the walk stops at the hop after it.
  EXPECT_EQ(ClientBehindProxies("unknown, 10.1.2.3", "127.0.0.1", trusted), "10.1.2.3");
  // Ports, brackets and empty elements, as some proxies write them.
  EXPECT_EQ(ClientBehindProxies("203.0.113.9:4711, 10.1.2.3", "127.0.0.1", trusted), "203.0.113.9");
  EXPECT_EQ(ClientBehindProxies("[2001:db8::5]:4711, [10.1.2.3]", "127.0.0.1", trusted),
            "2001:db8::5");
  EXPECT_EQ(ClientBehindProxies("203.0.113.9, , 10.1.2.3,", "127.0.0.1", trusted), "203.0.113.9");
  EXPECT_EQ(ClientBehindProxies("203.0.113.9, <script>", "127.0.0.1", trusted), "127.0.0.1");
  EXPECT_EQ(ClientBehindProxies("2001:db8::5, 10.0.0.1", "127.0.0.1", trusted), "2001:db8::5");

  EXPECT_TRUE(InRanges(trusted, "10.200.0.1"));
  EXPECT_TRUE(InRanges(trusted, "::ffff:10.200.0.1"));
  EXPECT_FALSE(InRanges(trusted, "127.0.0.2"));
  EXPECT_FALSE(InRanges(trusted, "unknown"));
  EXPECT_FALSE(InRanges({}, "127.0.0.1"));
}

TEST(RewriteRequestTest, RemovesHopByHopFields) {
  Parsed p = Parse(
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\n"
      "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
      "Trailer: X-T\r\nUpgrade: h2c\r\nX-Secret: s\r\nX-Kept: k\r\n"
      "Proxy-Authenticate: Basic\r\n\r\n");
  ASSERT_FALSE(p.ec);
  RewriteRequest(p.req(), Fwd(), false, std::nullopt);
  for (const char* gone : {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
                           "Upgrade", "X-Secret", "Proxy-Authenticate"}) {
    EXPECT_EQ(CountOf(p.req(), gone), 0u) << gone;
  }
  EXPECT_EQ(Field(p.req(), "X-Kept"), "k");
  EXPECT_EQ(Field(p.req(), "Host"), "x");
}

// Names are compared in any case, among thousands (the names are sorted once and searched:
// comparing every pair cost 13 ms a 31 KB head; the cost is not asserted here, only the result).
TEST(RewriteRequestTest, ConnectionNamesAreRemovedInAnyCaseAmongThousands) {
  std::string raw = "GET / HTTP/1.1\r\nHost: x\r\nConnection: x-one, X-TWO\r\nConnection: ";
  for (int i = 0; i < 3000; ++i) raw += "n" + std::to_string(i) + ",";
  raw += "\r\nX-One: 1\r\nx-two: 2\r\nN2999: gone\r\nN3000: kept\r\n";
  for (int i = 0; i < 1500; ++i) raw += "M" + std::to_string(i) + ": v\r\n";
  raw += "\r\n";
  Parsed p = Parse(raw, 256 * 1024);
  ASSERT_FALSE(p.ec) << p.ec.message();
  RewriteRequest(p.req(), Fwd(), false, std::nullopt);
  EXPECT_EQ(CountOf(p.req(), "X-One"), 0u);
  EXPECT_EQ(CountOf(p.req(), "X-Two"), 0u);
  EXPECT_EQ(CountOf(p.req(), "N2999"), 0u);
  EXPECT_EQ(Field(p.req(), "N3000"), "kept");
  EXPECT_EQ(CountOf(p.req(), "M1499"), 1u);
}

// A name with underscores that reads as one the router sets or vets (X_Forwarded_Proto) goes:
// CGI-style servers read it as the same variable (HTTP_X_FORWARDED_PROTO) as ours. So does
// `Proxy` (httpoxy). Other underscore names stay.
TEST(RewriteRequestTest, UnderscoreLookAlikesAndProxyGo) {
  for (bool trusted : {false, true}) {
    Parsed p = Parse(
        "GET / HTTP/1.1\r\nHost: x\r\nX_Forwarded_Proto: https\r\nx_forwarded_for: 6.6.6.6\r\n"
        "X_Real_IP: 6.6.6.6\r\nX_Original_URL: /admin\r\nContent_Length: 5\r\n"
        "Transfer_Encoding: chunked\r\nX_Request_Id: abcdefghijklmnopqrstuvwxyz\r\n"
        "Proxy: http://evil:8080\r\nMy_Header: kept\r\n\r\n");
    ASSERT_FALSE(p.ec);
    Forwarding fwd = Fwd();
    fwd.trusted = trusted;
    RewriteRequest(p.req(), fwd, false, std::nullopt);
    for (const char* gone : {"X_Forwarded_Proto", "x_forwarded_for", "X_Real_IP", "X_Original_URL",
                             "Content_Length", "Transfer_Encoding", "X_Request_Id", "Proxy"}) {
      EXPECT_EQ(CountOf(p.req(), gone), 0u) << gone << " trusted=" << trusted;
    }
    EXPECT_EQ(Field(p.req(), "My_Header"), "kept");
    EXPECT_EQ(Field(p.req(), "X-Forwarded-Proto"), "http");
    EXPECT_EQ(Field(p.req(), "X-Forwarded-For"), "10.0.0.7");
  }
}

// Empty elements of a client's X-Forwarded-For ("", "a, ", "a,,b") are not passed on as
// addresses of their own.
TEST(RewriteRequestTest, EmptyXForwardedForElementsAreDropped) {
  Parsed p = Parse(
      "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For:\r\nX-Forwarded-For: 1.1.1.1, \r\n"
      "X-Forwarded-For: ,2.2.2.2,, 3.3.3.3\r\n\r\n");
  ASSERT_FALSE(p.ec);
  RewriteRequest(p.req(), Fwd(), false, std::nullopt);
  EXPECT_EQ(Field(p.req(), "X-Forwarded-For"), "1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.7");
  Parsed q = Parse("GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: \r\n\r\n");
  ASSERT_FALSE(q.ec);
  RewriteRequest(q.req(), Fwd(), false, std::nullopt);
  EXPECT_EQ(Field(q.req(), "X-Forwarded-For"), "10.0.0.7");
}

TEST(RewriteRequestTest, AbsoluteFormGoesOnAsOriginFormWithItsAuthorityAsHost) {
  Parsed p = Parse("GET http://Example.com:8080/a/b?c=d HTTP/1.1\r\nHost: other\r\n\r\n");
  ASSERT_FALSE(p.ec);
  ASSERT_FALSE(CheckRequest(p.req(), p.head));
  RewriteRequest(p.req(), Fwd(), false, std::nullopt);
  EXPECT_EQ(p.req().target(), "/a/b?c=d");
  EXPECT_EQ(Field(p.req(), "Host"), "Example.com:8080");
  EXPECT_EQ(CountOf(p.req(), "Host"), 1u);
  Parsed q = Parse("GET HTTPS://x.example?q HTTP/1.1\r\nHost: x.example\r\n\r\n");
  ASSERT_FALSE(q.ec);
  RewriteRequest(q.req(), Fwd(), false, std::nullopt);
  EXPECT_EQ(q.req().target(), "/?q");
  Parsed r = Parse("GET /plain HTTP/1.1\r\nHost: x\r\n\r\n");
  RewriteRequest(r.req(), Fwd(), false, std::nullopt);
  EXPECT_EQ(r.req().target(), "/plain");
  EXPECT_EQ(Field(r.req(), "Host"), "x");
}

TEST(CheckRequestTest, AbsoluteFormAuthorityIsJudgedAsHost) {
  EXPECT_EQ(Verdict("GET http://a b/ HTTP/1.1\r\nHost: x\r\n\r\n"), 400);  // Beast: space
  EXPECT_EQ(Verdict("GET http://user@evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(Verdict("GET http:///nohost HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(Verdict("GET http://ok.example:81/p HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
  // Another scheme is no target of ours (RFC 9112 3.2; HAProxy refuses it too).
  EXPECT_EQ(Verdict("GET httpx://ok.example/ HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
}

TEST(RewriteRequestTest, ConnectionNamingHostDoesNotRemoveIt) {
  // Host was checked and is required in HTTP/1.1 (RFC 9112 3.2): "Connection: Host" must not
  // send the request on without it.
  Parsed p = Parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: Host, X-A\r\nX-A: a\r\n\r\n");
  ASSERT_FALSE(p.ec);
  RewriteRequest(p.req(), Fwd(), false, std::nullopt);
  EXPECT_EQ(Field(p.req(), "Host"), "x");
  EXPECT_EQ(CountOf(p.req(), "X-A"), 0u);
}

TEST(RewriteRequestTest, ConnectionNamingFramingFieldsDoesNotRemoveThem) {
  Parsed p = Parse(
      "POST / HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\n"
      "Content-Length: 5\r\n\r\n");
  ASSERT_FALSE(p.ec);
  RewriteRequest(p.req(), Fwd(), false, 5);
  EXPECT_EQ(Field(p.req(), "Content-Length"), "5");

  Parsed c = Parse(
      "POST / HTTP/1.1\r\nHost: x\r\nConnection: transfer-encoding\r\n"
      "Transfer-Encoding: chunked\r\n\r\n");
  ASSERT_FALSE(c.ec);
  RewriteRequest(c.req(), Fwd(), false, std::nullopt);
  EXPECT_EQ(Field(c.req(), "Transfer-Encoding"), "chunked");
}

TEST(RewriteRequestTest, TransferEncodingGoesOnAsOneChunkedLine) {
  // Empty list elements are allowed (RFC 9110 5.6.1), so "chunked" among empty lines passes
  // CheckRequest. Sent on as it came, a parser that reads the first line only (Beast's
  // serializer, many apps) would see no framing and read the body as requests of its own.
  for (const char* first : {"", ",", " \t ", ", ,"}) {
    SCOPED_TRACE(first);
    Parsed p = Parse(std::string("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ") + first +
                     "\r\nTransfer-Encoding: chunked\r\n\r\n");
    ASSERT_FALSE(p.ec);
    ASSERT_FALSE(CheckRequest(p.req(), p.head));
    EXPECT_TRUE(p.parser->chunked());
    RewriteRequest(p.req(), Fwd(), false, std::nullopt);
    EXPECT_EQ(CountOf(p.req(), "Transfer-Encoding"), 1u);
    EXPECT_EQ(Field(p.req(), "Transfer-Encoding"), "chunked");
    EXPECT_TRUE(Chunked(p.req()));
  }
  Parsed p = Parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , chunked ,\r\n\r\n");
  ASSERT_FALSE(p.ec);
  ASSERT_FALSE(CheckRequest(p.req(), p.head));
  RewriteRequest(p.req(), Fwd(), false, std::nullopt);
  EXPECT_EQ(Field(p.req(), "Transfer-Encoding"), "chunked");
}

TEST(RewriteRequestTest, NormalisesContentLengthAndPassesExpectOn) {
  Parsed p = Parse(
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n"
      "Expect: 100-continue\r\n\r\n");
  ASSERT_FALSE(p.ec);
  RewriteRequest(p.req(), Fwd(), false, 5);
  EXPECT_EQ(CountOf(p.req(), "Content-Length"), 1u);
  EXPECT_EQ(Field(p.req(), "Content-Length"), "5");
  EXPECT_EQ(Field(p.req(), "Expect"), "100-continue");  // the app answers it (RFC 9110 10.1.1)
  // An HTTP/1.0 client's is ignored: it goes on as HTTP/1.1, where the app would honour it.
  Parsed q = Parse("POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  ASSERT_FALSE(q.ec);
  RewriteRequest(q.req(), Fwd(), false, 5);
  EXPECT_EQ(CountOf(q.req(), "Expect"), 0u);
}

TEST(RewriteRequestTest, Http10BecomesKeepAlive11) {
  Parsed p = Parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  ASSERT_FALSE(p.ec);
  RewriteRequest(p.req(), Fwd(), false, std::nullopt);
  EXPECT_EQ(p.req().version(), 11u);
  EXPECT_EQ(CountOf(p.req(), "Connection"), 0u);  // HTTP/1.1: keep-alive by default
}

TEST(RewriteRequestTest, Http10WithoutHostGetsTheAddressItReached) {
  Parsed p = Parse("GET / HTTP/1.0\r\n\r\n");
  ASSERT_FALSE(p.ec);
  Forwarding fwd = Fwd();
  fwd.local_host = "127.0.0.1:5000";
  RewriteRequest(p.req(), fwd, false, std::nullopt);
  EXPECT_EQ(p.req().version(), 11u);
  EXPECT_EQ(Field(p.req(), "Host"), "127.0.0.1:5000");
  // A Host the client sent is kept.
  Parsed q = Parse("GET / HTTP/1.0\r\nHost: example.com\r\n\r\n");
  RewriteRequest(q.req(), fwd, false, std::nullopt);
  EXPECT_EQ(Field(q.req(), "Host"), "example.com");
  EXPECT_EQ(CountOf(q.req(), "Host"), 1u);
  // An empty one is none.
  Parsed e = Parse("GET / HTTP/1.0\r\nHost: \r\n\r\n");
  RewriteRequest(e.req(), fwd, false, std::nullopt);
  EXPECT_EQ(Field(e.req(), "Host"), "127.0.0.1:5000");
  EXPECT_EQ(CountOf(e.req(), "Host"), 1u);
}

TEST(RewriteRequestTest, UpgradeKeepsConnectionAndUpgrade) {
  Parsed p = Parse(
      "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n"
      "Upgrade: websocket\r\nSec-WebSocket-Key: k\r\nKeep-Alive: 5\r\n\r\n");
  ASSERT_FALSE(p.ec);
  ASSERT_TRUE(IsUpgrade(p.req()));
  RewriteRequest(p.req(), Fwd(), true, std::nullopt);
  EXPECT_EQ(Field(p.req(), "Connection"), "upgrade");
  EXPECT_EQ(Field(p.req(), "Upgrade"), "websocket");
  EXPECT_EQ(Field(p.req(), "Sec-WebSocket-Key"), "k");
  EXPECT_EQ(CountOf(p.req(), "Keep-Alive"), 0u);
}

ResponseHead Response(const std::string& raw) {
  http::response_parser<http::empty_body, Alloc> parser;
  error_code ec;
  parser.put(boost::asio::buffer(raw), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(parser.is_header_done());
  return parser.get().base();
}

// What no client can be given as it came: a 502.
TEST(BadResponseHeadTest, StatusUnder100LengthIn1xxChunkedTwiceTeWithCl) {
  auto bad = [](const std::string& raw, bool head_method = false) {
    return BadResponseHead(Response(raw), head_method) != nullptr;
  };
  EXPECT_FALSE(bad("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"));
  EXPECT_FALSE(bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"));
  EXPECT_FALSE(bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"));  // to the close
  EXPECT_FALSE(bad("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"));
  EXPECT_FALSE(bad("HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_FALSE(bad("HTTP/1.1 101 Switching Protocols\r\nContent-Length: 5\r\n\r\n"));
  EXPECT_FALSE(bad("HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\n"));  // (nginx, HAProxy)
  EXPECT_TRUE(bad("HTTP/1.1 000 Zero\r\n\r\n"));
  EXPECT_TRUE(bad("HTTP/1.1 099 Low\r\nContent-Length: 2\r\n\r\n"));
  EXPECT_TRUE(bad("HTTP/1.1 199 Odd\r\nContent-Length: 5\r\n\r\n"));
  EXPECT_TRUE(bad("HTTP/1.1 103 Early Hints\r\nTransfer-Encoding: chunked\r\n\r\n"));
  EXPECT_TRUE(bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"));
  // (Two chunked lines: Beast refuses them itself, a 502 already.)
  // No body read (HEAD, 204, 304): the framing fields describe nothing here.
  EXPECT_FALSE(bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", true));
  EXPECT_FALSE(
      bad("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n"));
  // An empty list, or identity, is no coding: the length frames the body.
  EXPECT_FALSE(bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\nContent-Length: 5\r\n\r\n"));
  EXPECT_FALSE(bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\n"));
  for (const char* te : {"gzip", "identity, gzip", "chunked, gzip", "xchunked"}) {
    EXPECT_TRUE(bad(std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: ") + te +
                    "\r\nContent-Length: 5\r\n\r\n"))
        << te;
  }
}

// No Transfer-Encoding to an HTTP/1.0 client (RFC 9112 6.1): what is left of it once chunked
// is taken off is named as a content coding, after the content's own.
TEST(RewriteResponseTest, Http10ClientGetsTransferCodingsAsContentCodings) {
  auto res = Response("HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nTransfer-Encoding: gzip\r\n\r\n");
  RewriteResponse(res, false, 10);
  EXPECT_EQ(CountOf(res, "Transfer-Encoding"), 0u);
  EXPECT_EQ(Field(res, "Content-Encoding"), "br, gzip");
  // A chunked before another coding stays (the client cannot decode it, rather than read its
  // framing as content).
  auto odd = Response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
  RewriteResponse(odd, false, 10);
  EXPECT_EQ(Field(odd, "Content-Encoding"), "chunked, gzip");
  auto plain = Response("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n");
  RewriteResponse(plain, false, 10);
  EXPECT_EQ(CountOf(plain, "Transfer-Encoding"), 0u);
  EXPECT_EQ(CountOf(plain, "Content-Encoding"), 0u);
  // An HTTP/1.1 client keeps it.
  auto kept = Response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
  RewriteResponse(kept, false, 11);
  EXPECT_EQ(Field(kept, "Transfer-Encoding"), "gzip");
  EXPECT_EQ(CountOf(kept, "Content-Encoding"), 0u);
}

TEST(RewriteResponseTest, RemovesHopByHopAndKeepsTheRest) {
  auto res = Response(
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Hop\r\n"
      "Keep-Alive: timeout=5\r\nX-Hop: h\r\nSet-Cookie: a=b\r\nUpgrade: h2\r\n\r\n");
  RewriteResponse(res, true, 11);
  EXPECT_EQ(CountOf(res, "Keep-Alive"), 0u);
  EXPECT_EQ(CountOf(res, "X-Hop"), 0u);
  EXPECT_EQ(CountOf(res, "Upgrade"), 0u);
  EXPECT_EQ(CountOf(res, "Connection"), 0u);  // 1.1 keep-alive is the default
  EXPECT_EQ(Field(res, "Set-Cookie"), "a=b");
  EXPECT_EQ(Field(res, "Content-Length"), "2");
  EXPECT_EQ(res.version(), 11u);
}

// RFC 9110 6.6.1: a response without a Date gets one on its way; one with a Date keeps it.
TEST(AppendResponseHeadTest, AddsAMissingDate) {
  std::string out;
  AppendResponseHead(Response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"), out);
  EXPECT_TRUE(std::regex_match(
      out, std::regex("HTTP/1\\.1 200 OK\r\nContent-Length: 2\r\nDate: "
                      "(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-3][0-9] "
                      "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) 20[0-9][0-9] "
                      "[0-2][0-9]:[0-5][0-9]:[0-6][0-9] GMT\r\n\r\n")))
      << out;
  out.clear();
  AppendResponseHead(
      Response(
          "HTTP/1.1 200 OK\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 2\r\n\r\n"),
      out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 2\r\n\r\n");
  EXPECT_EQ(HttpDateNow().size(), 29u);
}

TEST(RewriteResponseTest, NoMessageLengthIn1xxOr204) {
  for (const char* status : {"204 No Content", "103 Early Hints", "100 Continue"}) {
    for (const char* length : {"Content-Length: 5", "Transfer-Encoding: chunked"}) {
      auto res =
          Response(std::string("HTTP/1.1 ") + status + "\r\n" + length + "\r\nX-Kept: k\r\n\r\n");
      RewriteResponse(res, true, 11);
      EXPECT_EQ(CountOf(res, "Content-Length"), 0u) << status;
      EXPECT_EQ(CountOf(res, "Transfer-Encoding"), 0u) << status;
      EXPECT_EQ(Field(res, "X-Kept"), "k");
    }
  }
  // A 304 may tell the length the 200 would have had.
  auto nm = Response("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n");
  RewriteResponse(nm, true, 11);
  EXPECT_EQ(Field(nm, "Content-Length"), "5");
}

TEST(RewriteResponseTest, CloseWhenNotKeptAlive) {
  auto res = Response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
  RewriteResponse(res, false, 11);
  EXPECT_EQ(Field(res, "Connection"), "close");
}

TEST(RewriteResponseTest, Http10Client) {
  auto kept = Response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
  RewriteResponse(kept, true, 10);
  EXPECT_EQ(kept.version(), 11u);  // RFC 9110 6.2: the highest 1.x the server conforms to
  EXPECT_EQ(Field(kept, "Connection"), "keep-alive");
  auto closed = Response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n");
  RewriteResponse(closed, false, 10);
  EXPECT_EQ(closed.version(), 11u);
  EXPECT_EQ(Field(closed, "Connection"), "close");
}

TEST(RewriteResponseTest, SwitchingProtocolsKeepsUpgrade) {
  auto res = Response(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
      "Upgrade: websocket\r\nSec-WebSocket-Accept: abc\r\n\r\n");
  RewriteResponse(res, true, 11);
  EXPECT_EQ(Field(res, "Connection"), "upgrade");
  EXPECT_EQ(Field(res, "Upgrade"), "websocket");
  EXPECT_EQ(Field(res, "Sec-WebSocket-Accept"), "abc");
}

TEST(RewriteResponseTest, ChunkedResponseKeepsItsFraming) {
  auto res = Response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  RewriteResponse(res, true, 11);
  EXPECT_EQ(Field(res, "Transfer-Encoding"), "chunked");
}

// A response head and the parser's verdict on its framing, framing fields normalised.
ResponseHead Framed(const std::string& raw) {
  http::response_parser<http::empty_body, Alloc> parser;
  error_code ec;
  parser.put(boost::asio::buffer(raw), ec);
  EXPECT_FALSE(ec) << ec.message();
  auto res = parser.get().base();
  const auto length = parser.content_length();
  NormalizeFraming(res, parser.chunked(), length ? std::optional<uint64_t>(*length) : std::nullopt);
  return res;
}

TEST(NormalizeFramingTest, TransferEncodingOnOneLineAsTheParserReadIt) {
  // An empty first line: Beast's parser decodes chunked, but a reader of the first line (the
  // router's own framing, the client) would see none, and the body's bytes would go unframed.
  auto res = Framed("HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(CountOf(res, "Transfer-Encoding"), 1u);
  EXPECT_EQ(Field(res, "Transfer-Encoding"), "chunked");
  EXPECT_TRUE(Chunked(res));
  auto two =
      Framed("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: , chunked\r\n\r\n");
  EXPECT_EQ(Field(two, "Transfer-Encoding"), "gzip, chunked");
  EXPECT_TRUE(Chunked(two));
}

TEST(NormalizeFramingTest, ContentLengthGoesWhenTransferEncodingIsThere) {
  // RFC 9112 6.3: Transfer-Encoding overrides Content-Length, and an intermediary removes it.
  auto res = Framed("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n");
  EXPECT_EQ(CountOf(res, "Content-Length"), 0u);
  EXPECT_EQ(Field(res, "Transfer-Encoding"), "gzip");
  EXPECT_FALSE(Chunked(res));
}

TEST(NormalizeFramingTest, OneCanonicalContentLength) {
  for (const char* raw : {"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nContent-Length: 005\r\n\r\n"}) {
    SCOPED_TRACE(raw);
    auto res = Framed(raw);
    EXPECT_EQ(CountOf(res, "Content-Length"), 1u);
    EXPECT_EQ(Field(res, "Content-Length"), "5");
  }
  auto plain = Framed("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A: b\r\n\r\n");
  EXPECT_EQ(Field(plain, "Content-Length"), "12");
  EXPECT_EQ(Field(plain, "X-A"), "b");
  auto none = Framed("HTTP/1.1 200 OK\r\nX-A: b\r\n\r\n");
  EXPECT_EQ(CountOf(none, "Content-Length"), 0u);
  EXPECT_EQ(CountOf(none, "Transfer-Encoding"), 0u);
}

// ---------------------------------------------------------------- request ids

TEST(RequestIdTest, SaneRequestId) {
  EXPECT_FALSE(SaneRequestId(""));
  EXPECT_FALSE(SaneRequestId(std::string(19, 'a')));
  EXPECT_TRUE(SaneRequestId(std::string(20, 'a')));
  EXPECT_TRUE(SaneRequestId(std::string(200, 'Z')));
  EXPECT_FALSE(SaneRequestId(std::string(201, 'a')));
  EXPECT_TRUE(SaneRequestId("AZaz09+/=._-AZaz09+/=._-"));
  EXPECT_TRUE(SaneRequestId("f47ac10b-58cc-4372-a567-0e02b2c3d479"));
  for (char bad : {' ', '"', '\\', '\n', '\r', '\t', ',', ';', ':', '@', '\x7f', '\0'}) {
    std::string id(30, 'a');
    id[10] = bad;
    EXPECT_FALSE(SaneRequestId(id)) << static_cast<int>(bad);
  }
  EXPECT_FALSE(SaneRequestId(std::string(25, 'a') + "\xc3\xa9"));
}

TEST(RequestIdTest, NewRequestIdIsUuidV4) {
  const std::regex uuid4("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  const uint64_t samples[][2] = {{0, 0},
                                 {~0ull, ~0ull},
                                 {0x0123456789abcdefull, 0xfedcba9876543210ull},
                                 {0xaaaaaaaaaaaaaaaaull, 0x5555555555555555ull},
                                 {1, 2}};
  for (const auto& s : samples) {
    std::string id = NewRequestId(s[0], s[1]);
    EXPECT_TRUE(std::regex_match(id, uuid4)) << id;
    EXPECT_TRUE(SaneRequestId(id)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), std::size(samples));
  // The 6 fixed bits are forced whatever the input: these differ only there.
  EXPECT_EQ(NewRequestId(0xffffffffffff0fffull, 0x3fffffffffffffffull), NewRequestId(~0ull, ~0ull));
  EXPECT_EQ(NewRequestId(0, 0), "00000000-0000-4000-8000-000000000000");
  EXPECT_EQ(NewRequestId(~0ull, ~0ull), "ffffffff-ffff-4fff-bfff-ffffffffffff");
  // The random bits land where they should (122 of 128 kept).
  EXPECT_EQ(NewRequestId(0x0123456789abcdefull, 0xfedcba9876543210ull),
            "01234567-89ab-4def-bedc-ba9876543210");
}

// ---------------------------------------------------------------- classification

TEST(ClassifyTest, IsIdempotent) {
  for (auto m : {http::verb::get, http::verb::head, http::verb::options, http::verb::trace,
                 http::verb::put, http::verb::delete_}) {
    EXPECT_TRUE(IsIdempotent(m)) << http::to_string(m);
  }
  for (auto m : {http::verb::post, http::verb::patch, http::verb::connect, http::verb::unknown,
                 http::verb::lock, http::verb::merge}) {
    EXPECT_FALSE(IsIdempotent(m)) << http::to_string(m);
  }
}

TEST(ClassifyTest, IsUpgrade) {
  auto upgrade = [](const std::string& fields) {
    Parsed p = Parse("GET / HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n");
    EXPECT_FALSE(p.ec) << p.ec.message();
    return IsUpgrade(p.req());
  };
  EXPECT_TRUE(upgrade("Connection: Upgrade\r\nUpgrade: websocket\r\n"));
  EXPECT_TRUE(upgrade("Connection: keep-alive, upgrade\r\nUpgrade: websocket\r\n"));
  EXPECT_TRUE(upgrade("Connection: keep-alive\r\nConnection: UPGRADE\r\nUpgrade: h2c\r\n"));
  EXPECT_FALSE(upgrade("Upgrade: websocket\r\n"));
  EXPECT_FALSE(upgrade("Connection: upgrade\r\n"));
  EXPECT_FALSE(upgrade("Connection: keep-alive\r\nUpgrade: websocket\r\n"));
  EXPECT_FALSE(upgrade("Connection: upgrades\r\nUpgrade: websocket\r\n"));
  EXPECT_FALSE(upgrade(""));
}

}  // namespace
}  // namespace phoenix::router

namespace phoenix::router {
namespace {

TEST(FactsTest, OneWalkGivesWhatTheProxyAsks) {
  Parsed p = Parse(
      "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
      "x-request-id: abcdefghijklmnopqrstuvwxyz\r\nX-Request-Id: second\r\nExpect: "
      "100-continue\r\n\r\n");
  ASSERT_FALSE(p.ec);
  RequestFacts f = Facts(p.req());
  EXPECT_TRUE(f.has_host);
  EXPECT_TRUE(f.upgrade);
  EXPECT_EQ(f.request_id, "abcdefghijklmnopqrstuvwxyz");

  Parsed q = Parse("GET / HTTP/1.0\r\nUpgrade: websocket\r\n\r\n");
  ASSERT_FALSE(q.ec);
  RequestFacts g = Facts(q.req());
  EXPECT_FALSE(g.has_host);
  EXPECT_FALSE(g.upgrade);  // Upgrade without Connection: upgrade
  EXPECT_EQ(g.request_id, "");

  // HTTP/1.0: Upgrade is ignored (RFC 9110 7.8), even with Connection: upgrade.
  Parsed h = Parse(
      "GET /chat HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  ASSERT_FALSE(h.ec);
  EXPECT_FALSE(Facts(h.req()).upgrade);
  RewriteRequest(h.req(), Fwd(), false, std::nullopt);
  EXPECT_EQ(CountOf(h.req(), "Upgrade"), 0u);

  // An empty Upgrade list names no protocol: a plain request.
  Parsed e = Parse("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: , \r\nConnection: upgrade\r\n\r\n");
  ASSERT_FALSE(e.ec);
  EXPECT_FALSE(Facts(e.req()).upgrade);
}

// Every Connection line is one list, and "close" anywhere wins (RFC 9112 9.3, 9.6); HTTP/1.0
// keeps the connection only when it asks for keep-alive and not for close. Beast's own
// keep_alive() reads the first line only, so a pipelined request after "close" went on.
TEST(FactsTest, KeepAliveReadsEveryConnectionLine) {
  auto keep = [](const std::string& raw) {
    Parsed p = Parse(raw);
    EXPECT_FALSE(p.ec) << raw;
    return Facts(p.req()).keep_alive;
  };
  EXPECT_TRUE(keep("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(keep("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n"));
  EXPECT_FALSE(
      keep("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.1\r\nHost: x\r\nConnection: x-a, close , x-b\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.0\r\n\r\n"));
  EXPECT_TRUE(keep("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n"));
  // An HTTP/1.0 request's empty Host is none (it gets the address it reached).
  Parsed e = Parse("GET / HTTP/1.0\r\nHost: \r\n\r\n");
  ASSERT_FALSE(e.ec);
  EXPECT_FALSE(Facts(e.req()).has_host);
}

TEST(ChunkExtensionsTest, ControlCharactersAreRefusedEvenQuoted) {
  EXPECT_TRUE(ValidChunkExtensions(""));
  EXPECT_TRUE(ValidChunkExtensions(";a=b;c=\"d e\\\"f\""));
  EXPECT_TRUE(ValidChunkExtensions(";a=\"\tb\x80\xff\""));  // HTAB and obs-text
  for (const std::string& bad :
       std::vector<std::string>{";a=\"\n\"", ";a=\"\\\n\"", ";a=\"\r\"",
                                std::string(";a=\"\0\"", 6), ";a=\"\x01\"", ";a=\"\x7f\""}) {
    EXPECT_FALSE(ValidChunkExtensions(bad)) << bad;
  }
}

// What FixRequestVersion makes of `head`: the refusal's status, or 0 and the head rewritten.
std::pair<int, std::string> FixVersion(std::string head) {
  auto r = FixRequestVersion({head.data(), head.size()});
  return {r ? r->status : 0, head};
}

TEST(FixRequestVersionTest, HigherMinorVersionIsReadAsHttp11) {
  auto [status, head] = FixVersion("GET /a HTTP/1.2\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status, 0);
  EXPECT_EQ(head, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(FixVersion("GET / HTTP/1.9\r\n\r\n").first, 0);
}

TEST(FixRequestVersionTest, OtherMajorVersionsAre505) {
  EXPECT_EQ(FixVersion("GET / HTTP/2.0\r\nHost: x\r\n\r\n").first, 505);
  EXPECT_EQ(FixVersion("GET / HTTP/0.9\r\nHost: x\r\n\r\n").first, 505);
  EXPECT_EQ(FixVersion("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").first, 505);
}

TEST(FixRequestVersionTest, MalformedVersionsAre400AndUntouched) {
  for (std::string bad :
       {"GET / HTTP/1.10\r\n\r\n", "GET / HTTP/1\r\n\r\n", "GET / http/1.2\r\n\r\n",
        "GET /HTTP/1.2\r\n\r\n", "GET / HTTP/a.2\r\n\r\n", "GET / HTTP/1.2", "HTTP/1.2\r\n",
        "GET / HTTP/1.1\r\n\r\n", ""}) {
    auto [status, head] = FixVersion(bad);
    EXPECT_EQ(status, 400) << bad;
    EXPECT_EQ(head, bad);
  }
}

TEST(MissingReasonSpaceTest, OnlyAStatusLineEndingAtItsCode) {
  EXPECT_EQ(MissingReasonSpace("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"), 12u);
  EXPECT_EQ(MissingReasonSpace("HTTP/1.0 404\r"), 12u);
  EXPECT_EQ(MissingReasonSpace("HTTP/1.1 200 \r\n"), 0u);  // Beast reads that already
  EXPECT_EQ(MissingReasonSpace("HTTP/1.1 200 OK\r\n"), 0u);
  EXPECT_EQ(MissingReasonSpace("HTTP/1.1 2000\r\n"), 0u);
  EXPECT_EQ(MissingReasonSpace("HTTP/1.1 20\r\n"), 0u);
  EXPECT_EQ(MissingReasonSpace("HTTP/2.0 200\r\n"), 0u);
  EXPECT_EQ(MissingReasonSpace("HTTP/1.1 200\n"), 0u);  // a bare LF stays refused
  EXPECT_EQ(MissingReasonSpace("HTTP/1.1 200"), 0u);
  // And with the space in, Beast reads it.
  std::string line = "HTTP/1.1 204\r\nX-A: b\r\n\r\n";
  line.insert(MissingReasonSpace(line), " ");
  http::response_parser<http::empty_body, Alloc> parser;
  error_code ec;
  parser.put(boost::asio::buffer(line), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(parser.get().result_int(), 204u);
}

TEST(HeadTooLargeTest, RequestLineOverTheLimitIs414) {
  EXPECT_EQ(HeadTooLarge("GET /aaaaaaaaaaaa", 10).status, 414);
  EXPECT_EQ(HeadTooLarge("GET /aaaaaaaaaaaa HTTP/1.1\r\nHost: x\r\n", 10).status, 414);
  EXPECT_EQ(HeadTooLarge("GET / HTTP/1.1\r\nX-Big: aaaaaaaaaaaaaaaa", 24).status, 431);
}

}  // namespace
}  // namespace phoenix::router
