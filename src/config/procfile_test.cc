#include <gtest/gtest.h>

#include <string>

#include "config/config.h"

namespace phoenix {
namespace {

std::string ErrorOf(const Result<std::vector<ProcfileEntry>>& result) {
  return result.ok() ? "<unexpectedly ok>" : result.error().message;
}

std::vector<ProcfileEntry> MustParse(const std::string& text) {
  auto result = ParseProcfile(text, "Procfile");
  EXPECT_TRUE(result.ok()) << ErrorOf(result);
  return result.ok() ? *result : std::vector<ProcfileEntry>{};
}

TEST(ParseProcfileTest, TypesInOrderWithLines) {
  auto entries = MustParse("web: node server.js\nworker: node worker.js --queue=jobs\n");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].type, "web");
  EXPECT_EQ(entries[0].command, "node server.js");
  EXPECT_EQ(entries[0].line, 1);
  EXPECT_EQ(entries[1].type, "worker");
  EXPECT_EQ(entries[1].command, "node worker.js --queue=jobs");
  EXPECT_EQ(entries[1].line, 2);
}

TEST(ParseProcfileTest, TypeCharacters) {
  auto entries = MustParse("release_phase-2: ./migrate\nWEB9: x\n");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].type, "release_phase-2");
  EXPECT_EQ(entries[1].type, "WEB9");
}

TEST(ParseProcfileTest, IgnoresBlankAndCommentLines) {
  auto entries = MustParse("# processes\n\n   \n\t# indented comment\nweb: npm start\n\n");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].line, 5);
}

TEST(ParseProcfileTest, ToleratesCrlfAndBom) {
  auto entries = MustParse("\xEF\xBB\xBFweb: node server.js\r\nworker: node w.js\r\n");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].type, "web");
  EXPECT_EQ(entries[0].command, "node server.js");
  EXPECT_EQ(entries[1].command, "node w.js");
}

TEST(ParseProcfileTest, TrimsCommandAndAllowsIndentedType) {
  auto entries = MustParse("  web:\t  node server.js  \t\nworker:x");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].type, "web");
  EXPECT_EQ(entries[0].command, "node server.js");
  EXPECT_EQ(entries[1].command, "x");
}

TEST(ParseProcfileTest, CommandKeepsColonsHashesAndQuotes) {
  auto entries = MustParse("web: sh -c 'echo a:b # not a comment' && PORT=$PORT node s.js\n");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].command, "sh -c 'echo a:b # not a comment' && PORT=$PORT node s.js");
}

TEST(ParseProcfileTest, LastLineWithoutNewline) {
  auto entries = MustParse("web: a\nworker: b");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].command, "b");
}

TEST(ParseProcfileTest, EmptyFileIsAnError) {
  const std::string expected =
      "Procfile: no process types (expected lines like 'web: node server.js')";
  EXPECT_EQ(ErrorOf(ParseProcfile("", "Procfile")), expected);
  EXPECT_EQ(ErrorOf(ParseProcfile("# only comments\n\n  \r\n", "Procfile")), expected);
}

TEST(ParseProcfileTest, ErrorsNameTheFileGiven) {
  EXPECT_EQ(ErrorOf(ParseProcfile("", "apps/shop/Procfile")).rfind("apps/shop/Procfile: ", 0), 0u);
  EXPECT_EQ(
      ErrorOf(ParseProcfile("web node", "apps/shop/Procfile")).rfind("apps/shop/Procfile:1:4: ", 0),
      0u);
}

TEST(ParseProcfileTest, LineWithoutColonIsMalformed) {
  std::string message = ErrorOf(ParseProcfile("web: a\nworker node worker.js\n", "Procfile"));
  EXPECT_EQ(message.rfind("Procfile:2:7: malformed line: no ':' after the process type", 0), 0u)
      << message;
  EXPECT_NE(message.find("e.g. 'web: node server.js'"), std::string::npos) << message;
}

TEST(ParseProcfileTest, MalformedColumnCountsIndentation) {
  std::string message = ErrorOf(ParseProcfile("\n  node server.js\n", "Procfile"));
  EXPECT_EQ(message.rfind("Procfile:2:7: malformed line", 0), 0u) << message;
}

TEST(ParseProcfileTest, MissingType) {
  std::string message = ErrorOf(ParseProcfile("  : node server.js\n", "Procfile"));
  EXPECT_EQ(message.rfind("Procfile:1:3: missing process type before ':'", 0), 0u) << message;
}

TEST(ParseProcfileTest, BadTypeCharacterPointsAtIt) {
  std::string message = ErrorOf(ParseProcfile("web: a\nweb.1: node s.js\n", "Procfile"));
  EXPECT_EQ(message.rfind("Procfile:2:4: invalid character '.' in process type 'web.1'", 0), 0u)
      << message;
  EXPECT_NE(message.find("letters, digits, '_' and '-'"), std::string::npos) << message;

  message = ErrorOf(ParseProcfile("my web: x\n", "Procfile"));
  EXPECT_EQ(message.rfind("Procfile:1:3: invalid character ' ' in process type 'my web'", 0), 0u)
      << message;

  message = ErrorOf(ParseProcfile("web : x\n", "Procfile"));
  EXPECT_EQ(message.rfind("Procfile:1:4: invalid character ' '", 0), 0u) << message;

  // A character beyond ASCII is named whole, not as its first byte.
  message =
      ErrorOf(ParseProcfile("w\xC3\xA9"
                            "b: x\n",
                            "Procfile"));
  EXPECT_EQ(message.rfind("Procfile:1:2: invalid character '\xC3\xA9' in process type 'w\xC3\xA9"
                          "b'",
                          0),
            0u)
      << message;

  message =
      ErrorOf(ParseProcfile("w\x01"
                            "b: x\n",
                            "Procfile"));
  EXPECT_EQ(message.rfind("Procfile:1:2: invalid character '\\x01'", 0), 0u) << message;

  message = ErrorOf(ParseProcfile("caf\xC3\xA9: x\n", "Procfile"));
  EXPECT_EQ(message.rfind("Procfile:1:4: invalid character", 0), 0u) << message;
}

TEST(ParseProcfileTest, EmptyCommand) {
  std::string message = ErrorOf(ParseProcfile("web: a\nworker:   \r\n", "Procfile"));
  EXPECT_EQ(message.rfind("Procfile:2:8: empty command for process type 'worker'", 0), 0u)
      << message;
  message = ErrorOf(ParseProcfile("web:", "Procfile"));
  EXPECT_EQ(message.rfind("Procfile:1:5: empty command for process type 'web'", 0), 0u) << message;
}

TEST(ParseProcfileTest, DuplicateTypeNamesFirstLine) {
  std::string message = ErrorOf(ParseProcfile("# app\nweb: a\nworker: b\n  web: c\n", "Procfile"));
  EXPECT_EQ(
      message.rfind("Procfile:4:3: duplicate process type 'web' (first defined on line 2)", 0), 0u)
      << message;
}

TEST(ParseProcfileTest, TypesAreCaseSensitive) {
  auto entries = MustParse("web: a\nWeb: b\n");
  EXPECT_EQ(entries.size(), 2u);
}

TEST(ParseProcfileTest, ReportsTheFirstError) {
  std::string message = ErrorOf(ParseProcfile("bad line\nweb:\n", "Procfile"));
  EXPECT_EQ(message.rfind("Procfile:1:", 0), 0u) << message;
}

// exec stops at a NUL: "a\0; b" would run only "a".
TEST(ParseProcfileTest, NulByteIsRefused) {
  std::string text("web: node s.js\nworker: node w.js\0; echo hi\n", 43);
  EXPECT_EQ(ErrorOf(ParseProcfile(text, "Procfile")),
            "Procfile:2:18: NUL byte in the line (a Procfile is text; remove it)");
  EXPECT_EQ(ErrorOf(ParseProcfile(std::string("# a\0b\nweb: x\n", 13), "Procfile"))
                .rfind("Procfile:1:4: NUL byte", 0),
            0u);
}

// A type names instances and their layer folders; a 300-character one could never be born.
TEST(ParseProcfileTest, TypeLengthIsLimited) {
  MustParse(std::string(63, 'w') + ": x\n");
  std::string message =
      ErrorOf(ParseProcfile("web: a\n  " + std::string(64, 'w') + ": x\n", "Procfile"));
  EXPECT_EQ(message,
            "Procfile:2:3: process type 'wwwwwwwwwwwwwwww...' is 64 characters long (at "
            "most 63)");
}

// The command is one argument of `sh -c`: Linux refuses one over 128 KiB at exec.
TEST(ParseProcfileTest, CommandLengthIsLimited) {
  MustParse("web: " + std::string(128 * 1024 - 64, 'x') + "\n");
  std::string message =
      ErrorOf(ParseProcfile("web:  " + std::string(128 * 1024, 'x') + "\n", "Procfile"));
  EXPECT_EQ(message,
            "Procfile:1:7: the command of process type 'web' is 131072 bytes long (at "
            "most 131008: Linux limits one argument of `sh -c` to 128 KiB)");
}

// Arbitrary bytes never crash the parser and always yield entries or a positioned error.
TEST(ParseProcfileTest, SurvivesArbitraryBytes) {
  unsigned state = 12345;
  const std::string alphabet = std::string("web:# \t\r\n-_.x\x01\xff", 16);
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    int length = static_cast<int>(state % 40);
    for (int i = 0; i < length; ++i) {
      state = state * 1103515245 + 12345;
      text += alphabet[(state >> 16) % alphabet.size()];
    }
    state = state * 1103515245 + 12345;
    auto result = ParseProcfile(text, "P");
    if (!result.ok()) {
      EXPECT_EQ(result.error().message.rfind("P:", 0), 0u) << result.error().message;
    } else {
      EXPECT_FALSE(result->empty());
    }
  }
}

}  // namespace
}  // namespace phoenix
