// libFuzzer target: the .env parser never crashes; errors name the file.
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto r = phoenix::ParseDotenv(text, ".env");
  if (!r.ok() && r.error().message.rfind(".env", 0) != 0) __builtin_trap();
  return 0;
}
