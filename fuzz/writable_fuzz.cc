// libFuzzer target: a `writable` pattern (first line) against a path an app wrote (the rest)
// matches or not without a crash, and in bounded time however many "**" the pattern has.
#include <string>
#include <vector>

#include "sandbox/layer_scan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  size_t nl = text.find('\n');
  if (nl == std::string::npos) return 0;
  const std::vector<std::string> writable = {text.substr(0, nl)};
  (void)phoenix::sandbox::IsScratch(text.substr(nl + 1), writable);
  return 0;
}
