#include "audit/scenario.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <regex>
#include <set>
#include <sstream>

#include "config/config.h"

namespace phoenix::audit {
namespace json = boost::json;

namespace {
constexpr size_t kMaxScenarioBytes = 16 << 20;
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
}  // namespace

std::string Step::Label() const {
  if (name.empty()) return fmt::format("step {}", number);
  return fmt::format("step {} ({})", number, QuoteForMessage(name));
}

std::pair<int, int> LineColumn(std::string_view text, size_t offset) {
  int line = 1, column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

Status NothingAfterDocument(std::string_view text, size_t used, const std::string& file) {
  for (size_t i = used; i < text.size(); ++i) {
    if (!std::isspace(static_cast<unsigned char>(text[i]))) {
      auto [line, col] = LineColumn(text, i);
      return Error{fmt::format("{}:{}:{}: text after the JSON document", file, line, col)};
    }
  }
  return OkStatus();
}

std::vector<std::string> TemplateNames(std::string_view text) {
  std::vector<std::string> names;
  size_t pos = 0;
  while ((pos = text.find("{{", pos)) != std::string_view::npos) {
    size_t end = text.find("}}", pos + 2);
    if (end == std::string_view::npos) break;
    std::string_view name = text.substr(pos + 2, end - pos - 2);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    names.emplace_back(name);
    pos = end + 2;
  }
  return names;
}

bool ExpandTemplate(std::string_view text, const Pairs& values, std::string& out,
                    std::string* missing) {
  out.clear();
  size_t pos = 0;
  for (;;) {
    size_t open = text.find("{{", pos);
    size_t close = open == std::string_view::npos ? open : text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      out.append(text.substr(pos));
      return true;
    }
    out.append(text.substr(pos, open - pos));
    std::string_view name = text.substr(open + 2, close - open - 2);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    bool found = false;
    // The latest value wins: a later step may extract the same name again.
    for (auto it = values.rbegin(); it != values.rend(); ++it) {
      if (it->first == name) {
        out += it->second;
        found = true;
        break;
      }
    }
    if (!found) {
      if (missing) *missing = std::string(name);
      return false;
    }
    pos = close + 2;
  }
}

Result<std::vector<PathItem>> ParseJsonPath(std::string_view path) {
  std::vector<PathItem> items;
  size_t i = 0;
  auto bad = [&](std::string_view why) {
    return Error{
        fmt::format("JSON path {}: {} at character {}", QuoteForMessage(path), why, i + 1)};
  };
  if (path.empty()) return bad("empty");
  if (path == ".") return items;
  while (i < path.size()) {
    if (path[i] == '[') {
      size_t end = path.find(']', i);
      if (end == std::string_view::npos) return bad("missing ]");
      std::string_view inner = path.substr(i + 1, end - i - 1);
      if (inner.size() >= 2 && (inner.front() == '"' || inner.front() == '\'') &&
          inner.back() == inner.front()) {
        items.push_back({std::string(inner.substr(1, inner.size() - 2)), 0, false});
      } else {
        if (inner.empty() || inner.size() > 9) return bad("expected an index");
        size_t n = 0;
        for (char c : inner) {
          if (c < '0' || c > '9') return bad("expected an index");
          n = n * 10 + static_cast<size_t>(c - '0');
        }
        items.push_back({"", n, true});
      }
      i = end + 1;
      continue;
    }
    if (path[i] == '.') {
      ++i;
    } else if (i != 0) {
      return bad("expected . or [");
    }
    size_t start = i;
    while (i < path.size() && path[i] != '.' && path[i] != '[') ++i;
    if (i == start) {
      if (i < path.size() && path[i] == '[') continue;  // ".[0]"
      return bad("empty key");
    }
    items.push_back({std::string(path.substr(start, i - start)), 0, false});
  }
  return items;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (c <= 32 || c >= 127) return false;
    if (std::string_view("\"(),/:;<=>?@[\\]{}").find(static_cast<char>(c)) !=
        std::string_view::npos)
      return false;
  }
  return true;
}

bool IsFieldValue(std::string_view s) {
  for (unsigned char c : s) {
    if ((c < 32 && c != '\t') || c == 127) return false;
  }
  return true;
}

namespace {

constexpr std::string_view kStepFields[] = {"name",      "method",  "path",   "headers",
                                            "form",      "json",    "body",   "content_type",
                                            "multipart", "cookies", "expect", "extract"};
constexpr std::string_view kExpectFields[] = {"status", "location", "body_contains",
                                              "header_contains"};
constexpr std::string_view kExtractFields[] = {"regex", "json", "header"};

template <size_t N>
std::vector<std::string> Names(const std::string_view (&list)[N]) {
  return std::vector<std::string>(std::begin(list), std::end(list));
}

template <size_t N>
bool Known(std::string_view key, const std::string_view (&list)[N]) {
  for (auto k : list)
    if (k == key) return true;
  return false;
}

std::string TypeName(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "a list";
    case json::kind::object:
      return "an object";
  }
  return "?";
}

// One step's parser: every error says where.
class StepParser {
 public:
  StepParser(const Scenario& sc, Step& step) : sc_(sc), step_(step) {}

  Error Fail(std::string_view field, const std::string& why) const {
    if (field.empty()) return Error{fmt::format("{}: {}: {}", sc_.file, step_.Label(), why)};
    return Error{fmt::format("{}: {}: {}: {}", sc_.file, step_.Label(), field, why)};
  }

  Result<std::string> String(const json::value& v, std::string_view field) {
    if (!v.is_string()) return Fail(field, fmt::format("expected a string, got {}", TypeName(v)));
    return std::string(v.get_string());
  }

  // Object of string -> string (numbers and booleans are written as JSON text).
  Result<Pairs> StringMap(const json::value& v, std::string_view field, bool allow_scalars) {
    if (!v.is_object()) return Fail(field, fmt::format("expected an object, got {}", TypeName(v)));
    Pairs out;
    for (const auto& kv : v.get_object()) {
      std::string key(kv.key());
      std::string name = fmt::format("{}.{}", field, key);
      if (kv.value().is_string()) {
        out.emplace_back(key, std::string(kv.value().get_string()));
      } else if (allow_scalars && (kv.value().is_number() || kv.value().is_bool())) {
        out.emplace_back(key, json::serialize(kv.value()));
      } else {
        return Fail(name, fmt::format("expected a string, got {}", TypeName(kv.value())));
      }
    }
    return out;
  }

  Status Parse(const json::object& o) {
    if (auto* v = o.if_contains("name"); v && v->is_string())
      step_.name = std::string(v->get_string());
    for (const auto& kv : o) {
      if (!Known(kv.key(), kStepFields)) {
        auto guess = ClosestName(kv.key(), Names(kStepFields));
        return Fail(
            "",
            fmt::format("unknown field {}{}", QuoteForMessage(kv.key()),
                        guess ? fmt::format(" (did you mean {}?)", QuoteForMessage(*guess)) : ""));
      }
    }
    if (auto* v = o.if_contains("name")) {
      ASSIGN_OR_RETURN(step_.name, String(*v, "name"));
    }
    if (auto* v = o.if_contains("method")) {
      ASSIGN_OR_RETURN(step_.method, String(*v, "method"));
      for (auto& c : step_.method)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (!IsToken(step_.method)) {
        return Fail("method",
                    fmt::format("{} is not an HTTP method", QuoteForMessage(step_.method)));
      }
    }
    if (auto* v = o.if_contains("path")) {
      ASSIGN_OR_RETURN(step_.path, String(*v, "path"));
    } else {
      return Fail("", "missing field \"path\"");
    }
    // (A path may be a value an earlier step extracted, "{{next}}": it is checked once known.)
    if (step_.path.empty() ||
        (step_.path.front() != '/' &&
         !(step_.path.starts_with("{{") && step_.path.find("}}") != std::string::npos))) {
      return Fail("path", fmt::format("{} must start with /", QuoteForMessage(step_.path)));
    }
    std::string bare;  // the path without its {{name}} parts, which may hold spaces
    for (size_t i = 0; i < step_.path.size();) {
      size_t open = step_.path.find("{{", i),
             close = open == std::string::npos ? open : step_.path.find("}}", open);
      if (close == std::string::npos) {
        bare += step_.path.substr(i);
        break;
      }
      bare += step_.path.substr(i, open - i);
      i = close + 2;
    }
    for (unsigned char c : bare) {
      if (c <= 32 || c == 127) {
        return Fail("path", "spaces and control characters must be percent-encoded (%20)");
      }
    }
    if (auto* v = o.if_contains("headers")) {
      ASSIGN_OR_RETURN(step_.headers, StringMap(*v, "headers", true));
      for (const auto& [k, val] : step_.headers) {
        if (!IsToken(k))
          return Fail("headers", fmt::format("{} is not a header name", QuoteForMessage(k)));
        if (!IsFieldValue(val)) {
          return Fail(fmt::format("headers.{}", k), "control characters in a header value");
        }
      }
    }
    if (auto* v = o.if_contains("cookies")) {
      if (!v->is_bool())
        return Fail("cookies", fmt::format("expected true or false, got {}", TypeName(*v)));
      step_.cookies = v->get_bool();
    } else {
      step_.cookies = sc_.cookies;
    }
    RETURN_IF_ERROR(ParseBody(o));
    if (auto* v = o.if_contains("expect")) RETURN_IF_ERROR(ParseExpect(*v));
    if (auto* v = o.if_contains("extract")) RETURN_IF_ERROR(ParseExtract(*v));
    return OkStatus();
  }

 private:
  Status ParseBody(const json::object& o) {
    std::vector<std::string> bodies;
    for (auto k : {"form", "json", "body", "multipart"})
      if (o.contains(k)) bodies.emplace_back(k);
    if (bodies.size() > 1) {
      return Fail("",
                  fmt::format("at most one body: both \"{}\" and \"{}\"", bodies[0], bodies[1]));
    }
    if (o.contains("content_type") && !o.contains("body")) {
      return Fail("content_type", "only with \"body\" (form, json and multipart set their own)");
    }
    if (auto* v = o.if_contains("form")) {
      step_.body_kind = BodyKind::kForm;
      ASSIGN_OR_RETURN(step_.form, StringMap(*v, "form", true));
    } else if (auto* v = o.if_contains("json")) {
      step_.body_kind = BodyKind::kJson;
      step_.json = json::serialize(*v);
    } else if (auto* v = o.if_contains("body")) {
      step_.body_kind = BodyKind::kRaw;
      ASSIGN_OR_RETURN(step_.raw, String(*v, "body"));
      if (auto* ct = o.if_contains("content_type")) {
        ASSIGN_OR_RETURN(step_.content_type, String(*ct, "content_type"));
      } else {
        step_.content_type = "text/plain";
      }
    } else if (auto* v = o.if_contains("multipart")) {
      step_.body_kind = BodyKind::kMultipart;
      ASSIGN_OR_RETURN(Pairs fields, StringMap(*v, "multipart", true));
      for (auto& [name, value] : fields) {
        Part part;
        part.name = name;
        if (!value.empty() && value.front() == '@') {
          RETURN_IF_ERROR(FilePart(name, value.substr(1), part));
        } else {
          part.value = value;
        }
        step_.multipart.push_back(std::move(part));
      }
    }
    return OkStatus();
  }

  // "@PATH;type=MIME;filename=NAME", as curl -F reads it.
  Status FilePart(const std::string& name, const std::string& spec, Part& part) {
    std::string field = fmt::format("multipart.{}", name);
    std::vector<std::string> pieces;
    std::stringstream ss(spec);
    for (std::string piece; std::getline(ss, piece, ';');) pieces.push_back(piece);
    if (pieces.empty() || pieces[0].empty()) return Fail(field, "\"@\" needs a file path");
    std::string path = pieces[0];
    part.is_file = true;
    part.content_type = "application/octet-stream";
    part.filename =
        path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
    for (size_t i = 1; i < pieces.size(); ++i) {
      const std::string& p = pieces[i];
      if (p.rfind("type=", 0) == 0) {
        part.content_type = p.substr(5);
      } else if (p.rfind("filename=", 0) == 0) {
        part.filename = p.substr(9);
      } else {
        return Fail(field, fmt::format("unknown option {} (type=MIME or filename=NAME)",
                                       QuoteForMessage(p)));
      }
    }
    part.file = !path.empty() && path.front() == '/' ? path : sc_.dir + "/" + path;
    struct stat st;
    if (stat(part.file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return Fail(field,
                  fmt::format("file {} not found (paths are relative to the scenario's folder)",
                              QuoteForMessage(path)));
    }
    return OkStatus();
  }

  Status ParseExpect(const json::value& v) {
    if (!v.is_object())
      return Fail("expect", fmt::format("expected an object, got {}", TypeName(v)));
    for (const auto& kv : v.get_object()) {
      if (!Known(kv.key(), kExpectFields)) {
        auto guess = ClosestName(kv.key(), Names(kExpectFields));
        return Fail(
            "expect",
            fmt::format("unknown field {}{}", QuoteForMessage(kv.key()),
                        guess ? fmt::format(" (did you mean {}?)", QuoteForMessage(*guess)) : ""));
      }
    }
    const auto& o = v.get_object();
    if (auto* s = o.if_contains("status")) {
      if (!s->is_int64() || s->get_int64() < 100 || s->get_int64() > 599) {
        return Fail("expect.status",
                    fmt::format("expected a status code 100..599, got {}", json::serialize(*s)));
      }
      step_.expect.status = static_cast<int>(s->get_int64());
    }
    if (auto* s = o.if_contains("location")) {
      ASSIGN_OR_RETURN(step_.expect.location, String(*s, "expect.location"));
    }
    if (auto* s = o.if_contains("body_contains")) {
      if (s->is_string()) {
        step_.expect.body_contains.emplace_back(s->get_string());
      } else if (s->is_array()) {
        for (const auto& item : s->get_array()) {
          ASSIGN_OR_RETURN(std::string text, String(item, "expect.body_contains"));
          step_.expect.body_contains.push_back(std::move(text));
        }
      } else {
        return Fail("expect.body_contains",
                    fmt::format("expected a string or a list of strings, got {}", TypeName(*s)));
      }
    }
    if (auto* s = o.if_contains("header_contains")) {
      ASSIGN_OR_RETURN(step_.expect.header_contains,
                       StringMap(*s, "expect.header_contains", false));
    }
    return OkStatus();
  }

  Status ParseExtract(const json::value& v) {
    if (!v.is_object())
      return Fail("extract", fmt::format("expected an object, got {}", TypeName(v)));
    for (const auto& kv : v.get_object()) {
      std::string field = fmt::format("extract.{}", std::string_view(kv.key()));
      if (kv.key().empty()) return Fail("extract", "an empty name");
      if (!kv.value().is_object() || kv.value().get_object().size() != 1) {
        return Fail(field, "expected an object with one of \"regex\", \"json\", \"header\"");
      }
      const auto& [how, expr_v] = *kv.value().get_object().begin();
      if (!Known(how, kExtractFields)) {
        auto guess = ClosestName(how, Names(kExtractFields));
        return Fail(
            field,
            fmt::format("unknown field {}{}", QuoteForMessage(how),
                        guess ? fmt::format(" (did you mean {}?)", QuoteForMessage(*guess)) : ""));
      }
      Extract e;
      e.name = std::string(kv.key());
      ASSIGN_OR_RETURN(e.expr, String(expr_v, fmt::format("{}.{}", field, std::string_view(how))));
      if (how == "regex") {
        e.kind = Extract::Kind::kRegex;
        try {
          std::regex re(e.expr, std::regex::ECMAScript);
          if (re.mark_count() < 1) return Fail(field, "the regex needs a capture group: (...)");
        } catch (const std::regex_error& err) {
          return Fail(field, fmt::format("bad regex {}: {}", QuoteForMessage(e.expr), err.what()));
        }
      } else if (how == "json") {
        e.kind = Extract::Kind::kJson;
        auto parsed = ParseJsonPath(e.expr);
        if (!parsed.ok()) return Fail(field, parsed.error().message);
      } else {
        e.kind = Extract::Kind::kHeader;
        if (!IsToken(e.expr))
          return Fail(field, fmt::format("{} is not a header name", QuoteForMessage(e.expr)));
      }
      step_.extract.push_back(std::move(e));
    }
    return OkStatus();
  }

  const Scenario& sc_;
  Step& step_;
};

// Every {{name}} of a step must be extracted by an earlier one.
Status CheckTemplates(const Scenario& sc, const Step& step, const std::set<std::string>& known) {
  auto check = [&](std::string_view text, std::string_view field) -> Status {
    for (const auto& name : TemplateNames(text)) {
      if (!known.count(name)) {
        return Error{fmt::format("{}: {}: {}: {{{{{}}}}} is not extracted by an earlier step",
                                 sc.file, step.Label(), field, name)};
      }
    }
    return OkStatus();
  };
  RETURN_IF_ERROR(check(step.path, "path"));
  for (const auto& [k, v] : step.headers) RETURN_IF_ERROR(check(v, fmt::format("headers.{}", k)));
  for (const auto& [k, v] : step.form) RETURN_IF_ERROR(check(v, fmt::format("form.{}", k)));
  RETURN_IF_ERROR(check(step.json, "json"));
  RETURN_IF_ERROR(check(step.raw, "body"));
  for (const auto& p : step.multipart)
    if (!p.is_file) RETURN_IF_ERROR(check(p.value, fmt::format("multipart.{}", p.name)));
  return OkStatus();
}

}  // namespace

namespace {
Result<Scenario> ParseScenarioUnchecked(std::string_view text, const std::string& file,
                                        const std::string& dir);
}  // namespace

// Every Boost.JSON accessor above is guarded by a type check; this catches what one might miss,
// so that a scenario is never a crash (library exceptions stop here).
Result<Scenario> ParseScenario(std::string_view text, const std::string& file,
                               const std::string& dir) {
  // Editors on Windows start a UTF-8 file with a byte-order mark; JSON parsers reject it.
  if (text.starts_with(kUtf8Bom)) text.remove_prefix(kUtf8Bom.size());
  try {
    return ParseScenarioUnchecked(text, file, dir);
  } catch (const std::exception& e) {
    return Error{fmt::format("{}: {}", file, e.what())};
  }
}

namespace {
Result<Scenario> ParseScenarioUnchecked(std::string_view text, const std::string& file,
                                        const std::string& dir) {
  Scenario sc;
  sc.file = file;
  sc.dir = dir;
  json::stream_parser parser;
  boost::system::error_code ec;
  size_t used = parser.write_some(text.data(), text.size(), ec);
  if (!ec && !parser.done()) parser.finish(ec);
  if (!ec) RETURN_IF_ERROR(NothingAfterDocument(text, used, file));
  if (ec) {
    auto [line, col] = LineColumn(text, used);
    return Error{fmt::format("{}:{}:{}: not valid JSON: {}", file, line, col, ec.message())};
  }
  json::value root = parser.release();
  if (!root.is_object()) {
    return Error{
        fmt::format("{}: expected a JSON object with \"steps\", got {}", file, TypeName(root))};
  }
  const auto& o = root.get_object();
  if (auto* v = o.if_contains("app")) {
    if (!v->is_string()) return Error{fmt::format("{}: \"app\": expected a string", file)};
    sc.app = std::string(v->get_string());
  }
  if (auto* v = o.if_contains("cookies")) {
    if (!v->is_bool()) return Error{fmt::format("{}: \"cookies\": expected true or false", file)};
    sc.cookies = v->get_bool();
  }
  const json::value* steps = o.if_contains("steps");
  if (!steps) return Error{fmt::format("{}: missing \"steps\" (a list of requests)", file)};
  if (!steps->is_array()) {
    return Error{fmt::format("{}: \"steps\": expected a list, got {}", file, TypeName(*steps))};
  }
  if (steps->get_array().empty()) return Error{fmt::format("{}: \"steps\" is empty", file)};
  std::set<std::string> extracted;
  int number = 0;
  for (const auto& sv : steps->get_array()) {
    Step step;
    step.number = ++number;
    if (!sv.is_object()) {
      return Error{
          fmt::format("{}: step {}: expected an object, got {}", file, number, TypeName(sv))};
    }
    StepParser p(sc, step);
    RETURN_IF_ERROR(p.Parse(sv.get_object()));
    RETURN_IF_ERROR(CheckTemplates(sc, step, extracted));
    for (const auto& e : step.extract) extracted.insert(e.name);
    sc.steps.push_back(std::move(step));
  }
  return sc;
}

}  // namespace

Result<std::string> ReadTrafficFile(const std::string& file, size_t max_bytes,
                                    std::string_view what) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error{fmt::format("{}: cannot read the {}: {}", file, what, std::strerror(errno))};
  }
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return Error{fmt::format("{}: is a directory, expected a {} file", file, what)};
  }
  std::string text;
  if (S_ISREG(st.st_mode) && static_cast<size_t>(st.st_size) <= max_bytes) {
    text.reserve(static_cast<size_t>(st.st_size));
  }
  char chunk[65536];
  while (true) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int saved = errno;
      ::close(fd);
      return Error{fmt::format("{}: cannot read the {}: {}", file, what, std::strerror(saved))};
    }
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > max_bytes) {
      ::close(fd);
      return Error{
          fmt::format("{}: larger than {} MiB, the most phoenix reads as a {}; is this "
                      "the right file?",
                      file, max_bytes >> 20, what)};
    }
    text.append(chunk, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

Result<Scenario> LoadScenario(const std::string& file) {
  ASSIGN_OR_RETURN(std::string text, ReadTrafficFile(file, kMaxScenarioBytes, "scenario"));
  std::string dir =
      file.find('/') == std::string::npos ? "." : file.substr(0, file.find_last_of('/'));
  if (dir.empty()) dir = "/";
  return ParseScenario(text, file, dir);
}

}  // namespace phoenix::audit
