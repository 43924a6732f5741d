// Durations, daily windows and byte sizes: the small units that phoenix.toml is written in and
// that death reports are printed in. Parsers here know nothing about files; their messages say
// what was wrong with the text and the caller prefixes where it came from.
#include "base/duration.h"

#include <fmt/format.h>

#include <cstdint>
#include <limits>

namespace phoenix {
namespace {

constexpr int64_t kMillisPerSecond = 1000;
constexpr int64_t kMillisPerMinute = 60 * kMillisPerSecond;
constexpr int64_t kMillisPerHour = 60 * kMillisPerMinute;
constexpr int64_t kMillisPerDay = 24 * kMillisPerHour;
constexpr int kMinutesPerDay = 24 * 60;

struct DurationUnit {
  std::string_view name;
  int64_t millis;
};

constexpr DurationUnit kDurationUnits[] = {
    {"ms", 1},
    {"s", kMillisPerSecond},
    {"m", kMillisPerMinute},
    {"h", kMillisPerHour},
    {"d", kMillisPerDay},
};

constexpr std::string_view kUnitHint = "use ms, s, m, h or d, e.g. \"90s\" or \"1h30m\"";

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Values come from files users edit, so they may hold newlines or control bytes that would
// garble a one-line error message; escape those.
std::string Quoted(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (byte < 0x20 || byte == 0x7f) {
      out += fmt::format("\\x{:02x}", byte);
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

// Reads the decimal number at the front of `text` into `value`; false on overflow.
bool ConsumeNumber(std::string_view& text, int64_t& value) {
  value = 0;
  while (!text.empty() && IsDigit(text.front())) {
    int digit = text.front() - '0';
    if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) return false;
    value = value * 10 + digit;
    text.remove_prefix(1);
  }
  return true;
}

const DurationUnit* FindUnit(std::string_view name) {
  for (const DurationUnit& unit : kDurationUnits) {
    if (unit.name == name) return &unit;
  }
  return nullptr;
}

Error DurationError(std::string_view text, std::string_view problem) {
  return Error{fmt::format("invalid duration {}: {}", Quoted(text), problem)};
}

// Parses "HH:MM" (hours may have one digit) into minutes since midnight; 24:00 is accepted
// here and rejected by the caller where it makes no sense (as a start).
Result<int> ParseClock(std::string_view clock, std::string_view whole) {
  size_t colon = clock.find(':');
  bool well_formed =
      colon != std::string_view::npos && (colon == 1 || colon == 2) && clock.size() == colon + 3;
  for (size_t i = 0; well_formed && i < clock.size(); ++i) {
    if (i != colon && !IsDigit(clock[i])) well_formed = false;
  }
  if (!well_formed) {
    return Error{fmt::format("invalid time {} in window {} (expected HH:MM, e.g. \"02:00-05:00\")",
                             Quoted(clock), Quoted(whole))};
  }
  int hours = 0;
  for (size_t i = 0; i < colon; ++i) hours = hours * 10 + (clock[i] - '0');
  int minutes = (clock[colon + 1] - '0') * 10 + (clock[colon + 2] - '0');
  if (minutes > 59) {
    return Error{fmt::format("invalid time {} in window {}: minutes must be 00..59", Quoted(clock),
                             Quoted(whole))};
  }
  if (hours > 24 || (hours == 24 && minutes != 0)) {
    return Error{
        fmt::format("invalid time {} in window {}: hours must be 00..23 (24:00 only "
                    "as the end of a window)",
                    Quoted(clock), Quoted(whole))};
  }
  return hours * 60 + minutes;
}

}  // namespace

Result<Millis> ParseDuration(std::string_view text) {
  if (text.empty()) {
    return Error{fmt::format("empty duration ({}; \"0\" for none)", kUnitHint)};
  }
  if (text == "0") return Millis{0};
  if (text.front() == '-') return DurationError(text, "negative durations are not allowed");

  std::string_view rest = text;
  int64_t total = 0;
  while (!rest.empty()) {
    if (!IsDigit(rest.front())) {
      return DurationError(text, fmt::format("expected a number at {}", Quoted(rest)));
    }
    std::string_view number_text = rest;
    int64_t number = 0;
    if (!ConsumeNumber(rest, number)) return DurationError(text, "number too large");
    number_text = number_text.substr(0, number_text.size() - rest.size());

    size_t unit_length = 0;
    while (unit_length < rest.size() && IsLetter(rest[unit_length])) ++unit_length;
    std::string_view unit_name = rest.substr(0, unit_length);
    if (unit_name.empty()) {
      if (!rest.empty() && (rest.front() == '.' || rest.front() == ',')) {
        return DurationError(text, "fractions are not supported (write \"1h30m\", not \"1.5h\")");
      }
      if (rest.empty()) {
        return DurationError(text,
                             fmt::format("missing unit after {} ({})", number_text, kUnitHint));
      }
      return DurationError(text,
                           fmt::format("expected a unit at {} ({})", Quoted(rest), kUnitHint));
    }
    const DurationUnit* unit = FindUnit(unit_name);
    if (unit == nullptr) {
      return DurationError(text, fmt::format("unknown unit {} ({})", Quoted(unit_name), kUnitHint));
    }
    rest.remove_prefix(unit_length);

    int64_t part = 0;
    if (__builtin_mul_overflow(number, unit->millis, &part) ||
        __builtin_add_overflow(total, part, &total)) {
      return DurationError(text, "too large");
    }
  }
  return Millis{total};
}

std::string FormatDuration(Millis d) {
  int64_t ms = d.count();
  if (ms < 0) {
    // Negative spans only appear from clock arithmetic gone wrong; print them rather than lie.
    if (ms == std::numeric_limits<int64_t>::min()) ++ms;
    return "-" + FormatDuration(Millis{-ms});
  }
  if (ms == 0) return "0s";
  if (ms < kMillisPerSecond) return fmt::format("{}ms", ms);

  // Two most significant units, truncated: "died after 3h12m" is what an operator reads.
  struct Part {
    int64_t size;
    const char* name;
  };
  constexpr Part kParts[] = {{kMillisPerDay, "d"},
                             {kMillisPerHour, "h"},
                             {kMillisPerMinute, "m"},
                             {kMillisPerSecond, "s"}};
  for (size_t i = 0; i < std::size(kParts); ++i) {
    if (ms < kParts[i].size) continue;
    std::string out = fmt::format("{}{}", ms / kParts[i].size, kParts[i].name);
    if (i + 1 < std::size(kParts)) {
      int64_t second = ms % kParts[i].size / kParts[i + 1].size;
      if (second != 0) out += fmt::format("{}{}", second, kParts[i + 1].name);
    }
    return out;
  }
  return "0s";  // Unreachable: ms >= 1s matches the seconds part.
}

bool DailyWindow::Contains(int minute_of_day) const {
  int minute = ((minute_of_day % kMinutesPerDay) + kMinutesPerDay) % kMinutesPerDay;
  if (start_min < end_min) return minute >= start_min && minute < end_min;
  if (start_min > end_min) return minute >= start_min || minute < end_min;
  return false;  // Parsing rejects empty windows; an empty one contains nothing.
}

Result<DailyWindow> ParseDailyWindow(std::string_view text) {
  size_t dash = text.find('-');
  if (dash == std::string_view::npos) {
    return Error{fmt::format("invalid window {} (expected \"HH:MM-HH:MM\", e.g. \"02:00-05:00\")",
                             Quoted(text))};
  }
  auto start = ParseClock(text.substr(0, dash), text);
  if (!start.ok()) return start.error();
  auto end = ParseClock(text.substr(dash + 1), text);
  if (!end.ok()) return end.error();
  if (*start == kMinutesPerDay) {
    return Error{
        fmt::format("invalid window {}: a window cannot start at 24:00 (use 00:00)", Quoted(text))};
  }
  if (*start == *end) {
    return Error{fmt::format("empty window {}: start and end are the same time", Quoted(text))};
  }
  return DailyWindow{*start, *end};
}

std::string FormatBytes(unsigned long long bytes) {
  if (bytes < 1000) return fmt::format("{} B", bytes);
  constexpr const char* kUnits[] = {"KB", "MB", "GB", "TB", "PB", "EB"};
  double value = static_cast<double>(bytes) / 1000;
  size_t unit = 0;
  // Promote when the one-decimal rounding would print "1000.0 KB".
  while (value >= 999.95 && unit + 1 < std::size(kUnits)) {
    value /= 1000;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

}  // namespace phoenix
