#include "router/backends.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace phoenix::router {
namespace {

BackendInfo Info(uint64_t id) {
  return BackendInfo{id, "web." + std::to_string(id), 1, static_cast<int>(10000 + id)};
}

// Picks one and releases it at once; its id, or 0 when none.
uint64_t PickId(const Snapshot& s, Balance balance, uint64_t& cursor, uint64_t avoid = 0) {
  auto b = Backends::Pick(s, balance, cursor, avoid);
  if (!b) return 0;
  uint64_t id = b->info.id;
  Backends::Release(*b);
  return id;
}

TEST(BackendsTest, EmptyPicksNothing) {
  Backends backends;
  uint64_t cursor = 0;
  EXPECT_EQ(Backends::Pick(*backends.Load(), Balance::kRoundRobin, cursor), nullptr);
  EXPECT_EQ(Backends::Pick(*backends.Load(), Balance::kLeastOutstanding, cursor), nullptr);
}

TEST(BackendsTest, GenerationMovesOnEveryChange) {
  Backends backends;
  uint64_t g0 = backends.generation();
  backends.Add(Info(1));
  uint64_t g1 = backends.generation();
  EXPECT_GT(g1, g0);
  EXPECT_EQ(backends.Load()->generation, g1);
  backends.Add(Info(2));
  backends.Remove(1);
  EXPECT_GT(backends.generation(), g1);
  ASSERT_EQ(backends.Load()->ready.size(), 1u);
  EXPECT_EQ(backends.Load()->ready[0]->info.id, 2u);
}

TEST(BackendsTest, TrafficCountsRoutedRequestsUntilDrained) {
  Backends backends;
  backends.Add(Info(1));
  backends.Add(Info(2));
  uint64_t cursor = 0;
  auto s = backends.Load();
  for (int i = 0; i < 5; ++i) PickId(*s, Balance::kRoundRobin, cursor);
  auto held = Backends::Pick(*s, Balance::kRoundRobin, cursor);  // the 6th, on 2, in flight
  ASSERT_EQ(held->info.id, 2u);
  auto traffic = [&] {
    std::map<uint64_t, std::pair<uint64_t, int>> m;
    for (const auto& t : backends.Traffic()) m[t.id] = {t.requests, t.in_flight};
    return m;
  };
  EXPECT_EQ(traffic(), (std::map<uint64_t, std::pair<uint64_t, int>>{{1, {3, 0}}, {2, {3, 1}}}));
  // Draining with a request in flight: still listed, then gone once drained.
  bool drained = false;
  backends.Drain(2, [&] { drained = true; });
  EXPECT_EQ(traffic().count(2), 1u);
  Backends::Release(*held);
  EXPECT_TRUE(drained);
  EXPECT_EQ(traffic().count(2), 0u);
  backends.Remove(1);
  EXPECT_TRUE(backends.Traffic().empty());
}

// A drain waits for ordinary requests, not for tunnels, which only end when a side closes.
TEST(BackendsTest, DrainDoesNotWaitForTunnels) {
  Backends backends;
  backends.Add(Info(1));
  uint64_t cursor = 0;
  auto tunnel = Backends::Pick(*backends.Load(), Balance::kRoundRobin, cursor);
  auto request = Backends::Pick(*backends.Load(), Balance::kRoundRobin, cursor);
  ASSERT_TRUE(tunnel && request);
  Backends::TunnelStarted(*tunnel);
  int drained = 0;
  backends.Drain(1, [&] { ++drained; });
  EXPECT_EQ(drained, 0);  // the ordinary request is still in flight
  Backends::Release(*request);
  EXPECT_EQ(drained, 1);  // only the tunnel is left
  Backends::TunnelEnded(*tunnel);
  Backends::Release(*tunnel);
  EXPECT_EQ(drained, 1);  // once
  // A tunnel that starts on a draining backend with nothing else in flight ends its drain.
  backends.Add(Info(2));
  auto late = Backends::Pick(*backends.Load(), Balance::kRoundRobin, cursor);
  ASSERT_TRUE(late);
  int drained2 = 0;
  backends.Drain(2, [&] { ++drained2; });
  EXPECT_EQ(drained2, 0);
  Backends::TunnelStarted(*late);
  EXPECT_EQ(drained2, 1);
  Backends::TunnelEnded(*late);
  Backends::Release(*late);
  EXPECT_EQ(drained2, 1);
}

TEST(BackendsTest, RemovingADrainingBackendMarksItKilledAndGone) {
  // Killed at stop_timeout (or dead) while it drains: its lost requests are phoenix's doing,
  // and its drain never calls back for a dead incarnation.
  Backends backends;
  backends.Add(Info(1));
  uint64_t cursor = 0;
  auto request = Backends::Pick(*backends.Load(), Balance::kRoundRobin, cursor);
  ASSERT_TRUE(request);
  int drained = 0;
  backends.Drain(1, [&] { ++drained; });
  backends.Remove(1, true);
  EXPECT_TRUE(request->killed.load());
  EXPECT_TRUE(request->gone.load());
  Backends::Release(*request);
  EXPECT_EQ(drained, 0);
}

TEST(BackendsTest, RoundRobinOrder) {
  Backends backends;
  for (uint64_t id = 1; id <= 3; ++id) backends.Add(Info(id));
  auto s = backends.Load();
  uint64_t cursor = 0;
  std::vector<uint64_t> order;
  for (int i = 0; i < 9; ++i) order.push_back(PickId(*s, Balance::kRoundRobin, cursor));
  EXPECT_EQ(order, (std::vector<uint64_t>{1, 2, 3, 1, 2, 3, 1, 2, 3}));
}

TEST(BackendsTest, RoundRobinIgnoresOutstandingRequests) {
  Backends backends;
  backends.Add(Info(1));
  backends.Add(Info(2));
  auto s = backends.Load();
  uint64_t cursor = 0;
  std::vector<std::shared_ptr<Backend>> held;
  for (int i = 0; i < 4; ++i) held.push_back(Backends::Pick(*s, Balance::kRoundRobin, cursor));
  EXPECT_EQ(held[0]->info.id, 1u);
  EXPECT_EQ(held[1]->info.id, 2u);
  EXPECT_EQ(held[2]->info.id, 1u);
  EXPECT_EQ(held[3]->info.id, 2u);
  EXPECT_EQ(held[0]->in_flight.load(), 2);
  EXPECT_EQ(held[1]->in_flight.load(), 2);
  for (auto& b : held) Backends::Release(*b);
  EXPECT_EQ(s->ready[0]->in_flight.load(), 0);
  EXPECT_EQ(s->ready[1]->in_flight.load(), 0);
}

TEST(BackendsTest, RoundRobinAvoidsTheOneThatFailed) {
  Backends backends;
  for (uint64_t id = 1; id <= 3; ++id) backends.Add(Info(id));
  auto s = backends.Load();
  for (uint64_t start = 0; start < 6; ++start) {
    uint64_t cursor = start;
    EXPECT_NE(PickId(*s, Balance::kRoundRobin, cursor, 2), 2u) << start;
  }
  // With only the one that failed, it is picked again rather than nothing.
  Backends one;
  one.Add(Info(7));
  uint64_t cursor = 0;
  EXPECT_EQ(PickId(*one.Load(), Balance::kRoundRobin, cursor, 7), 7u);
}

TEST(BackendsTest, LeastOutstandingPicksTheLeastBusy) {
  Backends backends;
  for (uint64_t id = 1; id <= 3; ++id) backends.Add(Info(id));
  auto s = backends.Load();
  uint64_t cursor = 0;
  // Hold 2 on #1, 1 on #2, none on #3.
  s->ready[0]->in_flight = 2;
  s->ready[1]->in_flight = 1;
  auto b = Backends::Pick(*s, Balance::kLeastOutstanding, cursor);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->info.id, 3u);
  EXPECT_EQ(b->in_flight.load(), 1);
  // Now #2 and #3 tie at 1: either, never #1.
  for (int i = 0; i < 6; ++i) {
    uint64_t id = PickId(*s, Balance::kLeastOutstanding, cursor);
    EXPECT_TRUE(id == 2 || id == 3) << id;
  }
  Backends::Release(*b);
  s->ready[0]->in_flight = 0;
  s->ready[1]->in_flight = 0;
}

TEST(BackendsTest, LeastOutstandingSpreadsTies) {
  Backends backends;
  for (uint64_t id = 1; id <= 3; ++id) backends.Add(Info(id));
  auto s = backends.Load();
  uint64_t cursor = 0;
  std::map<uint64_t, int> count;
  for (int i = 0; i < 30; ++i) ++count[PickId(*s, Balance::kLeastOutstanding, cursor)];
  EXPECT_EQ(count[1], 10);
  EXPECT_EQ(count[2], 10);
  EXPECT_EQ(count[3], 10);
  // Held requests fill the instances evenly.
  std::vector<std::shared_ptr<Backend>> held;
  for (int i = 0; i < 9; ++i)
    held.push_back(Backends::Pick(*s, Balance::kLeastOutstanding, cursor));
  for (const auto& b : s->ready) EXPECT_EQ(b->in_flight.load(), 3) << b->info.id;
  for (auto& b : held) Backends::Release(*b);
}

TEST(BackendsTest, LeastOutstandingAvoids) {
  Backends backends;
  backends.Add(Info(1));
  backends.Add(Info(2));
  auto s = backends.Load();
  s->ready[1]->in_flight = 5;
  uint64_t cursor = 0;
  EXPECT_EQ(PickId(*s, Balance::kLeastOutstanding, cursor, 1), 2u);
  s->ready[1]->in_flight = 0;
}

TEST(BackendsTest, PickSkipsDrainingAndGoneInAnOldSnapshot) {
  for (Balance balance : {Balance::kRoundRobin, Balance::kLeastOutstanding}) {
    Backends backends;
    for (uint64_t id = 1; id <= 3; ++id) backends.Add(Info(id));
    auto old = backends.Load();  // a router thread may still hold this one
    int drained = 0;
    backends.Drain(2, [&] { ++drained; });
    EXPECT_EQ(drained, 1);  // nothing was in flight
    backends.Remove(3);
    uint64_t cursor = 0;
    for (int i = 0; i < 12; ++i) {
      EXPECT_EQ(PickId(*old, balance, cursor), 1u);
    }
    EXPECT_EQ(drained, 1);  // the picks that touched #2 and let go did not call back again
    EXPECT_EQ(old->ready[1]->in_flight.load(), 0);
    EXPECT_EQ(old->ready[2]->in_flight.load(), 0);
    // The new snapshot holds only #1.
    ASSERT_EQ(backends.Load()->ready.size(), 1u);
    EXPECT_EQ(backends.Load()->ready[0]->info.id, 1u);
    // Nothing left to pick in the old snapshot once #1 goes too.
    backends.Remove(1);
    EXPECT_EQ(Backends::Pick(*old, balance, cursor), nullptr);
  }
}

TEST(BackendsTest, DrainCallsBackOnceWhenTheLastInFlightEnds) {
  Backends backends;
  backends.Add(Info(1));
  backends.Add(Info(2));
  auto s = backends.Load();
  uint64_t cursor = 0;
  auto a = Backends::Pick(*s, Balance::kRoundRobin, cursor);  // #1
  auto b = Backends::Pick(*s, Balance::kRoundRobin, cursor);  // #2
  auto c = Backends::Pick(*s, Balance::kRoundRobin, cursor);  // #1
  ASSERT_EQ(a->info.id, 1u);
  ASSERT_EQ(c->info.id, 1u);
  int drained = 0;
  backends.Drain(1, [&] { ++drained; });
  EXPECT_EQ(drained, 0);
  EXPECT_TRUE(a->draining.load());
  EXPECT_FALSE(a->gone.load());
  // Out of rotation at once.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(PickId(*backends.Load(), Balance::kRoundRobin, cursor), 2u);
  Backends::Release(*a);
  EXPECT_EQ(drained, 0);
  Backends::Release(*b);  // another backend's request: no effect on #1
  EXPECT_EQ(drained, 0);
  Backends::Release(*c);
  EXPECT_EQ(drained, 1);
  EXPECT_TRUE(c->gone.load());  // its pooled connections must close
  // A late pick on an old snapshot touches it and lets go: no second callback.
  for (int i = 0; i < 4; ++i) PickId(*s, Balance::kRoundRobin, cursor);
  EXPECT_EQ(drained, 1);
  // A second Drain of the same id finds nothing routed: calls back at once, the first is not
  // called again.
  int again = 0;
  backends.Drain(1, [&] { ++again; });
  EXPECT_EQ(again, 1);
  EXPECT_EQ(drained, 1);
}

TEST(BackendsTest, DrainWithNothingInFlightCallsBackAtOnce) {
  Backends backends;
  backends.Add(Info(1));
  int drained = 0;
  backends.Drain(1, [&] { ++drained; });
  EXPECT_EQ(drained, 1);
  EXPECT_TRUE(backends.Load()->ready.empty());
}

TEST(BackendsTest, DrainOfAnUnknownIdCallsBackAtOnce) {
  Backends backends;
  backends.Add(Info(1));
  int drained = 0;
  backends.Drain(42, [&] { ++drained; });
  EXPECT_EQ(drained, 1);
  EXPECT_EQ(backends.Load()->ready.size(), 1u);
  // Removed before its drain (it died): nothing in flight can still need it.
  backends.Remove(1);
  backends.Drain(1, [&] { ++drained; });
  EXPECT_EQ(drained, 2);
  // An empty callback is allowed.
  backends.Drain(43, nullptr);
}

TEST(BackendsTest, RemoveIsAtOnceAndMarksGone) {
  Backends backends;
  backends.Add(Info(1));
  backends.Add(Info(2));
  auto s = backends.Load();
  uint64_t cursor = 0;
  auto held = Backends::Pick(*s, Balance::kRoundRobin, cursor);
  ASSERT_EQ(held->info.id, 1u);
  backends.Remove(1);
  EXPECT_TRUE(held->gone.load());
  EXPECT_FALSE(held->draining.load());
  Backends::Release(*held);  // a request that was in flight on a dead one ends: no callback
  ASSERT_EQ(backends.Load()->ready.size(), 1u);
  backends.Remove(99);  // unknown: nothing happens
  EXPECT_EQ(backends.Load()->ready.size(), 1u);
}

// Router threads pick and release on whatever snapshot they hold while the supervisor's thread
// adds and drains backends: every drained backend calls back exactly once, and only after its
// last request ended.
TEST(BackendsTest, ConcurrentPickReleaseDrainNeverLosesOrDuplicatesTheCallback) {
  constexpr int kThreads = 4;
  constexpr uint64_t kBackends = 400;
  for (Balance balance : {Balance::kRoundRobin, Balance::kLeastOutstanding}) {
    Backends backends;
    std::vector<std::atomic<int>> calls(kBackends + 1);
    std::vector<std::atomic<bool>> released_all(kBackends + 1);
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> picks{0};
    std::atomic<int> early{0};  // callbacks that ran with a request still in flight

    backends.Add(Info(1));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937 rng(t);
        uint64_t cursor = t;
        std::shared_ptr<const Snapshot> snap;
        std::vector<std::shared_ptr<Backend>> held;
        while (!stop.load()) {
          // Refresh now and then, as a worker does: sometimes on a stale snapshot.
          if (!snap || rng() % 4 == 0) snap = backends.Load();
          if (auto b = Backends::Pick(*snap, balance, cursor)) {
            ++picks;
            if (calls[b->info.id].load() != 0) ++early;  // picked after its callback ran
            held.push_back(std::move(b));
          }
          // Hold up to a few requests at once, released in random order.
          while (!held.empty() && (held.size() > 3 || rng() % 2 == 0)) {
            size_t i = rng() % held.size();
            std::swap(held[i], held.back());
            auto b = std::move(held.back());
            held.pop_back();
            Backends::Release(*b);
          }
        }
        for (auto& b : held) Backends::Release(*b);
      });
    }
    // The pickers are running before the drains start (a loaded machine may not schedule
    // them at once); bounded, so a hang fails instead of blocking.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (picks.load() == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    // The supervisor: a new backend, then the previous one drained, over and over.
    for (uint64_t id = 2; id <= kBackends; ++id) {
      backends.Add(Info(id));
      backends.Drain(id - 1, [&calls, id] { ++calls[id - 1]; });
      if (id % 16 == 0) std::this_thread::yield();
    }
    backends.Drain(kBackends, [&] { ++calls[kBackends]; });
    stop = true;
    for (auto& t : threads) t.join();

    for (uint64_t id = 1; id <= kBackends; ++id) {
      EXPECT_EQ(calls[id].load(), 1) << "backend " << id;
    }
    EXPECT_EQ(early.load(), 0);
    EXPECT_GT(picks.load(), 0u);
  }
}

// The callback runs only once the count is truly zero, even when releases race the drain.
TEST(BackendsTest, ConcurrentReleasesOfOneBackendCallBackOnceAtZero) {
  for (int round = 0; round < 200; ++round) {
    Backends backends;
    backends.Add(Info(1));
    auto s = backends.Load();
    uint64_t cursor = 0;
    constexpr int kHeld = 64;
    std::vector<std::shared_ptr<Backend>> held;
    for (int i = 0; i < kHeld; ++i)
      held.push_back(Backends::Pick(*s, Balance::kRoundRobin, cursor));
    std::atomic<int> calls{0};
    std::atomic<int> in_flight_at_call{-1};
    Backend* raw = held[0].get();
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        while (!go.load()) {
        }
        for (int i = t; i < kHeld; i += 4) Backends::Release(*held[i]);
      });
    }
    go = true;
    backends.Drain(1, [&] {
      in_flight_at_call = raw->in_flight.load();
      ++calls;
    });
    for (auto& t : threads) t.join();
    EXPECT_EQ(calls.load(), 1) << "round " << round;
    EXPECT_EQ(in_flight_at_call.load(), 0) << "round " << round;
  }
}

}  // namespace
}  // namespace phoenix::router

namespace phoenix::router {
namespace {

TEST(BackendsSlowTest, ASlowBackendIsPickedOnlyWhenNoOtherIs) {
  Backends backends;
  backends.Add({1, "web.1", 1, 1001});
  backends.Add({2, "web.2", 1, 1002});
  auto snap = backends.Load();
  Backends::MarkSlow(*snap->ready[0]);
  for (Balance balance : {Balance::kRoundRobin, Balance::kLeastOutstanding}) {
    uint64_t cursor = 0;
    for (int i = 0; i < 6; ++i) {
      auto b = Backends::Pick(*snap, balance, cursor);
      ASSERT_NE(b, nullptr);
      EXPECT_EQ(b->info.id, 2u);
      Backends::Release(*b);
    }
  }
  // The other one leaves: the slow one is better than none.
  backends.Remove(2);
  uint64_t cursor = 0;
  auto b = Backends::Pick(*backends.Load(), Balance::kRoundRobin, cursor);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->info.id, 1u);
  Backends::Release(*b);
  // And once its time is over, it is picked as before.
  backends.Add({3, "web.2", 2, 1003});
  Backends::MarkSlow(*backends.Load()->ready[0], -1);
  std::set<uint64_t> seen;
  for (int i = 0; i < 4; ++i) {
    auto p = Backends::Pick(*backends.Load(), Balance::kRoundRobin, cursor);
    seen.insert(p->info.id);
    Backends::Release(*p);
  }
  EXPECT_EQ(seen, (std::set<uint64_t>{1, 3}));
}

}  // namespace
}  // namespace phoenix::router

namespace phoenix::router {
namespace {

TEST(BackendsAvoidTest, TheOneToAvoidIsPickedWhenItIsTheOnlyOneLeft) {
  for (Balance balance : {Balance::kRoundRobin, Balance::kLeastOutstanding}) {
    Backends backends;
    backends.Add({1, "web.1", 1, 1001});
    uint64_t cursor = 0;
    auto b = Backends::Pick(*backends.Load(), balance, cursor, /*avoid=*/1);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->info.id, 1u);
    Backends::Release(*b);
    // With another that is draining, still the one to avoid rather than none.
    backends.Add({2, "web.2", 1, 1002});
    backends.Drain(2, [] {});
    b = Backends::Pick(*backends.Load(), balance, cursor, 1);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->info.id, 1u);
    Backends::Release(*b);
  }
}

}  // namespace
}  // namespace phoenix::router
