#include "audit/har.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cstring>
#include <map>
#include <sstream>

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

std::optional<Url> SplitUrl(std::string_view url) {
  size_t colon = url.find("://");
  if (colon == std::string_view::npos) return std::nullopt;
  Url u;
  u.scheme = std::string(url.substr(0, colon));
  std::string_view rest = url.substr(colon + 3);
  size_t slash = rest.find_first_of("/?#");
  u.host = std::string(rest.substr(0, slash));
  std::string_view target = slash == std::string_view::npos ? "/" : rest.substr(slash);
  target = target.substr(0, target.find('#'));  // never sent
  u.target =
      target.empty() || target.front() == '?' ? "/" + std::string(target) : std::string(target);
  for (auto& c : u.host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return u;
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
Result<Scenario> ParseHarUnchecked(std::string_view text, const std::string& file);
}  // namespace

// Boost.JSON's accessors throw on a wrong type; every one above is guarded, and this catches
// what a guard might miss, so that a recording is never a crash (library exceptions stop here).
Result<Scenario> ParseHar(std::string_view text, const std::string& file) {
  if (text.starts_with(kUtf8Bom)) text.remove_prefix(kUtf8Bom.size());
  try {
    return ParseHarUnchecked(text, file);
  } catch (const std::exception& e) {
    return Error{fmt::format("{}: not a HAR recording: {}", file, e.what())};
  }
}

namespace {
Result<Scenario> ParseHarUnchecked(std::string_view text, const std::string& file) {
  json::stream_parser parser;
  boost::system::error_code ec;
  size_t used = parser.write_some(text.data(), text.size(), ec);
  if (!ec && !parser.done()) parser.finish(ec);
  if (ec) {
    auto [line, col] = LineColumn(text, used);
    return Error{fmt::format("{}:{}:{}: not valid JSON: {}", file, line, col, ec.message())};
  }
  json::value root = parser.release();
  auto bad = [&](const std::string& why) {
    return Error{fmt::format("{}: not a HAR recording: {}", file, why)};
  };
  const json::object* log = nullptr;
  if (root.is_object()) {
    if (auto* l = root.as_object().if_contains("log"); l && l->is_object()) log = &l->as_object();
  }
  if (!log) return bad("no \"log\" object");
  const json::value* entries = log->if_contains("entries");
  if (!entries || !entries->is_array()) return bad("no \"log.entries\" list");
  Scenario sc;
  sc.file = file;
  sc.dir = ".";
  sc.cookies = true;
  // The main host: the first page's, else the first request's.
  std::string main_host;
  if (auto* pages = log->if_contains("pages");
      pages && pages->is_array() && !pages->as_array().empty()) {
    const json::value& page = pages->as_array()[0];
    if (auto* title = page.is_object() ? page.as_object().if_contains("title") : nullptr;
        title && title->is_string()) {
      if (auto u = SplitUrl(title->as_string())) main_host = u->host;
    }
  }
  int index = 0;
  for (const auto& ev : entries->as_array()) {
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
    auto url = SplitUrl(url_v->as_string());
    if (!url || (url->scheme != "http" && url->scheme != "https")) {
      sc.skipped.push_back(fmt::format("{} {}", std::string(method_v->as_string()),
                                       std::string(url_v->as_string())));
      continue;
    }
    if (main_host.empty()) main_host = url->host;
    if (url->host != main_host) {
      sc.skipped.push_back(fmt::format("{} {}", std::string(method_v->as_string()),
                                       std::string(url_v->as_string())));
      continue;
    }
    Step step;
    step.number = static_cast<int>(sc.steps.size()) + 1;
    step.method = std::string(method_v->as_string());
    step.path = url->target;
    step.name = fmt::format("{} {}", step.method, step.path.substr(0, 80));
    if (auto* headers = ro.if_contains("headers"); headers && headers->is_array()) {
      for (const auto& h : headers->as_array()) {
        if (!h.is_object()) continue;
        auto* n = h.as_object().if_contains("name");
        auto* v = h.as_object().if_contains("value");
        if (!n || !v || !n->is_string() || !v->is_string()) continue;
        if (Dropped(n->as_string())) continue;
        step.headers.emplace_back(std::string(n->as_string()), std::string(v->as_string()));
      }
    }
    if (auto* post = ro.if_contains("postData"); post && post->is_object()) {
      const auto& po = post->as_object();
      std::string mime;
      if (auto* m = po.if_contains("mimeType"); m && m->is_string())
        mime = std::string(m->as_string());
      if (auto* t = po.if_contains("text"); t && t->is_string()) {
        step.body_kind = BodyKind::kRaw;
        step.raw = std::string(t->as_string());
        step.content_type = mime.empty() ? "application/octet-stream" : mime;
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
      std::erase_if(step.headers, [](const auto& h) {
        std::string n = h.first;
        for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return n == "content-type";
      });
    }
    if (auto* res = ev.as_object().if_contains("response"); res && res->is_object()) {
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
  if (sc.steps.empty()) return bad("no request to replay");
  sc.app = main_host;
  return sc;
}

}  // namespace

Result<Scenario> LoadHar(const std::string& file) {
  ASSIGN_OR_RETURN(std::string text, ReadTrafficFile(file, kMaxHarBytes, "recording"));
  return ParseHar(text, file);
}

}  // namespace phoenix::audit
