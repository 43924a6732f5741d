#include "audit/cookies.h"

#include <gtest/gtest.h>

namespace phoenix::audit {
namespace {

constexpr int64_t kNow = 1'800'000'000;

TEST(CookieJarTest, StoresAndSends) {
  CookieJar jar;
  jar.Store("connect.sid=s%3Aabc.def; Path=/; HttpOnly; Secure; SameSite=Lax", "/login", kNow);
  jar.Store("theme=dark", "/", kNow);
  EXPECT_EQ(jar.Header("/", kNow), "connect.sid=s%3Aabc.def; theme=dark");
  jar.Store("connect.sid=new; Path=/", "/", kNow);
  EXPECT_EQ(jar.Header("/x", kNow), "connect.sid=new; theme=dark");  // creation order kept
}

TEST(CookieJarTest, DeletionAndExpiry) {
  CookieJar jar;
  jar.Store("a=1; Max-Age=10", "/", kNow);
  EXPECT_EQ(jar.Header("/", kNow + 5), "a=1");
  EXPECT_EQ(jar.Header("/", kNow + 11), "");
  jar.Store("b=1", "/", kNow);
  jar.Store("b=; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "/", kNow);
  EXPECT_EQ(jar.Header("/", kNow), "a=1");
  jar.Store("c=1; Max-Age=0", "/", kNow);
  EXPECT_EQ(jar.Header("/", kNow), "a=1");
  // Max-Age wins over Expires.
  jar.Store("d=1; Max-Age=100; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "/", kNow);
  EXPECT_EQ(jar.Header("/", kNow), "a=1; d=1");
}

TEST(CookieJarTest, Paths) {
  CookieJar jar;
  jar.Store("a=1; Path=/admin", "/", kNow);
  jar.Store("b=2", "/docs/page", kNow);  // default path /docs
  EXPECT_EQ(jar.Header("/", kNow), "");
  EXPECT_EQ(jar.Header("/admin/x", kNow), "a=1");
  EXPECT_EQ(jar.Header("/administrator", kNow), "");
  EXPECT_EQ(jar.Header("/docs?x=1", kNow), "b=2");
  EXPECT_TRUE(PathMatches("/a/b", "/a/"));
  EXPECT_FALSE(PathMatches("/ab", "/a"));
}

TEST(CookieJarTest, IgnoresNonsense) {
  CookieJar jar;
  jar.Store("novalue", "/", kNow);
  jar.Store("=x", "/", kNow);
  jar.Store("", "/", kNow);
  jar.Store("a=1; Max-Age=abc; Expires=garbage", "/", kNow);
  EXPECT_EQ(jar.Header("/", kNow), "a=1");
}

TEST(CookieDateTest, Formats) {
  EXPECT_EQ(ParseCookieDate("Thu, 01 Jan 1970 00:00:10 GMT"), 10);
  EXPECT_EQ(ParseCookieDate("Thursday, 01-Jan-70 00:00:10 GMT"), 10);
  EXPECT_EQ(ParseCookieDate("Thu Jan  1 00:00:10 1970"), 10);
  EXPECT_EQ(ParseCookieDate("nonsense"), -1);
}

}  // namespace
}  // namespace phoenix::audit
