// The commands that talk to a running phoenix: ps, scale, kill, logs, stop.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>

#include "base/duration.h"
#include "cli/commands.h"
#include "control/client.h"
#include "control/paths.h"
#include "control/protocol.h"

namespace phoenix::cli {
namespace json = boost::json;
namespace {

// Sends one request to the phoenix of the app in the current folder; on_reply sees each line.
int Request(const control::Request& request,
            const std::function<bool(const json::value&)>& on_reply) {
  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) return kExitFailed;
  auto root = control::FindAppRoot(cwd);
  if (!root.ok()) {
    std::fprintf(stderr, "phoenix: %s\n", root.error().message.c_str());
    return kExitUsage;
  }
  std::string socket = control::SocketPath(control::AppStateDir(*root));
  int code = kExitOk;
  Status s = control::Call(socket, control::EncodeRequest(request), [&](const std::string& line) {
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec) return true;
    if (v.is_object() && v.as_object().contains("ok") && !v.at("ok").as_bool()) {
      auto* err = v.as_object().if_contains("error");
      std::fprintf(stderr, "phoenix: %s\n",
                   err && err->is_string() ? err->as_string().c_str() : "request failed");
      auto* usage = v.as_object().if_contains("usage");
      code = usage && usage->is_bool() && usage->as_bool() ? kExitUsage : kExitFailed;
      return false;
    }
    return on_reply(v);
  });
  if (!s.ok()) {
    std::fprintf(stderr, "phoenix: %s\n", s.error().message.c_str());
    return kExitFailed;
  }
  return code;
}

// Prints the answer's "message", if it has one.
bool PrintMessage(const json::value& v) {
  if (const auto* m = v.is_object() ? v.as_object().if_contains("message") : nullptr) {
    if (m->is_string()) std::printf("%s\n", m->as_string().c_str());
  }
  return true;
}

control::Request Of(control::Command command) {
  control::Request r;
  r.command = command;
  return r;
}

std::string Str(const json::object& o, const char* key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : "";
}
double Num(const json::object& o, const char* key) {
  auto* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  return 0;
}
std::string Dur(double seconds) {
  return FormatDuration(Millis(static_cast<int64_t>(seconds * 1000)));
}

}  // namespace

int Ps(bool as_json) {
  return Request(Of(control::Command::kPs), [&](const json::value& v) {
    const json::value& list = v.at("instances");
    if (as_json) {
      std::printf("%s\n", json::serialize(list).c_str());
      return true;
    }
    // The first column as wide as the longest name ("background-worker.12"), so that the others
    // stay aligned.
    int w = 10;
    for (const auto& item : list.as_array()) {
      w = std::max(w, static_cast<int>(Str(item.as_object(), "instance").size()));
    }
    std::printf("%-*s %5s %8s %6s  %-10s %8s %13s %9s %8s  %s\n", w, "INSTANCE", "INC", "PID",
                "PORT", "STATE", "AGE", "NEXT REBIRTH", "REQUESTS", "RESTARTS", "LOST STATE");
    for (const auto& item : list.as_array()) {
      const auto& o = item.as_object();
      auto* next = o.if_contains("next_rebirth_s");
      std::string next_s = next && !next->is_null() ? Dur(Num(o, "next_rebirth_s")) : "-";
      std::string lost = Num(o, "lost_files") > 0
                             ? fmt::format("{} files ({})", Num(o, "lost_files"),
                                           FormatBytes(static_cast<uint64_t>(Num(o, "lost_bytes"))))
                             : "-";
      std::string state = Str(o, "state");
      auto* requests = o.if_contains("requests");
      std::string requests_s = requests && !requests->is_null()
                                   ? fmt::format("{:.0f}", Num(o, "requests"))
                                   : std::string("-");
      std::printf("%-*s %5s %8.0f %6.0f  %-10s %8s %13s %9s %8.0f  %s\n", w,
                  Str(o, "instance").c_str(), fmt::format("#{}", Num(o, "incarnation")).c_str(),
                  Num(o, "pid"), Num(o, "port"), state.c_str(),
                  state == "backoff" ? "-" : Dur(Num(o, "age_s")).c_str(), next_s.c_str(),
                  requests_s.c_str(), Num(o, "restarts"), lost.c_str());
      // The incarnations it replaced, still finishing their requests or stopping.
      if (auto* leaving = o.if_contains("leaving"); leaving && leaving->is_array()) {
        for (const auto& item2 : leaving->as_array()) {
          const auto& l = item2.as_object();
          auto* lr = l.if_contains("requests");
          std::string in_flight = lr && !lr->is_null()
                                      ? fmt::format("{:.0f} in flight", Num(l, "in_flight"))
                                      : std::string();
          std::printf("%-*s %5s %8.0f %6s  %-10s %8s %13s %9s\n", w, " \\_",
                      fmt::format("#{}", Num(l, "incarnation")).c_str(), Num(l, "pid"), "",
                      Str(l, "state").c_str(), Dur(Num(l, "age_s")).c_str(), "", in_flight.c_str());
        }
      }
      if (!Str(o, "last_exit").empty() && (state == "backoff" || state == "booting")) {
        std::printf("%-*s last death: %s\n", w, "", Str(o, "last_exit").c_str());
      }
    }
    if (v.is_object() && !Str(v.as_object(), "admin").empty()) {
      std::printf("admin: %s (/metrics, /status, /events)\n", Str(v.as_object(), "admin").c_str());
    }
    return true;
  });
}

int Scale(const std::map<std::string, int>& counts) {
  control::Request r;
  r.command = control::Command::kScale;
  r.counts = counts;
  return Request(r, PrintMessage);
}

int Kill(const std::string& instance, bool now) {
  control::Request r;
  r.command = control::Command::kKill;
  r.instance = instance;
  r.now = now;
  return Request(r, PrintMessage);
}

int Logs(const std::string& instance, bool follow) {
  control::Request r;
  r.command = control::Command::kLogs;
  r.instance = instance;
  r.follow = follow;
  return Request(r, [](const json::value& v) {
    const auto& o = v.as_object();
    std::printf("%-8s | %s\n", Str(o, "instance").c_str(), Str(o, "line").c_str());
    std::fflush(stdout);
    return true;
  });
}

// Returns once phoenix has exited (it holds the connection until then), as `systemctl stop`.
int Stop() {
  int code = Request(Of(control::Command::kStop), [](const json::value&) { return true; });
  if (code == kExitOk) std::printf("stopped\n");
  return code;
}

}  // namespace phoenix::cli

namespace phoenix::cli {

int Rotate(const std::string& type) {
  control::Request r = Of(control::Command::kRotate);
  r.type = type;
  return Request(r, [](const json::value& v) {
    std::printf("%s\n", Str(v.as_object(), "message").c_str());
    return true;
  });
}

int Drill(const std::string& type, double fraction) {
  control::Request r = Of(control::Command::kDrill);
  r.type = type;
  r.fraction = fraction;
  return Request(r, [](const json::value& v) {
    std::printf("%s\n", Str(v.as_object(), "message").c_str());
    return true;
  });
}

}  // namespace phoenix::cli
