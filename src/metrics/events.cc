#include "metrics/events.h"

#include <fmt/format.h>
#include <time.h>

#include <boost/json.hpp>
#include <chrono>

#include "base/text.h"

namespace phoenix::metrics {
namespace json = boost::json;
namespace {

// Whole seconds as integers: Boost.JSON prints doubles as 2E-3, which people misread.
int64_t Seconds(Millis d) { return std::chrono::duration_cast<std::chrono::seconds>(d).count(); }

json::object ChangesJson(const std::vector<sandbox::LostFile>& files, uint64_t bytes) {
  json::array paths, changes;
  for (const auto& f : files) {
    paths.emplace_back(f.path);
    changes.emplace_back(json::object{
        {"path", f.path}, {"bytes", f.bytes}, {"change", sandbox::ToString(f.change)}});
  }
  return json::object{{"files", files.size()},
                      {"bytes", bytes},
                      {"paths", std::move(paths)},
                      {"changes", std::move(changes)}};
}

std::string ListPaths(const std::vector<sandbox::LostFile>& files, size_t max) {
  std::string out;
  for (size_t i = 0; i < files.size() && i < max; ++i) {
    if (i) out += ", ";
    out += PrintableLine(files[i].path);  // an app's name must not split or recolour the line
    if (files[i].change == sandbox::Change::kDeleted) out += " (deleted)";
  }
  if (files.size() > max) out += ", ...";
  return out;
}

}  // namespace

std::string NowRfc3339() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  time_t secs = ms / 1000;
  struct tm tm;
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

std::string EventJson(const Event& e) {
  json::object o;
  o["time"] = NowRfc3339();
  o["event"] = e.kind;
  o["instance"] = e.instance;
  if (e.incarnation) o["incarnation"] = e.incarnation;
  if (e.pid) o["pid"] = e.pid;
  if (e.port) o["port"] = e.port;
  if (e.reason) o["reason"] = ToString(*e.reason);
  if (e.status) {
    if (e.status->signaled) {
      o["signal"] = e.status->ToString();
    } else {
      o["exit_code"] = e.status->code;
    }
  }
  if (e.kind == "drill") o["recovery_ms"] = e.age.count();
  if (e.kind == "died" && e.reason == DeathReason::kPhoenixKilled) {
    // Found at the next start: when it died is unknown, only since when it can have lived.
    o["age_at_most_s"] = Seconds(e.age);
  } else if (e.kind != "scaled" && e.kind != "backoff" && e.kind != "rotating" &&
             e.kind != "rotated" && e.kind != "rotation-failed" && e.kind != "drill-start" &&
             e.kind != "drill") {
    o["age_s"] = Seconds(e.age);
    o["age_ms"] = e.age.count();
  }
  if (e.delay.count()) o["delay_ms"] = e.delay.count();
  if (!e.message.empty()) o["message"] = e.message;
  if (e.failed_requests) o["failed_requests"] = *e.failed_requests;
  if (e.lost) {
    o["lost"] = ChangesJson(e.lost->files, e.lost->bytes);
    o["scratch"] = ChangesJson(e.lost->scratch, e.lost->scratch_bytes);
  }
  return json::serialize(o);
}

std::string EventText(const Event& e) {
  std::string head = fmt::format("{} #{}", e.instance, e.incarnation);
  if (e.kind == "born") return fmt::format("{} born (pid {}, port {})", head, e.pid, e.port);
  if (e.kind == "ready") return fmt::format("{} ready after {}", head, FormatDuration(e.age));
  if (e.kind == "draining") return fmt::format("{} draining", head);
  if (e.kind == "stopping") {
    return fmt::format("{} stopping ({}): SIGTERM", head, e.reason ? ToString(*e.reason) : "");
  }
  if (e.kind == "sigkill") return fmt::format("{} {}: SIGKILL", head, e.message);
  if (e.kind == "boot-timeout") return fmt::format("{} boot timeout: {}", head, e.message);
  if (e.kind == "spawn-failed") return fmt::format("{} could not be born: {}", head, e.message);
  if (e.kind == "backoff") return fmt::format("{} {}", e.instance, e.message);
  if (e.kind == "scaled") return fmt::format("scaled {}", e.message);
  if (e.kind == "rotating") return fmt::format("rotating {}: {}", e.instance, e.message);
  if (e.kind == "rotated") return fmt::format("rotation done: {}", e.message);
  if (e.kind == "rotation-failed") return fmt::format("rotation failed: {}", e.message);
  if (e.kind == "chaos") return fmt::format("{} chaos: {}", head, e.message);
  if (e.kind == "drill-start") return fmt::format("drill ({}): {}", e.instance, e.message);
  if (e.kind == "drill" || e.kind == "drill-failed") {
    std::string line =
        fmt::format("drill {}: {}", e.kind == "drill" ? "done" : "failed", e.message);
    if (e.failed_requests)
      line += fmt::format("; {} requests failed meanwhile", *e.failed_requests);
    if (e.lost) {
      line += fmt::format("; {} file{} ({}) lost", e.lost->files.size(),
                          e.lost->files.size() == 1 ? "" : "s", FormatBytes(e.lost->bytes));
    }
    return line;
  }
  if (e.kind == "died") {
    // Found at the next start: when it died is unknown, its age is only an upper bound.
    const bool found = e.reason == DeathReason::kPhoenixKilled;
    std::string line =
        fmt::format("{} died {} {}{} ({}", head, found ? "within" : "after", FormatDuration(e.age),
                    found ? " of its birth" : "", e.reason ? ToString(*e.reason) : "?");
    if (e.status) line += ", " + e.status->ToString();
    line += ")";
    if (e.lost && !e.lost->files.empty()) {
      line += fmt::format("; it wrote {} file{} ({}) that {} gone: {}", e.lost->files.size(),
                          e.lost->files.size() == 1 ? "" : "s", FormatBytes(e.lost->bytes),
                          e.lost->files.size() == 1 ? "is" : "are", ListPaths(e.lost->files, 5));
    } else if (e.lost) {
      line += "; it kept no local state";
    }
    if (e.lost && !e.lost->scratch.empty()) {
      line +=
          fmt::format(" (scratch: {} file{}, {})", e.lost->scratch.size(),
                      e.lost->scratch.size() == 1 ? "" : "s", FormatBytes(e.lost->scratch_bytes));
    }
    if (!e.message.empty()) line += "; " + e.message;
    return line;
  }
  return fmt::format("{} {} {}", head, e.kind, e.message);
}

std::string InstancesJson(const std::vector<InstanceView>& views) {
  json::array a;
  for (const auto& v : views) {
    json::object o{{"instance", v.instance},
                   {"type", v.type},
                   {"incarnation", v.incarnation},
                   {"pid", v.pid},
                   {"port", v.port},
                   {"state", v.state},
                   {"age_s", Seconds(v.age)},
                   {"restarts", v.restarts},
                   {"lost_files", v.lost_files},
                   {"lost_bytes", v.lost_bytes},
                   {"last_exit", v.last_exit}};
    o["next_rebirth_s"] =
        v.next_rebirth ? json::value(Seconds(*v.next_rebirth)) : json::value(nullptr);
    o["requests"] = v.requests ? json::value(*v.requests) : json::value(nullptr);
    o["in_flight"] = v.in_flight;
    json::array leaving;
    for (const auto& l : v.leaving) {
      leaving.push_back(
          json::object{{"incarnation", l.incarnation},
                       {"pid", l.pid},
                       {"state", l.state},
                       {"age_s", Seconds(l.age)},
                       {"requests", l.requests ? json::value(*l.requests) : json::value(nullptr)},
                       {"in_flight", l.in_flight}});
    }
    o["leaving"] = std::move(leaving);
    if (!v.last_exit.empty() && v.state == "backoff") o["why"] = v.last_exit;
    a.push_back(std::move(o));
  }
  return json::serialize(a);
}

}  // namespace phoenix::metrics
