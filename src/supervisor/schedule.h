// The schedules of a slot's life: when a crashing slot may be born again, and when an
// incarnation is due to be replaced.
#pragma once

#include <cstdint>
#include <random>

#include "base/duration.h"

namespace phoenix {

// Crash backoff: the first crash is reborn at once, then 1 s doubling up to 5 min
// (as systemd's RestartSec with RestartSteps, and PM2's exponential backoff).
Millis CrashBackoff(int consecutive_crashes);

// A slot whose incarnation stayed ready this long is healthy again: its crash count resets.
inline constexpr Millis kHealthyStretch = std::chrono::seconds(60);
// A clean exit this soon after birth: probably a command that daemonized (a hint in the died line).
inline constexpr Millis kDaemonHint = std::chrono::seconds(10);

// The age at which an incarnation is replaced: max_age minus a uniform random jitter in
// [0, jitter], so that instances born together never die together. 0 max_age: never.
class RebirthSchedule {
 public:
  explicit RebirthSchedule(uint64_t seed) : rng_(seed) {}
  // Returns 0 when max_age is 0 (no scheduled rebirth).
  Millis Lifetime(Millis max_age, Millis jitter);

 private:
  std::mt19937_64 rng_;
};

}  // namespace phoenix
