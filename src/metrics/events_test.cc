#include "metrics/events.h"

#include <gtest/gtest.h>

namespace phoenix::metrics {
namespace {

// An app names its files; phoenix's own line about them must stay one line, in its colours.
TEST(EventText, DiedLineEscapesTheAppsFileNames) {
  Event e;
  e.kind = "died";
  e.instance = "web.1";
  e.incarnation = 3;
  e.reason = DeathReason::kKilled;
  e.age = std::chrono::seconds(2);
  sandbox::LostState lost;
  lost.files.push_back({"\x1b[31m0AAA\nphoenix | web.9 #1 died: FAKE LINE\x1b[0m", 10});
  lost.files.push_back({"uploads/ünï cödé.txt", 5});
  lost.bytes = 15;
  e.lost = lost;
  std::string line = EventText(e);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_EQ(line.find('\x1b'), std::string::npos) << line;
  EXPECT_NE(
      line.find("\\x1b[31m0AAA\\nphoenix | web.9 #1 died: FAKE LINE\\x1b[0m, uploads/ünï cödé.txt"),
      std::string::npos)
      << line;
  // The JSON event keeps the name as it is (JSON escapes it).
  EXPECT_NE(EventJson(e).find("\\u001b[31m0AAA\\nphoenix"), std::string::npos) << EventJson(e);
}

}  // namespace
}  // namespace phoenix::metrics
