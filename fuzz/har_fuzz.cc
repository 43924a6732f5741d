// libFuzzer target: HAR recordings come from browsers and users: never a crash.
#include <string>

#include "audit/har.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto r = phoenix::audit::ParseHar(text, "fuzz.har");
  if (r.ok() && r->steps.empty()) __builtin_trap();  // a parsed recording has a request
  return 0;
}
