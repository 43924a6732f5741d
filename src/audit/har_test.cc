#include "audit/har.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace phoenix::audit {
namespace {

TEST(HarTest, MainHostOnlyRecordedStatusesNoSessionHeaders) {
  auto r = ParseHar(R"({"log": {"pages": [{"title": "https://Shop.example/cart"}], "entries": [
    {"request": {"method": "GET", "url": "https://shop.example/cart?x=1#top",
                 "headers": [{"name": "Cookie", "value": "sid=old"}, {"name": ":authority", "value": "x"},
                             {"name": "Accept", "value": "text/html"}, {"name": "Accept-Encoding", "value": "br"}]},
     "response": {"status": 304}},
    {"request": {"method": "GET", "url": "https://cdn.example/app.js"}, "response": {"status": 200}},
    {"request": {"method": "POST", "url": "https://shop.example/cart",
                 "headers": [{"name": "Content-Type", "value": "x"}],
                 "postData": {"mimeType": "application/json", "text": "{\"sku\":1}"}},
     "response": {"status": 0}},
    {"request": {"method": "POST", "url": "https://shop.example/login",
                 "postData": {"mimeType": "application/x-www-form-urlencoded",
                              "params": [{"name": "user", "value": "ana"}]}},
     "response": {"status": 302}}
  ]}})",
                    "t.har");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->steps.size(), 3u);
  EXPECT_EQ(r->steps[0].path, "/cart?x=1");
  EXPECT_EQ(r->steps[0].recorded_status, 304);
  ASSERT_EQ(r->steps[0].headers.size(), 1u);  // Accept only
  EXPECT_EQ(r->steps[0].headers[0].first, "Accept");
  ASSERT_EQ(r->skipped.size(), 1u);
  EXPECT_EQ(r->skipped[0], "GET https://cdn.example/app.js");
  EXPECT_EQ(r->steps[1].body_kind, BodyKind::kRaw);
  EXPECT_EQ(r->steps[1].content_type, "application/json");
  EXPECT_TRUE(r->steps[1].headers.empty());   // the recorded Content-Type gives way to postData's
  EXPECT_FALSE(r->steps[1].recorded_status);  // 0: blocked or aborted
  EXPECT_EQ(r->steps[2].body_kind, BodyKind::kForm);
  EXPECT_EQ(r->steps[2].form[0].second, "ana");
}

TEST(HarTest, BadRecordingsAreErrorsNotCrashes) {
  for (const char* text :
       {"", "[]", "{\"log\": 1}", "{\"log\": {\"entries\": 3}}",
        "{\"log\": {\"pages\": [1], \"entries\": [{\"request\": {\"method\": \"GET\", \"url\": "
        "\"http://a/\"}}]}}",
        "{\"log\": {\"entries\": [{\"request\": {\"method\": 1, \"url\": \"http://a/\"}}]}}",
        "{\"log\": {\"entries\": [{\"request\": {\"method\": \"GET\", \"url\": "
        "\"ftp://a/\"}}]}}"}) {
    auto r = ParseHar(text, "t.har");
    if (r.ok()) {
      EXPECT_FALSE(r->steps.empty()) << text;
    } else {
      EXPECT_EQ(r.error().message.rfind("t.har", 0), 0u) << r.error().message;
    }
  }
}

TEST(HarTest, AcceptsAUtf8ByteOrderMark) {
  auto r = ParseHar(
      "\xEF\xBB\xBF{\"log\": {\"entries\": [{\"request\": {\"method\": \"GET\", \"url\": "
      "\"http://a/x\"}, \"response\": {\"status\": 200}}]}}",
      "t.har");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->steps.size(), 1u);
}

TEST(HarTest, LoadRefusesAFolder) {
  std::string dir = std::filesystem::temp_directory_path().string();
  auto r = LoadHar(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, dir + ": is a directory, expected a recording file");
}

}  // namespace
}  // namespace phoenix::audit
