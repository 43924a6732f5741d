#include "metrics/status_pages.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <chrono>

#include "base/duration.h"
#include "base/text.h"
#include "metrics/events.h"

namespace phoenix::metrics {
namespace json = boost::json;
namespace {

// The states a slot can be in, so that every (type, state) series exists from the start:
// a rule like `phoenix_instances{state="ready"} == 0` must not miss a series that never was.
constexpr const char* kStates[] = {"booting",  "ready",   "replacing", "draining",
                                   "stopping", "backoff", "retiring",  "dead"};

constexpr DeathReason kReasons[] = {DeathReason::kCrash,         DeathReason::kMaxAge,
                                    DeathReason::kKilled,        DeathReason::kScaledDown,
                                    DeathReason::kBootTimeout,   DeathReason::kShutdown,
                                    DeathReason::kPhoenixKilled, DeathReason::kRotated,
                                    DeathReason::kChaos,         DeathReason::kDrill};

// A label value as the exposition format wants it: \, " and newline escaped.
std::string Label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Serving requests: a ready incarnation, also while its successor boots or it is replaced.
bool Serving(const InstanceView& v) { return v.state == "ready" || v.state == "replacing"; }

double Secs(Millis d) { return static_cast<double>(d.count()) / 1000.0; }

class Writer {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  template <typename T>
  void Sample(std::string_view name, std::string_view labels, T value) {
    if (labels.empty()) {
      out_ += fmt::format("{} {}\n", name, value);
    } else {
      out_ += fmt::format("{}{{{}}} {}\n", name, labels, value);
    }
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string InstanceLabels(const InstanceView& v) {
  // Not `instance`: Prometheus sets that label to the scrape target (and would rename ours).
  return fmt::format("type=\"{}\",slot=\"{}\"", Label(v.type), Label(v.instance));
}

}  // namespace

std::string PrometheusText(const StatusSnapshot& s) {
  Writer w;
  w.Family("phoenix_start_time_seconds", "gauge", "Unix time phoenix started.");
  w.Sample("phoenix_start_time_seconds", "", fmt::format("{:.3f}", s.start_time_s));

  w.Family("phoenix_instances", "gauge", "Slots by process type and state.");
  for (const auto& type : s.types) {
    for (const char* state : kStates) {
      int n = 0;
      for (const auto& v : s.instances) n += v.type == type && v.state == state;
      w.Sample("phoenix_instances", fmt::format("type=\"{}\",state=\"{}\"", Label(type), state), n);
    }
  }

  w.Family("phoenix_instance_up", "gauge",
           "1 when the slot's incarnation is ready (serving), else 0.");
  for (const auto& v : s.instances)
    w.Sample("phoenix_instance_up", InstanceLabels(v), Serving(v) ? 1 : 0);
  w.Family("phoenix_instance_incarnation", "gauge",
           "Number of the slot's current incarnation (1 for its first life).");
  for (const auto& v : s.instances) {
    w.Sample("phoenix_instance_incarnation", InstanceLabels(v), v.incarnation);
  }
  w.Family("phoenix_instance_age_seconds", "gauge", "Age of the slot's current incarnation.");
  for (const auto& v : s.instances) {
    if (v.state != "backoff" && v.state != "dead") {
      w.Sample("phoenix_instance_age_seconds", InstanceLabels(v), Secs(v.age));
    }
  }
  w.Family("phoenix_instance_next_rebirth_seconds", "gauge",
           "Time until the slot's scheduled rebirth (max_age), or its next birth after a backoff.");
  for (const auto& v : s.instances) {
    if (v.next_rebirth) {
      w.Sample("phoenix_instance_next_rebirth_seconds", InstanceLabels(v), Secs(*v.next_rebirth));
    }
  }
  w.Family("phoenix_instance_rebirths_total", "counter",
           "Incarnations of the slot after its first, for any cause (max age, kill, crash...).");
  for (const auto& v : s.instances) {
    w.Sample("phoenix_instance_rebirths_total", InstanceLabels(v), v.restarts);
  }
  w.Family("phoenix_instance_requests_total", "counter",
           "Requests routed to the slot's current incarnation (starts at 0 with each life).");
  for (const auto& v : s.instances) {
    if (v.requests) w.Sample("phoenix_instance_requests_total", InstanceLabels(v), *v.requests);
  }
  w.Family("phoenix_instance_requests_in_flight", "gauge",
           "Requests the slot's current incarnation is answering.");
  for (const auto& v : s.instances) {
    if (v.requests) w.Sample("phoenix_instance_requests_in_flight", InstanceLabels(v), v.in_flight);
  }

  // Every (type, reason) and type from the start, at 0: increase() and rate() see a series'
  // first rise only when the series existed before it.
  auto deaths = s.deaths;
  auto lost = s.lost;
  for (const auto& type : s.types) {
    for (DeathReason reason : kReasons) deaths.try_emplace({type, ToString(reason)}, 0);
    lost.try_emplace(type, 0, 0);
  }
  w.Family("phoenix_deaths_total", "counter",
           "Incarnations that died, by process type and reason.");
  for (const auto& [key, n] : deaths) {
    w.Sample("phoenix_deaths_total",
             fmt::format("type=\"{}\",reason=\"{}\"", Label(key.first), Label(key.second)), n);
  }
  w.Family("phoenix_lost_files_total", "counter",
           "Files incarnations wrote outside filesystem.writable that died with them.");
  for (const auto& [type, l] : lost) {
    w.Sample("phoenix_lost_files_total", fmt::format("type=\"{}\"", Label(type)), l.first);
  }
  w.Family("phoenix_lost_bytes_total", "counter", "Bytes of those files.");
  for (const auto& [type, l] : lost) {
    w.Sample("phoenix_lost_bytes_total", fmt::format("type=\"{}\"", Label(type)), l.second);
  }
  w.Family("phoenix_drills_total", "counter", "Drills run (phoenix drill).");
  w.Sample("phoenix_drills_total", "", s.drills);

  if (s.router_port) {
    const router::Stats& r = s.router;
    w.Family("phoenix_router_requests_total", "counter", "Requests the router read.");
    w.Sample("phoenix_router_requests_total", "", r.requests);
    w.Family("phoenix_router_responses_total", "counter", "Responses by status class.");
    w.Sample("phoenix_router_responses_total", "code=\"2xx\"", r.responses_2xx);
    w.Sample("phoenix_router_responses_total", "code=\"3xx\"", r.responses_3xx);
    w.Sample("phoenix_router_responses_total", "code=\"4xx\"", r.responses_4xx);
    w.Sample("phoenix_router_responses_total", "code=\"5xx\"", r.responses_5xx);
    w.Family("phoenix_router_errors_total", "counter",
             "Answers the router made itself (400, 408, 431, 502, 503, 504).");
    w.Sample("phoenix_router_errors_total", "", r.router_errors);
    w.Family("phoenix_router_retries_total", "counter",
             "Requests sent again to another instance after one failed under them.");
    w.Sample("phoenix_router_retries_total", "", r.retries);
    w.Family("phoenix_router_responses_interrupted_total", "counter",
             "Responses the instance cut short after their head reached the client.");
    w.Sample("phoenix_router_responses_interrupted_total", "", r.interrupted);
    w.Family("phoenix_router_connections_total", "counter", "Client connections accepted.");
    w.Sample("phoenix_router_connections_total", "", r.connections);
    w.Family("phoenix_router_connections", "gauge", "Client connections open.");
    w.Sample("phoenix_router_connections", "", r.active_connections);
    w.Family("phoenix_router_parked_connections", "gauge",
             "Client connections waiting for their next request long enough to hold no buffers.");
    w.Sample("phoenix_router_parked_connections", "", r.parked_connections);
    w.Family("phoenix_router_upgrades_total", "counter",
             "Connections upgraded to a tunnel (WebSocket...).");
    w.Sample("phoenix_router_upgrades_total", "", r.upgrades);
  }
  return w.Take();
}

std::string StatusJson(const StatusSnapshot& s) {
  json::object o{
      {"pid", s.pid}, {"app_root", s.app_root}, {"uptime_s", static_cast<int64_t>(s.uptime_s)}};
  if (s.router_port) {
    const router::Stats& r = s.router;
    o["router"] = json::object{{"port", *s.router_port},
                               {"requests", r.requests},
                               {"responses_2xx", r.responses_2xx},
                               {"responses_3xx", r.responses_3xx},
                               {"responses_4xx", r.responses_4xx},
                               {"responses_5xx", r.responses_5xx},
                               {"router_errors", r.router_errors},
                               {"retries", r.retries},
                               {"responses_interrupted", r.interrupted},
                               {"connections", r.connections},
                               {"active_connections", r.active_connections},
                               {"parked_connections", r.parked_connections},
                               {"upgrades", r.upgrades}};
  } else {
    o["router"] = nullptr;
  }
  json::array deaths;
  for (const auto& [key, n] : s.deaths) {
    deaths.push_back(json::object{{"type", key.first}, {"reason", key.second}, {"count", n}});
  }
  o["deaths"] = std::move(deaths);
  json::object lost;
  for (const auto& [type, l] : s.lost) {
    lost[type] = json::object{{"files", l.first}, {"bytes", l.second}};
  }
  o["lost"] = std::move(lost);
  o["drills"] = s.drills;
  o["instances"] = json::parse(InstancesJson(s.instances));  // as `phoenix ps --json` lists them
  return json::serialize(o);
}

std::string StatusHtml(const StatusSnapshot& s) {
  std::string rows;
  for (const auto& v : s.instances) {
    std::string lost =
        v.lost_files ? fmt::format("{} files ({})", v.lost_files, FormatBytes(v.lost_bytes)) : "-";
    rows += fmt::format(
        "<tr class=\"{}\"><td>{}</td><td>#{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        Serving(v) ? "up" : "down", XmlEscape(v.instance), v.incarnation,
        v.pid ? fmt::format("{}", v.pid) : "-", XmlEscape(v.state),
        v.state == "backoff" ? "-" : FormatDuration(v.age),
        v.next_rebirth ? FormatDuration(*v.next_rebirth) : "-",
        v.requests ? fmt::format("{}", *v.requests) : "-",
        v.requests ? fmt::format("{}", v.in_flight) : "-", v.restarts, XmlEscape(lost));
    for (const auto& l : v.leaving) {
      rows += fmt::format(
          "<tr class=\"leaving\"><td>&nbsp;&nbsp;&#8627;</td><td>#{}</td><td>{}</td><td>{}</td>"
          "<td>{}</td><td>-</td><td>{}</td><td>{}</td><td></td><td></td></tr>\n",
          l.incarnation, l.pid, XmlEscape(l.state), FormatDuration(l.age),
          l.requests ? fmt::format("{}", *l.requests) : "-",
          l.requests ? fmt::format("{}", l.in_flight) : "-");
    }
  }
  std::string deaths;
  for (const auto& [key, n] : s.deaths) {
    if (!deaths.empty()) deaths += ", ";
    deaths += fmt::format("{} {} ({})", n, XmlEscape(key.first), XmlEscape(key.second));
  }
  std::string router = "no web type: nothing routed";
  if (s.router_port) {
    const router::Stats& r = s.router;
    router = fmt::format(
        "port {}: {} requests, {} 2xx, {} 3xx, {} 4xx, {} 5xx ({} answered by the router), "
        "{} retried, {} connections open",
        *s.router_port, r.requests, r.responses_2xx, r.responses_3xx, r.responses_4xx,
        r.responses_5xx, r.router_errors, r.retries, r.active_connections);
  }
  return fmt::format(
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"refresh\" content=\"5\"><title>phoenix: {app}</title>\n"
      "<style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}"
      "td,th{{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}}"
      "tr.down td:first-child{{color:#b00}}tr.up td:first-child{{color:#070}}</style></head>\n"
      "<body><h1>phoenix</h1>\n<p>{app} &middot; pid {pid} &middot; up {up}</p>\n"
      "<table><tr><th>instance</th><th>inc</th><th>pid</th><th>state</th><th>age</th>"
      "<th>next rebirth</th><th>requests</th><th>in flight</th><th>restarts</th>"
      "<th>lost state</th></tr>\n{rows}</table>\n"
      "<p>router: {router}</p>\n<p>deaths: {deaths}</p>\n"
      "<p><a href=\"/metrics\">/metrics</a> &middot; <a href=\"/status\">/status</a></p>\n"
      "</body></html>\n",
      fmt::arg("app", XmlEscape(s.app_root)), fmt::arg("pid", s.pid),
      fmt::arg("up", FormatDuration(Millis(static_cast<int64_t>(s.uptime_s * 1000)))),
      fmt::arg("rows", rows), fmt::arg("router", router),
      fmt::arg("deaths", deaths.empty() ? "none" : deaths));
}

}  // namespace phoenix::metrics
