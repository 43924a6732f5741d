#include "router/backends.h"

#include <algorithm>

namespace phoenix::router {
namespace {

void MaybeNotify(Backend& b) {
  // Dekker with Pick(): a picker increments in_flight then reads draining; here draining is
  // read, then in_flight (all seq_cst), so one of us sees the other. The order matters on the
  // Release path too: reading in_flight first, a release could see 0, a picker then take the
  // backend (draining still false), the drain begin, and this release see draining and call
  // the backend drained with that request in flight (BackendsTest caught it under load).
  // Drained when all that is left in flight are tunnels. in_flight is read before tunnels,
  // and a tunnel's end takes tunnels down before in_flight: so a read never pairs a tunnel's
  // end in one with its presence in the other (which would count an ordinary request as a
  // tunnel).
  if (!b.draining.load()) return;
  const int in_flight = b.in_flight.load();
  if (in_flight == b.tunnels.load() && !b.notified.exchange(true)) {
    b.gone.store(true);
    if (b.on_drained) b.on_drained();
  }
}

}  // namespace

void Backends::Add(const BackendInfo& info) {
  std::lock_guard lock(mu_);
  ready_.push_back(std::make_shared<Backend>(info));
  Publish();
}

void Backends::Drain(uint64_t id, std::function<void()> drained) {
  std::shared_ptr<Backend> b;
  {
    std::lock_guard lock(mu_);
    auto it =
        std::find_if(ready_.begin(), ready_.end(), [&](const auto& x) { return x->info.id == id; });
    if (it != ready_.end()) {
      b = *it;
      ready_.erase(it);
      draining_.push_back(b);
      Publish();
    }
  }
  if (!b) {  // never routed (or already removed): nothing can be in flight
    if (drained) drained();
    return;
  }
  b->on_drained = std::move(drained);
  b->draining.store(true);
  MaybeNotify(*b);
}

void Backends::Remove(uint64_t id, bool killed) {
  std::lock_guard lock(mu_);
  // A draining one too (killed at stop_timeout, or dead mid-drain): requests lost with it are
  // not the request's fault when phoenix killed it, and no drained callback follows its death.
  auto mark = [&](Backend& b) {
    if (killed) b.killed.store(true);
    b.gone.store(true);
    b.notified.store(true);
  };
  std::erase_if(draining_, [&](const auto& x) {
    if (x->info.id != id) return false;
    mark(*x);
    return true;
  });
  auto it =
      std::find_if(ready_.begin(), ready_.end(), [&](const auto& x) { return x->info.id == id; });
  if (it == ready_.end()) return;
  mark(**it);
  ready_.erase(it);
  Publish();
}

void Backends::Publish() {
  auto next = std::make_shared<Snapshot>();
  next->ready = ready_;
  next->generation = generation_.load() + 1;
  snapshot_ = std::move(next);
  generation_.store(snapshot_->generation, std::memory_order_release);
}

std::vector<BackendTraffic> Backends::Traffic() const {
  std::lock_guard lock(mu_);
  std::erase_if(draining_, [](const auto& x) { return x->gone.load(); });
  std::vector<BackendTraffic> out;
  const std::vector<std::shared_ptr<Backend>>* lists[] = {&ready_, &draining_};
  for (const auto* list : lists) {
    for (const auto& b : *list) {
      BackendTraffic t;
      t.id = b->info.id;
      t.requests = b->requests.load(std::memory_order_relaxed);
      t.in_flight = b->in_flight.load(std::memory_order_relaxed);
      out.push_back(t);
    }
  }
  return out;
}

std::shared_ptr<const Snapshot> Backends::Load() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

namespace {
int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
}  // namespace

void Backends::MarkSlow(Backend& b, int64_t for_ns) {
  b.slow_until.store(NowNs() + for_ns, std::memory_order_relaxed);
}

std::shared_ptr<Backend> Backends::Pick(const Snapshot& s, Balance balance, uint64_t& cursor,
                                        uint64_t avoid) {
  // First among those that did not let a request time out lately; then among all (a slow
  // instance is better than none).
  bool any_slow = false;
  for (const auto& b : s.ready)
    any_slow = any_slow || b->slow_until.load(std::memory_order_relaxed);
  if (any_slow) {
    const int64_t now = NowNs();
    if (auto b = PickFrom(s, balance, cursor, avoid, now)) return b;
  }
  if (auto b = PickFrom(s, balance, cursor, avoid, 0)) return b;
  // The one to avoid is the only one left: better it than none (a retry on a fresh connection).
  return avoid ? PickFrom(s, balance, cursor, 0, 0) : nullptr;
}

std::shared_ptr<Backend> Backends::PickFrom(const Snapshot& s, Balance balance, uint64_t& cursor,
                                            uint64_t avoid, int64_t slow_after) {
  const auto slow = [slow_after](const Backend& b) {
    return slow_after != 0 && b.slow_until.load(std::memory_order_relaxed) > slow_after;
  };
  size_t n = s.ready.size();
  for (size_t attempt = 0; attempt < n; ++attempt) {
    std::shared_ptr<Backend> b;
    if (balance == Balance::kLeastOutstanding) {
      // Fewest requests in flight; ties broken round-robin so load still spreads.
      size_t start = cursor++ % n;
      for (size_t i = 0; i < n; ++i) {
        const auto& c = s.ready[(start + i) % n];
        if (c->info.id == avoid || c->draining.load(std::memory_order_relaxed) || c->gone ||
            slow(*c)) {
          continue;
        }
        if (!b || c->in_flight.load(std::memory_order_relaxed) <
                      b->in_flight.load(std::memory_order_relaxed)) {
          b = c;
        }
      }
    } else {
      b = s.ready[cursor++ % n];
      if (b->info.id == avoid && n > 1) continue;
      if (slow(*b)) {
        b.reset();
        continue;
      }
    }
    if (!b) return nullptr;
    b->in_flight.fetch_add(1);
    if (!b->draining.load() && !b->gone.load()) {
      b->requests.fetch_add(1, std::memory_order_relaxed);
      return b;
    }
    Release(*b);  // it left rotation after our snapshot was taken
  }
  return nullptr;
}

std::shared_ptr<Backend> Backends::PickInstance(const Snapshot& s, std::string_view instance) {
  for (const auto& b : s.ready) {
    if (b->info.instance != instance) continue;
    b->in_flight.fetch_add(1);
    if (!b->draining.load() && !b->gone.load()) {
      b->requests.fetch_add(1, std::memory_order_relaxed);
      return b;
    }
    Release(*b);
  }
  return nullptr;
}

void Backends::Release(Backend& b) {
  b.in_flight.fetch_sub(1);
  MaybeNotify(b);
}

void Backends::TunnelStarted(Backend& b) {
  b.tunnels.fetch_add(1);
  MaybeNotify(b);
}

void Backends::TunnelEnded(Backend& b) { b.tunnels.fetch_sub(1); }

}  // namespace phoenix::router
