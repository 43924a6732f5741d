#include <gtest/gtest.h>

#include <string>

#include "config/config.h"

namespace phoenix {
namespace {

using Env = std::map<std::string, std::string>;

std::string ErrorOf(const std::string& text) {
  auto result = ParseDotenv(text, ".env");
  return result.ok() ? "<unexpectedly ok>" : result.error().message;
}

Env MustParse(const std::string& text) {
  auto result = ParseDotenv(text, ".env");
  EXPECT_TRUE(result.ok()) << result.error().message;
  return result.ok() ? *result : Env{};
}

TEST(ParseDotenvTest, EmptyFile) {
  EXPECT_TRUE(MustParse("").empty());
  EXPECT_TRUE(MustParse("\n\n# nothing\n   \n").empty());
}

TEST(ParseDotenvTest, UnquotedValues) {
  Env env = MustParse("A=1\nB=hello world\nC=\nD=  padded  \t\nE=a=b=c\n");
  EXPECT_EQ(env,
            (Env{{"A", "1"}, {"B", "hello world"}, {"C", ""}, {"D", "padded"}, {"E", "a=b=c"}}));
}

TEST(ParseDotenvTest, KeysMayHaveUnderscoresAndDigits) {
  Env env = MustParse("_PRIVATE=1\nlower_case=2\nK9=3\n");
  EXPECT_EQ(env, (Env{{"_PRIVATE", "1"}, {"lower_case", "2"}, {"K9", "3"}}));
}

TEST(ParseDotenvTest, BlanksAroundKeyAndEquals) {
  Env env = MustParse("  A = 1\n\tB\t=\t2\n");
  EXPECT_EQ(env, (Env{{"A", "1"}, {"B", "2"}}));
}

TEST(ParseDotenvTest, ExportPrefix) {
  Env env = MustParse("export A=1\nexport\tB='2'\nexport=3\nexported=4\n");
  EXPECT_EQ(env, (Env{{"A", "1"}, {"B", "2"}, {"export", "3"}, {"exported", "4"}}));
}

TEST(ParseDotenvTest, Comments) {
  Env env = MustParse(
      "# full line\n"
      "  # indented\n"
      "A=value # trailing comment\n"
      "B=value\t# after a tab\n"
      "C=#fff\n"
      "D=http://host/page#section\n"
      "E= # only a comment\n"
      "F=\"quoted\" # after quotes\n"
      "G='x'#directly after quotes\n");
  EXPECT_EQ(env, (Env{{"A", "value"},
                      {"B", "value"},
                      {"C", "#fff"},
                      {"D", "http://host/page#section"},
                      {"E", ""},
                      {"F", "quoted"},
                      {"G", "x"}}));
}

TEST(ParseDotenvTest, SingleQuotesAreLiteral) {
  Env env = MustParse("A='  spaced # not a comment  '\nB='$HOME \\n \"x\"'\nC=''\n");
  EXPECT_EQ(env, (Env{{"A", "  spaced # not a comment  "}, {"B", "$HOME \\n \"x\""}, {"C", ""}}));
}

TEST(ParseDotenvTest, DoubleQuotesUnderstandEscapes) {
  Env env = MustParse(R"(A="line1\nline2\ttab \"q\" back\\slash\r"
B="unknown \d escape kept"
C=""
D="it's # fine"
)");
  EXPECT_EQ(env["A"], "line1\nline2\ttab \"q\" back\\slash\r");
  EXPECT_EQ(env["B"], "unknown \\d escape kept");
  EXPECT_EQ(env["C"], "");
  EXPECT_EQ(env["D"], "it's # fine");
}

TEST(ParseDotenvTest, QuotedValuesSpanLines) {
  Env env = MustParse(
      "KEY=\"-----BEGIN KEY-----\nabc\ndef\n-----END KEY-----\"\n"
      "NEXT=1\n"
      "LITERAL='a\nb'\n");
  EXPECT_EQ(env["KEY"], "-----BEGIN KEY-----\nabc\ndef\n-----END KEY-----");
  EXPECT_EQ(env["NEXT"], "1");
  EXPECT_EQ(env["LITERAL"], "a\nb");
}

TEST(ParseDotenvTest, CrlfAndBom) {
  Env env = MustParse(
      "\xEF\xBB\xBF"
      "A=1\r\nB=\"x\r\ny\"\r\nC='z' \r\n");
  EXPECT_EQ(env, (Env{{"A", "1"}, {"B", "x\ny"}, {"C", "z"}}));
}

TEST(ParseDotenvTest, LastDefinitionWins) {
  Env env = MustParse("A=1\nB=2\nA=3\n");
  EXPECT_EQ(env, (Env{{"A", "3"}, {"B", "2"}}));
}

TEST(ParseDotenvTest, NoVariableExpansion) {
  EXPECT_EQ(MustParse("A=${HOME}/x\n")["A"], "${HOME}/x");
}

TEST(ParseDotenvTest, LastLineWithoutNewline) {
  EXPECT_EQ(MustParse("A=1\nB=2")["B"], "2");
  EXPECT_EQ(MustParse("A=\"q\"")["A"], "q");
}

TEST(ParseDotenvTest, KeyStartingWithDigit) {
  std::string message = ErrorOf("A=1\n  1FOO=bar\n");
  EXPECT_EQ(message.rfind(".env:2:3: invalid key '1FOO': keys do not start with a digit", 0), 0u)
      << message;
}

TEST(ParseDotenvTest, InvalidCharacterInKey) {
  std::string message = ErrorOf("FOO-BAR=1\n");
  EXPECT_EQ(message.rfind(".env:1:4: invalid character '-' in key 'FOO-BAR'", 0), 0u) << message;
  EXPECT_NE(message.find("letters, digits and '_'"), std::string::npos) << message;

  message = ErrorOf("\nMY KEY = 1\n");
  EXPECT_EQ(message.rfind(".env:2:3: invalid character ' ' in key 'MY KEY'", 0), 0u) << message;

  message = ErrorOf("A.B=1\n");
  EXPECT_EQ(message.rfind(".env:1:2: invalid character '.' in key 'A.B'", 0), 0u) << message;
  message = ErrorOf("K\xC3\x89Y=1\n");
  EXPECT_EQ(message.rfind(".env:1:2: invalid character '\xC3\x89' in key 'K\xC3\x89Y'", 0), 0u)
      << message;
}

TEST(ParseDotenvTest, InvalidCharacterAtKeyStart) {
  std::string message = ErrorOf("  -X=1\n");
  EXPECT_EQ(message.rfind(".env:1:3: invalid character '-' at the start of a key", 0), 0u)
      << message;
  message = ErrorOf("export $X=1\n");
  EXPECT_EQ(message.rfind(".env:1:8: invalid character '$' at the start of a key", 0), 0u)
      << message;
  message = ErrorOf("\"A\"=1\n");
  EXPECT_EQ(message.rfind(".env:1:1: invalid character '\"'", 0), 0u) << message;
}

TEST(ParseDotenvTest, MissingKey) {
  std::string message = ErrorOf("A=1\n =value\n");
  EXPECT_EQ(message.rfind(".env:2:2: missing key before '=' (expected KEY=value)", 0), 0u)
      << message;
}

TEST(ParseDotenvTest, MissingEquals) {
  std::string message = ErrorOf("A=1\nJUST_A_WORD\n");
  EXPECT_EQ(message.rfind(".env:2:12: missing '=' after key 'JUST_A_WORD' (expected KEY=value)", 0),
            0u)
      << message;

  message = ErrorOf("KEY value\n");
  EXPECT_EQ(message.rfind(".env:1:4: missing '=' after key 'KEY'", 0), 0u) << message;

  message = ErrorOf("export FOO");
  EXPECT_EQ(message.rfind(".env:1:11: missing '=' after key 'FOO'", 0), 0u) << message;

  message = ErrorOf("KEY: value\n");
  EXPECT_EQ(message.rfind(".env:1:4: missing '=' after key 'KEY'", 0), 0u) << message;
}

TEST(ParseDotenvTest, UnterminatedDoubleQuoteNamesItsLine) {
  std::string message = ErrorOf("A=1\nB=\"never closed\nC=2\nD=3\n");
  EXPECT_EQ(message.rfind(".env:2:3: unterminated '\"' in the value of 'B': the quote opened on "
                          "line 2 is never closed",
                          0),
            0u)
      << message;
}

TEST(ParseDotenvTest, UnterminatedSingleQuote) {
  std::string message = ErrorOf("\n\nSECRET = 'abc\n");
  EXPECT_EQ(message.rfind(".env:3:10: unterminated \"'\" in the value of 'SECRET': the quote "
                          "opened on line 3",
                          0),
            0u)
      << message;
}

TEST(ParseDotenvTest, EscapedQuoteDoesNotClose) {
  std::string message = ErrorOf("A=\"abc\\\"\n");
  EXPECT_EQ(message.rfind(".env:1:3: unterminated '\"'", 0), 0u) << message;
  message = ErrorOf("A=\"abc\\");
  EXPECT_EQ(message.rfind(".env:1:3: unterminated '\"'", 0), 0u) << message;
}

TEST(ParseDotenvTest, GarbageAfterClosingQuote) {
  std::string message = ErrorOf("A=\"quoted\"tail\n");
  EXPECT_EQ(message.rfind(".env:1:11: unexpected 't' after the closing quote of 'A'", 0), 0u)
      << message;

  message = ErrorOf("A=1\nB='it's'\n");
  EXPECT_EQ(message.rfind(".env:2:7: unexpected 's' after the closing quote of 'B'", 0), 0u)
      << message;

  // A multi-line value: the position is where the garbage is, not where the key was.
  message = ErrorOf("A=\"x\ny\" z\n");
  EXPECT_EQ(message.rfind(".env:2:4: unexpected 'z'", 0), 0u) << message;
}

TEST(ParseDotenvTest, ErrorsNameTheFileGiven) {
  auto result = ParseDotenv("BAD KEY=1", "config/prod.env");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message.rfind("config/prod.env:1:4: ", 0), 0u);
}

// The environment is C strings: FOO=a\0b would silently become FOO=a.
TEST(ParseDotenvTest, NulByteIsRefused) {
  EXPECT_EQ(ErrorOf(std::string("A=1\nFOO=a\0b\n", 12)),
            ".env:2:6: NUL byte (a .env file is text; remove it)");
  EXPECT_EQ(ErrorOf(std::string("\xEF\xBB\xBF\0", 4)).rfind(".env:1:1: NUL byte", 0), 0u);
  EXPECT_EQ(ErrorOf(std::string("A=\"x\r\ny\0\"\n", 9)).rfind(".env:2:2: NUL byte", 0), 0u);
}

// "KEY=value" over 128 KiB fails at exec as "command not found", for every instance.
TEST(ParseDotenvTest, EnvironmentStringLengthIsLimited) {
  // "FOO=" and the value, with the terminating NUL, exactly fill 128 KiB.
  Env env = MustParse("FOO=" + std::string(128 * 1024 - 5, 'x') + "\n");
  EXPECT_EQ(env["FOO"].size(), 128u * 1024 - 5);
  EXPECT_EQ(ErrorOf("A=1\nFOO=\"" + std::string(128 * 1024 - 4, 'x') + "\"\n"),
            ".env:2:5: 'FOO=...' is 131072 bytes long (at most 131071: Linux limits one "
            "environment variable to 128 KiB)");
  EXPECT_EQ(ErrorOf("FOO=" + std::string(200000, 'x')).rfind(".env:1:5: 'FOO=...' is 200004", 0),
            0u);
}

// Arbitrary bytes never crash the parser and always yield a map or a positioned error.
TEST(ParseDotenvTest, SurvivesArbitraryBytes) {
  unsigned state = 54321;
  const std::string alphabet = std::string("AB_1=#'\" \t\r\n\\xe\x01\xff", 18);
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    int length = static_cast<int>(state % 40);
    for (int i = 0; i < length; ++i) {
      state = state * 1103515245 + 12345;
      text += alphabet[(state >> 16) % alphabet.size()];
    }
    state = state * 1103515245 + 12345;
    auto result = ParseDotenv(text, "E");
    if (!result.ok()) {
      EXPECT_EQ(result.error().message.rfind("E:", 0), 0u) << result.error().message;
    }
  }
}

}  // namespace
}  // namespace phoenix
