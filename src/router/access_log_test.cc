#include "router/access_log.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace phoenix::router {
namespace {

AccessEntry Normal() {
  AccessEntry e;
  e.method = "GET";
  e.path = "/photos?id=1";
  e.host = "example.com:5000";
  e.request_id = "f47ac10b-58cc-4372-a567-0e02b2c3d479";
  e.client_ip = "127.0.0.1";
  e.instance = "web.2";
  e.status = 200;
  e.connect_ms = 1;
  e.service_ms = 12;
  e.bytes = 5120;
  return e;
}

std::string Line(const AccessEntry& e) {
  std::string out;
  AppendAccessLine(e, out);
  return out;
}

TEST(AccessLogTest, InfoLine) {
  EXPECT_EQ(Line(Normal()),
            "at=info method=GET path=\"/photos?id=1\" host=example.com:5000 "
            "request_id=f47ac10b-58cc-4372-a567-0e02b2c3d479 fwd=\"127.0.0.1\" dyno=web.2 "
            "connect=1ms service=12ms status=200 bytes=5120 protocol=http\n");
}

TEST(AccessLogTest, ProtocolATrustedProxySaid) {
  AccessEntry e = Normal();
  e.protocol = "https";
  EXPECT_TRUE(Line(e).ends_with(" bytes=5120 protocol=https\n")) << Line(e);
}

TEST(AccessLogTest, AppendsWithoutClearing) {
  std::string out = "before\n";
  AppendAccessLine(Normal(), out);
  AppendAccessLine(Normal(), out);
  EXPECT_EQ(out.rfind("before\nat=info ", 0), 0u);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 3);
}

TEST(AccessLogTest, ErrorLine) {
  AccessEntry e = Normal();
  e.code = "H14";
  e.desc = "No web instances running";
  e.instance = "";
  e.status = 503;
  e.bytes = 0;
  e.connect_ms = 0;
  e.service_ms = 5000;
  EXPECT_EQ(Line(e),
            "at=error code=H14 desc=\"No web instances running\" method=GET path=\"/photos?id=1\" "
            "host=example.com:5000 request_id=f47ac10b-58cc-4372-a567-0e02b2c3d479 "
            "fwd=\"127.0.0.1\" dyno=- connect=0ms service=5000ms status=503 bytes=0 "
            "protocol=http\n");
}

TEST(AccessLogTest, RefusalBeforeAnythingWasParsed) {
  AccessEntry e;
  e.code = "H400";
  e.desc = "bad \"method\"";
  e.status = 400;
  e.client_ip = "127.0.0.1";
  EXPECT_EQ(Line(e),
            "at=error code=H400 desc=\"bad \\\"method\\\"\" method=- path=\"\" host=- "
            "request_id=- fwd=\"127.0.0.1\" dyno=- connect=0ms service=0ms status=400 bytes=0 "
            "protocol=http\n");
  e.desc = nullptr;
  EXPECT_NE(Line(e).find("desc=\"\" "), std::string::npos);
}

TEST(AccessLogTest, PathQuotesBackslashesAndControlBytesAreEscaped) {
  AccessEntry e = Normal();
  e.path = "/a\"b\\c";
  EXPECT_NE(Line(e).find(" path=\"/a\\\"b\\\\c\" "), std::string::npos) << Line(e);

  // A path that tries to end the line and forge a second one.
  std::string forged = "/x\" status=200\nat=info method=GET path=\"/admin";
  e.path = forged;
  std::string line = Line(e);
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << line;
  EXPECT_EQ(line.back(), '\n');
  EXPECT_NE(line.find("path=\"/x\\\" status=200\\x0aat=info method=GET path=\\\"/admin\" "),
            std::string::npos)
      << line;

  std::string controls("/\r\t\x01\x1b[31m\x7f", 10);
  e.path = controls;
  line = Line(e);
  EXPECT_NE(line.find("path=\"/\\x0d\\x09\\x01\\x1b[31m\\x7f\""), std::string::npos) << line;
  EXPECT_EQ(line.find('\r'), std::string::npos);
  EXPECT_EQ(line.find('\x1b'), std::string::npos);

  std::string nul("/a\0b", 4);
  e.path = nul;
  EXPECT_NE(Line(e).find("path=\"/a\\x00b\""), std::string::npos);
}

TEST(AccessLogTest, Utf8InPathIsKept) {
  AccessEntry e = Normal();
  e.path = "/caf\xc3\xa9";
  EXPECT_NE(Line(e).find("path=\"/caf\xc3\xa9\""), std::string::npos);
}

TEST(AccessLogTest, LongPathIsCut) {
  AccessEntry e = Normal();
  std::string path(5000, 'p');
  e.path = path;
  std::string line = Line(e);
  EXPECT_NE(line.find("path=\"" + std::string(512, 'p') + "...\" "), std::string::npos);
  EXPECT_LT(line.size(), 1000u);
}

TEST(AccessLogTest, TokensCannotForgeFields) {
  AccessEntry e = Normal();
  e.host = "evil.com status=500\nat=info";
  e.method = "GE T";
  e.request_id = "id\"x";
  std::string line = Line(e);
  EXPECT_NE(line.find(" host=evil.com?status=500?at=info "), std::string::npos) << line;
  EXPECT_NE(line.find("method=GE?T "), std::string::npos) << line;
  EXPECT_NE(line.find("request_id=id?x "), std::string::npos) << line;
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
  // Non-ASCII in a bare token becomes '?', byte by byte.
  e.host = "h\xc3\xa9";
  EXPECT_NE(Line(e).find(" host=h?? "), std::string::npos);
}

}  // namespace
}  // namespace phoenix::router
