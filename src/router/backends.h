// The set of instances the router may send a request to. The supervisor's thread adds,
// drains and removes; router threads read an immutable snapshot, refreshed when the
// generation counter moves, and pick a backend by round-robin or least outstanding requests.
// A drained backend's callback runs exactly once, when its last in-flight request ends.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "router/router.h"

namespace phoenix::router {

struct Backend {
  explicit Backend(const BackendInfo& i) : info(i) {}
  BackendInfo info;
  std::atomic<int> in_flight{0};
  // Of those, WebSockets and other tunnels: they do not end on their own, so a drain does not
  // wait for them (the instance's SIGTERM is the app's cue to close them, as on Heroku).
  std::atomic<int> tunnels{0};
  std::atomic<bool> draining{false};
  std::atomic<bool> gone{false};  // removed or drained: pooled connections must close
  // Draining or gone: an idle connection to it is closed, never kept or pooled.
  bool OutOfRotation() const { return gone.load() || draining.load(); }
  // phoenix SIGKILLs it (kill --now, a drill, chaos): a request lost on it did not kill it, and
  // is not counted against its retries.
  std::atomic<bool> killed{false};
  // CLOCK_MONOTONIC_COARSE ns until which it is picked only when no other is: it let a request
  // wait response_timeout without a byte (hung, overloaded), as nginx's max_fails/fail_timeout.
  std::atomic<int64_t> slow_until{0};
  std::atomic<bool> notified{false};
  std::function<void()> on_drained;   // set before `draining`
  std::atomic<uint64_t> requests{0};  // routed to it (each try of a retried request counts)
};

struct Snapshot {
  uint64_t generation = 0;
  std::vector<std::shared_ptr<Backend>> ready;
};

class Backends {
 public:
  void Add(const BackendInfo& info);
  void Drain(uint64_t id, std::function<void()> drained);
  void Remove(uint64_t id, bool killed = false);

  // Requests routed to each backend still in rotation or draining (`ps`, /metrics).
  std::vector<BackendTraffic> Traffic() const;

  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  std::shared_ptr<const Snapshot> Load() const;

  // Picks a ready backend and counts a request in flight on it (Release() when done), skipping
  // `avoid` (the one that just failed). Null when none is ready.
  static std::shared_ptr<Backend> Pick(const Snapshot& snapshot, Balance balance, uint64_t& cursor,
                                       uint64_t avoid = 0);
  // The ready incarnation of `instance` ("web.2"), counted in flight; null when it has none.
  static std::shared_ptr<Backend> PickInstance(const Snapshot& snapshot, std::string_view instance);
  static void Release(Backend& backend);
  // A request on `backend` became a tunnel (after its 101), and the tunnel ended; the tunnel's
  // end comes before its Release.
  static void TunnelStarted(Backend& backend);
  static void TunnelEnded(Backend& backend);
  // It let a request time out: others are picked first for `for_ns`.
  static void MarkSlow(Backend& backend, int64_t for_ns = 10'000'000'000);

 private:
  // Pick() among the backends not slow at `slow_after` (0: among all).
  static std::shared_ptr<Backend> PickFrom(const Snapshot& snapshot, Balance balance,
                                           uint64_t& cursor, uint64_t avoid, int64_t slow_after);
  void Publish();  // with mu_ held

  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Backend>> ready_;
  mutable std::vector<std::shared_ptr<Backend>> draining_;  // until drained or removed
  std::shared_ptr<const Snapshot> snapshot_ = std::make_shared<Snapshot>();
  std::atomic<uint64_t> generation_{0};
};

}  // namespace phoenix::router
