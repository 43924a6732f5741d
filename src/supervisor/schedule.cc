#include "supervisor/schedule.h"

#include <algorithm>

namespace phoenix {

Millis CrashBackoff(int consecutive_crashes) {
  if (consecutive_crashes <= 1) return Millis(0);
  constexpr Millis kFirst = std::chrono::seconds(1);
  constexpr Millis kMax = std::chrono::minutes(5);
  int doublings = std::min(consecutive_crashes - 2, 20);
  return std::min(kMax, kFirst * (int64_t{1} << doublings));
}

Millis RebirthSchedule::Lifetime(Millis max_age, Millis jitter) {
  if (max_age.count() <= 0) return Millis(0);
  jitter = std::clamp(jitter, Millis(0), max_age - Millis(1));
  std::uniform_int_distribution<int64_t> dist(0, jitter.count());
  return max_age - Millis(dist(rng_));
}

}  // namespace phoenix
