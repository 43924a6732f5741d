// Analyze(): from the runs' outcomes to findings, without any process (the integration tests
// run the real thing).
#include "audit/audit.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "audit/compare.h"
#include "base/text.h"

namespace phoenix::audit {
namespace {

Step MakeStep(int n, std::string method, std::string path) {
  Step s;
  s.number = n;
  s.name = method + " " + path;
  s.method = std::move(method);
  s.path = std::move(path);
  return s;
}

Outcome Got(int status, std::string body = "", std::string served = "web.1#1") {
  Outcome o;
  o.ran = true;
  o.status = status;
  o.body = body;
  o.content_type = "application/json";
  o.tokens = Tokenize(body, o.content_type);
  o.served = std::move(served);
  return o;
}

RunResult MakeRun(std::string name, std::vector<Outcome> steps, int instances = 1) {
  RunResult r;
  r.name = std::move(name);
  r.instances = instances;
  r.steps = std::move(steps);
  return r;
}

std::vector<std::string> Kinds(const Report& r) {
  std::vector<std::string> k;
  for (const auto& f : r.findings) k.push_back(f.kind);
  std::sort(k.begin(), k.end());
  k.erase(std::unique(k.begin(), k.end()), k.end());
  return k;
}

struct Fixture {
  Scenario sc;
  Fixture() { sc.steps = {MakeStep(1, "POST", "/login"), MakeStep(2, "GET", "/me")}; }
};

TEST(AnalyzeTest, SameAnswersEverywhereIsStateless) {
  Fixture f;
  auto base = MakeRun("baseline", {Got(200, R"({"user":"ana"})"), Got(200, R"({"user":"ana"})")});
  Report r = Analyze(f.sc, {base, MakeRun("baseline-2", base.steps),
                            MakeRun("spread", base.steps, 2), MakeRun("reborn", base.steps)});
  EXPECT_EQ(r.verdict, "stateless");
  EXPECT_TRUE(r.findings.empty());
  EXPECT_NE(ReportText(r).find("is stateless"), std::string::npos);
}

// A login whose session the second instance did not know (401), no file written.
std::vector<RunResult> LostSessionRuns() {
  Outcome login = Got(200, R"({"user":"ana"})");
  login.cookies_set = {"sid"};
  Outcome me = Got(200, R"({"user":"ana"})");
  me.cookies_sent = {"sid"};
  Outcome lost = Got(401, R"({"error":"not logged in"})", "web.2#1");
  lost.cookies_sent = {"sid"};
  auto base = MakeRun("baseline", {login, me});
  return {base, MakeRun("baseline-2", base.steps), MakeRun("spread", {login, lost}, 2),
          MakeRun("reborn", base.steps)};
}

TEST(AnalyzeTest, ALostSessionWithoutFilesIsSessionMemory) {
  Fixture f;
  Report r = Analyze(f.sc, LostSessionRuns());
  EXPECT_EQ(r.verdict, "stateful");
  ASSERT_EQ(Kinds(r), std::vector<std::string>{"session-memory"});
  EXPECT_EQ(r.findings[0].step, 2);
  EXPECT_EQ(r.findings[0].instances, "web.1#1 -> web.2#1");
}

TEST(AnalyzeTest, ALostSessionWithSessionFilesIsSessionFile) {
  Fixture f;
  Outcome login = Got(302);
  login.location = "/";
  login.cookies_set = {"connect.sid"};
  login.files = {{"sessions/abc.json", 120, "created", "web.1#1", 1, ""}};
  Outcome me = Got(200, "{}");
  me.cookies_sent = {"connect.sid"};
  Outcome redirected = Got(302, "", "web.2#1");
  redirected.location = "/login?next=/me";
  redirected.cookies_sent = {"connect.sid"};
  auto base = MakeRun("baseline", {login, me});
  Report r =
      Analyze(f.sc, {base, MakeRun("baseline-2", base.steps),
                     MakeRun("spread", {login, redirected}, 2), MakeRun("reborn", base.steps)});
  ASSERT_EQ(Kinds(r), std::vector<std::string>{"session-file"});
  EXPECT_EQ(r.findings[0].files.size(), 1u);
  EXPECT_EQ(r.findings[0].files[0].path, "sessions/abc.json");
}

TEST(AnalyzeTest, MissingDataWithoutFilesIsGlobalCache_AndDataFilesAreLocalDb) {
  Scenario sc;
  sc.steps = {MakeStep(1, "POST", "/notes"), MakeStep(2, "GET", "/notes")};
  auto base = MakeRun("baseline", {Got(201, R"({"id":1})"), Got(200, R"({"notes":["milk"]})")});
  Report r = Analyze(
      sc, {base, MakeRun("baseline-2", base.steps),
           MakeRun("spread", {Got(201, R"({"id":1})"), Got(200, R"({"notes":[]})", "web.2#1")}, 2),
           MakeRun("reborn", base.steps)});
  EXPECT_EQ(Kinds(r), std::vector<std::string>{"global-cache"});

  Outcome add = Got(201, R"({"id":1})");
  add.files = {{"data/notes.json", 40, "created", "web.1#1", 1, ""}};
  Report db = Analyze(sc, {base, MakeRun("baseline-2", base.steps),
                           MakeRun("spread", {add, Got(200, R"({"notes":[]})", "web.2#1")}, 2),
                           MakeRun("reborn", base.steps)});
  EXPECT_EQ(Kinds(db), std::vector<std::string>{"local-db-file"});

  // "sess" inside a word is no session: assessments.json is a data file.
  add.files = {{"data/assessments.json", 40, "created", "web.1#1", 1, ""}};
  Report word = Analyze(sc, {base, MakeRun("baseline-2", base.steps),
                             MakeRun("spread", {add, Got(200, R"({"notes":[]})", "web.2#1")}, 2),
                             MakeRun("reborn", base.steps)});
  EXPECT_EQ(Kinds(word), std::vector<std::string>{"local-db-file"});
  add.files = {{"tmp/sess_8f2a", 40, "created", "web.1#1", 1, ""}};  // PHP's naming
  Report php = Analyze(sc, {base, MakeRun("baseline-2", base.steps),
                            MakeRun("spread", {add, Got(200, R"({"notes":[]})", "web.2#1")}, 2),
                            MakeRun("reborn", base.steps)});
  auto kinds = Kinds(php);
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "session-file"), kinds.end());
  add.files = {{"data/userSessions.json", 40, "created", "web.1#1", 1, ""}};  // camelCase
  Report camel = Analyze(sc, {base, MakeRun("baseline-2", base.steps),
                              MakeRun("spread", {add, Got(200, R"({"notes":[]})", "web.2#1")}, 2),
                              MakeRun("reborn", base.steps)});
  kinds = Kinds(camel);
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "session-file"), kinds.end());
}

// A value drawn at random (an A/B bucket) that came out the same in both baselines looks like
// state in the spread run; one more baseline run that draws the other value shows it varies by
// itself. A list that lost an item still differs however many baselines there are.
TEST(AnalyzeTest, MoreBaselinesLearnWhatVariesByItself) {
  Scenario sc;
  sc.steps = {MakeStep(1, "GET", "/home"), MakeStep(2, "GET", "/notes")};
  auto home = [](const char* bucket) {
    return Got(200, fmt::format(R"({{"variant":"{}","notes":["milk"]}})", bucket));
  };
  RunResult base = MakeRun("baseline", {home("B"), Got(200, R"({"notes":["milk"]})")});
  RunResult spread =
      MakeRun("spread", {home("A"), Got(200, R"({"notes":["milk"]})", "web.2#1")}, 2);
  Report first =
      Analyze(sc, {base, MakeRun("baseline-2", base.steps), spread, MakeRun("reborn", base.steps)});
  ASSERT_EQ(first.findings.size(), 1u);
  EXPECT_TRUE(first.findings[0].body_only);
  Report learned =
      Analyze(sc, {base, MakeRun("baseline-2", base.steps), spread, MakeRun("reborn", base.steps),
                   MakeRun("baseline-3", {home("A"), base.steps[1]})});
  EXPECT_TRUE(learned.findings.empty()) << learned.findings[0].observed;
  EXPECT_EQ(learned.verdict, "stateless");

  spread.steps[1] = Got(200, R"({"notes":[]})", "web.2#1");
  Report lost =
      Analyze(sc, {base, MakeRun("baseline-2", base.steps), spread, MakeRun("reborn", base.steps),
                   MakeRun("baseline-3", {home("A"), base.steps[1]})});
  EXPECT_EQ(Kinds(lost), std::vector<std::string>{"global-cache"});
  EXPECT_EQ(lost.findings[0].step, 2);

  // An extra baseline whose step failed (a reset: no status, no body) teaches nothing about
  // that step: the loss stays found.
  Outcome reset;
  reset.ran = true;
  reset.error = "connection reset";
  Report still =
      Analyze(sc, {base, MakeRun("baseline-2", base.steps), spread, MakeRun("reborn", base.steps),
                   MakeRun("baseline-3", {home("A"), reset})});
  EXPECT_EQ(Kinds(still), std::vector<std::string>{"global-cache"});
  // Nor does one whose test command failed.
  RunResult failed = MakeRun("baseline-3", {home("A"), Got(200, R"({"notes":[]})")});
  failed.command_exit = 1;
  Report kept = Analyze(
      sc, {base, MakeRun("baseline-2", base.steps), spread, MakeRun("reborn", base.steps), failed});
  EXPECT_EQ(Kinds(kept), std::vector<std::string>{"global-cache"});
}

// A test command whose second baseline run sent other requests cannot be compared step by step.
TEST(AnalyzeTest, ASecondBaselineWithOtherRequestsIsBroken) {
  Scenario sc;
  sc.steps = {MakeStep(1, "GET", "/a"), MakeStep(2, "GET", "/b")};
  RunResult base = MakeRun("baseline", {Got(200, "a"), Got(200, "b")});
  base.requests = {"GET /a", "GET /b"};
  RunResult second = MakeRun("baseline-2", {Got(200, "a")});
  second.requests = {"GET /a"};
  Report r =
      Analyze(sc, {base, second, MakeRun("spread", base.steps, 2), MakeRun("reborn", base.steps)});
  EXPECT_EQ(r.verdict, "baseline-broken");
  EXPECT_NE(r.error.find("made 1 requests where the first made 2"), std::string::npos) << r.error;
}

// A test command that never used BASE_URL (supertest runs the app in the test's own process):
// no verdict on no evidence.
TEST(AnalyzeTest, NoRequestAtAllIsInconclusive) {
  Scenario sc;
  Report r = Analyze(sc, {MakeRun("baseline", {}), MakeRun("baseline-2", {}),
                          MakeRun("spread", {}, 2), MakeRun("reborn", {})});
  EXPECT_EQ(r.verdict, "error");
  EXPECT_NE(r.error.find("inconclusive: no request reached the app"), std::string::npos) << r.error;
}

// Browsers send Upgrade-Insecure-Requests with every page load: that is no WebSocket.
TEST(AnalyzeTest, UpgradeInsecureRequestsIsNoRealtimeSession) {
  Fixture f;
  for (auto& step : f.sc.steps) step.headers = {{"Upgrade-Insecure-Requests", "1"}};
  Report r = Analyze(f.sc, LostSessionRuns());
  EXPECT_EQ(Kinds(r), std::vector<std::string>{"session-memory"});
}

TEST(AnalyzeTest, FilesWrittenWhileServingAreStateEvenWhenEveryStepPasses) {
  Scenario sc;
  sc.steps = {MakeStep(1, "POST", "/photos")};
  Outcome up = Got(201, R"({"id":"x"})");
  up.files = {{"uploads/x", 825, "created", "web.1#1", 1, "the same bytes as the uploaded file"}};
  auto base = MakeRun("baseline", {up});
  Report r = Analyze(sc, {base, MakeRun("baseline-2", base.steps), MakeRun("spread", {up}, 2),
                          MakeRun("reborn", {up})});
  ASSERT_EQ(Kinds(r), std::vector<std::string>{"upload-on-disk"});
  EXPECT_EQ(r.findings[0].observed, "every request passed");
}

TEST(AnalyzeTest, ValuesThatVaryInTheBaselineAreNotState) {
  Scenario sc;
  sc.steps = {MakeStep(1, "GET", "/")};
  auto a = MakeRun("baseline", {Got(200, R"({"now":"12:00:01","token":"a1","n":1})")});
  auto b = MakeRun("baseline-2", {Got(200, R"({"now":"12:00:02","token":"b2","n":1})")});
  Report r = Analyze(
      sc, {a, b, MakeRun("spread", {Got(200, R"({"now":"12:00:09","token":"c3","n":1})")}, 2),
           MakeRun("reborn", {Got(200, R"({"now":"12:01:00","token":"d4","n":1})")})});
  EXPECT_EQ(r.verdict, "stateless");
  Report changed =
      Analyze(sc, {a, b, MakeRun("spread", {Got(200, R"({"now":"1","token":"c","n":0})")}, 2),
                   MakeRun("reborn", a.steps)});
  EXPECT_EQ(changed.verdict, "stateful");
}

TEST(AnalyzeTest, RealtimeSessionsAndBrokenBaselines) {
  Scenario sc;
  sc.steps = {MakeStep(1, "GET", "/socket.io/?EIO=4&transport=polling"),
              MakeStep(2, "GET", "/socket.io/?EIO=4&transport=polling&sid=x")};
  sc.steps[1].expect.status = 200;
  auto base = MakeRun("baseline", {Got(200, "0{}"), Got(200, "6")});
  Outcome refused = Got(400, R"({"code":1,"message":"Session ID unknown"})", "web.2#1");
  refused.expect_failures = {"status 400 (expected 200)"};
  Report r = Analyze(
      sc, {base, MakeRun("baseline-2", base.steps),
           MakeRun("spread", {Got(200, "0{}"), refused}, 2), MakeRun("reborn", base.steps)});
  EXPECT_EQ(Kinds(r), std::vector<std::string>{"in-memory-websocket-state"});

  auto broken = MakeRun("baseline", {Got(200, "0{}"), refused});
  Report b = Analyze(sc, {broken, broken});
  EXPECT_EQ(b.verdict, "baseline-broken");
  EXPECT_NE(b.error.find("step 2"), std::string::npos);
}

TEST(ReportTest, JsonAndJunitCarryTheFindings) {
  Fixture f;
  Outcome lost = Got(401, "{}", "web.2#1");
  lost.cookies_sent = {"sid"};
  auto base = MakeRun("baseline", {Got(200, "{}"), Got(200, "{}")});
  Report r =
      Analyze(f.sc, {base, MakeRun("baseline-2", base.steps),
                     MakeRun("spread", {Got(200, "{}"), lost}, 2), MakeRun("reborn", base.steps)});
  auto v = boost::json::parse(ReportJson(r));
  EXPECT_EQ(v.at("verdict").as_string(), "stateful");
  EXPECT_EQ(v.at("findings").as_array()[0].at("kind").as_string(), "session-memory");
  std::string xml = ReportJunit(r);
  EXPECT_NE(xml.find("<testsuites name=\"phoenix audit\" tests=\"3\" failures=\"2\""),
            std::string::npos)
      << xml;
  EXPECT_NE(
      xml.find("classname=\"phoenix.audit.findings\" name=\"session-memory (step 2, spread)\""),
      std::string::npos);
}

}  // namespace
}  // namespace phoenix::audit

namespace phoenix::audit {
namespace {

TEST(AnalyzeTest, ALoginFormInsteadOfThePageIsALostSession) {
  Scenario sc;
  sc.steps = {MakeStep(1, "POST", "/login"), MakeStep(2, "GET", "/dashboard")};
  Outcome login = Got(302);
  login.location = "/dashboard";
  login.cookies_set = {"sid"};
  Outcome page = Got(200, "<h1>Dashboard of ana</h1><p>3 orders</p>");
  page.content_type = "text/html";
  page.tokens = Tokenize(page.body, "text/html");
  page.cookies_sent = {"sid"};
  Outcome form =
      Got(200, "<form><input name=user><input type=\"password\"><button>Log in</button></form>",
          "web.2#1");
  form.content_type = "text/html";
  form.tokens = Tokenize(form.body, "text/html");
  form.cookies_sent = {"sid"};
  auto base = MakeRun("baseline", {login, page});
  Report r = Analyze(sc, {base, MakeRun("baseline-2", base.steps),
                          MakeRun("spread", {login, form}, 2), MakeRun("reborn", base.steps)});
  EXPECT_EQ(Kinds(r), std::vector<std::string>{"session-memory"});
}

// A recording whose app host was guessed and which mostly went elsewhere: "stateless" would
// speak of requests never sent.
TEST(AnalyzeTest, AGuessedHostThatMostRequestsDidNotGoToIsInconclusive) {
  Fixture f;
  f.sc.host_guess = "login.idp.example (1 of the 1 page loads went there)";
  for (int i = 0; i < 3; ++i)
    f.sc.skipped.push_back({"GET https://shop.example/x", "another host", true});
  f.sc.skipped.push_back({"GET data:image/png;base64,AA", "a data: URL", false});
  auto base = MakeRun("baseline", {Got(200), Got(200)});
  auto runs =
      std::vector<RunResult>{base, MakeRun("baseline-2", base.steps),
                             MakeRun("spread", base.steps, 2), MakeRun("reborn", base.steps)};
  Report r = Analyze(f.sc, runs);
  EXPECT_EQ(r.verdict, "error");
  EXPECT_NE(r.error.find("inconclusive: 3 of the recording's requests were not replayed"),
            std::string::npos)
      << r.error;
  EXPECT_NE(r.error.find("--host"), std::string::npos);
  // Named with --host, or fewer left out than replayed: the verdict stands.
  f.sc.host_guess.clear();
  EXPECT_EQ(Analyze(f.sc, runs).verdict, "stateless");
  f.sc.host_guess = "shop.example (...)";
  f.sc.skipped.resize(2);
  EXPECT_EQ(Analyze(f.sc, runs).verdict, "stateless");
}

// The browser was logged in, the replay is not: every run would compare logged-out answers.
TEST(AnalyzeTest, ARecordingTheBaselineCannotReplayIsABrokenBaseline) {
  auto check = [](std::vector<int> recorded, std::vector<Outcome> got) {
    Scenario sc;
    for (size_t i = 0; i < recorded.size(); ++i) {
      sc.steps.push_back(MakeStep(static_cast<int>(i + 1), "GET", "/p" + std::to_string(i)));
      sc.steps.back().recorded_status = recorded[i];
    }
    auto base = MakeRun("baseline", got);
    return Analyze(
        sc, {base, MakeRun("baseline-2", got), MakeRun("spread", got, 2), MakeRun("reborn", got)});
  };
  Outcome to_login = Got(302);
  to_login.location = "/login?next=%2Fdashboard";
  Report r = check({200, 200, 200, 200}, {to_login, Got(200), Got(200), Got(200)});
  EXPECT_EQ(r.verdict, "baseline-broken");
  EXPECT_NE(r.error.find("step 1 ('GET /p0') got 302 -> /login?next=%2Fdashboard where the "
                         "browser got 200"),
            std::string::npos)
      << r.error;
  EXPECT_NE(ReportText(r).find("the baseline is broken"), std::string::npos);
  // A CSRF token of the recorded session: the login's redirect became a 403.
  r = check({200, 302, 200, 200}, {Got(200), Got(403), Got(200), Got(200)});
  EXPECT_EQ(r.verdict, "baseline-broken");
  // Most answers of another kind than recorded.
  r = check({200, 200, 200}, {Got(404), Got(404), Got(200)});
  EXPECT_EQ(r.verdict, "baseline-broken");
  EXPECT_NE(r.error.find("2 of its 3 requests"), std::string::npos) << r.error;
  // The browser's cache (304) and one odd answer are not.
  EXPECT_EQ(check({304, 200, 200}, {Got(200), Got(404), Got(200)}).verdict, "stateless");
}

TEST(ReportTest, ReportsAreValidUtf8AndXmlWhateverTheNames) {
  Fixture f;
  f.sc.steps[1].name = "GET /caf\xC3 \x01\x1b[31m\xFF";  // a cut "é", controls, never UTF-8
  auto base = MakeRun("baseline", {Got(200), Got(200)});
  auto lost = base.steps;
  lost[1] = Got(500, "", "web.2#1");
  Report r = Analyze(f.sc, {base, MakeRun("baseline-2", base.steps), MakeRun("spread", lost, 2),
                            MakeRun("reborn", base.steps)});
  r.warnings.push_back("not replayed: GET https://x/\xE4\xB8");
  std::string json = ReportJson(r);
  EXPECT_EQ(json.find('\xFF'), std::string::npos);
  EXPECT_EQ(json.find("caf\xC3\""), std::string::npos);
  EXPECT_NE(json.find("caf\xEF\xBF\xBD"), std::string::npos);
  boost::system::error_code ec;
  boost::json::parse(json, ec);  // strict: refuses invalid UTF-8
  EXPECT_FALSE(ec) << ec.message();
  std::string xml = ReportJunit(r);
  EXPECT_EQ(xml.find('\xFF'), std::string::npos);
  EXPECT_EQ(xml.find('\x01'), std::string::npos);
  EXPECT_EQ(xml.find('\x1b'), std::string::npos);
  // The cut character is replaced (U+FFFD), or escaped where the name is quoted in a message.
  EXPECT_TRUE(xml.find("caf\xEF\xBF\xBD") != std::string::npos ||
              xml.find("caf\\xc3") != std::string::npos)
      << xml;
}

}  // namespace
}  // namespace phoenix::audit
