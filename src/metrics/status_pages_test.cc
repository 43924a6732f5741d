#include "metrics/status_pages.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace phoenix::metrics {
namespace {

StatusSnapshot Example() {
  StatusSnapshot s;
  s.pid = 42;
  s.app_root = "/srv/<app>";
  s.start_time_s = 1700000000.5;
  s.uptime_s = 90;
  s.types = {"web", "worker"};
  InstanceView web;
  web.instance = "web.1";
  web.type = "web";
  web.incarnation = 3;
  web.state = "ready";
  web.age = std::chrono::seconds(30);
  web.next_rebirth = std::chrono::hours(2);
  web.restarts = 2;
  web.requests = 1234;
  web.in_flight = 5;
  InstanceView worker;
  worker.instance = "worker.1";
  worker.type = "worker";
  worker.incarnation = 1;
  worker.state = "backoff";
  worker.last_exit = "exit 1";
  s.instances = {web, worker};
  s.router_port = 5000;
  s.router.requests = 1300;
  s.router.responses_2xx = 1290;
  s.router.responses_5xx = 10;
  s.deaths[{"web", "max-age"}] = 2;
  s.deaths[{"worker", "crash"}] = 7;
  s.lost["web"] = {3, 1200};
  return s;
}

bool Has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(PrometheusTextTest, SeriesUsersAlertOn) {
  std::string t = PrometheusText(Example());
  EXPECT_TRUE(Has(t, "phoenix_instances{type=\"web\",state=\"ready\"} 1")) << t;
  // Every (type, state) exists, at 0 when empty: `== 0` alerts need the series.
  EXPECT_TRUE(Has(t, "phoenix_instances{type=\"worker\",state=\"ready\"} 0")) << t;
  EXPECT_TRUE(Has(t, "phoenix_instances{type=\"worker\",state=\"backoff\"} 1")) << t;
  EXPECT_TRUE(Has(t, "phoenix_instance_up{type=\"web\",slot=\"web.1\"} 1")) << t;
  EXPECT_TRUE(Has(t, "phoenix_instance_up{type=\"worker\",slot=\"worker.1\"} 0")) << t;
  EXPECT_TRUE(Has(t, "phoenix_instance_age_seconds{type=\"web\",slot=\"web.1\"} 30")) << t;
  EXPECT_TRUE(Has(t, "phoenix_instance_next_rebirth_seconds{type=\"web\",slot=\"web.1\"} 7200"))
      << t;
  EXPECT_TRUE(Has(t, "phoenix_instance_requests_total{type=\"web\",slot=\"web.1\"} 1234")) << t;
  EXPECT_TRUE(Has(t, "phoenix_instance_requests_in_flight{type=\"web\",slot=\"web.1\"} 5")) << t;
  // Not routed: no traffic series rather than a misleading 0.
  EXPECT_EQ(t.find("phoenix_instance_requests_total{type=\"worker\""), std::string::npos) << t;
  EXPECT_TRUE(Has(t, "phoenix_deaths_total{type=\"web\",reason=\"max-age\"} 2")) << t;
  EXPECT_TRUE(Has(t, "phoenix_deaths_total{type=\"worker\",reason=\"crash\"} 7")) << t;
  EXPECT_TRUE(Has(t, "phoenix_lost_files_total{type=\"web\"} 3")) << t;
  EXPECT_TRUE(Has(t, "phoenix_lost_bytes_total{type=\"web\"} 1200")) << t;
  // Before a first death of its kind, the series exists at 0 (increase() needs it to).
  EXPECT_TRUE(Has(t, "phoenix_deaths_total{type=\"web\",reason=\"crash\"} 0")) << t;
  EXPECT_TRUE(Has(t, "phoenix_deaths_total{type=\"worker\",reason=\"drill\"} 0")) << t;
  EXPECT_TRUE(Has(t, "phoenix_lost_files_total{type=\"worker\"} 0")) << t;
  // Prometheus owns `instance` (the scrape target).
  EXPECT_EQ(t.find("instance=\""), std::string::npos) << t;
  EXPECT_TRUE(Has(t, "phoenix_router_responses_total{code=\"5xx\"} 10")) << t;
  EXPECT_TRUE(Has(t, "phoenix_start_time_seconds 1700000000.500")) << t;
}

TEST(PrometheusTextTest, WellFormed) {
  std::string t = PrometheusText(Example());
  ASSERT_FALSE(t.empty());
  EXPECT_EQ(t.back(), '\n');
  // Each family's samples follow its one TYPE line, and every sample line is "name{...} value".
  std::set<std::string> typed;
  size_t start = 0;
  std::string current;
  while (start < t.size()) {
    size_t end = t.find('\n', start);
    std::string line = t.substr(start, end - start);
    start = end + 1;
    if (line.rfind("# TYPE ", 0) == 0) {
      current = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(typed.insert(current).second) << "family twice: " << current;
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) continue;
    std::string name = line.substr(0, line.find_first_of("{ "));
    EXPECT_EQ(name, current) << line;
    std::string value = line.substr(line.rfind(' ') + 1);
    EXPECT_FALSE(value.empty()) << line;
    EXPECT_NE(value, "true") << line;
    char* rest = nullptr;
    std::strtod(value.c_str(), &rest);
    EXPECT_EQ(*rest, '\0') << line;
  }
}

TEST(PrometheusTextTest, NoRouterNoRouterSeries) {
  StatusSnapshot s = Example();
  s.router_port.reset();
  EXPECT_EQ(PrometheusText(s).find("phoenix_router_"), std::string::npos);
}

TEST(StatusJsonTest, ParsesAndCarriesInstances) {
  boost::json::value v = boost::json::parse(StatusJson(Example()));
  EXPECT_EQ(v.at("pid").as_int64(), 42);
  EXPECT_EQ(v.at("router").at("port").as_int64(), 5000);
  EXPECT_EQ(v.at("instances").as_array().size(), 2u);
  EXPECT_EQ(v.at("instances").at(0).at("requests").as_int64(), 1234);
  EXPECT_TRUE(v.at("instances").at(1).at("requests").is_null());
  EXPECT_EQ(v.at("deaths").as_array().size(), 2u);
  EXPECT_EQ(v.at("lost").at("web").at("bytes").as_int64(), 1200);
}

TEST(StatusHtmlTest, EscapesWhatItShows) {
  std::string html = StatusHtml(Example());
  EXPECT_NE(html.find("/srv/&lt;app&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<app>"), std::string::npos);
  EXPECT_NE(html.find("<td>web.1</td><td>#3</td>"), std::string::npos) << html;
}

}  // namespace
}  // namespace phoenix::metrics
