// libFuzzer target: control requests from the socket; what parses encodes and parses back equal.
#include <string>

#include "control/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto r = phoenix::control::ParseRequest(text);
  if (!r.ok()) return 0;
  auto again = phoenix::control::ParseRequest(phoenix::control::EncodeRequest(r.value()));
  if (!again.ok() || again->command != r->command || again->instance != r->instance ||
      again->counts != r->counts || again->now != r->now || again->follow != r->follow ||
      again->type != r->type || again->fraction != r->fraction) {
    __builtin_trap();
  }
  return 0;
}
