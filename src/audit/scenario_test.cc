#include "audit/scenario.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace phoenix::audit {
namespace {

namespace fs = std::filesystem;

class ScenarioTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("phx-scenario-" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "fixtures");
    std::ofstream(dir_ / "fixtures" / "cat.png") << "PNGDATA";
  }
  void TearDown() override { fs::remove_all(dir_); }
  Result<Scenario> Parse(const std::string& text) {
    return ParseScenario(text, "s.json", dir_.string());
  }
  std::string ErrorOf(const std::string& text) {
    auto r = Parse(text);
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? "" : r.error().message;
  }
  fs::path dir_;
};

TEST_F(ScenarioTest, ParsesTheExampleOfTheFormat) {
  auto r = Parse(R"({
    "app": "photos", "cookies": true,
    "steps": [
      { "name": "log in", "method": "POST", "path": "/login",
        "form": { "user": "ana", "password": "secret" },
        "expect": { "status": 302, "location": "/" } },
      { "name": "read the csrf token", "method": "GET", "path": "/upload",
        "expect": { "status": 200, "body_contains": ["Upload", "_csrf"] },
        "extract": { "csrf": { "regex": "name=\"_csrf\" value=\"([^\"]+)\"" } } },
      { "name": "upload a photo", "method": "POST", "path": "/photos",
        "multipart": { "_csrf": "{{csrf}}", "photo": "@fixtures/cat.png;type=image/png" },
        "expect": { "status": 201 },
        "extract": { "id": { "json": ".id" } } },
      { "name": "see it", "method": "GET", "path": "/photos/{{id}}",
        "headers": { "Accept": "image/png" },
        "expect": { "status": 200, "header_contains": { "Content-Type": "image/png" } } }
    ]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->steps.size(), 4u);
  EXPECT_EQ(r->app, "photos");
  EXPECT_EQ(r->steps[0].body_kind, BodyKind::kForm);
  EXPECT_EQ(r->steps[0].expect.status, 302);
  EXPECT_EQ(r->steps[0].expect.location, "/");
  EXPECT_EQ(r->steps[1].expect.body_contains.size(), 2u);
  EXPECT_EQ(r->steps[1].extract[0].kind, Extract::Kind::kRegex);
  const auto& mp = r->steps[2].multipart;
  ASSERT_EQ(mp.size(), 2u);
  EXPECT_FALSE(mp[0].is_file);
  EXPECT_EQ(mp[0].value, "{{csrf}}");
  EXPECT_TRUE(mp[1].is_file);
  EXPECT_EQ(mp[1].content_type, "image/png");
  EXPECT_EQ(mp[1].filename, "cat.png");
  EXPECT_EQ(mp[1].file, (dir_ / "fixtures/cat.png").string());
  EXPECT_EQ(r->steps[3].method, "GET");
  EXPECT_EQ(r->steps[3].expect.header_contains[0].first, "Content-Type");
}

TEST_F(ScenarioTest, DefaultsAndCookiesPerStep) {
  auto r = Parse(R"({"cookies": false, "steps": [{"path": "/"}, {"path": "/a", "cookies": true}],
                     "notes": "top-level extras are allowed"})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->steps[0].method, "GET");
  EXPECT_FALSE(r->steps[0].cookies);
  EXPECT_TRUE(r->steps[1].cookies);
  EXPECT_FALSE(r->steps[0].expect.any());
}

TEST_F(ScenarioTest, JsonSyntaxErrorsHaveLineAndColumn) {
  EXPECT_EQ(ErrorOf("{\n  \"steps\": [\n    {\"path\": \"/\",}\n  ]\n}").rfind("s.json:3:", 0), 0u);
  EXPECT_NE(ErrorOf("{\"steps\": [{\"path\": \"/\"}]} x").find("text after"), std::string::npos);
  EXPECT_NE(ErrorOf("").find("not valid JSON"), std::string::npos);
}

TEST_F(ScenarioTest, ErrorsNameTheStepAndTheField) {
  std::string e =
      ErrorOf(R"({"steps": [{"path": "/"}, {"name": "up", "path": "/x", "expext": {}}]})");
  EXPECT_NE(e.find("step 2 ('up')"), std::string::npos) << e;
  EXPECT_NE(e.find("'expext'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'expect'"), std::string::npos) << e;

  e = ErrorOf(R"({"steps": [{"path": "/", "expect": {"stauts": 200}}]})");
  EXPECT_NE(e.find("expect"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'status'"), std::string::npos) << e;

  e = ErrorOf(R"({"steps": [{"path": "/", "expect": {"status": "200"}}]})");
  EXPECT_NE(e.find("expect.status"), std::string::npos) << e;

  e = ErrorOf(R"({"steps": [{"path": "/", "form": {"a": "b"}, "json": {}}]})");
  EXPECT_NE(e.find("at most one body"), std::string::npos) << e;

  e = ErrorOf(R"({"steps": [{"path": "x"}]})");
  EXPECT_NE(e.find("path"), std::string::npos) << e;
  // A whole path from an earlier step's answer (SCENARIO.md: {{name}} anywhere in path).
  auto next =
      Parse(R"({"steps": [{"method": "POST", "path": "/photos", "extract": {"next": {"header": )"
            R"("Location"}}}, {"path": "{{next}}"}]})");
  EXPECT_TRUE(next.ok()) << next.error().message;
  e = ErrorOf(R"({"steps": [{"path": "{{nobody}}"}]})");
  EXPECT_NE(e.find("nobody"), std::string::npos) << e;
  e = ErrorOf(R"({"steps": [{"path": "{{&me"}]})");  // no template: a path without its "/"
  EXPECT_NE(e.find("must start with /"), std::string::npos) << e;

  e = ErrorOf(R"({"steps": [{"method": "GET"}]})");
  EXPECT_NE(e.find("missing field \"path\""), std::string::npos) << e;

  e = ErrorOf(R"({"steps": [{"path": "/", "method": "GE T"}]})");
  EXPECT_NE(e.find("not an HTTP method"), std::string::npos) << e;

  e = ErrorOf(R"({"steps": [{"path": "/", "headers": {"X": "a\nb"}}]})");
  EXPECT_NE(e.find("headers.X"), std::string::npos) << e;

  EXPECT_NE(ErrorOf(R"({"steps": []})").find("empty"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"step": []})").find("missing \"steps\""), std::string::npos);
  EXPECT_NE(ErrorOf(R"([1])").find("expected a JSON object"), std::string::npos);
}

TEST_F(ScenarioTest, TemplatesMustComeFromEarlierSteps) {
  std::string e = ErrorOf(R"({"steps": [{"path": "/a/{{id}}"},
                                        {"path": "/", "extract": {"id": {"json": ".id"}}}]})");
  EXPECT_NE(e.find("step 1"), std::string::npos) << e;
  EXPECT_NE(e.find("{{id}}"), std::string::npos) << e;
  EXPECT_TRUE(Parse(R"({"steps": [{"path": "/", "extract": {"id": {"json": ".id"}}},
                                  {"path": "/a/{{ id }}"}]})")
                  .ok());
}

TEST_F(ScenarioTest, FilePartsMustExist) {
  std::string e = ErrorOf(R"({"steps": [{"path": "/", "multipart": {"f": "@nope.png"}}]})");
  EXPECT_NE(e.find("multipart.f"), std::string::npos) << e;
  EXPECT_NE(e.find("not found"), std::string::npos) << e;
  e = ErrorOf(R"({"steps": [{"path": "/", "multipart": {"f": "@fixtures/cat.png;size=3"}}]})");
  EXPECT_NE(e.find("unknown option"), std::string::npos) << e;
}

TEST_F(ScenarioTest, ExtractsAreChecked) {
  EXPECT_NE(
      ErrorOf(R"({"steps": [{"path": "/", "extract": {"a": {"regex": "("}}}]})").find("bad regex"),
      std::string::npos);
  EXPECT_NE(ErrorOf(R"({"steps": [{"path": "/", "extract": {"a": {"regex": "abc"}}}]})")
                .find("capture group"),
            std::string::npos);
  EXPECT_NE(
      ErrorOf(R"({"steps": [{"path": "/", "extract": {"a": {"json": ".a["}}}]})").find("JSON path"),
      std::string::npos);
  EXPECT_NE(ErrorOf(R"({"steps": [{"path": "/", "extract": {"a": {"jsn": ".a"}}}]})")
                .find("did you mean 'json'"),
            std::string::npos);
}

// A scenario saved by an editor on Windows starts with a byte-order mark.
TEST_F(ScenarioTest, AcceptsAUtf8ByteOrderMark) {
  auto r = Parse("\xEF\xBB\xBF{\"steps\":[{\"path\":\"/\"}]}");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->steps.size(), 1u);
}

TEST_F(ScenarioTest, LoadRefusesAFolderAndEndlessInput) {
  auto folder = LoadScenario(dir_.string());
  ASSERT_FALSE(folder.ok());
  EXPECT_EQ(folder.error().message, dir_.string() + ": is a directory, expected a scenario file");
  // /dev/zero never ends: reading stops at the cap rather than eating memory.
  auto endless = LoadScenario("/dev/zero");
  ASSERT_FALSE(endless.ok());
  EXPECT_EQ(endless.error().message,
            "/dev/zero: larger than 16 MiB, the most phoenix reads as a scenario; is this the "
            "right file?");
  auto missing = LoadScenario((dir_ / "nope.json").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("cannot read the scenario: No such file"),
            std::string::npos);
}

TEST_F(ScenarioTest, LoadReadsAFile) {
  std::ofstream(dir_ / "s.json") << "\xEF\xBB\xBF{\"steps\":[{\"path\":\"/a\"}]}\n";
  auto r = LoadScenario((dir_ / "s.json").string());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->dir, dir_.string());
}

TEST(ReadTrafficFileTest, StopsAtTheCap) {
  EXPECT_TRUE(ReadTrafficFile("/dev/null", 10, "recording").ok());
  auto r = ReadTrafficFile("/dev/zero", 3 << 20, "recording");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "/dev/zero: larger than 3 MiB, the most phoenix reads as a recording; is this the "
            "right file?");
}

TEST(JsonPathTest, Forms) {
  auto p = ParseJsonPath(".a.b[0].c");
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->size(), 4u);
  EXPECT_EQ((*p)[0].key, "a");
  EXPECT_TRUE((*p)[2].is_index);
  EXPECT_EQ((*p)[2].index, 0u);
  EXPECT_EQ((*p)[3].key, "c");
  EXPECT_TRUE(ParseJsonPath(".").ok());
  EXPECT_EQ(ParseJsonPath("[1]")->size(), 1u);
  EXPECT_EQ((*ParseJsonPath("a"))[0].key, "a");
  EXPECT_EQ((*ParseJsonPath(".[\"x.y\"]"))[0].key, "x.y");
  EXPECT_FALSE(ParseJsonPath("").ok());
  EXPECT_FALSE(ParseJsonPath(".a..b").ok());
  EXPECT_FALSE(ParseJsonPath(".a[x]").ok());
}

TEST(TemplateTest, Expands) {
  Pairs values = {{"id", "1"}, {"id", "2"}, {"t", "x y"}};
  std::string out, missing;
  EXPECT_TRUE(ExpandTemplate("/a/{{id}}/{{ t }}", values, out));
  EXPECT_EQ(out, "/a/2/x y");
  EXPECT_FALSE(ExpandTemplate("{{nope}}", values, out, &missing));
  EXPECT_EQ(missing, "nope");
  EXPECT_TRUE(ExpandTemplate("no {{ end", values, out));
  EXPECT_EQ(out, "no {{ end");
}

}  // namespace
}  // namespace phoenix::audit
