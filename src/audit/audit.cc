// phoenix audit: the runs, the findings and the reports (see audit.h).
#include "audit/audit.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "audit/compare.h"
#include "audit/har.h"
#include "audit/interrupt.h"
#include "audit/runner.h"
#include "base/text.h"
#include "config/config.h"

namespace phoenix::audit {
namespace json = boost::json;
namespace fs = std::filesystem;

const char* AdviceFor(const std::string& kind) {
  if (kind == "upload-on-disk")
    return "store uploads in shared object storage (S3, GCS, MinIO) or a database, not on the "
           "instance's disk (e.g. multer-s3 instead of multer({dest}))";
  if (kind == "session-file")
    return "keep sessions in a shared store (connect-redis with Redis) or in a signed cookie "
           "(cookie-session, JWT), not in local files";
  if (kind == "session-memory")
    return "keep sessions in a shared store (connect-redis with Redis) or in a signed cookie "
           "(cookie-session, JWT), not in the process's memory (express-session's MemoryStore)";
  if (kind == "global-cache")
    return "keep application data in a shared database or cache (Redis, Postgres); an in-process "
           "cache may only hold what can be rebuilt from there";
  if (kind == "local-db-file")
    return "use a database server shared by every instance (Postgres, MySQL, Redis) instead of "
           "a local file (SQLite, JSON)";
  if (kind == "in-memory-websocket-state")
    return "share real-time state between instances (socket.io's Redis adapter with sticky-free "
           "WebSocket transport, or a pub/sub broker)";
  return "";
}

namespace {

bool IContains(std::string_view hay, std::string_view needle) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  });
  return it != hay.end();
}

std::string Describe(const Outcome& o) {
  if (!o.ran && !o.error.empty()) return "not sent: " + o.error;
  if (!o.error.empty()) return "no answer: " + o.error;
  std::string s = fmt::format("{}", o.status);
  if (!o.location.empty()) s += " -> " + o.location;
  return s;
}

// "sess" where a word starts: sessions/, sess_abc (PHP), user-sessions.json, .sessions; not
// assessments.json or possessions/.
bool IsSessionPath(std::string_view path) {
  for (size_t i = 0; i + 4 <= path.size(); ++i) {
    if (!IContains(path.substr(i, 4), "sess")) continue;
    if (i == 0 || !std::isalnum(static_cast<unsigned char>(path[i - 1]))) return true;
    // A camelCase word start: userSessions.json, but not assessments.json.
    if (path[i] == 'S' && std::islower(static_cast<unsigned char>(path[i - 1]))) return true;
  }
  return false;
}

bool IsDataFile(std::string_view path) {
  for (std::string_view ext : {".db", ".sqlite", ".sqlite3", ".db-journal", ".db-wal", ".json",
                               ".ndjson", ".jsonl", ".csv", ".dat"}) {
    if (path.size() >= ext.size() && path.substr(path.size() - ext.size()) == ext) return true;
  }
  return IContains(path, ".sqlite") || IContains(path, ".db-");
}

bool IsRealtime(const Step& step) {
  if (IContains(step.path, "/socket.io") || IContains(step.path, "/sockjs") ||
      IContains(step.path, "EIO=") || IContains(step.path, "transport=polling") ||
      IContains(step.path, "transport=websocket"))
    return true;
  // The Upgrade field itself (a WebSocket handshake), not Upgrade-Insecure-Requests, which
  // browsers send with every page load.
  for (const auto& [k, v] : step.headers) {
    if (IEquals(k, "upgrade") || IEquals(k, "sec-websocket-key")) return true;
  }
  return false;
}

bool LooksLikeLogin(std::string_view location) {
  for (std::string_view w : {"login", "log-in", "signin", "sign-in", "sign_in", "auth", "session"})
    if (IContains(location, w)) return true;
  return false;
}

// A page that asks to log in (a 200 login form rather than a 401 or a redirect).
bool LoginPage(std::string_view body) {
  for (std::string_view w : {"type=\"password\"", "type='password'", "type=password", "log in",
                             "login", "sign in", "signin", "not logged in", "unauthorized"}) {
    if (IContains(body.substr(0, 64 * 1024), w)) return true;
  }
  return false;
}

// The kind of a file written while serving a step.
std::string FileKind(const FileWrite& w, bool carried_file) {
  if (!w.evidence.empty()) return "upload-on-disk";
  if (IsSessionPath(w.path)) return "session-file";
  if (carried_file && !IsDataFile(w.path)) return "upload-on-disk";
  return "local-db-file";
}

// Names the cause of a step that went differently than in the baseline.
std::string Classify(const Scenario& sc, size_t i, const RunResult& run, const Outcome& base,
                     const Outcome& o, std::vector<std::string>& evidence) {
  const Step& step = sc.steps[i];
  if (IsRealtime(step)) {
    evidence.push_back(
        fmt::format("the real-time session ({}) opened on one instance was unknown to {}",
                    step.path, o.served.empty() ? "another" : o.served));
    return "in-memory-websocket-state";
  }
  // Files the run wrote before this step, by kind.
  std::set<std::string> earlier_kinds;
  for (size_t k = 0; k < i && k < run.steps.size(); ++k) {
    for (const auto& w : run.steps[k].files) {
      if (w.change != "deleted") earlier_kinds.insert(FileKind(w, run.steps[k].carried_file));
    }
  }
  // A session the other instance did not know: the request carried the app's cookies and was
  // treated as logged out (401/403, a redirect to a login page, a new session cookie).
  bool carried = !o.cookies_sent.empty();
  bool base_ok = base.status >= 200 && base.status < 400;
  bool logged_out = false;
  std::string why;
  if (carried && (o.status == 401 || o.status == 403) && base_ok && base.status != o.status) {
    logged_out = true;
    why = fmt::format("answered {} where the baseline got {}", o.status, base.status);
  } else if (carried && o.status >= 300 && o.status < 400 && LooksLikeLogin(o.location) &&
             !LooksLikeLogin(base.location)) {
    logged_out = true;
    why = fmt::format("redirected to {}", o.location);
  } else if (carried && o.status == base.status && LoginPage(o.body) && !LoginPage(base.body)) {
    logged_out = true;
    why = "showed a login form where the baseline showed the page";
  } else if (carried) {
    for (const auto& name : o.cookies_set) {
      bool reissued =
          std::find(o.cookies_sent.begin(), o.cookies_sent.end(), name) != o.cookies_sent.end();
      bool base_reissued = std::find(base.cookies_set.begin(), base.cookies_set.end(), name) !=
                           base.cookies_set.end();
      if (reissued && !base_reissued) {
        logged_out = true;
        why = fmt::format("issued a new '{}' cookie for the one it was sent", name);
      }
    }
  }
  if (logged_out) {
    std::string cookies;
    for (const auto& c : o.cookies_sent) cookies += (cookies.empty() ? "" : ", ") + c;
    evidence.push_back(fmt::format("the session cookie ({}) set by {} was not known to {}: it {}",
                                   cookies,
                                   base.served.empty() ? "an earlier step" : "another instance",
                                   o.served.empty() ? "the instance" : o.served, why));
    if (earlier_kinds.count("session-file")) {
      evidence.push_back("session files were written while serving (listed below)");
      return "session-file";
    }
    evidence.push_back("no session file was written: the sessions live in the process's memory");
    return "session-memory";
  }
  if (earlier_kinds.count("upload-on-disk") && (o.status == 404 || o.status == 410) &&
      base.status >= 200 && base.status < 300) {
    evidence.push_back(fmt::format(
        "an upload stored on another instance's disk was not found on {} ({} where the baseline "
        "got {})",
        o.served.empty() ? "this one" : o.served, o.status, base.status));
    return "upload-on-disk";
  }
  if (earlier_kinds.count("local-db-file")) {
    evidence.push_back(
        fmt::format("data written to a local file by an earlier request was missing on {}",
                    o.served.empty() ? "this instance" : o.served));
    return "local-db-file";
  }
  if (i == 0) {
    // No request came before: nothing was created through another instance. What differs is
    // what the process holds from its start (a secret, a cache, a choice made at boot), or an
    // answer that varies more than the two baselines happened to show.
    evidence.push_back(fmt::format(
        "the first request already differs on {}: the answer comes from something the process "
        "made at its start and keeps in memory (a random secret, a cache filled at boot), or it "
        "varies by itself more than the two baselines showed",
        o.served.empty() ? "this instance" : o.served));
    return "global-cache";
  }
  evidence.push_back(fmt::format(
      "data created through one instance was missing when read through {}, and no file was "
      "written: it lives in the process's memory",
      o.served.empty() ? "another" : o.served));
  return "global-cache";
}

// A recording the baseline could not replay as the browser lived it (the recording starts
// logged in, its CSRF token belongs to the recorded session, the app changed): the runs would
// compare logged-out answers with logged-out answers and find nothing. Empty when it fits.
std::string ReplayDiverges(const Scenario& sc, const RunResult& base) {
  auto kind = [](int status) { return status == 304 ? 2 : status / 100; };  // 304: its cache
  int compared = 0, differ = 0;
  std::string refused, first_differ;
  for (size_t i = 0; i < sc.steps.size() && i < base.steps.size(); ++i) {
    const Outcome& o = base.steps[i];
    if (!sc.steps[i].recorded_status || !o.ran || !o.error.empty()) continue;
    int recorded = *sc.steps[i].recorded_status;
    ++compared;
    std::string what = fmt::format("{} got {} where the browser got {}", sc.steps[i].Label(),
                                   Describe(o), recorded);
    if (kind(recorded) != kind(o.status)) {
      ++differ;
      if (first_differ.empty()) first_differ = what;
    }
    bool denied = (o.status == 401 || o.status == 403) && recorded < 400;
    bool sent_to_login = o.status >= 300 && o.status < 400 && recorded >= 200 && recorded < 300 &&
                         LooksLikeLogin(o.location);
    if ((denied || sent_to_login) && refused.empty()) refused = what;
  }
  if (!refused.empty()) {
    return fmt::format(
        "the recording cannot be replayed as the browser lived it: {}. Its session (a login "
        "before the recording started, a CSRF token or cookie of the recorded session) is not "
        "rebuilt by the replay, so every later step would run logged out in every run; record "
        "from the login on, or write a scenario that extracts the token",
        refused);
  }
  if (differ * 2 > compared) {
    return fmt::format(
        "the recording cannot be replayed as the browser lived it: {} of its {} requests got "
        "another kind of answer than the browser recorded (first: {}); is it a recording of "
        "this app?",
        differ, compared, first_differ);
  }
  return "";
}

}  // namespace

bool IsExtraBaseline(const std::string& run_name) {
  return run_name.starts_with("baseline-") && run_name != "baseline-2";
}

Report Analyze(const Scenario& sc, std::vector<RunResult> runs) {
  Report r;
  r.app = sc.app;
  for (const auto& s : sc.steps) r.step_names.push_back(s.Label());
  if (!sc.host_guess.empty()) {
    r.warnings.push_back(fmt::format(
        "replayed the requests to {}, taken for the app's host; name another with --host HOST",
        sc.host_guess));
  }
  for (const auto& s : sc.skipped)
    r.warnings.push_back(fmt::format("not replayed ({}): {}", s.why, s.request));
  r.runs = std::move(runs);
  for (const auto& run : r.runs) {
    if (!run.error.empty()) {
      r.verdict = "error";
      r.error = fmt::format("{} run: {}", run.name, run.error);
      return r;
    }
  }
  const RunResult& a = r.runs.at(0);
  if (a.command_exit > 0) {
    r.verdict = "baseline-broken";
    r.error = fmt::format(
        "the test command fails on the baseline (one instance, never reborn): "
        "exit {}\n{}",
        a.command_exit, a.command_output);
    return r;
  }
  if (r.runs.size() < 2) {
    r.verdict = "error";
    r.error = "the runs did not complete";
    return r;
  }
  const RunResult& b = r.runs.at(1);
  if (b.command_exit > 0) {
    // It passed once and failed on a second run just like the first: what fails is not the
    // spreading of requests, but the command run twice (data it left in a shared database, a
    // name it creates that must be new) or a flaky test.
    r.verdict = "baseline-broken";
    r.error = fmt::format(
        "the test command passed on the baseline but failed on a second baseline run (one "
        "instance, never reborn; exit {}): the audit runs it 4 to 6 times, so it must pass on "
        "every run (not depend on what an earlier run left in a shared store)\n{}",
        b.command_exit, b.command_output);
    return r;
  }
  // Nothing was asked of the app: "stateless" would be a verdict on no evidence. The usual
  // cause is a test that runs the app inside its own process (supertest) and never uses
  // BASE_URL.
  if (sc.steps.empty()) {
    r.verdict = "error";
    r.error =
        "inconclusive: no request reached the app; the test command must send its requests to "
        "$BASE_URL (a test that starts the app in its own process, as supertest does, never "
        "reaches phoenix's instances)";
    return r;
  }
  // The baseline must pass its own checks: otherwise the scenario does not fit the app.
  for (size_t i = 0; i < sc.steps.size(); ++i) {
    const Outcome& o = a.steps.at(i);
    std::string why;
    if (!o.error.empty()) why = Describe(o);
    if (!o.expect_failures.empty()) why = o.expect_failures.front();
    if (!why.empty()) {
      r.verdict = "baseline-broken";
      r.error = fmt::format("{} fails on the baseline (one instance, never reborn): {}",
                            sc.steps[i].Label(), why);
      return r;
    }
  }
  if (std::string why = ReplayDiverges(sc, a); !why.empty()) {
    r.verdict = "baseline-broken";
    r.error = why;
    return r;
  }
  for (size_t i = 0; i < sc.steps.size(); ++i) {
    const auto& recorded = sc.steps[i].recorded_status;
    if (recorded && *recorded != a.steps[i].status) {
      r.warnings.push_back(
          fmt::format("{}: recorded {}, the baseline got {}; the runs are compared "
                      "with the baseline",
                      sc.steps[i].Label(), *recorded, a.steps[i].status));
    }
  }
  for (const auto& w : a.boot_files) {
    r.warnings.push_back(
        fmt::format("written at boot (dies with every instance, holds no user "
                    "data): {} ({} bytes)",
                    PrintableLine(w.path), w.bytes));
  }
  // Every step is compared with the same step of the second baseline: the two runs must have
  // made the same requests (a test command may not). Paths may differ (an id made by the run
  // goes into the next request's path); methods may not.
  auto methods = [](const RunResult& run) {
    std::vector<std::string> m;
    for (const auto& req : run.requests) m.push_back(req.substr(0, req.find(' ')));
    return m;
  };
  if (b.steps.size() != a.steps.size() || methods(b) != methods(a)) {
    r.verdict = "baseline-broken";
    r.error = fmt::format(
        "the second baseline run (one instance, never reborn) made {} requests where the first "
        "made {}{}: the test command must send the same requests on every run",
        b.steps.size(), a.steps.size(),
        b.steps.size() == a.steps.size() ? ", with other methods or in another order" : "");
    return r;
  }
  // The runs that teach what varies by itself: baseline-2, and any extra baseline whose test
  // command passed and which made the same requests.
  std::vector<const RunResult*> learn = {&b};
  for (size_t ri = 2; ri < r.runs.size(); ++ri) {
    const RunResult& l = r.runs[ri];
    if (IsExtraBaseline(l.name) && l.command_exit <= 0 && l.steps.size() == a.steps.size() &&
        methods(l) == methods(a)) {
      learn.push_back(&l);
    }
  }
  // Only a step that was sent and answered teaches anything: a failed one (a reset, a value
  // it lacked) has no status or body, and would make all of the step's answer look variable.
  auto teaches = [](const Outcome& o) {
    return o.ran && o.error.empty() && o.expect_failures.empty();
  };
  // Differences from the baseline.
  for (size_t ri = 2; ri < r.runs.size(); ++ri) {
    const RunResult& run = r.runs[ri];
    if (IsExtraBaseline(run.name)) continue;
    for (size_t i = 0; i < sc.steps.size() && i < run.steps.size(); ++i) {
      const Step& step = sc.steps[i];
      const Outcome& base = a.steps[i];
      const Outcome& o = run.steps[i];
      std::string observed;
      bool differs = false;
      bool body_only = false;
      // A value the baseline extracted here and this run did not: the step's answer lacked it
      // (a token only the instance that issued it knows), even if its status matched.
      std::string missed;
      for (const auto& name : o.extract_missed) {
        if (std::find(base.extract_missed.begin(), base.extract_missed.end(), name) ==
            base.extract_missed.end()) {
          missed = name;
          break;
        }
      }
      if (!o.ran) {
        // Not sent: a value an earlier step should have given. The baseline sent and passed
        // every step, so a step that could not be checked is no pass; it is named with the
        // earlier difference that caused it, if there is one.
        auto cause = std::find_if(r.findings.rbegin(), r.findings.rend(),
                                  [&](const Finding& x) { return x.run == run.name; });
        if (cause != r.findings.rend()) {
          cause->also_steps.push_back(static_cast<int>(i + 1));
          continue;
        }
        differs = true;
        observed = Describe(o);
      } else if (!o.error.empty()) {
        differs = true;
        observed = Describe(o);
      } else if (step.expect.any()) {
        differs = !o.expect_failures.empty();
        if (differs) observed = Describe(o) + ": " + o.expect_failures.front();
      } else {
        bool status_varies = false;
        for (const RunResult* l : learn) {
          if (teaches(l->steps[i])) status_varies |= base.status != l->steps[i].status;
        }
        if (o.status != base.status && !status_varies) {
          differs = true;
          observed = Describe(o);
        } else {
          const std::vector<std::string> base_location = Tokenize(base.location, "");
          Variance lv(base_location, base_location);
          for (const RunResult* l : learn) {
            if (teaches(l->steps[i])) lv.Learn(base_location, Tokenize(l->steps[i].location, ""));
          }
          if (!CompareBodies(base_location, lv, Tokenize(o.location, "")).same) {
            differs = true;
            observed = Describe(o);
          } else {
            Variance v(base.tokens, base.tokens);
            for (const RunResult* l : learn) {
              if (teaches(l->steps[i])) v.Learn(base.tokens, l->steps[i].tokens);
            }
            BodyDiff d = CompareBodies(base.tokens, v, o.tokens);
            if (!d.same) {
              differs = true;
              body_only = true;
              observed = fmt::format("{}, the body differs: '{}' where the baseline had '{}'",
                                     Describe(o), d.observed_excerpt, d.baseline_excerpt);
            }
          }
        }
      }
      if (!differs && !missed.empty()) {
        differs = true;
        observed = fmt::format("{}, without the {{{{{}}}}} the baseline's answer gave", Describe(o),
                               missed);
      }
      if (!differs) continue;
      Finding f;
      f.run = run.name;
      f.step = static_cast<int>(i + 1);
      f.step_name = step.name;
      std::string before = i > 0 && !run.steps[i - 1].served.empty() ? run.steps[i - 1].served : "";
      f.instances =
          before.empty() || o.served.empty() ? o.served : fmt::format("{} -> {}", before, o.served);
      f.baseline = Describe(base);
      f.observed = observed;
      f.body_only = body_only && missed.empty();
      f.kind = Classify(sc, i, run, base, o, f.evidence);
      // The files that explain it: those of its kind written earlier in the run (each once).
      std::set<std::string> listed;
      for (size_t k = 0; k < i; ++k) {
        for (const auto& w : run.steps[k].files) {
          if (FileKind(w, run.steps[k].carried_file) != f.kind) continue;
          if (listed.insert(w.incarnation + "/" + w.path).second) f.files.push_back(w);
        }
      }
      f.advice = AdviceFor(f.kind);
      // One finding per kind and run: later steps with the same cause are named in it.
      auto same = std::find_if(r.findings.begin(), r.findings.end(), [&](const Finding& x) {
        return x.kind == f.kind && x.run == f.run;
      });
      if (same != r.findings.end()) {
        same->also_steps.push_back(f.step);
        same->body_only = same->body_only && f.body_only;
        continue;
      }
      r.findings.push_back(std::move(f));
    }
  }
  // A test command that passed on the baseline and failed here, with no request to blame.
  for (size_t ri = 2; ri < r.runs.size(); ++ri) {
    const RunResult& run = r.runs[ri];
    if (run.command_exit <= 0 || IsExtraBaseline(run.name)) continue;
    bool named = std::any_of(r.findings.begin(), r.findings.end(),
                             [&](const Finding& f) { return f.run == run.name; });
    if (named) {
      for (auto& f : r.findings) {
        if (f.run == run.name) {
          f.evidence.push_back(
              fmt::format("the test command failed in this run (exit {})", run.command_exit));
          break;
        }
      }
      continue;
    }
    Finding f;
    f.kind = "global-cache";
    f.run = run.name;
    f.baseline = "the test command passed";
    f.observed = fmt::format("the test command failed (exit {})", run.command_exit);
    f.evidence.push_back(fmt::format(
        "every request's answer matched the baseline's, but the tests saw a difference:\n{}",
        run.command_output));
    f.advice = AdviceFor(f.kind);
    r.findings.push_back(std::move(f));
  }
  // Files written while serving are state even when every request passed: one finding per
  // kind that no failing step explained already.
  std::map<std::string, Finding> by_kind;
  for (size_t ri = 0; ri < r.runs.size(); ++ri) {
    if (r.runs[ri].name != "spread") continue;  // one run that met every step is enough
    for (size_t i = 0; i < r.runs[ri].steps.size(); ++i) {
      for (const auto& w : r.runs[ri].steps[i].files) {
        if (w.change == "deleted" && !IsDataFile(w.path)) continue;
        std::string kind = FileKind(w, r.runs[ri].steps[i].carried_file);
        Finding& f = by_kind[kind];
        if (f.kind.empty()) {
          f.kind = kind;
          f.run = r.runs[ri].name;
          f.step = w.step;
          f.step_name = sc.steps[i].name;
          f.instances = w.incarnation;
          f.advice = AdviceFor(kind);
        }
        bool listed = std::any_of(f.files.begin(), f.files.end(), [&](const FileWrite& x) {
          return x.path == w.path && x.incarnation == w.incarnation;
        });
        if (!listed) f.files.push_back(w);
      }
    }
  }
  for (auto& entry : by_kind) {
    const std::string& kind = entry.first;  // (clang 14 cannot capture structured bindings)
    Finding& f = entry.second;
    bool explained = std::any_of(r.findings.begin(), r.findings.end(),
                                 [&](const Finding& x) { return x.kind == kind; });
    size_t bytes = 0;
    for (const auto& w : f.files) bytes += w.bytes;
    std::string what = fmt::format(
        "{} file{} ({} bytes) written while serving requests; they die "
        "with the instance",
        f.files.size(), f.files.size() == 1 ? "" : "s", bytes);
    for (const auto& w : f.files) {
      if (!w.evidence.empty()) {
        f.evidence.push_back(
            fmt::format("{} written by step {}: {}", PrintableLine(w.path), w.step, w.evidence));
        break;
      }
    }
    if (explained) {
      for (auto& x : r.findings) {
        if (x.kind == kind && x.files.empty()) x.files = f.files;
      }
      continue;
    }
    f.evidence.insert(f.evidence.begin(), what);
    f.baseline = "-";
    f.observed = "every request passed";
    r.findings.push_back(std::move(f));
  }
  r.verdict = r.findings.empty() ? "stateless" : "stateful";
  // A guessed host that most of the recording did not go to: "stateless" would speak of
  // requests that were never sent (the app's may be among them, under another host).
  size_t unreplayed = static_cast<size_t>(std::count_if(
      sc.skipped.begin(), sc.skipped.end(), [](const Scenario::Skipped& s) { return s.counts; }));
  if (r.verdict == "stateless" && !sc.host_guess.empty() && unreplayed > sc.steps.size()) {
    r.verdict = "error";
    r.error = fmt::format(
        "inconclusive: {} of the recording's requests were not replayed, more than the {} "
        "replayed to {}; if that is not the app's host, name it with --host HOST",
        unreplayed, sc.steps.size(), sc.host_guess);
  }
  return r;
}

// ---------------------------------------------------------------------------- reports

namespace {

json::array FilesJson(const std::vector<FileWrite>& files) {
  json::array a;
  for (const auto& w : files) {
    json::object o{{"path", w.path},
                   {"bytes", w.bytes},
                   {"change", w.change},
                   {"incarnation", w.incarnation},
                   {"step", w.step}};
    if (!w.evidence.empty()) o["evidence"] = w.evidence;
    a.push_back(std::move(o));
  }
  return a;
}

// Strings from recordings and answers may hold any bytes; JSON text must be UTF-8 (RFC 8259).
void MakeValidUtf8(json::value& v) {
  if (v.is_string()) {
    std::string fixed = ValidUtf8(v.as_string());
    if (fixed != std::string_view(v.as_string())) v.as_string() = fixed;
  } else if (v.is_array()) {
    for (auto& x : v.as_array()) MakeValidUtf8(x);
  } else if (v.is_object()) {
    for (auto& kv : v.as_object()) MakeValidUtf8(kv.value());
  }
}

std::string FileLine(const FileWrite& w) {
  std::string s = fmt::format("{} ({} bytes, {} by {}, step {})", PrintableLine(w.path), w.bytes,
                              w.change, w.incarnation, w.step);
  if (!w.evidence.empty()) s += ": " + w.evidence;
  return s;
}

}  // namespace

std::string ReportText(const Report& r) {
  std::string out;
  std::string name = r.app.empty() ? "the app" : r.app;
  if (r.verdict == "stateless") {
    out += fmt::format(
        "phoenix audit: {} is stateless: every step gave the baseline's outcome on "
        "other instances and after rebirths, and nothing was written while serving.\n",
        name);
  } else if (r.verdict == "stateful") {
    std::set<std::string> kinds;
    for (const auto& f : r.findings) kinds.insert(f.kind);
    std::string list;
    for (const auto& k : kinds) list += (list.empty() ? "" : ", ") + k;
    out += fmt::format("phoenix audit: {} keeps server-local state: {} finding{} ({})\n", name,
                       r.findings.size(), r.findings.size() == 1 ? "" : "s", list);
  } else if (r.verdict == "baseline-broken") {
    out += fmt::format("phoenix audit: the baseline is broken: {}\n", r.error);
    return out;
  } else {
    out += fmt::format("phoenix audit: could not complete: {}\n", r.error);
    return out;
  }
  int n = 0;
  for (const auto& f : r.findings) {
    out += fmt::format("\n{}. {}", ++n, f.kind);
    if (f.step > 0) {
      out += fmt::format(" at step {}{} ({} run", f.step,
                         f.step_name.empty() ? "" : fmt::format(" '{}'", f.step_name), f.run);
      if (!f.instances.empty()) out += ", " + f.instances;
      out += ")";
    }
    out += "\n";
    if (f.baseline != "-")
      out += fmt::format("   baseline: {}\n   observed: {}\n", f.baseline, f.observed);
    if (!f.also_steps.empty()) {
      std::string steps;
      for (int s : f.also_steps) steps += (steps.empty() ? "" : ", ") + std::to_string(s);
      out += fmt::format("   also at step{} {} of the {} run, for the same reason\n",
                         f.also_steps.size() == 1 ? "" : "s", steps, f.run);
    }
    for (const auto& e : f.evidence) out += fmt::format("   evidence: {}\n", e);
    size_t shown = 0;
    for (const auto& w : f.files) {
      if (++shown > 10) {
        out += fmt::format("   ... and {} more files\n", f.files.size() - 10);
        break;
      }
      out += "   file: " + FileLine(w) + "\n";
    }
    if (!f.advice.empty()) out += fmt::format("   fix: {}\n", f.advice);
  }
  for (const auto& w : r.warnings) out += "\nwarning: " + w;
  if (!r.warnings.empty()) out += "\n";
  out += fmt::format(
      "\n{} steps, {} runs ({}) in {:.1f} s\n", r.step_names.size(), r.runs.size(),
      [&] {
        std::string s;
        for (const auto& run : r.runs)
          s += (s.empty() ? "" : ", ") + fmt::format("{} x{}", run.name, run.instances);
        return s;
      }(),
      r.seconds);
  return out;
}

std::string ReportJson(const Report& r) {
  json::object root{{"version", 1},
                    {"app", r.app},
                    {"source", r.source},
                    {"verdict", r.verdict},
                    {"duration_s", r.seconds}};
  if (!r.error.empty()) root["error"] = r.error;
  json::array runs;
  json::array all_files;
  json::array boot_files;
  for (const auto& run : r.runs) {
    json::array steps;
    for (size_t i = 0; i < run.steps.size(); ++i) {
      const Outcome& o = run.steps[i];
      json::object s{{"step", i + 1},
                     {"status", o.status},
                     {"served_by", o.served},
                     {"ms", o.ms},
                     {"files", FilesJson(o.files)}};
      if (!o.location.empty()) s["location"] = o.location;
      if (!o.error.empty()) s["error"] = o.error;
      json::array fails;
      for (const auto& f : o.expect_failures) fails.push_back(json::string(f));
      s["expect_failures"] = std::move(fails);
      steps.push_back(std::move(s));
    }
    runs.push_back(json::object{{"name", run.name},
                                {"instances", run.instances},
                                {"boot_ms", run.boot_ms},
                                {"seconds", run.seconds},
                                {"steps", std::move(steps)}});
    if (run.name == "spread") {
      all_files = FilesJson(run.files);
      boot_files = FilesJson(run.boot_files);
    }
  }
  root["runs"] = std::move(runs);
  json::array findings;
  for (const auto& f : r.findings) {
    json::array ev;
    for (const auto& e : f.evidence) ev.push_back(json::string(e));
    findings.push_back(json::object{{"kind", f.kind},
                                    {"run", f.run},
                                    {"step", f.step},
                                    {"step_name", f.step_name},
                                    {"instances", f.instances},
                                    {"baseline", f.baseline},
                                    {"observed", f.observed},
                                    {"evidence", std::move(ev)},
                                    {"also_steps",
                                     [&] {
                                       json::array a;
                                       for (int s : f.also_steps) a.push_back(s);
                                       return a;
                                     }()},
                                    {"files", FilesJson(f.files)},
                                    {"advice", f.advice}});
  }
  root["findings"] = std::move(findings);
  root["files"] = std::move(all_files);
  root["boot_files"] = std::move(boot_files);
  json::array warnings;
  for (const auto& w : r.warnings) warnings.push_back(json::string(w));
  root["warnings"] = std::move(warnings);
  json::value value = std::move(root);
  MakeValidUtf8(value);
  return json::serialize(value) + "\n";
}

std::string ReportJunit(const Report& r) {
  std::string cases;
  int tests = 0, failures = 0, errors = 0;
  for (size_t i = 0; i < r.step_names.size(); ++i) {
    ++tests;
    cases += fmt::format("    <testcase classname=\"phoenix.audit.steps\" name=\"{}\">\n",
                         XmlEscape(r.step_names[i]));
    std::string fails;
    for (const auto& f : r.findings) {
      bool here = f.step == static_cast<int>(i + 1) ||
                  std::find(f.also_steps.begin(), f.also_steps.end(), static_cast<int>(i + 1)) !=
                      f.also_steps.end();
      if (here && f.baseline != "-") {
        fails +=
            fmt::format("{} run: {} (baseline: {}): {}\n", f.run, f.observed, f.baseline, f.kind);
      }
    }
    if (!fails.empty()) {
      ++failures;
      cases += fmt::format("      <failure message=\"differs from the baseline\">{}</failure>\n",
                           XmlEscape(fails));
    }
    cases += "    </testcase>\n";
  }
  for (const auto& f : r.findings) {
    ++tests;
    ++failures;
    std::string body = fmt::format("{}\n", f.observed);
    for (const auto& e : f.evidence) body += "evidence: " + e + "\n";
    for (const auto& w : f.files) body += "file: " + FileLine(w) + "\n";
    body += "fix: " + f.advice + "\n";
    cases += fmt::format(
        "    <testcase classname=\"phoenix.audit.findings\" name=\"{}{}\">\n      <failure "
        "message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
        XmlEscape(f.kind),
        f.step > 0 ? fmt::format(" (step {}, {})", f.step, XmlEscape(f.run)) : "",
        XmlEscape(f.kind), XmlEscape(f.kind), XmlEscape(body));
  }
  if (r.verdict == "baseline-broken" || r.verdict == "error") {
    ++tests;
    ++errors;
    cases += fmt::format(
        "    <testcase classname=\"phoenix.audit\" name=\"baseline\">\n      <error "
        "message=\"{}\"/>\n"
        "    </testcase>\n",
        XmlEscape(r.error));
  }
  return fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"phoenix audit\" tests=\"{}\" "
      "failures=\"{}\" errors=\"{}\" time=\"{:.3f}\">\n  <testsuite name=\"phoenix audit {}\" "
      "tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3f}\">\n{}  "
      "</testsuite>\n</testsuites>\n",
      tests, failures, errors, r.seconds, XmlEscape(r.app), tests, failures, errors, r.seconds,
      cases);
}

// ---------------------------------------------------------------------------- the command

namespace {

Status WriteTo(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Error{fmt::format("{}: {}", path, std::strerror(errno))};
  out << text;
  if (!out) return Error{fmt::format("{}: write failed", path)};
  return OkStatus();
}

}  // namespace

int RunAudit(const AuditOptions& opt) {
  auto started = std::chrono::steady_clock::now();
  auto usage = [](const std::string& why) {
    std::fprintf(stderr, "phoenix audit: %s\n", why.c_str());
    return 2;
  };
  // The traffic, checked whole before anything starts.
  Result<Scenario> sc = Error{"no traffic"};
  std::string source;
  if (opt.scenario_file) {
    sc = LoadScenario(*opt.scenario_file);
    source = "scenario " + *opt.scenario_file;
  } else if (opt.har_file) {
    sc = LoadHar(*opt.har_file, opt.host.value_or(""));
    source = "har " + *opt.har_file;
  } else if (!opt.command.empty()) {
    Scenario placeholder;  // the steps are the requests the baseline run makes
    placeholder.file = "command";
    sc = std::move(placeholder);
    for (const auto& a : opt.command) source += (source.empty() ? "command " : " ") + a;
  } else {
    return usage("give the traffic: --scenario FILE, --har FILE or -- TEST-COMMAND ...");
  }
  if ((opt.scenario_file || opt.har_file) && !opt.command.empty()) {
    return usage("give one source of traffic: a scenario, a HAR recording or a test command");
  }
  if (opt.host && !opt.har_file) return usage("--host names the app's host in a HAR recording");
  if (!sc.ok()) return usage(sc.error().message);
  if (opt.instances < 2) return usage("--instances must be at least 2");
  // The app itself: a bad Procfile or phoenix.toml is a usage error before any run.
  LoadOptions lo;
  lo.dir = opt.dir;
  lo.config_file = opt.config_file;
  lo.env_file = opt.env_file;
  auto config = LoadConfig(lo, std::nullopt);
  if (!config.ok()) return usage(config.error().message);
  if (!config->Find("web"))
    return usage(fmt::format("{}: the Procfile has no web process", opt.dir));
  if (sc->app.empty()) sc->app = fs::path(config->app_root).filename().string();
  if (!config->release_command.empty()) {
    std::fprintf(stderr, "audit: %s\n", ReleaseNote(*config).c_str());
  }

  // From here on a SIGINT, SIGTERM or SIGHUP stops the runs and removes the work folder.
  interrupt::Arm(opt.keep);
  // In $TMPDIR as mktemp(1), when the runs' control sockets fit in a socket address there
  // (<work>/baseline-2/state/<app name, <= 32>-<8 hex>/control.sock, 107 bytes at most);
  // else in /tmp.
  const char* tmpdir = std::getenv("TMPDIR");
  std::string base = tmpdir && *tmpdir ? tmpdir : "/tmp";
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  size_t name = std::min<size_t>(fs::path(config->app_root).filename().string().size(), 32);
  if (base.size() + std::string_view("/phoenix-audit-XXXXXX/baseline-2/state/").size() + name +
          std::string_view("-01234567/control.sock").size() >
      107) {
    base = "/tmp";
  }
  auto made = interrupt::MakeWorkDir(base + "/phoenix-audit-XXXXXX");
  if (!made.ok()) return usage(made.error().message);
  std::string work = *made;

  std::vector<RunPlan> plans = {{"baseline", 1, false},
                                {"baseline-2", 1, false},
                                {"spread", opt.instances, false},
                                {"reborn", 1, true}};
  const bool command = !opt.command.empty();
  size_t total = plans.size() * std::max<size_t>(sc->steps.size(), 1);
  size_t done = 0;
  auto progress = [&](const std::string& what) {
    ++done;
    total = std::max(total, done);
    if (opt.progress_tty) {
      int width = 30;
      int filled = static_cast<int>(static_cast<double>(done) / static_cast<double>(total) * width);
      std::fprintf(stderr, "\r\x1b[K[%s%s] %zu/%zu %s",
                   std::string(static_cast<size_t>(filled), '#').c_str(),
                   std::string(static_cast<size_t>(width - filled), ' ').c_str(), done, total,
                   what.substr(0, 60).c_str());
    } else {
      std::fprintf(stderr, "audit: %s\n", what.c_str());
    }
  };
  std::vector<RunResult> runs;
  for (const auto& plan : plans) {
    std::string dir = fmt::format("{}/{}", work, plan.name);
    runs.push_back(command ? RecordCommand(opt, plan, dir, progress)
                           : Replay(opt, *sc, plan, dir, progress));
    if (!runs.back().error.empty()) break;
    if (command && runs.size() == 1) {
      // The steps are the baseline's requests, in order.
      for (const auto& name : runs[0].requests) {
        Step step;
        step.number = static_cast<int>(sc->steps.size()) + 1;
        step.name = name;
        step.method = name.substr(0, name.find(' '));
        step.path = name.substr(name.find(' ') + 1);
        sc->steps.push_back(std::move(step));
      }
      total = plans.size() * std::max<size_t>(sc->steps.size(), 1);
      if (runs[0].command_exit != 0) break;  // the baseline is broken: no other run
    }
  }
  interrupt::HoldIfInterrupted();  // the runs ended because of a signal: no verdict
  Report report = Analyze(*sc, runs);
  // A finding that rests on a body alone may be a value that varies by itself yet came out the
  // same in both baselines (an A/B bucket drawn at random: half the time): up to two more
  // baseline runs learn more before the verdict; an app that lost state still differs after.
  const bool complete = runs.size() == plans.size();
  for (int extra = 3; extra <= 4 && complete; ++extra) {
    if (!std::any_of(report.findings.begin(), report.findings.end(),
                     [](const Finding& f) { return f.body_only; })) {
      break;
    }
    RunPlan plan{fmt::format("baseline-{}", extra), 1, false};
    total += std::max<size_t>(sc->steps.size(), 1);
    std::string dir = fmt::format("{}/{}", work, plan.name);
    RunResult more =
        command ? RecordCommand(opt, plan, dir, progress) : Replay(opt, *sc, plan, dir, progress);
    interrupt::HoldIfInterrupted();
    if (!more.error.empty()) break;
    runs.push_back(std::move(more));
    report = Analyze(*sc, runs);
  }
  if (opt.progress_tty) std::fprintf(stderr, "\r\x1b[K");
  report.source = source;
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::fputs(ReportText(report).c_str(), stdout);
  std::fflush(stdout);
  int code = report.verdict == "stateless" ? 0 : report.verdict == "stateful" ? 1 : 2;
  if (opt.json_file) {
    if (Status s = WriteTo(*opt.json_file, ReportJson(report)); !s.ok())
      code = usage(s.error().message);
  }
  if (opt.junit_file) {
    if (Status s = WriteTo(*opt.junit_file, ReportJunit(report)); !s.ok())
      code = usage(s.error().message);
  }
  if (opt.keep) {
    std::fprintf(stderr, "audit: the runs' logs and layers are kept in %s\n", work.c_str());
  } else {
    std::error_code ec;
    fs::remove_all(work, ec);
  }
  return code;
}

}  // namespace phoenix::audit
