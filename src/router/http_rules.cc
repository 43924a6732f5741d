#include "router/http_rules.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

namespace phoenix::router {
namespace {

// ASCII only, as field names and tokens are (RFC 9110 5.1); std::tolower is a call into the
// locale for every byte.
constexpr char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return AsciiLower(x) == AsciiLower(y);
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Case-insensitive (ASCII) order, for field names.
bool ILess(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const char x = AsciiLower(a[i]), y = AsciiLower(b[i]);
    if (x != y) return x < y;
  }
  return a.size() < b.size();
}

constexpr http::field kHopByHop[] = {http::field::connection,        http::field::keep_alive,
                                     http::field::proxy_connection,  http::field::te,
                                     http::field::trailer,           http::field::upgrade,
                                     http::field::proxy_authenticate};

// Calls f(element) for each non-empty element of a comma-separated list, without its white
// space (empty elements are none, RFC 9110 5.6.1). Stops early when f returns true.
template <class F>
bool ForEachElement(std::string_view v, F f) {
  while (!v.empty()) {
    const size_t comma = v.find(',');
    const std::string_view e = Trim(v.substr(0, comma));
    if (!e.empty()) {
      if constexpr (std::is_same_v<decltype(f(e)), bool>) {
        if (f(e)) return true;
      } else {
        f(e);
      }
    }
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  return false;
}

// Calls f(token) for each comma-separated token of every instance of a field, without
// allocating (the hot path sees "Connection: keep-alive" on most requests).
template <class F>
void ForEachToken(const Fields& fields, http::field name, F f) {
  for (auto it = fields.find(name); it != fields.end() && it->name() == name; ++it) {
    ForEachElement(it->value(), f);
  }
}

// The comma-separated tokens of every instance of a field.
std::vector<std::string> Tokens(const Fields& f, http::field name) {
  std::vector<std::string> out;
  ForEachToken(f, name, [&](std::string_view tok) { out.emplace_back(tok); });
  return out;
}

bool IsHopByHop(http::field name) {
  return std::find(std::begin(kHopByHop), std::end(kHopByHop), name) != std::end(kHopByHop);
}

// One walk over the fields instead of a lookup a name (each a tree search with case-insensitive
// compares): the fields go when they are hop-by-hop, or named by Connection.
void RemoveHopByHop(Fields& f, bool keep_upgrade) {
  bool any = false;
  for (const auto& field : f) {
    if (IsHopByHop(field.name()) && !(keep_upgrade && field.name() == http::field::upgrade)) {
      any = true;
      break;
    }
  }
  if (!any) return;  // most requests and responses
  // Fields named by Connection are for this hop only (RFC 9110 7.6.1), except the framing.
  std::vector<std::string> named;
  ForEachToken(f, http::field::connection, [&](std::string_view tok) {
    if (IEquals(tok, "keep-alive") || IEquals(tok, "close") || IEquals(tok, "upgrade") ||
        IEquals(tok, "content-length") || IEquals(tok, "transfer-encoding") ||
        IEquals(tok, "host")) {
      return;  // removed below anyway, or framing, or Host (checked, and required in 1.1)
    }
    named.emplace_back(tok);
  });
  // Sorted, so that a head of thousands of names and fields costs a search a field, not a
  // compare of every pair.
  std::sort(named.begin(), named.end(), ILess);
  for (auto it = f.begin(); it != f.end();) {
    bool hop = IsHopByHop(it->name()) && !(keep_upgrade && it->name() == http::field::upgrade);
    if (!hop && !named.empty()) {
      hop = std::binary_search(named.begin(), named.end(), it->name_string(), ILess);
    }
    it = hop ? f.erase(it) : std::next(it);
  }
}

// Host = uri-host [ ":" port ] (RFC 9110 7.2, RFC 3986 3.2.2): a reg-name or IPv4 address
// (unreserved, sub-delims, pct-encoded), or an IP literal in brackets; the port digits.
bool ValidHost(std::string_view h) {
  if (h.empty()) return true;  // "empty host" is judged on its own
  const auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  size_t i = 0;
  if (h[0] == '[') {
    i = h.find(']');
    const std::string_view ip = h.substr(1, i == std::string_view::npos ? 0 : i - 1);
    if (i == std::string_view::npos || ip.find(':') == std::string_view::npos) return false;
    for (char c : ip) {
      if (!hex(c) && c != ':' && c != '.') return false;
    }
    ++i;
  } else {
    static constexpr std::string_view kOther = "-._~!$&'()*+,;=";
    for (; i < h.size() && h[i] != ':'; ++i) {
      const auto c = static_cast<unsigned char>(h[i]);
      if (h[i] == '%') {  // pct-encoded: two hex digits
        if (i + 2 >= h.size() || !hex(h[i + 1]) || !hex(h[i + 2])) return false;
        i += 2;
      } else if (!std::isalnum(c) && kOther.find(h[i]) == std::string_view::npos) {
        return false;
      }
    }
    if (i == 0) return false;  // ":80": a port without a host
  }
  if (i == h.size()) return true;
  if (h[i] != ':') return false;
  for (char c : h.substr(i + 1)) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

Refusal HeadTooLarge(std::string_view head, size_t limit) {
  if (head.substr(0, limit).find('\n') == std::string_view::npos) {
    return Refusal{414, "request line too long"};
  }
  return Refusal{431, "header too large"};
}

std::optional<Refusal> FixRequestVersion(std::span<char> head) {
  const std::string_view text(head.data(), head.size());
  const size_t eol = text.find("\r\n");
  if (eol == std::string_view::npos || eol < 9) return Refusal{400, "bad version"};
  char* v = head.data() + eol - 8;  // "HTTP/d.d" ends the request line, after a space
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (v[-1] != ' ' || std::string_view(v, 5) != "HTTP/" || !digit(v[5]) || v[6] != '.' ||
      !digit(v[7])) {
    return Refusal{400, "bad version"};
  }
  if (v[5] != '1') return Refusal{505, "http version"};
  if (v[7] <= '1') return Refusal{400, "bad version"};  // 1.0 and 1.1 failed for another reason
  v[7] = '1';
  return std::nullopt;
}

std::optional<AbsoluteForm> SplitAbsoluteForm(std::string_view target) {
  if (target.empty() || target[0] == '/') return std::nullopt;  // origin-form: nearly all
  size_t scheme = 0;
  if (target.size() >= 7 && IEquals(target.substr(0, 7), "http://")) {
    scheme = 7;
  } else if (target.size() >= 8 && IEquals(target.substr(0, 8), "https://")) {
    scheme = 8;
  } else {
    return std::nullopt;
  }
  const std::string_view rest = target.substr(scheme);
  const size_t end = std::min(rest.find_first_of("/?#"), rest.size());
  AbsoluteForm form{rest.substr(0, end), std::string(rest.substr(end))};
  if (form.origin_form.empty() || form.origin_form[0] != '/') form.origin_form.insert(0, "/");
  return form;
}

size_t MissingReasonSpace(std::string_view b) {
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  // "HTTP/1.d DDD" then CR: the space goes at 12.
  if (b.size() < 13 || b.substr(0, 7) != "HTTP/1." || !digit(b[7]) || b[8] != ' ' || !digit(b[9]) ||
      !digit(b[10]) || !digit(b[11]) || b[12] != '\r') {
    return 0;
  }
  return 12;
}

// An Expect value that asks for more than 100-continue.
static bool ExpectsOther(std::string_view v) {
  return ForEachElement(v, [](std::string_view e) { return !IEquals(e, "100-continue"); });
}

std::optional<Refusal> CheckRequest(const RequestHead& req, std::string_view head) {
  // obs-fold (a field line continued on the next line) is refused: RFC 9112 5.2.
  for (size_t i = head.find('\n'); i != std::string_view::npos && i + 1 < head.size();
       i = head.find('\n', i + 1)) {
    if (head[i + 1] == ' ' || head[i + 1] == '\t') return Refusal{400, "obs-fold"};
  }
  if (req.version() != 10 && req.version() != 11) return Refusal{505, "http version"};
  // The four forms of a request-target (RFC 9112 3.2), each where it belongs: a path (no
  // fragment: it is the client's own), http(s) absolute-form, "*" for OPTIONS, authority-form
  // for CONNECT (refused below). Anything else (ftp://x/, "evil:80" with GET) would reach an
  // app that routes on it as a path.
  const std::string_view target = req.target();
  if (target.empty()) return Refusal{400, "target"};
  const std::optional<AbsoluteForm> absolute = SplitAbsoluteForm(target);
  if (target == "*") {
    if (req.method() != http::verb::options) return Refusal{400, "target"};
  } else if (target[0] == '/' || absolute) {
    if (target.find('#') != std::string_view::npos) return Refusal{400, "target"};
  } else if (req.method() != http::verb::connect) {
    return Refusal{400, "target"};
  }
  // One walk over the fields for every count below.
  size_t hosts = 0, te = 0, cl = 0;
  bool host_empty = false, host_bad = false;
  bool expect_other = false;  // an Expect line with anything but 100-continue
  for (const auto& field : req) {
    switch (field.name()) {
      case http::field::host:
        ++hosts;
        host_empty = field.value().empty();
        host_bad = !ValidHost(field.value());
        break;
      case http::field::transfer_encoding:
        ++te;
        break;
      case http::field::content_length:
        ++cl;
        break;
      case http::field::expect:
        expect_other = expect_other || ExpectsOther(field.value());
        break;
      default:
        break;
    }
  }
  // An absolute-form target's authority is the host the request is for (RFC 9112 3.2.2): it is
  // judged as Host is, and replaces it on the way (PrepareRequest).
  if (absolute && (absolute->authority.empty() || !ValidHost(absolute->authority))) {
    return Refusal{400, "bad host"};
  }
  if (hosts > 1 || (req.version() == 11 && hosts == 0)) return Refusal{400, "host"};
  if (hosts == 1 && host_empty && req.version() == 11) return Refusal{400, "empty host"};
  // An invalid Host is 400 too (RFC 9112 3.2), and never reaches the app: it builds links,
  // redirects and password-reset mails from it.
  if (hosts == 1 && host_bad) return Refusal{400, "bad host"};
  if (te > 0) {
    // HTTP/1.0 has no Transfer-Encoding: its framing is faulty (RFC 9112 6.1).
    if (req.version() == 10) return Refusal{400, "transfer-encoding in HTTP/1.0"};
    auto codings = Tokens(req, http::field::transfer_encoding);
    // Only "chunked", once and last, has a framing we can trust both sides read alike.
    if (codings.size() != 1 || !IEquals(codings.back(), "chunked")) {
      return Refusal{codings.empty() || !IEquals(codings.back(), "chunked") ? 400 : 501,
                     "transfer-encoding"};
    }
    if (cl > 0) return Refusal{400, "content-length with transfer-encoding"};
  }
  if (cl > 0) {
    // Repeated values must all be the same number (RFC 9110 8.6); it is sent on as one.
    std::string first;
    for (const auto& tok : Tokens(req, http::field::content_length)) {
      if (!std::all_of(tok.begin(), tok.end(), ::isdigit)) return Refusal{400, "content-length"};
      // Over 2^63-1, as nginx: an app's parser may hold it in a signed 64-bit number.
      const std::string_view digits =
          std::string_view(tok).substr(std::min(tok.find_first_not_of('0'), tok.size()));
      if (digits.size() > 19 || (digits.size() == 19 && digits > "9223372036854775807")) {
        return Refusal{400, "content-length too large"};
      }
      if (first.empty()) first = tok;
      if (tok != first) return Refusal{400, "content-length differs"};
    }
  }
  if (expect_other) return Refusal{417, "expect"};
  // A method the router does not implement (RFC 9110 9.1: 501; a 405 would owe an Allow).
  if (req.method() == http::verb::connect) return Refusal{501, "connect"};
  if (req.method() == http::verb::unknown && req.method_string().empty()) {
    return Refusal{400, "method"};
  }
  return std::nullopt;
}

bool SaneRequestId(std::string_view id) {
  if (id.size() < 20 || id.size() > 200) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=' ||
           c == '.' || c == '_' || c == '-';
  });
}

std::string NewRequestId(uint64_t a, uint64_t b) {
  std::string out;
  NewRequestId(a, b, out);
  return out;
}

void NewRequestId(uint64_t a, uint64_t b, std::string& out) {
  a = (a & 0xffffffffffff0fffull) | 0x0000000000004000ull;  // version 4
  b = (b & 0x3fffffffffffffffull) | 0x8000000000000000ull;  // variant 10
  // 8-4-4-4-12 hex digits, by hand: this runs once a request.
  static constexpr char kHex[] = "0123456789abcdef";
  out.assign(36, '-');  // in place: a reused string's capacity, no allocation
  int pos = 0;
  auto put = [&](uint64_t v, int digits) {
    for (int i = digits - 1; i >= 0; --i) out[pos + i] = kHex[(v >> (4 * (digits - 1 - i))) & 0xf];
    pos += digits + 1;
  };
  put(a >> 32, 8);
  put((a >> 16) & 0xffff, 4);
  put(a & 0xffff, 4);
  put(b >> 48, 4);
  put(b & 0xffffffffffffull, 12);
}

namespace {

void AppendFields(const Fields& f, std::string& out, std::string_view extra = {}) {
  for (const auto& field : f) {
    out += field.name_string();
    out += ": ";
    out += field.value();
    out += "\r\n";
  }
  out += extra;
  out += "\r\n";
}

}  // namespace

void AppendRequestHead(const RequestHead& req, std::string& out, std::string_view extra_lines) {
  out += req.method_string();
  out += ' ';
  out += req.target();
  out += req.version() == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
  AppendFields(req, out, extra_lines);
}

void AppendResponseHead(const ResponseHead& res, std::string& out) {
  out += res.version() == 10 ? "HTTP/1.0" : "HTTP/1.1";
  // Three digits (the parser takes no other status; ours are all of them): no printf.
  const unsigned code = res.result_int() % 1000;
  const char status[5] = {' ', static_cast<char>('0' + code / 100),
                          static_cast<char>('0' + code / 10 % 10),
                          static_cast<char>('0' + code % 10), ' '};
  out.append(status, sizeof status);
  std::string_view reason = res.reason();
  if (reason.empty()) reason = std::string_view(http::obsolete_reason(res.result()));
  out += reason;
  out += "\r\n";
  bool has_date = false;
  for (const auto& field : res) {
    has_date = has_date || field.name() == http::field::date;
    out += field.name_string();
    out += ": ";
    out += field.value();
    out += "\r\n";
  }
  // RFC 9110 6.6.1: a response forwarded without a Date gets one from a recipient with a clock
  // (nginx adds its own too).
  if (!has_date) {
    out += "Date: ";
    out += HttpDateNow();
    out += "\r\n";
  }
  out += "\r\n";
}

std::string_view HttpDateNow() {
  // Once a second a thread: time(2) is a vDSO read, the formatting is not.
  thread_local time_t last = -1;
  thread_local char text[32];
  if (time_t now = time(nullptr); now != last) {
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm {};
    gmtime_r(&now, &tm);
    // IMF-fixdate (RFC 9110 5.6.7), in English whatever the locale: "Sun, 06 Nov 1994 08:49:37
    // GMT".
    fmt::format_to_n(text, sizeof text, "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
                     kDays[tm.tm_wday], tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
    last = now;
  }
  return {text, 29};
}

RequestFacts Facts(const RequestHead& req) {
  RequestFacts facts;
  bool upgrade_field = false;
  for (const auto& field : req) {
    switch (field.name()) {
      case http::field::host:
        facts.has_host = !field.value().empty();
        break;
      case http::field::upgrade:
        // An empty list names no protocol to switch to: no upgrade.
        upgrade_field =
            upgrade_field || field.value().find_first_not_of(" \t,") != std::string_view::npos;
        break;
      case http::field::unknown:
        if (facts.request_id.empty() && IEquals(field.name_string(), "X-Request-Id")) {
          facts.request_id = field.value();
        }
        break;
      default:
        break;
    }
  }
  // One walk over the Connection tokens for both answers.
  bool close = false, keep_alive = false, upgrade_token = false;
  ForEachToken(req, http::field::connection, [&](std::string_view tok) {
    close = close || IEquals(tok, "close");
    keep_alive = keep_alive || IEquals(tok, "keep-alive");
    upgrade_token = upgrade_token || IEquals(tok, "upgrade");
  });
  facts.keep_alive = !close && (req.version() >= 11 || keep_alive);
  // An HTTP/1.0 request's Upgrade is ignored (RFC 9110 7.8): it goes on as a plain request,
  // without the field (hop-by-hop). (IsUpgrade's answer, from the walks above.)
  facts.upgrade = upgrade_field && req.version() >= 11 && upgrade_token;
  return facts;
}

bool ValidChunkExtensions(std::string_view ext) {
  return std::none_of(ext.begin(), ext.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && u != '\t') || u == 0x7f;
  });
}

bool IsUpgrade(const RequestHead& req) {
  if (req.find(http::field::upgrade) == req.end()) return false;
  bool upgrade = false;
  ForEachToken(req, http::field::connection,
               [&](std::string_view tok) { upgrade = upgrade || IEquals(tok, "upgrade"); });
  return upgrade;
}

bool IsIdempotent(http::verb m) {
  switch (m) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::options:
    case http::verb::trace:
    case http::verb::put:
    case http::verb::delete_:
      return true;
    default:
      return false;
  }
}

namespace {
std::optional<std::array<uint8_t, 16>> ParseIp(std::string_view text) {
  char z[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof z) return std::nullopt;
  std::memcpy(z, text.data(), text.size());
  z[text.size()] = '\0';
  std::array<uint8_t, 16> a{};
  in_addr v4{};
  if (inet_pton(AF_INET, z, &v4) == 1) {
    a[10] = a[11] = 0xff;  // ::ffff:a.b.c.d, as AddressRange holds IPv4
    std::memcpy(&a[12], &v4, 4);
    return a;
  }
  if (inet_pton(AF_INET6, z, a.data()) == 1) return a;
  return std::nullopt;
}
}  // namespace

bool InRanges(const std::vector<AddressRange>& ranges, std::string_view address) {
  auto a = ParseIp(address);
  return a && std::any_of(ranges.begin(), ranges.end(),
                          [&](const AddressRange& r) { return r.Contains(*a); });
}

std::string_view ClientBehindProxies(std::string_view xff, std::string_view peer,
                                     const std::vector<AddressRange>& trusted) {
  std::string_view client = peer;
  while (!xff.empty()) {
    size_t comma = xff.rfind(',');
    std::string_view e = comma == std::string_view::npos ? xff : xff.substr(comma + 1);
    xff = comma == std::string_view::npos ? std::string_view() : xff.substr(0, comma);
    while (!e.empty() && (e.front() == ' ' || e.front() == '\t')) e.remove_prefix(1);
    while (!e.empty() && (e.back() == ' ' || e.back() == '\t')) e.remove_suffix(1);
    if (e.empty()) continue;  // "a, , b", or a trailing comma
    // An address may come with its port, as some proxies write it: "192.0.2.1:4711",
    // "[2001:db8::1]:4711" (RFC 7239 6's form), or in brackets alone.
    std::string_view address = e;
    if (address.front() == '[') {
      size_t close = address.find(']');
      address = close == std::string_view::npos ? std::string_view() : address.substr(1, close - 1);
    } else if (std::count(address.begin(), address.end(), ':') == 1) {
      address = address.substr(0, address.find(':'));
    }
    auto a = ParseIp(address);
    if (!a) break;  // not an address: the proxy before it is as far as the chain is known
    client = address;
    if (!std::any_of(trusted.begin(), trusted.end(),
                     [&](const AddressRange& r) { return r.Contains(*a); })) {
      break;
    }
  }
  return client;
}

namespace {
// Fields that say how the client reached the edge, which only a proxy in front can know:
// from anyone else they are claims (a client saying it came over https, or from another host or
// address, to an app that believes its proxy). Ours replace X-Forwarded-For/-Proto/-Port; these
// go on from trusted proxies only.
// (X-Original-URL and X-Rewrite-URL: some frameworks route on them instead of the target,
// which would take a request past the path rules of a proxy in front.)
constexpr std::string_view kProxyOnlyNames[] = {
    "X-Forwarded-Host",   "X-Forwarded-Server", "X-Forwarded-Ssl",
    "X-Forwarded-Scheme", "X-Forwarded-Prefix", "X-Forwarded-Client-Cert",
    "X-Url-Scheme",       "Front-End-Https",    "X-Real-Ip",
    "Client-Ip",          "True-Client-Ip",     "X-Cluster-Client-Ip",
    "X-Original-Url",     "X-Rewrite-Url"};

bool OneOf(std::string_view n, std::span<const std::string_view> names) {
  return std::any_of(names.begin(), names.end(), [n](std::string_view f) { return IEquals(n, f); });
}

bool ProxyOnlyField(const RequestHead::value_type& field) {
  if (field.name() == http::field::forwarded) return true;  // RFC 7239
  return field.name() == http::field::unknown && OneOf(field.name_string(), kProxyOnlyNames);
}

// Fields that go from every request: `Proxy` (httpoxy: CGI-style servers turn it into
// HTTP_PROXY, which HTTP clients read as their proxy), and a field whose name has underscores
// and reads, with hyphens, as one the router sets or vets (X_Forwarded_Proto): servers that map
// names to CGI-style variables (HTTP_X_FORWARDED_PROTO) read both as one, so the client's would
// stand beside or override ours (Puma, CVE-2024-45614). nginx drops every name with an
// underscore; these are the ones that can pose as ours.
bool AlwaysDropped(const RequestHead::value_type& field) {
  if (field.name() != http::field::unknown) return false;  // Beast's known names have no '_'
  const std::string_view n = field.name_string();
  if (IEquals(n, "Proxy")) return true;
  if (n.find('_') == std::string_view::npos) return false;
  char buf[32];
  if (n.size() > sizeof buf) return false;  // longer than every name below
  for (size_t i = 0; i < n.size(); ++i) buf[i] = n[i] == '_' ? '-' : n[i];
  const std::string_view h(buf, n.size());
  constexpr std::string_view kOurs[] = {
      "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Port",
      "X-Request-Id",    "Content-Length",    "Transfer-Encoding",
      "Keep-Alive",      "Proxy-Connection",  "X-Phoenix-Instance"};
  return OneOf(h, kOurs) || OneOf(h, kProxyOnlyNames);
}

// Appends a list's non-empty elements, each followed by ", " (an empty one, from "a, " or an
// empty line, would reach the app as an address of its own).
void AppendElements(std::string_view list, std::string& out) {
  ForEachElement(list, [&](std::string_view e) {
    out += e;
    out += ", ";
  });
}

// The last element of a comma-separated list (what the nearest proxy added), without its white
// space; empty if there is none.
std::string_view LastElement(std::string_view list) {
  size_t comma = list.rfind(',');
  std::string_view e = comma == std::string_view::npos ? list : list.substr(comma + 1);
  while (!e.empty() && (e.front() == ' ' || e.front() == '\t')) e.remove_prefix(1);
  while (!e.empty() && (e.back() == ' ' || e.back() == '\t')) e.remove_suffix(1);
  return e;
}

// 1..65535 in plain decimal ("443", "0443"), else 0.
int PortNumber(std::string_view text) {
  if (text.empty() || text.size() > 5) return 0;
  int v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + (c - '0');
  }
  return v <= 65535 ? v : 0;
}
}  // namespace

ForwardedValues PrepareRequest(RequestHead& req, const Forwarding& fwd, bool upgrade,
                               std::optional<uint64_t> content_length) {
  RemoveHopByHop(req, upgrade);
  // One walk: the client's X-Forwarded-For values, and whether any field must go: Expect from
  // an HTTP/1.0 client (RFC 9110 10.1.1: ignored; an HTTP/1.1 one goes on, so that the app
  // decides, as HAProxy lets it: the router passes its 100 Continue or its refusal back), the
  // forwarding fields (ours replace the client's; the request id was read before, and kept
  // when sane), Content-Length (normalised), and from an untrusted client the fields only a
  // proxy may set.
  const bool drop_expect = req.version() == 10;
  ForwardedValues values;
  std::string& xff = values.xff;
  std::string_view proto, port;  // a trusted proxy's: the last line's last element
  bool drop = false;
  bool chunked = false;
  for (const auto& field : req) {
    if (field.name() == http::field::transfer_encoding) {
      // CheckRequest let through "chunked" alone, maybe among empty list elements and over
      // several lines: sent on as the one line every parser reads alike. (Beast's serializer
      // and many apps read the first line only: with an empty one first, the body would go
      // unframed, and the app would read its bytes as a request of their own.)
      chunked = drop = true;
    } else if ((drop_expect && field.name() == http::field::expect) ||
               (content_length && field.name() == http::field::content_length)) {
      drop = true;
    } else if ((!fwd.trusted && ProxyOnlyField(field)) || AlwaysDropped(field)) {
      drop = true;
    } else if (field.name() == http::field::unknown) {
      std::string_view n = field.name_string();
      if (IEquals(n, "X-Forwarded-For")) {
        AppendElements(field.value(), xff);
        drop = true;
      } else if (IEquals(n, "X-Forwarded-Proto")) {
        proto = LastElement(field.value());
        drop = true;
      } else if (IEquals(n, "X-Forwarded-Port")) {
        port = LastElement(field.value());
        drop = true;
      } else if (IEquals(n, "X-Request-Id")) {
        drop = true;
      }
    }
  }
  // A trusted proxy's word for the scheme, and for the port (the scheme's own when it gives
  // none), taken together or not at all; one value each, lowercase, as the proxy nearest to us
  // said it (apps read the first element of a list, which the client may have written). Read
  // before the fields they view are erased.
  values.port = std::to_string(fwd.router_port);
  if (fwd.trusted && !proto.empty()) {
    const bool https = IEquals(proto, "https");
    const int number = port.empty() ? (https ? 443 : 80) : PortNumber(port);
    if ((https || IEquals(proto, "http")) && number != 0) {
      values.proto = https ? "https" : "http";
      values.port = std::to_string(number);
    }
  }
  if (drop) {
    for (auto it = req.begin(); it != req.end();) {
      bool go = (drop_expect && it->name() == http::field::expect) ||
                it->name() == http::field::transfer_encoding ||
                (content_length && it->name() == http::field::content_length) ||
                (!fwd.trusted && ProxyOnlyField(*it)) || AlwaysDropped(*it);
      if (!go && it->name() == http::field::unknown) {
        std::string_view n = it->name_string();
        go = IEquals(n, "X-Forwarded-For") || IEquals(n, "X-Forwarded-Proto") ||
             IEquals(n, "X-Forwarded-Port") || IEquals(n, "X-Request-Id");
      }
      it = go ? req.erase(it) : std::next(it);
    }
  }
  xff += fwd.client_ip;
  req.version(11);
  if (auto abs = SplitAbsoluteForm(req.target())) {
    // Origin-form to the app, with the target's authority as Host (RFC 9112 3.2.2), as nginx
    // sends it: the app's Host is the one that was checked.
    const std::string authority(abs->authority);
    req.target(abs->origin_form);
    req.set(http::field::host, authority);
  }
  // (An HTTP/1.0 request's empty Host is none: its HTTP/1.1 form needs one, RFC 9112 3.2.)
  if (auto host = req.find(http::field::host);
      (host == req.end() || host->value().empty()) && !fwd.local_host.empty()) {
    req.set(http::field::host, fwd.local_host);
  }
  if (content_length) req.insert(http::field::content_length, std::to_string(*content_length));
  if (chunked) req.insert(http::field::transfer_encoding, "chunked");
  if (upgrade) req.set(http::field::connection, "upgrade");
  return values;
}

void AppendForwardingLines(const Forwarding& fwd, const ForwardedValues& values, std::string& out) {
  out += "X-Forwarded-For: ";
  out += values.xff;
  out += "\r\nX-Forwarded-Proto: ";
  out += values.proto;
  out += "\r\nX-Forwarded-Port: ";
  out += values.port;
  out += "\r\nX-Request-Id: ";
  out += fwd.request_id;
  out += "\r\n";
}

void SetForwardingFields(RequestHead& req, const Forwarding& fwd, const ForwardedValues& values) {
  req.set("X-Forwarded-For", values.xff);
  req.set("X-Forwarded-Proto", values.proto);
  req.set("X-Forwarded-Port", values.port);
  req.set("X-Request-Id", fwd.request_id);
}

void RewriteRequest(RequestHead& req, const Forwarding& fwd, bool upgrade,
                    std::optional<uint64_t> content_length) {
  SetForwardingFields(req, fwd, PrepareRequest(req, fwd, upgrade, content_length));
}

bool NormalizeFraming(ResponseHead& res, bool chunked, std::optional<uint64_t> content_length) {
  size_t te = 0, cl = 0;
  bool canonical = true;
  char digits[24];
  const auto n = content_length
                     ? static_cast<size_t>(fmt::format_to(digits, "{}", *content_length) - digits)
                     : 0;
  for (const auto& field : res) {
    if (field.name() == http::field::transfer_encoding) {
      ++te;
    } else if (field.name() == http::field::content_length) {
      ++cl;
      canonical = canonical && field.value() == std::string_view(digits, n);
    }
  }
  if (te == 0 && (cl == 0 || (cl == 1 && canonical))) return false;  // nearly every response
  std::string codings;
  if (te > 0) {
    for (const auto& tok : Tokens(res, http::field::transfer_encoding)) {
      if (!codings.empty()) codings += ", ";
      codings += tok;
    }
  }
  for (auto it = res.begin(); it != res.end();) {
    const bool go =
        it->name() == http::field::transfer_encoding || it->name() == http::field::content_length;
    it = go ? res.erase(it) : std::next(it);
  }
  if (te > 0) {
    // Transfer-Encoding overrides Content-Length, which goes (RFC 9112 6.3).
    if (chunked && codings.empty()) codings = "chunked";
    if (!codings.empty()) res.insert(http::field::transfer_encoding, codings);
  } else if (content_length) {
    res.insert(http::field::content_length, std::string_view(digits, n));
  }
  return te > 0 && !chunked;
}

const char* BadResponseHead(const ResponseHead& res, bool head_method) {
  const unsigned code = res.result_int();
  if (code < 100) return "Status code under 100";
  bool te = false, cl = false, cl_not_zero = false;
  for (const auto& field : res) {
    te = te || field.name() == http::field::transfer_encoding;
    if (field.name() == http::field::content_length) {
      cl = true;
      cl_not_zero =
          cl_not_zero || field.value().find_first_not_of("0, \t") != std::string_view::npos;
    }
  }
  if (!te && !cl) return nullptr;  // most heads, and nearly every 1xx
  // (A 101's bytes are the tunnel's, and "Content-Length: 0" announces none: both pass.)
  if (code < 200) {
    return code != 101 && (te || cl_not_zero) ? "Message length in a 1xx response" : nullptr;
  }
  if (!te || head_method || code == 204 || code == 304) return nullptr;  // no body read
  size_t chunked = 0, codings = 0;
  bool last_chunked = false;
  ForEachToken(res, http::field::transfer_encoding, [&](std::string_view tok) {
    if (IEquals(tok, "identity")) return;  // (no coding: RFC 7230's, since retired)
    ++codings;
    last_chunked = IEquals(tok, "chunked");
    chunked += last_chunked ? 1 : 0;
  });
  if (chunked > 1) return "Chunked applied twice";
  if (codings > 0 && !last_chunked && cl) {
    return "Content-Length with a Transfer-Encoding not ending in chunked";
  }
  return nullptr;
}

void RewriteResponse(ResponseHead& res, bool keep_alive, unsigned client_version) {
  bool upgrade = res.result() == http::status::switching_protocols;
  RemoveHopByHop(res, upgrade);
  // HTTP/1.1 to every client, as nginx answers: a server sends the highest version it conforms
  // to with the request's major version (RFC 9110 6.2); the framing is the client's version's.
  res.version(11);
  // No message length in a 1xx or a 204 (RFC 9110 8.6, RFC 9112 6.1): they have no body
  // whatever an instance says, and a client or proxy in front that believed the field would
  // wait for bytes that never come, or read the next response as this one's body.
  const unsigned code = res.result_int();
  if (code / 100 == 1 || code == 204) {
    res.erase(http::field::content_length);
    res.erase(http::field::transfer_encoding);
  }
  if (client_version == 10 && res.find(http::field::transfer_encoding) != res.end()) {
    // No Transfer-Encoding to an HTTP/1.0 client (RFC 9112 6.1), which would show a gzip
    // transfer coding's bytes as the content. The body goes as it came, read to the close
    // (chunked, the last coding, is taken off already); the codings that stay are content
    // codings of the same names (RFC 9110 8.4.1), applied after any the content had.
    std::string codings;
    auto add = [&](std::string_view tok) {
      codings += codings.empty() ? "" : ", ";
      codings += tok;
    };
    ForEachToken(res, http::field::content_encoding, add);
    const size_t before = codings.size();
    // (A final chunked is off already; one before another coding stays in the list, which the
    // client then cannot decode, rather than be dropped and its framing read as content.)
    ForEachToken(res, http::field::transfer_encoding, [&](std::string_view tok) {
      if (!IEquals(tok, "identity")) add(tok);
    });
    res.erase(http::field::transfer_encoding);
    if (codings.size() != before) res.set(http::field::content_encoding, codings);
  }
  if (upgrade) {
    res.set(http::field::connection, "upgrade");
  } else if (client_version == 10) {
    if (keep_alive)
      res.set(http::field::connection, "keep-alive");
    else
      res.set(http::field::connection, "close");
  } else if (!keep_alive) {
    res.set(http::field::connection, "close");
  }
}

}  // namespace phoenix::router
