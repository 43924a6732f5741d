// libFuzzer target: audit scenarios (SCENARIO.md) are files users write: any bytes give a
// scenario or an error, never a crash; every step of a parsed one has a path and a method.
#include <string>

#include "audit/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto r = phoenix::audit::ParseScenario(text, "fuzz.json", "/nonexistent");
  if (!r.ok()) return 0;
  for (const auto& s : r->steps) {
    // A path starts with "/", or is a value an earlier step extracted ("{{next}}").
    const bool templated = s.path.starts_with("{{") && s.path.find("}}") != std::string::npos;
    if (s.path.empty() || (s.path[0] != '/' && !templated) || s.method.empty()) __builtin_trap();
    std::string out;
    phoenix::audit::ExpandTemplate(s.path, {}, out);
  }
  return 0;
}
