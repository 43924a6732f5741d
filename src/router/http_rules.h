// The router's HTTP rules, apart from any socket so that they are unit-tested: what request is
// refused and why (RFC 9112 framing, smuggling vectors), how a request and a response are
// rewritten on their way through (hop-by-hop fields, X-Forwarded-*, X-Request-Id), and which
// requests may be retried on another instance. Router-internal: includes Beast.
#pragma once

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <memory_resource>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace phoenix::router {

namespace http = boost::beast::http;

// Fields live in an arena a connection resets after each request (proxy.cc): a head's fields
// then cost no malloc/free each. Default-constructed, the allocator uses new/delete.
using Alloc = std::pmr::polymorphic_allocator<char>;
using Fields = http::basic_fields<Alloc>;
using RequestHead = http::request_header<Fields>;
using ResponseHead = http::response_header<Fields>;

struct Refusal {
  int status;          // 400, 417, 431, 501 ...
  std::string reason;  // for the access log
};

// `head` is the raw request head (request line and fields, up to and including the blank
// line), to see what the parser normalises away (obs-fold).
std::optional<Refusal> CheckRequest(const RequestHead& req, std::string_view head);

// A request head over `limit` bytes (`head`: what is buffered of it): 414 when its request
// line alone is that long (RFC 9112 3: a target longer than we parse is 414), else 431.
Refusal HeadTooLarge(std::string_view head, size_t limit);

// Beast reads HTTP/1.0 and HTTP/1.1 only. For a request line it refused for its version
// (`head`: the buffered bytes, from the request line on): HTTP/1.x with x > 1 is rewritten in
// place to HTTP/1.1 (RFC 9110 2.5: a higher minor version is read as the highest one we
// implement) and nullopt returned, to parse again; another major version (0.9, 2.0) is 505;
// anything else 400.
std::optional<Refusal> FixRequestVersion(std::span<char> head);

// Where a space goes in a response's buffered status line that has none after its status code
// ("HTTP/1.1 200\r\n": the reason phrase is optional, the space before it is not, but servers
// omit it and nginx and HAProxy accept that); 0 when the line is not so.
size_t MissingReasonSpace(std::string_view buffered);

// A request target in absolute-form ("http://example.com:8080/a?b", RFC 9112 3.2.2): its
// authority, and the origin-form the request goes on with ("/a?b"; "/" when empty). nullopt for
// any other form.
struct AbsoluteForm {
  std::string_view authority;
  std::string origin_form;
};
std::optional<AbsoluteForm> SplitAbsoluteForm(std::string_view target);

// Views of strings that outlive the rewrite (no copies a request).
struct Forwarding {
  std::string_view client_ip;
  int router_port = 0;
  std::string_view request_id;  // the one to use (kept from the client when sane)
  // "address:port" the client connected to: the Host sent on for an HTTP/1.0 request that had
  // none, since it goes on as HTTP/1.1, where Host is required (RFC 9112 3.2).
  std::string_view local_host = {};
  // The client is a trusted proxy ([router] trusted_proxies): its X-Forwarded-Proto and -Port
  // go on when sane (see ForwardedValues), instead of the router's, and so do the fields only a
  // proxy may set (Forwarded, X-Forwarded-Host, X-Real-Ip...), which others' requests lose.
  bool trusted = false;
};

// The values of the forwarding fields for one request.
struct ForwardedValues {
  std::string xff;  // the client's X-Forwarded-For list, then the client's address
  // A trusted proxy's X-Forwarded-Proto (its last element, "http" or "https", lowercase) and
  // X-Forwarded-Port (its last element, 1..65535; 443 or 80 when it sent none), both or neither;
  // else "http" and the router's port.
  std::string proto = "http";
  std::string port;
};

// A client's X-Request-Id is kept when it is 20..200 characters of [A-Za-z0-9+/=._-] (as
// Heroku's router does); otherwise a new one is made.
bool SaneRequestId(std::string_view id);
std::string NewRequestId(uint64_t a, uint64_t b);             // UUID v4 text from 128 random bits
void NewRequestId(uint64_t a, uint64_t b, std::string& out);  // the same, in place

// Rewrites a request for the instance: hop-by-hop fields out (and those Connection names),
// X-Forwarded-For appended, -Proto and -Port set, X-Request-Id set, HTTP/1.1 keep-alive, a
// single normalised Content-Length. An Upgrade request keeps Connection: upgrade + Upgrade.
void RewriteRequest(RequestHead& req, const Forwarding& fwd, bool upgrade,
                    std::optional<uint64_t> content_length);
// The same in two steps, for the hot path: PrepareRequest does all but the four forwarding
// fields and returns their values; AppendForwardingLines writes those fields as text (no field
// allocations), to pass to AppendRequestHead as `extra_lines`.
ForwardedValues PrepareRequest(RequestHead& req, const Forwarding& fwd, bool upgrade,
                               std::optional<uint64_t> content_length);
void AppendForwardingLines(const Forwarding& fwd, const ForwardedValues& values, std::string& out);
// The same four fields as fields, for a head Beast's serializer writes (a request with a body).
void SetForwardingFields(RequestHead& req, const Forwarding& fwd, const ForwardedValues& values);

// The client behind a chain of proxies, for the access log: X-Forwarded-For read from the right
// (the address the last proxy saw first), past every address `trusted` accepts; the first one it
// does not is the client (nginx's real_ip_recursive). `peer` is the address of the connection,
// trusted already. An element that is no IP address ends the walk at the one before it.
std::string_view ClientBehindProxies(std::string_view xff, std::string_view peer,
                                     const std::vector<AddressRange>& trusted);
// Whether an address ("10.1.2.3", "::1", "::ffff:10.1.2.3") is in one of the ranges.
bool InRanges(const std::vector<AddressRange>& ranges, std::string_view address);

// A response's framing fields as the parser read them (`chunked`, `content_length`: its
// verdict): Transfer-Encoding on one line, its codings joined, and no Content-Length beside it
// (RFC 9112 6.3); else one Content-Length, its value normalised ("5, 5" and "05" are 5). What
// the client reads is then what the router read, whatever the instance sent. True when the
// client is to read the body to the connection's close (a Transfer-Encoding not ending in
// chunked, RFC 9112 6.3), whatever framing the router used to read it.
bool NormalizeFraming(ResponseHead& res, bool chunked, std::optional<uint64_t> content_length);

// A response head no client can be given as it is, whatever its body (a 502, its connection
// dropped): a status code under 100 (RFC 9112 4: three digits, RFC 9110 15: 100..599; "000"
// went on as "0", and its body was read as the next head); a 1xx with a Content-Length or a
// Transfer-Encoding (RFC 9110 8.6: a 1xx has no content; its body was read as the next head);
// chunked applied twice (RFC 9112 6.1: the parser read to the close while the head said
// chunked); a Transfer-Encoding whose last coding is not chunked beside a Content-Length (RFC
// 9112 6.3 makes it an error to handle as such; the parser read by the length, cutting the body
// that ends at the close, which looked whole to the client). Empty list elements and
// "identity" are no coding. The last two only where a body is read (not for a HEAD, a 204 or a
// 304). The reason, else nullptr.
const char* BadResponseHead(const ResponseHead& res, bool head_method);

// Rewrites a response for the client: hop-by-hop fields out, keep-alive as decided.
void RewriteResponse(ResponseHead& res, bool keep_alive, unsigned client_version);

// The head as it goes on the wire, appended to `out` in one piece (one write(2), no scattered
// field buffers as Beast's serializer gives).
void AppendRequestHead(const RequestHead& req, std::string& out, std::string_view extra_lines = {});
void AppendResponseHead(const ResponseHead& res, std::string& out);  // adds a missing Date
// The current time as an HTTP date (IMF-fixdate, 29 characters), formatted once a second.
std::string_view HttpDateNow();

bool IsUpgrade(const RequestHead& req);

// What the proxy asks of a request head, from one walk over its fields.
struct RequestFacts {
  bool has_host = false;  // and not empty (an HTTP/1.0 request's empty Host is none)
  // Whether the client keeps the connection after this exchange (RFC 9112 9.3): every
  // Connection line read as one list, and "close" anywhere wins over "keep-alive"; HTTP/1.0 only
  // with "keep-alive". (Beast's keep_alive() reads the first line only.)
  bool keep_alive = false;
  bool upgrade = false;         // IsUpgrade()
  std::string_view request_id;  // the first X-Request-Id, "" when none
};
RequestFacts Facts(const RequestHead& req);

// A chunk's extensions as the parser read them (";a=b;c=\"d\""): false when they hold a control
// character other than HTAB, which RFC 9112 7.1.1 allows nowhere there (not even quoted, RFC
// 9110 5.6.4). A bare LF inside quotes ends the line for other parsers (HAProxy, nginx) and
// not for ours: a proxy in front would read the body's end elsewhere.
bool ValidChunkExtensions(std::string_view ext);
bool IsIdempotent(http::verb method);

}  // namespace phoenix::router
