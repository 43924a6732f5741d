// The audit's runs: a child `phoenix up --audit` each, the scenario replayed through its router,
// the serving incarnation's layer scanned after every request.
#include "audit/runner.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "audit/audit.h"
#include "audit/compare.h"
#include "audit/cookies.h"
#include "audit/http_client.h"
#include "audit/interrupt.h"
#include "audit/recorder.h"
#include "control/client.h"
#include "os/net.h"
#include "os/spawn.h"

extern char** environ;

namespace phoenix::audit {
namespace json = boost::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kKeepBody = 1 << 20;  // bytes of a body kept for comparison and excerpts

std::string ReadFile(const std::string& path, size_t limit = SIZE_MAX) {
  std::ifstream in(path, std::ios::binary);
  std::string out;
  if (!in) return out;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  if (out.size() > limit) out.resize(limit);
  return out;
}

std::string Tail(const std::string& path, size_t lines) {
  std::string text = ReadFile(path);
  size_t pos = text.size();
  for (size_t n = 0; n <= lines && pos > 0; ++n) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
  }
  return text.substr(pos == 0 ? 0 : pos + 1);
}

std::string UrlEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ') {
      out += '+';
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string JsonEscape(std::string_view s) {
  std::string q = json::serialize(json::string(s));
  return q.substr(1, q.size() - 2);
}

int64_t UnixNow() { return static_cast<int64_t>(std::time(nullptr)); }

}  // namespace

// Starts `args` (argv[0] searched in $PATH) with stdin from /dev/null, stdout and stderr into
// `log`, this process's environment minus the names `set` gives and plus `set`, in `cwd` ("" =
// here). The one way the audit starts a process: its phoenix and the user's test command.
Result<pid_t> SpawnLogged(std::vector<std::string> args, const Pairs& set, const std::string& log,
                          bool append, const std::string& cwd, bool own_signal) {
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) {
    std::string_view v(*e);
    bool replaced = std::any_of(set.begin(), set.end(), [&](const auto& kv) {
      return v.size() > kv.first.size() && v.substr(0, kv.first.size()) == kv.first &&
             v[kv.first.size()] == '=';
    });
    if (!replaced) env_store.emplace_back(v);
  }
  for (const auto& [k, v] : set) env_store.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(),
                                   O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  // None of the signals the audit blocks for its signal thread; the audit's process group, so
  // that a terminal's Ctrl-C or a CI runner's kill of the group reaches it as before.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  // A test command's whole tree is ended on a signal (npm test's node children too); a child
  // phoenix gets the signal alone and stops its instances itself.
  auto pid = interrupt::SpawnTracked(
      [&]() -> Result<pid_t> {
        pid_t p = -1;
        int rc = posix_spawnp(&p, argv[0], &fa, &attr, argv.data(), envp.data());
        if (rc != 0) return Error{fmt::format("cannot run {}: {}", args[0], std::strerror(rc))};
        return p;
      },
      !own_signal);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return pid;
}

// ---------------------------------------------------------------------------- the child phoenix

Child::~Child() { Stop(); }

Status Child::Start(const AuditOptions& opt, int instances, const std::string& work_dir) {
  work_ = work_dir;
  RETURN_IF_ERROR(MakeDir(work_ + "/state"));
  ASSIGN_OR_RETURN(port_, os::PickFreePort());
  log_ = work_ + "/phoenix.log";
  std::vector<std::string> args = {opt.phoenix_bin, "up",
                                   opt.dir,         "--audit",
                                   "--port",        std::to_string(port_),
                                   "--scale",       fmt::format("web={}", instances),
                                   "--events",      work_ + "/events.jsonl"};
  if (opt.config_file) args.insert(args.end(), {"--config", *opt.config_file});
  if (opt.env_file) args.insert(args.end(), {"--env", *opt.env_file});
  if (opt.keep) args.push_back("--keep-layers");
  ASSIGN_OR_RETURN(pid_, SpawnLogged(std::move(args),
                                     {{"PHOENIX_STATE_DIR", work_ + "/state"},
                                      {"NO_COLOR", "1"},
                                      {"PHOENIX_AUDIT_PID", std::to_string(getpid())}},
                                     log_, true, "", true));
  return OkStatus();
}

Status Child::MakeDir(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return Error{fmt::format("{}: {}", path, ec.message())};
  return OkStatus();
}

bool Child::Alive() {
  if (pid_ <= 0) return false;
  int status;
  pid_t r = interrupt::Reap(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    exit_status_ = status;
    return false;
  }
  return true;
}

std::string Child::SocketPath() {
  if (!socket_.empty()) return socket_;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(work_ + "/state", ec)) {
    std::string p = e.path().string() + "/control.sock";
    if (fs::exists(p)) socket_ = p;
  }
  return socket_;
}

Result<std::string> Child::Call(const std::string& request) {
  std::string sock = SocketPath();
  if (sock.empty()) return Error{"no control socket yet"};
  std::string answer;
  Status s = control::Call(sock, request, [&](const std::string& line) {
    answer = line;
    return false;
  });
  RETURN_IF_ERROR(s);
  boost::system::error_code ec;
  json::value v = json::parse(answer, ec);
  if (ec || !v.is_object()) return Error{"bad answer from phoenix: " + answer};
  if (auto* ok = v.as_object().if_contains("ok"); !ok || !ok->is_bool() || !ok->as_bool()) {
    auto* e = v.as_object().if_contains("error");
    return Error{e && e->is_string() ? std::string(e->as_string()) : answer};
  }
  return answer;
}

Result<std::vector<Incarnation>> Child::Scan(const std::string& instance) {
  ASSIGN_OR_RETURN(std::string answer,
                   Call(json::serialize(json::object{{"cmd", "scan"}, {"instance", instance}})));
  try {  // Boost.JSON's accessors throw on a wrong shape: it stops here
    return ParseScan(json::parse(answer));
  } catch (const std::exception& e) {
    return Error{fmt::format("bad scan answer from phoenix: {}", e.what())};
  }
}

std::vector<Incarnation> Child::ParseScan(const json::value& v) {
  std::vector<Incarnation> out;
  for (const auto& item : v.at("incarnations").as_array()) {
    const auto& o = item.as_object();
    Incarnation inc;
    inc.instance = std::string(o.at("instance").as_string());
    inc.number = static_cast<int>(o.at("incarnation").to_number<int64_t>());
    inc.ready = o.at("ready").as_bool();
    inc.layer = std::string(o.at("layer").as_string());
    if (auto* files = o.if_contains("files")) {
      for (const auto& f : files->as_array()) {
        const auto& fo = f.as_object();
        ScannedFile sf;
        sf.path = std::string(fo.at("path").as_string());
        sf.bytes = fo.at("bytes").to_number<uint64_t>();
        sf.change = std::string(fo.at("change").as_string());
        sf.mtime_ns = fo.at("mtime_ns").to_number<int64_t>();
        inc.files.push_back(std::move(sf));
      }
    }
    out.push_back(std::move(inc));
  }
  return out;
}

Status Child::WaitReady(int instances, std::chrono::seconds timeout,
                        const std::map<std::string, int>& newer_than) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (!Alive()) {
      return Error{fmt::format("phoenix up exited ({}):\n{}", DescribeExit(), Tail(log_, 15))};
    }
    auto scan = Scan("");
    if (scan.ok()) {
      std::map<std::string, int> ready;  // instance -> ready incarnations (newer than asked)
      std::map<std::string, int> running;
      for (const auto& inc : *scan) {
        if (inc.instance.rfind("web.", 0) != 0) continue;
        ++running[inc.instance];
        auto it = newer_than.find(inc.instance);
        if (inc.ready && (it == newer_than.end() || inc.number > it->second)) ++ready[inc.instance];
      }
      bool all = true;
      for (int k = 1; k <= instances; ++k) {
        std::string name = fmt::format("web.{}", k);
        // Ready, and the one it replaced has gone (out of rotation and drained).
        if (ready[name] < 1 || running[name] != 1) all = false;
      }
      if (all) return OkStatus();
    }
    if (Clock::now() > deadline) {
      return Error{fmt::format("the web instances were not ready within {} s:\n{}", timeout.count(),
                               Tail(log_, 15))};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string Child::DescribeExit() const {
  if (WIFEXITED(exit_status_)) return fmt::format("status {}", WEXITSTATUS(exit_status_));
  if (WIFSIGNALED(exit_status_)) return fmt::format("signal {}", WTERMSIG(exit_status_));
  return "?";
}

void Child::Stop() {
  if (pid_ <= 0) return;
  (void)Call(R"({"cmd":"stop"})");
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Alive() && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (Alive()) {
    // A SIGKILLed phoenix still leaves no process (PDEATHSIG, PID namespaces).
    ::kill(pid_, SIGKILL);
    int status;
    interrupt::Reap(pid_, &status, 0);
    pid_ = -1;
  }
}

// ---------------------------------------------------------------------------- one run

namespace {

// Files of one incarnation as last seen, to tell what the next request wrote.

std::vector<FileWrite> NewWrites(const Incarnation& inc, Seen& seen, int step) {
  std::vector<FileWrite> out;
  for (const auto& f : inc.files) {
    auto it = seen.find(f.path);
    if (it != seen.end() && it->second == std::make_pair(f.bytes, f.mtime_ns)) continue;
    seen[f.path] = {f.bytes, f.mtime_ns};
    FileWrite w;
    w.path = f.path;
    w.bytes = f.bytes;
    w.change = f.change;
    w.incarnation = fmt::format("{}#{}", inc.instance, inc.number);
    w.step = step;
    out.push_back(std::move(w));
  }
  return out;
}

struct Built {
  HttpRequest request;
  std::vector<UploadedPart> file_parts;
  std::string error;
};

Built BuildRequest(const Step& step, const Pairs& values, const CookieJar& jar) {
  Built b;
  std::string missing;
  auto expand = [&](std::string_view text, std::string& out, bool json_context = false) {
    if (!step.templates) {
      out = text;  // a recording: verbatim
      return true;
    }
    if (!json_context) return ExpandTemplate(text, values, out, &missing);
    Pairs escaped;
    for (const auto& [k, v] : values) escaped.emplace_back(k, JsonEscape(v));
    return ExpandTemplate(text, escaped, out, &missing);
  };
  auto fail = [&] {
    b.error =
        fmt::format("{{{{{}}}}} has no value: the step that extracts it found nothing", missing);
    return b;
  };
  HttpRequest& r = b.request;
  r.method = step.method;
  if (!expand(step.path, r.target)) return fail();
  if (step.templates && r.target != step.path) {
    // What a value brought in goes on as a browser sends a URL: spaces, control bytes and
    // non-ASCII percent-encoded, so that no value can end the request line early.
    std::string encoded;
    for (unsigned char c : r.target) {
      if (c <= 0x20 || c >= 0x7f) {
        encoded += fmt::format("%{:02X}", c);
      } else {
        encoded += static_cast<char>(c);
      }
    }
    r.target = std::move(encoded);
    if (!r.target.starts_with('/')) {
      b.error = fmt::format("the path became '{}', which does not start with /", r.target);
      return b;
    }
  }
  r.headers.emplace_back("User-Agent", "phoenix-audit/1");
  r.headers.emplace_back("Accept", "*/*");
  switch (step.body_kind) {
    case BodyKind::kNone:
      break;
    case BodyKind::kForm: {
      for (const auto& [k, v] : step.form) {
        std::string value;
        if (!expand(v, value)) return fail();
        if (!r.body.empty()) r.body += '&';
        r.body += UrlEncode(k) + "=" + UrlEncode(value);
      }
      r.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
      break;
    }
    case BodyKind::kJson:
      if (!expand(step.json, r.body, true)) return fail();
      r.headers.emplace_back("Content-Type", "application/json");
      break;
    case BodyKind::kRaw:
      if (!expand(step.raw, r.body)) return fail();
      r.headers.emplace_back("Content-Type", step.content_type);
      b.file_parts = FileParts(step.content_type, r.body);  // a recorded upload's files
      break;
    case BodyKind::kMultipart: {
      std::mt19937_64 rng(std::random_device{}());
      std::string boundary = fmt::format("----phoenix-audit-{:016x}", rng());
      for (const auto& p : step.multipart) {
        r.body += "--" + boundary + "\r\n";
        if (p.is_file) {
          r.body += fmt::format("Content-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\n",
                                p.name, p.filename);
          r.body += fmt::format("Content-Type: {}\r\n\r\n", p.content_type);
          std::string bytes = ReadFile(p.file);
          r.body += bytes;
          b.file_parts.push_back({p.name, p.filename, std::move(bytes)});
        } else {
          std::string value;
          if (!expand(p.value, value)) return fail();
          r.body += fmt::format("Content-Disposition: form-data; name=\"{}\"\r\n\r\n", p.name);
          r.body += value;
        }
        r.body += "\r\n";
      }
      r.body += "--" + boundary + "--\r\n";
      r.headers.emplace_back("Content-Type", "multipart/form-data; boundary=" + boundary);
      break;
    }
  }
  for (const auto& header : step.headers) {
    const std::string& k = header.first;  // (clang 14 cannot capture structured bindings)
    const std::string& v = header.second;
    std::string value;
    if (!expand(v, value)) return fail();
    // The step's own headers win over the defaults above.
    std::erase_if(r.headers, [&](const auto& h) {
      return h.first.size() == k.size() &&
             std::equal(k.begin(), k.end(), h.first.begin(), [](char a, char c) {
               return std::tolower(static_cast<unsigned char>(a)) ==
                      std::tolower(static_cast<unsigned char>(c));
             });
    });
    r.headers.emplace_back(k, value);
  }
  if (step.cookies) {
    std::string cookie = jar.Header(r.target, UnixNow());
    if (!cookie.empty()) r.headers.emplace_back("Cookie", cookie);
  }
  return b;
}

std::optional<std::string> ExtractValue(const Extract& e, const HttpResponse& res) {
  switch (e.kind) {
    case Extract::Kind::kRegex: {
      // std::regex recurses per character: bounded input, and its exceptions stop here.
      try {
        std::regex re(e.expr, std::regex::ECMAScript);
        std::smatch m;
        std::string head = res.body.substr(0, 256 * 1024);
        if (std::regex_search(head, m, re) && m.size() > 1 && m[1].matched) return m[1].str();
      } catch (const std::exception&) {
      }
      return std::nullopt;
    }
    case Extract::Kind::kJson: {
      boost::system::error_code ec;
      json::value v = json::parse(res.body, ec);
      if (ec) return std::nullopt;
      auto path = ParseJsonPath(e.expr);
      if (!path.ok()) return std::nullopt;
      const json::value* cur = &v;
      for (const auto& item : *path) {
        if (item.is_index) {
          if (!cur->is_array() || item.index >= cur->as_array().size()) return std::nullopt;
          cur = &cur->as_array()[item.index];
        } else {
          if (!cur->is_object()) return std::nullopt;
          cur = cur->as_object().if_contains(item.key);
          if (!cur) return std::nullopt;
        }
      }
      if (cur->is_string()) return std::string(cur->as_string());
      return json::serialize(*cur);
    }
    case Extract::Kind::kHeader: {
      std::string h = res.Header(e.expr);
      if (h.empty()) return std::nullopt;
      return h;
    }
  }
  return std::nullopt;
}

std::vector<std::string> CheckExpect(const Expect& x, const HttpResponse& res) {
  std::vector<std::string> fails;
  if (x.status && *x.status != res.status) {
    fails.push_back(fmt::format("status {} (expected {})", res.status, *x.status));
  }
  if (x.location && *x.location != res.Header("Location")) {
    fails.push_back(
        fmt::format("Location '{}' (expected '{}')", res.Header("Location"), *x.location));
  }
  for (const auto& text : x.body_contains) {
    if (res.body.find(text) == std::string::npos) {
      fails.push_back(fmt::format("the body lacks '{}'", text));
    }
  }
  for (const auto& [name, sub] : x.header_contains) {
    std::string v = res.Header(name);
    if (v.find(sub) == std::string::npos) {
      fails.push_back(fmt::format("{}: '{}' lacks '{}'", name, v, sub));
    }
  }
  return fails;
}

std::vector<std::string> CookieNames(std::string_view header) {
  std::vector<std::string> names;
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    std::string_view item =
        header.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    size_t eq = item.find('=');
    if (eq != std::string_view::npos) names.emplace_back(item.substr(0, eq));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return names;
}

}  // namespace

std::vector<UploadedPart> FileParts(std::string_view content_type, std::string_view body) {
  std::vector<UploadedPart> parts;
  std::string lower(content_type);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.rfind("multipart/form-data", 0) != 0) return parts;
  size_t b = lower.find("boundary=");
  if (b == std::string::npos) return parts;
  std::string boundary(content_type.substr(b + 9));
  boundary = boundary.substr(0, boundary.find(';'));
  if (boundary.size() >= 2 && boundary.front() == '"')
    boundary = boundary.substr(1, boundary.size() - 2);
  if (boundary.empty()) return parts;
  std::string delim = "--" + boundary;
  size_t pos = body.find(delim);
  while (pos != std::string_view::npos) {
    size_t head_start = pos + delim.size();
    if (body.substr(head_start, 2) == "--") break;  // the closing delimiter
    size_t head_end = body.find("\r\n\r\n", head_start);
    if (head_end == std::string_view::npos) break;
    size_t next = body.find("\r\n" + delim, head_end + 4);
    if (next == std::string_view::npos) break;
    std::string_view head = body.substr(head_start, head_end - head_start);
    auto param = [&](std::string_view key) -> std::string {
      size_t k = head.find(key);
      if (k == std::string_view::npos) return "";
      size_t start = k + key.size();
      size_t end = head.find('"', start);
      return end == std::string_view::npos ? "" : std::string(head.substr(start, end - start));
    };
    std::string filename = param("filename=\"");
    if (!filename.empty()) {
      parts.push_back({param(" name=\""), filename,
                       std::string(body.substr(head_end + 4, next - head_end - 4))});
    }
    pos = next + 2;
  }
  return parts;
}

// One run's requests: pinned to an instance (the plan's), their outcome recorded, the files they
// caused attributed, and (reborn) the serving instance replaced before the next one.
Driver::Driver(Child& child, const RunPlan& plan, RunResult& run)
    : child_(child), plan_(plan), run_(run), client_("127.0.0.1", child.port()) {}

void Driver::ScanInto(int step, std::vector<FileWrite>& into) {
  auto scan = child_.Scan("");
  if (!scan.ok()) return;
  for (const auto& inc : *scan) {
    auto& s = seen_[fmt::format("{}#{}", inc.instance, inc.number)];
    for (auto& w : NewWrites(inc, s, step)) into.push_back(std::move(w));
  }
}

std::optional<HttpResponse> Driver::Exchange(size_t index, HttpRequest request, Outcome& out,
                                             const std::vector<UploadedPart>& file_parts) {
  std::string pin = plan_.instances > 1
                        ? fmt::format("web.{}", index % static_cast<size_t>(plan_.instances) + 1)
                        : "web.1";
  std::erase_if(request.headers, [](const auto& h) {
    return h.first.size() == 18 && strcasecmp(h.first.c_str(), "X-Phoenix-Instance") == 0;
  });
  request.headers.emplace_back("X-Phoenix-Instance", pin);
  out.carried_file = !file_parts.empty();
  for (const auto& [k, v] : request.headers) {
    if (strcasecmp(k.c_str(), "Cookie") == 0) out.cookies_sent = CookieNames(v);
  }
  auto res = client_.Send(request, std::chrono::seconds(60));
  out.ran = true;
  std::optional<HttpResponse> result;
  if (!res.ok()) {
    out.error = res.error().message;
  } else {
    out.status = res->status;
    out.location = res->Header("Location");
    out.content_type = res->Header("Content-Type");
    out.served = res->Header("X-Phoenix-Instance");
    out.ms = res->ms;
    // An app may print which instance served it ($PHOENIX_INSTANCE): that differs by design.
    std::string normalized = res->body;
    if (std::string name = out.served.substr(0, out.served.find('#')); !name.empty()) {
      for (size_t pos = 0; (pos = normalized.find(name, pos)) != std::string::npos;) {
        normalized.replace(pos, name.size(), "<instance>");
        pos += 10;
      }
    }
    out.tokens = Tokenize(normalized, out.content_type);
    out.body = res->body.size() > kKeepBody ? res->body.substr(0, kKeepBody) : res->body;
    for (const auto& set : res->All("Set-Cookie")) {
      auto names = CookieNames(set.substr(0, set.find(';')));
      out.cookies_set.insert(out.cookies_set.end(), names.begin(), names.end());
    }
    result = std::move(res.value());
  }
  // What the serving incarnation wrote while it served this request.
  ScanInto(static_cast<int>(index + 1), out.files);
  // Uploaded bytes found in a written file: certain evidence of uploads kept on disk.
  if (!file_parts.empty()) {
    auto scan = child_.Scan("");
    for (auto& w : out.files) {
      if (w.change == "deleted" || !scan.ok()) continue;
      std::string layer;
      for (const auto& inc : *scan)
        if (fmt::format("{}#{}", inc.instance, inc.number) == w.incarnation) layer = inc.layer;
      if (layer.empty()) continue;
      std::string written = ReadFile(layer + "/upper/" + w.path, 64 << 20);
      for (const UploadedPart& p : file_parts) {
        if (!p.bytes.empty() && written.find(p.bytes) != std::string::npos) {
          w.evidence = fmt::format("the same bytes as the uploaded file '{}' (part '{}')",
                                   p.filename, p.name);
        }
      }
    }
  }
  for (const auto& w : out.files) run_.files.push_back(w);
  return result;
}

Status Driver::Rebirth(size_t index) {
  // Planned: the successor boots first, then the old one leaves rotation and drains.
  auto before = child_.Scan("web.1");
  std::map<std::string, int> numbers;
  if (before.ok())
    for (const auto& inc : *before)
      numbers[inc.instance] = std::max(numbers[inc.instance], inc.number);
  auto killed = child_.Call(R"({"cmd":"kill","instance":"web.1","now":false})");
  if (!killed.ok()) return Error{"could not replace web.1: " + killed.error().message};
  if (Status s = child_.WaitReady(1, std::chrono::seconds(120), numbers); !s.ok()) {
    return Error{"web.1 was not reborn: " + s.error().message};
  }
  std::vector<FileWrite> successor_boot;
  ScanInto(static_cast<int>(index + 1), successor_boot);  // not the next request's doing
  return OkStatus();
}

Status StartRun(Child& child, const AuditOptions& opt, const RunPlan& plan,
                const std::string& work_dir, RunResult& run) {
  run.name = plan.name;
  run.instances = plan.instances;
  auto started = Clock::now();
  RETURN_IF_ERROR(child.Start(opt, plan.instances, work_dir));
  if (Status s = child.WaitReady(plan.instances, std::chrono::seconds(120), {}); !s.ok()) {
    return Error{"the app did not start: " + s.error().message};
  }
  run.boot_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  return OkStatus();
}

// Starts the run's phoenix, hands its driver to `traffic`, then stops it: the same for every
// source of traffic.
RunResult WithRun(const AuditOptions& opt, const RunPlan& plan, const std::string& work_dir,
                  const std::function<void(Driver&, RunResult&)>& traffic) {
  RunResult run;
  auto started = Clock::now();
  Child child;
  if (Status s = StartRun(child, opt, plan, work_dir, run); !s.ok()) {
    run.error = s.error().message;
    return run;
  }
  Driver driver(child, plan, run);
  driver.ScanInto(0, run.boot_files);
  traffic(driver, run);
  driver.Close();
  child.Stop();
  run.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return run;
}

RunResult Replay(const AuditOptions& opt, const Scenario& sc, const RunPlan& plan,
                 const std::string& work_dir,
                 const std::function<void(const std::string&)>& progress) {
  return WithRun(opt, plan, work_dir, [&](Driver& driver, RunResult& run) {
    CookieJar jar;
    Pairs values;
    for (size_t i = 0; i < sc.steps.size(); ++i) {
      const Step& step = sc.steps[i];
      if (progress) progress(fmt::format("{}: {}", plan.name, step.Label()));
      Outcome out;
      Built b = BuildRequest(step, values, jar);
      if (!b.error.empty()) {
        out.error = b.error;
        run.steps.push_back(std::move(out));
        continue;
      }
      auto res = driver.Exchange(i, b.request, out, b.file_parts);
      if (res) {
        out.expect_failures = CheckExpect(step.expect, *res);
        for (const auto& set : res->All("Set-Cookie")) jar.Store(set, b.request.target, UnixNow());
        for (const auto& e : step.extract) {
          if (auto v = ExtractValue(e, *res)) {
            values.emplace_back(e.name, *v);
          } else {
            out.extract_missed.push_back(e.name);
          }
        }
      }
      run.steps.push_back(std::move(out));
      if (plan.reborn && i + 1 < sc.steps.size()) {
        if (Status s = driver.Rebirth(i); !s.ok()) {
          run.error = s.error().message;
          break;
        }
      }
    }
  });
}

RunResult RecordCommand(const AuditOptions& opt, const RunPlan& plan, const std::string& work_dir,
                        const std::function<void(const std::string&)>& progress) {
  return WithRun(opt, plan, work_dir, [&](Driver& driver, RunResult& run) {
    std::string failure;
    Recorder recorder;
    auto port = recorder.Start([&](HttpRequest req) -> Result<HttpResponse> {
      size_t index = run.steps.size();
      std::string name = fmt::format("{} {}", req.method, req.target);
      if (progress)
        progress(fmt::format("{}: request {}: {}", plan.name, index + 1, name.substr(0, 60)));
      run.requests.push_back(name);
      Outcome out;
      std::string content_type;
      for (const auto& [k, v] : req.headers)
        if (strcasecmp(k.c_str(), "Content-Type") == 0) content_type = v;
      auto parts = FileParts(content_type, req.body);
      auto res = driver.Exchange(index, std::move(req), out, parts);
      std::string error = out.error;
      run.steps.push_back(std::move(out));
      if (plan.reborn) {
        // The answer waits until the instance that gave it has been replaced: the test's next
        // request meets a new incarnation.
        if (Status s = driver.Rebirth(index); !s.ok() && failure.empty())
          failure = s.error().message;
      }
      if (!res) return Error{error};
      res->headers.emplace_back("X-Phoenix-Instance", run.steps.back().served);
      return std::move(*res);
    });
    if (!port.ok()) {
      run.error = port.error().message;
      return;
    }
    std::string url = fmt::format("http://127.0.0.1:{}", *port);
    std::string log = work_dir + "/command.log";
    auto spawned = SpawnLogged(opt.command, {{"BASE_URL", url}, {"PHOENIX_URL", url}}, log, false,
                               opt.command_dir, false);
    pid_t pid = spawned.ok() ? *spawned : -1;
    if (!spawned.ok()) {
      run.error = spawned.error().message;
    } else {
      // Bounded: a test command that hangs is stopped after opt.command_timeout.
      auto deadline = Clock::now() + opt.command_timeout;
      int status = 0;
      for (;;) {
        pid_t r = interrupt::Reap(pid, &status, WNOHANG);
        if (r == pid) break;
        if (Clock::now() > deadline) {
          // It and what it started: npm test's node children must not outlive it.
          for (pid_t d : os::Descendants(pid)) ::kill(d, SIGKILL);
          ::kill(pid, SIGKILL);
          interrupt::Reap(pid, &status, 0);
          run.error = fmt::format(
              "the test command did not finish within {} s",
              std::chrono::duration_cast<std::chrono::seconds>(opt.command_timeout).count());
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      run.command_exit = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      run.command_output = Tail(log, 20);
    }
    recorder.Stop();
    if (run.error.empty() && !failure.empty()) run.error = failure;
  });
}

}  // namespace phoenix::audit
