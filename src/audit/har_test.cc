#include "audit/har.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>

#include "audit/runner.h"

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
  EXPECT_EQ(r->skipped[0].request, "GET https://cdn.example/app.js");
  EXPECT_EQ(r->skipped[0].why, "another host");
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

// An EventSource stream stays open: replayed, the audit would wait for an end that never comes.
TEST(HarTest, EventStreamsAreNotReplayed) {
  auto r = ParseHar(
      R"({"log": {"entries": [)"
      R"({"request": {"method": "GET", "url": "http://a/"}},)"
      R"({"request": {"method": "GET", "url": "http://a/events", "headers": [)"
      R"({"name": "accept", "value": "text/event-stream"}]}},)"
      R"({"request": {"method": "GET", "url": "http://a/feed"},)"
      R"( "response": {"status": 200, "content": {"mimeType": "text/event-stream; charset=utf-8"}}},)"
      // A POST whose answer streamed this way (a chat API's) ended in the recording: replayed.
      R"({"request": {"method": "POST", "url": "http://a/chat", "headers": [)"
      R"({"name": "Accept", "value": "text/event-stream"}]},)"
      R"( "response": {"status": 200, "content": {"mimeType": "text/event-stream"}}})"
      R"(]}})",
      "t.har");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->steps.size(), 2u);
  EXPECT_EQ(r->steps[1].method, "POST");
  ASSERT_EQ(r->skipped.size(), 2u);
  EXPECT_NE(r->skipped[0].why.find("Server-Sent Events"), std::string::npos);
  EXPECT_EQ(r->skipped[1].request, "GET http://a/feed");
}

// Bodies a recording lacks are not replayed as empty ones; a body's type missing from postData
// is the recorded Content-Type.
TEST(HarTest, BodiesTheRecordingLacks) {
  const std::string photo =
      R"(--XY\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.jpg\"\r\n)"
      R"(Content-Type: image/jpeg\r\n\r\n\r\n--XY--\r\n)";
  auto r = ParseHar(R"({"log": {"entries": [)"
                    R"({"request": {"method": "GET", "url": "http://a/"}},)"
                    R"({"request": {"method": "POST", "url": "http://a/upload", "headers": [)"
                    R"({"name": "Content-Type", "value": "multipart/form-data; boundary=XY"},)"
                    R"({"name": "Content-Length", "value": "2048"}]}},)"
                    R"({"request": {"method": "POST", "url": "http://a/photos", "postData": {)"
                    R"("mimeType": "multipart/form-data; boundary=XY", "text": ")" +
                        photo +
                        R"("}}},)"
                        R"({"request": {"method": "POST", "url": "http://a/notes", "headers": [)"
                        R"({"name": "content-type", "value": "application/json"}],)"
                        R"( "postData": {"text": "{\"text\":\"milk\"}"}}})"
                        R"(]}})",
                    "t.har");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->steps.size(), 2u);
  ASSERT_EQ(r->skipped.size(), 2u);
  EXPECT_NE(r->skipped[0].why.find("body was not recorded"), std::string::npos);
  EXPECT_NE(r->skipped[1].why.find("files' bytes"), std::string::npos);
  EXPECT_EQ(r->steps[1].content_type, "application/json");
  EXPECT_EQ(r->steps[1].raw, R"({"text":"milk"})");
}

TEST(HarTest, TextAfterTheRecordingAndUtf16AreNamed) {
  const std::string one =
      R"({"log": {"entries": [{"request": {"method": "GET", "url": "http://a/"}}]}})";
  auto two = ParseHar(one + "\n" + one, "t.har");
  ASSERT_FALSE(two.ok());
  EXPECT_EQ(two.error().message, "t.har:2:1: text after the JSON document");
  EXPECT_TRUE(ParseHar(one + " \r\n\n", "t.har").ok());
  std::string utf16 = "\xff\xfe{\0\"\0";
  auto wide = ParseHar(utf16, "t.har");
  ASSERT_FALSE(wide.ok());
  EXPECT_NE(wide.error().message.find("UTF-16"), std::string::npos) << wide.error().message;
}

// A recording is replayed as one request an entry: a field that would end its line (CR LF in
// a header value, a method or URL with a space) could smuggle a second request to the app.
TEST(HarTest, RefusesWhatWouldNotBeOneRequest) {
  auto har = [](const std::string& request) {
    return R"({"log": {"entries": [{"request": {"method": "GET", "url": "http://a/"}}, )"
           R"({"request": )" +
           request + "}]}}";
  };
  struct Case {
    std::string request, message;
  };
  for (
      const Case& c : std::vector<Case>{
          {R"({"method": "GET", "url": "http://a/x", "headers": [{"name": "X", "value": "a\r\n\r\nDELETE /smuggled HTTP/1.1\r\nHost: x"}]})",
           "t.har: entry 2: request.headers[0] ('X'): control characters in a header value"},
          {R"({"method": "GET", "url": "http://a/x", "headers": [{"name": ":authority", "value": "a"}, {"name": "X Y", "value": "1"}]})",
           "t.har: entry 2: request.headers[1]: 'X Y' is not a header name"},
          {R"({"method": "GE T", "url": "http://a/x"})",
           "t.har: entry 2: request.method: 'GE T' is not an HTTP method"}}) {
    auto r = ParseHar(har(c.request), "t.har");
    ASSERT_FALSE(r.ok()) << c.request;
    EXPECT_EQ(r.error().message, c.message);
  }
  // An entry that is not replayed (another host) is not looked at.
  auto third = ParseHar(
      har(R"({"method": "GE T", "url": "http://cdn.example/x", "headers": [{"name": "X", "value": "a\r\nb"}]})"),
      "t.har");
  EXPECT_TRUE(third.ok()) << third.error().message;
  // HTTP/2 recordings name pseudo-headers with a colon; they are dropped, not refused.
  auto ok = ParseHar(
      har(R"({"method": "GET", "url": "http://a/x", "headers": [{"name": ":path", "value": "/x"}, {"name": "accept", "value": "text/html\t"}]})"),
      "t.har");
  EXPECT_TRUE(ok.ok()) << ok.error().message;
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

// Entries of a Chrome recording: `resource` is its _resourceType.
std::string Entry(const std::string& method, const std::string& url, const std::string& resource,
                  const std::string& time = "2024-05-01T10:00:00.000Z", int status = 200) {
  return R"({"startedDateTime": ")" + time + R"(", "_resourceType": ")" + resource +
         R"(", "request": {"method": ")" + method + R"(", "url": ")" + url +
         R"(", "headers": []}, "response": {"status": )" + std::to_string(status) + "}}";
}

std::string Har(const std::string& title, const std::vector<std::string>& entries) {
  std::string list;
  for (const auto& e : entries) list += (list.empty() ? "" : ",\n") + e;
  return R"({"log": {"pages": [{"title": ")" + title + R"("}], "entries": [)" + list + "]}}";
}

// An identity provider's login page first, a tag manager's script first, a document title for
// a page title: the app is where the page loads (then the requests) went.
TEST(HarTest, TheAppsHostIsWhereThePageLoadsWentNotTheFirstEntry) {
  const std::vector<std::string> app = {
      Entry("GET", "https://myapp.example.com/", "document"),
      Entry("GET", "https://myapp.example.com:443/api/me", "fetch"),
      Entry("GET", "http://MyApp.Example.com:80/dashboard", "document"),
      Entry("GET", "https://myapp.example.com./static/app.js", "script")};
  for (const auto& [title, first] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"https://login.idp.example/authorize",
            {Entry("GET", "https://login.idp.example/authorize?client_id=shop", "document"),
             Entry("POST", "https://login.idp.example/u/login", "document")}},
           {"Shop \u2013 Dashboard",
            {Entry("GET", "https://www.googletagmanager.com/gtm.js?id=GTM-X", "script")}}}) {
    auto entries = first;
    entries.insert(entries.end(), app.begin(), app.end());
    auto r = ParseHar(Har(title, entries), "t.har");
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->app, "myapp.example.com") << title;
    ASSERT_EQ(r->steps.size(), 4u) << title;  // the default ports and the case are one host
    EXPECT_EQ(r->steps[1].path, "/api/me");
    EXPECT_EQ(r->skipped.size(), first.size());
    EXPECT_NE(r->host_guess.find("myapp.example.com (2 of the"), std::string::npos)
        << r->host_guess;
  }
  // Firefox marks no resource type: its page loads ask for HTML.
  auto ff = ParseHar(R"({"log": {"entries": [
    {"request": {"method": "GET", "url": "https://cdn.example/a.js", "headers": []}},
    {"request": {"method": "GET", "url": "https://cdn.example/b.js", "headers": []}},
    {"request": {"method": "GET", "url": "https://shop.example/",
                 "headers": [{"name": "Accept", "value": "text/html,application/xhtml+xml"}]}}]}})",
                     "ff.har");
  ASSERT_TRUE(ff.ok()) << ff.error().message;
  EXPECT_EQ(ff->app, "shop.example");
  // --host names it; the guess is then not reported.
  auto named = ParseHar(Har("x", app), "t.har", "https://login.idp.example/");
  EXPECT_FALSE(named.ok());
  EXPECT_NE(named.error().message.find("no request to login.idp.example"), std::string::npos);
  named = ParseHar(Har("x", app), "t.har", "myapp.example.com:443");
  ASSERT_TRUE(named.ok()) << named.error().message;
  EXPECT_EQ(named->steps.size(), 4u);
  EXPECT_TRUE(named->host_guess.empty());
}

// HAR 1.2: sorted by startedDateTime; the login written last but sent first comes first.
TEST(HarTest, EntriesAreReplayedInTheOrderTheyStarted) {
  auto r = ParseHar(
      Har("x", {Entry("GET", "https://a.example/dashboard", "document", "2024-05-01T10:00:05Z"),
                Entry("GET", "https://a.example/api/me", "fetch", "2024-05-01T12:00:06.5+02:00"),
                Entry("POST", "https://a.example/login", "document", "2024-05-01T10:00:01.250Z")}),
      "t.har");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->steps.size(), 3u);
  EXPECT_EQ(r->steps[0].path, "/login");
  EXPECT_EQ(r->steps[1].path, "/dashboard");
  EXPECT_EQ(r->steps[2].path, "/api/me");
  EXPECT_EQ(r->steps[0].number, 1);
}

// Templates belong to scenarios: a recorded "{{name}}" is sent as recorded.
TEST(HarTest, BodiesAndHeadersAreVerbatim) {
  auto r = ParseHar(R"({"log": {"entries": [{"request": {"method": "POST",
    "url": "https://a.example/echo", "headers": [{"name": "X-Note", "value": "{{who}}"}],
    "postData": {"mimeType": "application/json", "text": "{\"msg\": \"Hello {{name}}\"}"}}}]}})",
                    "t.har");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->steps[0].templates);
  EXPECT_EQ(r->steps[0].raw, R"({"msg": "Hello {{name}}"})");
}

// Browsers send a path's non-ASCII bytes percent-encoded; a HAR may hold them decoded. A step
// name is cut at a character, never inside one.
TEST(HarTest, NonAsciiPathsAreEncodedAsBrowsersSendThem) {
  std::string long_path = "/echo/x" + std::string(100, 'a');
  auto r = ParseHar(
      Har("x",
          {Entry("GET", "https://a.example/caf\xC3\xA9/\xE4\xB8\xAD?q=\xC3\xBC x#frag", "fetch"),
           Entry("GET", "https://a.example/\xC3\xA9" + std::string(80, 'e'), "fetch")}),
      "t.har");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->steps[0].path, "/caf%C3%A9/%E4%B8%AD?q=%C3%BC%20x");
  for (const auto& step : r->steps) {
    for (char c : step.name) EXPECT_LT(static_cast<unsigned char>(c), 0x80) << step.name;
  }
}

// Chrome's multipart entries may carry only the fields' names: not to be sent as a form.
TEST(HarTest, AMultipartUploadWithoutItsBytesIsSkippedWithTheReason) {
  std::string text =
      "--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nnotes\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"n.txt\""
      "\r\nContent-Type: text/plain\r\n\r\nhello file\r\n--XyZ--\r\n";
  boost::json::object with_text{{"mimeType", "multipart/form-data; boundary=XyZ"}, {"text", text}};
  std::string har = R"({"log": {"entries": [{"request": {"method": "POST",
    "url": "https://a.example/upload", "postData": )" +
                    boost::json::serialize(with_text) + R"(}},
    {"request": {"method": "POST", "url": "https://a.example/upload", "postData": {
      "mimeType": "multipart/form-data; boundary=XyZ",
      "params": [{"name": "title", "value": "notes"},
                 {"name": "file", "fileName": "n.txt", "contentType": "text/plain"}]}}}]}})";
  auto r = ParseHar(har, "t.har");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->steps.size(), 1u);
  EXPECT_EQ(r->steps[0].body_kind, BodyKind::kRaw);
  // The file part is found in the recorded body, for the evidence on disk.
  auto parts = FileParts(r->steps[0].content_type, r->steps[0].raw);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].bytes, "hello file");
  ASSERT_EQ(r->skipped.size(), 1u);
  EXPECT_NE(r->skipped[0].why.find("multipart upload whose body the recording lacks"),
            std::string::npos);
}

// What the audit never reads (response bodies) does not stop it: invalid UTF-8 and lone
// surrogate escapes, as browsers write for a body cut in the middle of a character.
TEST(HarTest, BadTextInResponseBodiesIsTolerated) {
  for (std::string body :
       {std::string("caf\xE9 latin-1"), std::string(R"(cut \ud83d)"),
        std::string(R"(\udc00 low alone)"), std::string(R"(pair \ud83d\ude00)")}) {
    std::string har = R"({"log": {"entries": [{"request": {"method": "GET",
      "url": "https://a.example/"}, "response": {"status": 200, "content": {"text": ")" +
                      body + R"("}}}]}})";
    auto r = ParseHar(har, "t.har");
    EXPECT_TRUE(r.ok()) << body << ": " << r.error().message;
  }
  // An escaped backslash before "u" is not an escape.
  auto r = ParseHar(R"({"log": {"entries": [{"request": {"method": "GET",
    "url": "https://a.example/\\ud800"}}]}})",
                    "t.har");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->steps[0].path, "/\\ud800");
}

// Entries that are no request to the app say what they are.
TEST(HarTest, DataBlobAndWebSocketEntriesAreNamed) {
  auto r = ParseHar(Har("x", {Entry("GET", "https://a.example/", "document"),
                              Entry("GET", "data:image/png;base64,AAAA", "image"),
                              Entry("GET", "blob:https://a.example/6f1c", "other"),
                              Entry("GET", "wss://a.example/ws", "websocket")}),
                    "t.har");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->skipped.size(), 3u);
  EXPECT_NE(r->skipped[0].why.find("data: URL"), std::string::npos);
  EXPECT_FALSE(r->skipped[0].counts);
  EXPECT_NE(r->skipped[1].why.find("blob: URL"), std::string::npos);
  EXPECT_NE(r->skipped[2].why.find("WebSocket"), std::string::npos);
}

}  // namespace
}  // namespace phoenix::audit
