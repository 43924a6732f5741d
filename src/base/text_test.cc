#include "base/text.h"

#include <gtest/gtest.h>

namespace phoenix {
namespace {

TEST(PrintableLine, EscapesWhatWouldSplitOrRecolourALine) {
  EXPECT_EQ(PrintableLine("uploads/a.jpg"), "uploads/a.jpg");
  EXPECT_EQ(PrintableLine("a\nphoenix | web.9 died"), "a\\nphoenix | web.9 died");
  EXPECT_EQ(PrintableLine("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
  EXPECT_EQ(PrintableLine("tab\there\r"), "tab\\there\\r");
  EXPECT_EQ(PrintableLine(std::string_view("nul\0x", 5)), "nul\\x00x");
  EXPECT_EQ(PrintableLine("del\x7f"), "del\\x7f");
}

TEST(PrintableLine, KeepsUtf8AndEscapesBytesThatAreNot) {
  EXPECT_EQ(PrintableLine("cödé ünï 日本 😀"), "cödé ünï 日本 😀");
  EXPECT_EQ(PrintableLine("a\xff"
                          "b"),
            "a\\xffb");
  EXPECT_EQ(PrintableLine("cut \xc3"), "cut \\xc3");
  EXPECT_EQ(PrintableLine("overlong \xc0\xaf"), "overlong \\xc0\\xaf");
}

}  // namespace
}  // namespace phoenix
