// libFuzzer target: the Procfile parser never crashes and either parses or names a position.
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto r = phoenix::ParseProcfile(text, "Procfile");
  if (!r.ok() && r.error().message.rfind("Procfile", 0) != 0) __builtin_trap();
  return 0;
}
