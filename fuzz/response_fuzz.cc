// libFuzzer target: what an app answers is untrusted too: Set-Cookie fields into the jar, and a
// body's tokens diffed against another body's (the first half against the second).
#include <string>

#include "audit/compare.h"
#include "audit/cookies.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  phoenix::audit::CookieJar jar;
  jar.Store(text, "/a/b", 1800000000);
  (void)jar.Header("/a/b/c", 1800000000);
  (void)phoenix::audit::ParseCookieDate(text);
  std::string_view half1(text.data(), size / 2), half2(text.data() + size / 2, size - size / 2);
  auto a = phoenix::audit::Tokenize(half1, size % 2 ? "application/json" : "text/html");
  auto b = phoenix::audit::Tokenize(half2, "text/html");
  phoenix::audit::Variance v(a, a);
  (void)phoenix::audit::CompareBodies(a, v, b);
  for (const auto& e : phoenix::audit::Diff(a, b, 64)) {
    if (e.a_begin > e.a_end || e.a_end > a.size() || e.b_begin > e.b_end || e.b_end > b.size())
      __builtin_trap();
  }
  return 0;
}
