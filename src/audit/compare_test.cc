#include "audit/compare.h"

#include <gtest/gtest.h>

namespace phoenix::audit {
namespace {

std::vector<std::string> T(std::string_view s) { return Tokenize(s, "text/html"); }

TEST(TokenizeTest, TextAndJson) {
  EXPECT_EQ(T("<p>Hello, ana!</p>"), (std::vector<std::string>{"<", "p", ">", "Hello", ",", "ana",
                                                               "!", "<", "/", "p", ">"}));
  auto j = Tokenize(R"({"a": 1, "b": [true, "x"], "c": {}})", "application/json; charset=utf-8");
  EXPECT_EQ(j, (std::vector<std::string>{".a=1", ".b[0]=true", ".b[1]=\"x\"", ".c={}"}));
  // Not JSON after all: read as text.
  EXPECT_EQ(Tokenize("oops", "application/json").size(), 1u);
}

TEST(DiffTest, FindsEdits) {
  auto a = T("a b c d e");
  auto b = T("a x c d e f");
  auto edits = Diff(a, b);
  ASSERT_EQ(edits.size(), 2u);
  EXPECT_EQ(edits[0].a_begin, 1u);
  EXPECT_EQ(edits[0].a_end, 2u);
  EXPECT_EQ(edits[1].a_begin, 5u);
  EXPECT_EQ(edits[1].b_end, 6u);
  EXPECT_TRUE(Diff(a, a).empty());
  EXPECT_EQ(Diff({}, b).size(), 1u);
}

TEST(DiffTest, BoundedWork) {
  std::vector<std::string> a, b;
  for (int i = 0; i < 5000; ++i) {
    a.push_back("a" + std::to_string(i));
    b.push_back("b" + std::to_string(i));
  }
  auto edits = Diff(a, b, 100);
  ASSERT_EQ(edits.size(), 1u);  // gave up: one edit over everything
  EXPECT_EQ(edits[0].a_end, 5000u);
}

TEST(CompareTest, IgnoresWhatVariesInTheBaseline) {
  auto a = T("<p>Hello ana, it is 10:41:07</p><p>2 photos</p>");
  auto b = T("<p>Hello ana, it is 10:41:09</p><p>2 photos</p>");
  Variance v(a, b);
  EXPECT_TRUE(CompareBodies(a, v, T("<p>Hello ana, it is 10:42:00</p><p>2 photos</p>")).same);
  auto d = CompareBodies(a, v, T("<p>Hello ana, it is 10:42:00</p><p>0 photos</p>"));
  EXPECT_FALSE(d.same);
  EXPECT_NE(d.baseline_excerpt.find("2"), std::string::npos);
  EXPECT_NE(d.observed_excerpt.find("0"), std::string::npos);
  EXPECT_FALSE(CompareBodies(a, v, T("<p>Please log in</p>")).same);
}

TEST(CompareTest, GeneratedValuesDifferByNature) {
  auto a = T(R"(<input name="_csrf" value="Zk3s9DkQ2mLp81xX">)");
  Variance none(a, a);
  EXPECT_TRUE(CompareBodies(a, none, T(R"(<input name="_csrf" value="Qr7TnB0aY4cWe2uV">)")).same);
  auto j = Tokenize(R"({"id":"7f9c2ba4e88f827d6160"})", "application/json");
  EXPECT_TRUE(CompareBodies(j, Variance(j, j),
                            Tokenize(R"({"id":"0a1b2c3d4e5f60718293"})", "application/json"))
                  .same);
  // Standard base64 (Rails' authenticity_token, a signed id): one token, whatever its + / =.
  auto rails = T(
      R"(<input name="authenticity_token" value="3R+78nRat8TUmwNSED0ywIgPtzjWfy0uXQsCes1p7Ak=">)");
  auto other = T(
      R"(<input name="authenticity_token" value="SrvDxz67wg3f/RZqKBp+cvTwmT5/yBkJzn1wK2aQx0E=">)");
  EXPECT_EQ(rails.size(), other.size());
  EXPECT_TRUE(CompareBodies(rails, Variance(rails, rails), other).same);
  auto meta = T(R"(<meta name="csrf-token" content="a+/b9Z/QwErTy12uIoPAsDfG3hJkL==">)");
  EXPECT_TRUE(
      CompareBodies(meta, Variance(meta, meta),
                    T(R"(<meta name="csrf-token" content="Zq9/+XcVbNm31LkJhGfDsAp0oIuYtRe==">)"))
          .same);
  // Paths and words are still words: a different file name is a difference.
  auto page = T("<img src=\"/uploads/photos/cat.png\">");
  EXPECT_FALSE(
      CompareBodies(page, Variance(page, page), T("<img src=\"/uploads/photos/dog.png\">")).same);
  auto aspnet = T("<a href=\"/Products/Details/1234\">");
  EXPECT_FALSE(
      CompareBodies(aspnet, Variance(aspnet, aspnet), T("<a href=\"/Products/Details/1233\">"))
          .same);
  EXPECT_FALSE(LooksGenerated("photos"));
  EXPECT_FALSE(LooksGenerated("12"));
  EXPECT_TRUE(LooksGenerated("1764061234567"));
  EXPECT_TRUE(LooksGenerated("550e8400-e29b-41d4-a716-446655440000"));
}

}  // namespace
}  // namespace phoenix::audit
