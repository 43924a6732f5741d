#include "audit/har.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>
#include <tuple>

#include "base/text.h"
#include "config/config.h"

namespace phoenix::audit {
namespace json = boost::json;

namespace {

// Browsers' recordings of a long session with bodies run to tens of MB; this leaves room.
constexpr size_t kMaxHarBytes = 256 << 20;
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

struct Url {
  std::string scheme, host, target;  // host with its port; target: path and query
};

// "Shop.Example:443" of https and "shop.example" are one host: lower case, no default port, no
// user info, no trailing dot.
std::string NormalizeHost(std::string_view scheme, std::string_view authority) {
  if (size_t at = authority.rfind('@'); at != std::string_view::npos)
    authority.remove_prefix(at + 1);
  std::string host(authority);
  for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string port;
  size_t colon = host.rfind(':');
  if (colon != std::string::npos && host.find(']', colon) == std::string::npos) {
    port = host.substr(colon + 1);
    host.resize(colon);
  }
  if (!host.empty() && host.back() == '.') host.pop_back();
  bool secure = scheme == "https" || scheme == "wss";
  if (port.empty() || port == (secure ? "443" : "80")) return host;
  return host + ":" + port;
}

// Bytes a browser percent-encodes in a path or query before sending (the URL standard's
// encode sets): non-ASCII (a HAR may hold the decoded "/café"), controls, space, quotes, <, >.
std::string EncodeTarget(std::string_view target) {
  std::string out;
  for (char ch : target) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7F || c == '"' || c == '<' || c == '>' || c == '`') {
      out += fmt::format("%{:02X}", c);
    } else {
      out += ch;
    }
  }
  return out;
}

std::optional<Url> SplitUrl(std::string_view url) {
  size_t colon = url.find("://");
  if (colon == std::string_view::npos) return std::nullopt;
  Url u;
  u.scheme = std::string(url.substr(0, colon));
  for (auto& c : u.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view rest = url.substr(colon + 3);
  size_t slash = rest.find_first_of("/?#");
  u.host = NormalizeHost(u.scheme, rest.substr(0, slash));
  std::string_view target = slash == std::string_view::npos ? "/" : rest.substr(slash);
  target = target.substr(0, target.find('#'));  // never sent
  u.target = EncodeTarget(target.empty() || target.front() == '?' ? "/" + std::string(target)
                                                                  : std::string(target));
  return u;
}

// The scheme of a URL without "://" (data:, blob:, about:), lower case.
std::string SchemeOf(std::string_view url) {
  size_t colon = url.find(':');
  if (colon == std::string_view::npos) return "";
  std::string scheme(url.substr(0, colon));
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return scheme;
}

// A page load: Chrome marks it (_resourceType), Firefox's navigations ask for HTML first.
bool IsDocument(const json::object& entry, const json::object& request) {
  if (auto* t = entry.if_contains("_resourceType"); t && t->is_string())
    return t->as_string() == "document";
  auto* method = request.if_contains("method");
  if (!method || !method->is_string() || method->as_string() != "GET") return false;
  if (auto* headers = request.if_contains("headers"); headers && headers->is_array()) {
    for (const auto& h : headers->as_array()) {
      auto* n = h.is_object() ? h.as_object().if_contains("name") : nullptr;
      auto* v = h.is_object() ? h.as_object().if_contains("value") : nullptr;
      if (n && v && n->is_string() && v->is_string() && IEquals(n->as_string(), "accept"))
        return v->as_string().starts_with("text/html");
    }
  }
  return false;
}

// An ISO 8601 date and time ("2024-05-01T10:00:00.123+02:00") in milliseconds since the epoch.
std::optional<double> ParseTime(std::string_view s) {
  int y, mo, d, h, mi;
  double sec;
  int used = 0;
  std::string text(s.substr(0, 64));
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%lf%n", &y, &mo, &d, &h, &mi, &sec, &used) < 6)
    return std::nullopt;
  std::string_view zone = std::string_view(text).substr(static_cast<size_t>(used));
  double offset_min = 0;
  if (zone == "Z" || zone == "z" || zone.empty()) {
  } else if (zone.front() == '+' || zone.front() == '-') {
    int zh = 0, zm = 0;
    std::string z(zone.substr(1));
    if (std::sscanf(z.c_str(), "%2d:%2d", &zh, &zm) < 1 &&
        std::sscanf(z.c_str(), "%2d%2d", &zh, &zm) < 1)
      return std::nullopt;
    offset_min = (zone.front() == '+' ? 1 : -1) * (zh * 60 + zm);
  } else {
    return std::nullopt;
  }
  // Days from the civil date (H. Hinnant's algorithm).
  y -= mo <= 2;
  int era = (y >= 0 ? y : y - 399) / 400;
  int yoe = y - era * 400;
  int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  double days = era * 146097.0 + doe - 719468;
  return ((days * 24 + h) * 60 + mi - offset_min) * 60000 + sec * 1000;
}

// Boost 1.81 refuses a lone UTF-16 surrogate escape ("\ud800"), which browsers write for a
// response body cut in the middle of a pair; the audit never reads those bodies, so each one
// becomes "\ufffd" (the same length: offsets in messages stay right). Null when none.
std::optional<std::string> ReplaceLoneSurrogates(std::string_view text) {
  std::optional<std::string> out;
  auto hex4 = [&](size_t at) -> int {
    if (at + 6 > text.size() || text[at] != '\\' || (text[at + 1] | 0x20) != 'u') return -1;
    int v = 0;
    for (size_t i = at + 2; i < at + 6; ++i) {
      char c = static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
      if (!std::isxdigit(static_cast<unsigned char>(c))) return -1;
      v = v * 16 + (std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : c - 'a' + 10);
    }
    return v;
  };
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (!in_string) {
      in_string = c == '"';
      continue;
    }
    if (c == '"') {
      in_string = false;
    } else if (c == '\\') {
      int v = hex4(i);
      if (v >= 0xD800 && v <= 0xDBFF) {
        int next = hex4(i + 6);
        if (next >= 0xDC00 && next <= 0xDFFF) {
          i += 11;  // a pair
          continue;
        }
      }
      if (v >= 0xD800 && v <= 0xDFFF) {
        if (!out) out.emplace(text);
        out->replace(i, 6, "\\ufffd");
        i += 5;
      } else {
        ++i;  // the escaped character
      }
    }
  }
  return out;
}

// Request fields that belong to the recorded session or connection, not to the request.
bool Dropped(std::string_view name) {
  static const char* kDropped[] = {"host",
                                   "cookie",
                                   "content-length",
                                   "connection",
                                   "keep-alive",
                                   "accept-encoding",
                                   "transfer-encoding",
                                   "origin",
                                   "referer",
                                   "if-none-match",
                                   "if-modified-since",
                                   "upgrade",
                                   "proxy-connection",
                                   "te",
                                   "expect"};
  if (!name.empty() && name.front() == ':') return true;  // HTTP/2 pseudo-headers
  for (const char* d : kDropped) {
    if (name.size() == std::strlen(d) &&
        std::equal(name.begin(), name.end(), d,
                   [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; }))
      return true;
  }
  return false;
}

}  // namespace

namespace {
// A multipart body with a file part (filename="...") whose content is empty: what Chrome
// records for an upload (the fields' values, not the files' bytes).
bool MultipartLacksFiles(std::string_view text) {
  size_t at = 0;
  while ((at = text.find("filename=\"", at)) != std::string_view::npos) {
    size_t name_end = text.find('"', at + 10);
    if (name_end == std::string_view::npos) return false;
    bool named = name_end > at + 10;
    size_t body = text.find("\r\n\r\n", name_end);
    if (body == std::string_view::npos) return false;
    body += 4;
    // The part ends at the next boundary line ("\r\n--").
    size_t end = text.find("\r\n--", body);
    if (named && end == body) return true;
    at = name_end;
  }
  return false;
}

// An EventSource request (a GET with Accept: text/event-stream) or a GET whose response is
// one: a stream that stays open, whose replay would wait for an end that never comes. (A POST
// that streamed its answer this way, a chat API's, ended in the recording: it is replayed.)
bool IsEventStream(const json::object& entry, const json::object& request) {
  auto starts = [](const json::value* v) {
    return v && v->is_string() && IStartsWith(v->as_string(), "text/event-stream");
  };
  auto* method = request.if_contains("method");
  if (!method || !method->is_string() || !IEquals(method->as_string(), "GET")) return false;
  if (auto* headers = request.if_contains("headers"); headers && headers->is_array()) {
    for (const auto& h : headers->as_array()) {
      if (!h.is_object()) continue;
      auto* n = h.as_object().if_contains("name");
      if (n && n->is_string() && IEquals(n->as_string(), "accept") &&
          starts(h.as_object().if_contains("value"))) {
        return true;
      }
    }
  }
  if (auto* res = entry.if_contains("response"); res && res->is_object()) {
    if (auto* c = res->as_object().if_contains("content"); c && c->is_object()) {
      if (starts(c->as_object().if_contains("mimeType"))) return true;
    }
  }
  return false;
}

Result<Scenario> ParseHarUnchecked(std::string_view text, const std::string& file,
                                   const std::string& host);
}  // namespace

// Boost.JSON's accessors throw on a wrong type; every one above is guarded, and this catches
// what a guard might miss, so that a recording is never a crash (library exceptions stop here).
Result<Scenario> ParseHar(std::string_view text, const std::string& file, const std::string& host) {
  if (text.starts_with(kUtf8Bom)) text.remove_prefix(kUtf8Bom.size());
  try {
    std::optional<std::string> fixed = ReplaceLoneSurrogates(text);
    return ParseHarUnchecked(fixed ? std::string_view(*fixed) : text, file, host);
  } catch (const std::exception& e) {
    return Error{fmt::format("{}: not a HAR recording: {}", file, e.what())};
  }
}

namespace {

struct Entry {
  const json::object* entry;
  const json::object* request;
  int index;  // 1-based, in the file, for messages
  std::optional<double> started;
};

// The app's host: the one most page loads went to, else most requests (a recording may open on
// an identity provider's login page or with a tag manager's script); ties to the earliest.
std::string GuessHost(const std::vector<Entry>& entries, std::string& why) {
  struct Count {
    int documents = 0, requests = 0, first = 0;
  };
  std::map<std::string, Count> counts;
  int total_documents = 0, total_requests = 0;
  for (const auto& e : entries) {
    auto* url_v = e.request->if_contains("url");
    auto url = url_v && url_v->is_string() ? SplitUrl(url_v->as_string()) : std::nullopt;
    if (!url || (url->scheme != "http" && url->scheme != "https")) continue;
    Count& c = counts[url->host];
    if (c.requests++ == 0) c.first = e.index;
    ++total_requests;
    if (IsDocument(*e.entry, *e.request)) {
      ++c.documents;
      ++total_documents;
    }
  }
  std::string best;
  for (const auto& [host, c] : counts) {
    if (best.empty()) {
      best = host;
      continue;
    }
    const Count& b = counts[best];
    if (std::tie(c.documents, c.requests) > std::tie(b.documents, b.requests) ||
        (std::tie(c.documents, c.requests) == std::tie(b.documents, b.requests) &&
         c.first < b.first))
      best = host;
  }
  if (best.empty()) return best;
  const Count& c = counts[best];
  if (c.documents > 0) {
    why = fmt::format("{} of the {} page loads and {} of the {} requests went there", c.documents,
                      total_documents, c.requests, total_requests);
  } else {
    why = fmt::format("{} of the {} requests went there", c.requests, total_requests);
  }
  return best;
}

Result<Scenario> ParseHarUnchecked(std::string_view text, const std::string& file,
                                   const std::string& named_host) {
  json::parse_options options;
  options.allow_invalid_utf8 = true;  // in response bodies the audit never reads
  json::stream_parser parser({}, options);
  boost::system::error_code ec;
  // Windows tools save "Unicode" text as UTF-16: say so rather than "syntax error at 1:1".
  if (text.size() >= 2 && ((text[0] == '\xff' && text[1] == '\xfe') ||
                           (text[0] == '\xfe' && text[1] == '\xff') || text[1] == '\0')) {
    return Error{fmt::format("{}: not valid JSON: the file is UTF-16; save it as UTF-8", file)};
  }
  size_t used = parser.write_some(text.data(), text.size(), ec);
  if (!ec && !parser.done()) parser.finish(ec);
  if (ec) {
    auto [line, col] = LineColumn(text, used);
    return Error{fmt::format("{}:{}:{}: not valid JSON: {}", file, line, col, ec.message())};
  }
  RETURN_IF_ERROR(NothingAfterDocument(text, used, file));
  json::value root = parser.release();
  auto bad = [&](const std::string& why) {
    return Error{fmt::format("{}: not a HAR recording: {}", file, why)};
  };
  const json::object* log = nullptr;
  if (root.is_object()) {
    if (auto* l = root.as_object().if_contains("log"); l && l->is_object()) log = &l->as_object();
  }
  if (!log) return bad("no \"log\" object");
  const json::value* entries_v = log->if_contains("entries");
  if (!entries_v || !entries_v->is_array()) return bad("no \"log.entries\" list");
  Scenario sc;
  sc.file = file;
  sc.dir = ".";
  sc.cookies = true;
  std::vector<Entry> entries;
  int index = 0;
  for (const auto& ev : entries_v->as_array()) {
    ++index;
    auto where = [&](const std::string& field) {
      return fmt::format("{}: entry {}: {}", file, index, field);
    };
    if (!ev.is_object()) return Error{where("expected an object")};
    const auto* req = ev.as_object().if_contains("request");
    if (!req || !req->is_object()) return Error{where("missing \"request\"")};
    const auto& ro = req->as_object();
    const auto* url_v = ro.if_contains("url");
    const auto* method_v = ro.if_contains("method");
    if (!url_v || !url_v->is_string()) return Error{where("request.url: expected a string")};
    if (!method_v || !method_v->is_string())
      return Error{where("request.method: expected a string")};
    Entry e{&ev.as_object(), &ro, index, std::nullopt};
    if (auto* t = ev.as_object().if_contains("startedDateTime"); t && t->is_string())
      e.started = ParseTime(t->as_string());
    entries.push_back(e);
  }
  // HAR 1.2: entries are to be sorted by startedDateTime before use; browsers write them in
  // the order they finished, and a page's login may come last in the file. Only when every
  // entry has a time, so that entries without one keep their place.
  if (std::all_of(entries.begin(), entries.end(), [](const Entry& e) { return e.started; })) {
    std::stable_sort(entries.begin(), entries.end(),
                     [](const Entry& a, const Entry& b) { return *a.started < *b.started; });
  }
  std::string main_host;
  if (!named_host.empty()) {
    auto u = named_host.find("://") != std::string::npos ? SplitUrl(named_host)
                                                         : SplitUrl("http://" + named_host);
    if (u && named_host.find("://") == std::string::npos && u->host.ends_with(":443"))
      u->host.resize(u->host.size() - 4);  // "--host app:443": https's default port
    main_host = u ? u->host : named_host;
  } else {
    main_host = GuessHost(entries, sc.host_guess);
  }
  for (const Entry& e : entries) {
    const auto& ro = *e.request;
    std::string method(ro.at("method").as_string());
    std::string url_text(ro.at("url").as_string());
    std::string request = fmt::format("{} {}", method, url_text);
    auto skip = [&](std::string why, bool counts = true) {
      sc.skipped.push_back({request, std::move(why), counts});
    };
    std::string scheme = SchemeOf(url_text);
    if (scheme == "data" || scheme == "blob" || scheme == "about" || scheme == "chrome-extension" ||
        scheme == "moz-extension") {
      skip(fmt::format("a {}: URL, which the browser served itself", scheme), false);
      continue;
    }
    auto url = SplitUrl(url_text);
    if (url && (url->scheme == "ws" || url->scheme == "wss") && url->host == main_host) {
      skip("a WebSocket: the audit does not replay WebSocket traffic");
      continue;
    }
    if (!url || (url->scheme != "http" && url->scheme != "https")) {
      skip(fmt::format("not HTTP ({})", scheme.empty() ? "no scheme" : scheme));
      continue;
    }
    if (url->host != main_host) {
      skip("another host");
      continue;
    }
    if (IsEventStream(*e.entry, ro)) {
      skip("a Server-Sent Events stream (EventSource): it does not end, so it is not replayed");
      continue;
    }
    // An entry replayed to the app goes as the recording says: what would not be one request
    // (a method or a header with CR LF in it) is refused, as a scenario's is. (Entries not
    // replayed are not looked at; the target is percent-encoded as a browser sends it.)
    auto refuse = [&](const std::string& why) {
      return Error{fmt::format("{}: entry {}: {}", file, e.index, why)};
    };
    if (!IsToken(method)) {
      return refuse(
          fmt::format("request.method: {} is not an HTTP method", QuoteForMessage(method)));
    }
    Step step;
    step.number = static_cast<int>(sc.steps.size()) + 1;
    step.method = method;
    step.path = url->target;
    step.name = fmt::format("{} {}", step.method, Utf8Prefix(step.path, 80));
    step.templates = false;
    if (auto* headers = ro.if_contains("headers"); headers && headers->is_array()) {
      for (size_t hi = 0; hi < headers->as_array().size(); ++hi) {
        const auto& h = headers->as_array()[hi];
        if (!h.is_object()) continue;
        auto* n = h.as_object().if_contains("name");
        auto* v = h.as_object().if_contains("value");
        if (!n || !v || !n->is_string() || !v->is_string()) continue;
        if (Dropped(n->as_string())) continue;
        if (!IsToken(n->as_string())) {
          return refuse(fmt::format("request.headers[{}]: {} is not a header name", hi,
                                    QuoteForMessage(n->as_string())));
        }
        if (!IsFieldValue(v->as_string())) {
          return refuse(
              fmt::format("request.headers[{}] ({}): control characters in a header value", hi,
                          QuoteForMessage(n->as_string())));
        }
        step.headers.emplace_back(std::string(n->as_string()), std::string(v->as_string()));
      }
    }
    std::string recorded_type, recorded_length;  // (Content-Length is not replayed: raw)
    if (auto* headers = ro.if_contains("headers"); headers && headers->is_array()) {
      for (const auto& h : headers->as_array()) {
        auto* n = h.is_object() ? h.as_object().if_contains("name") : nullptr;
        auto* v = h.is_object() ? h.as_object().if_contains("value") : nullptr;
        if (!n || !v || !n->is_string() || !v->is_string()) continue;
        if (IEquals(n->as_string(), "content-type")) recorded_type = v->as_string();
        if (IEquals(n->as_string(), "content-length")) recorded_length = v->as_string();
      }
    }
    auto* post = ro.if_contains("postData");
    if ((!post || !post->is_object()) && !recorded_length.empty() && recorded_length != "0") {
      // A body was sent (its length is recorded) but not kept (chrome-har, a HAR exported
      // "sanitized"): replayed without it, the app would get another request.
      skip(
          "its body was not recorded (the request had one); record it again with the request "
          "bodies, or use a scenario");
      continue;
    }
    if (post && post->is_object()) {
      const auto& po = post->as_object();
      std::string mime;
      if (auto* m = po.if_contains("mimeType"); m && m->is_string())
        mime = std::string(m->as_string());
      if (mime.empty()) mime = recorded_type;  // some tools leave postData.mimeType out
      auto* t = po.if_contains("text");
      bool multipart =
          mime.size() >= 10 && IEquals(std::string_view(mime).substr(0, 10), "multipart/");
      if (multipart && t && t->is_string() && MultipartLacksFiles(t->as_string())) {
        // Chrome keeps a multipart body's text but not its files' bytes: the upload would be
        // replayed as empty files.
        skip(
            "a multipart upload whose files' bytes the recording lacks; record it again with "
            "the request bodies (Firefox keeps them), or use a scenario with the file");
        continue;
      }
      if (t && t->is_string() && (!multipart || !t->as_string().empty())) {
        step.body_kind = BodyKind::kRaw;
        step.raw = std::string(t->as_string());
        step.content_type = mime.empty() ? "application/octet-stream" : mime;
      } else if (multipart) {
        // Chrome records a multipart body's fields as params, without the files' bytes: sent
        // as a form, the app would get another request than the browser sent.
        skip(
            "a multipart upload whose body the recording lacks (only its field names); record "
            "it again with the request bodies, or use a scenario with the file");
        continue;
      } else if (auto* params = po.if_contains("params"); params && params->is_array()) {
        step.body_kind = BodyKind::kForm;
        for (const auto& p : params->as_array()) {
          if (!p.is_object()) continue;
          auto* n = p.as_object().if_contains("name");
          auto* v = p.as_object().if_contains("value");
          if (n && n->is_string()) {
            step.form.emplace_back(std::string(n->as_string()),
                                   v && v->is_string() ? std::string(v->as_string()) : "");
          }
        }
      }
      // The body's own Content-Type is set from postData; drop the recorded one.
      std::erase_if(step.headers, [](const auto& h) { return IEquals(h.first, "content-type"); });
    }
    if (auto* res = e.entry->if_contains("response"); res && res->is_object()) {
      if (auto* st = res->as_object().if_contains("status"); st && st->is_number()) {
        // Range first: a huge number cast to int is undefined (found by the fuzzer).
        double status = st->to_number<double>();
        if (status >= 100 && status <= 599) {
          step.recorded_status = static_cast<int>(status);  // 0, -1: blocked or aborted
        }
      }
    }
    sc.steps.push_back(std::move(step));
  }
  if (sc.steps.empty()) {
    if (!named_host.empty()) return bad(fmt::format("no request to {} to replay", main_host));
    return bad("no request to replay");
  }
  sc.app = main_host;
  if (!sc.host_guess.empty()) sc.host_guess = fmt::format("{} ({})", main_host, sc.host_guess);
  return sc;
}

}  // namespace

Result<Scenario> LoadHar(const std::string& file, const std::string& host) {
  ASSIGN_OR_RETURN(std::string text, ReadTrafficFile(file, kMaxHarBytes, "recording"));
  return ParseHar(text, file, host);
}

}  // namespace phoenix::audit
