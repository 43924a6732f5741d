// Durations as users write them in phoenix.toml ("24h", "216m", "1h30m", "500ms", "0") and as
// phoenix prints them ("3h12m", "45s").
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "base/result.h"

namespace phoenix {

using Millis = std::chrono::milliseconds;

// Parses a sequence of <number><unit> with units ms, s, m, h, d; "0" alone means zero.
// Error messages say what was expected; callers add where.
Result<Millis> ParseDuration(std::string_view text);

// Human form: "850ms", "45s", "3m20s", "3h12m", "2d4h".
std::string FormatDuration(Millis d);

// "HH:MM-HH:MM" daily window in local minutes since midnight; end may be before start
// (the window then crosses midnight).
struct DailyWindow {
  int start_min = 0;
  int end_min = 0;
  bool Contains(int minute_of_day) const;
};
Result<DailyWindow> ParseDailyWindow(std::string_view text);

// "1.2 MB" style sizes.
std::string FormatBytes(unsigned long long bytes);

}  // namespace phoenix
