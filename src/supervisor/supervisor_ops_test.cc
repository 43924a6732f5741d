// Rotation, drills, chaos, rotate_window and the no-overlap rule of scheduled rebirths, driven
// with a fake clock through a minimal shell that spawns, readies and reaps on request.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>

#include "supervisor/supervisor.h"

namespace phoenix {
namespace {

using namespace std::chrono_literals;
const Time t0 = Time{} + std::chrono::hours(1);

Config OpsConfig(int web, Millis max_age = 1h, Millis jitter = 0ms) {
  Config c;
  c.app_root = "/srv/app";
  ProcessConfig w;
  w.type = "web";
  w.command = "node server.js";
  w.instances = web;
  w.max_age = max_age;
  w.max_age_jitter = jitter;
  ProcessConfig k;
  k.type = "worker";
  k.command = "node worker.js";
  k.instances = 1;
  k.max_age = 0ms;
  c.processes = {w, k};
  return c;
}

// Plays the shell: every spawn is answered, readiness and exits are explicit.
struct Shell {
  explicit Shell(const Config& c) : sup(c, 7) {}
  Supervisor sup;
  Time now = t0;
  std::vector<SpawnAction> spawns;
  std::vector<SignalAction> signals;
  std::vector<IncarnationId> stop_routing;
  std::vector<Event> events;
  pid_t pid = 100;

  void Pump() {
    for (;;) {
      auto acts = sup.TakeActions();
      auto evs = sup.TakeEvents();
      if (acts.empty() && evs.empty()) break;
      events.insert(events.end(), evs.begin(), evs.end());
      for (auto& a : acts) {
        if (auto* s = std::get_if<SpawnAction>(&a)) {
          spawns.push_back(*s);
          sup.Spawned(s->id, pid++, 20000 + static_cast<int>(s->id), now);
        } else if (auto* g = std::get_if<SignalAction>(&a)) {
          signals.push_back(*g);
        } else if (auto* r = std::get_if<StopRoutingAction>(&a)) {
          stop_routing.push_back(r->id);
          sup.Drained(r->id, now);  // no requests in flight
        }
      }
    }
  }
  void Start() {
    sup.Start(now);
    Pump();
  }
  // Every instance ready, then `rotate TYPE` asked for: spawns holds what the rotation starts.
  void StartRotating(const std::string& type) {
    Start();
    ReadyAllBooting();
    spawns.clear();
    ASSERT_TRUE(sup.Rotate(type, now).ok());
    Pump();
  }
  void ReadyAllBooting() {
    for (const auto& s : spawns) sup.Ready(s.id, now);
    Pump();
  }
  void Ready(IncarnationId id) {
    sup.Ready(id, now);
    Pump();
  }
  void Exit(IncarnationId id, ExitStatus st, std::optional<sandbox::LostState> lost = {}) {
    sup.Exited(id, st, std::move(lost), now);
    Pump();
  }
  void TickAt(Time t) {
    now = t;
    sup.Tick(now);
    Pump();
  }
  std::vector<Event> Of(const std::string& kind) const {
    std::vector<Event> out;
    for (const auto& e : events)
      if (e.kind == kind) out.push_back(e);
    return out;
  }
  // Exits everything that got SIGTERM or SIGKILL since `from`.
  void ExitSignalled(size_t from, std::optional<sandbox::LostState> lost = {}) {
    for (size_t i = from; i < signals.size(); ++i) {
      Exit(signals[i].id, ExitStatus{true, signals[i].signal}, lost);
    }
  }
  int ReadyWebCount() const {
    int n = 0;
    for (const auto& v : sup.View(now))
      n += v.type == "web" && (v.state == "ready" || v.state == "replacing");
    return n;
  }
};

TEST(SupervisorOpsTest, RotateReplacesEveryInstanceOneAfterAnother) {
  Shell s(OpsConfig(3));
  s.StartRotating("web");
  ASSERT_EQ(s.spawns.size(), 1u);
  EXPECT_EQ(s.spawns[0].instance, "web.1");
  EXPECT_EQ(s.spawns[0].incarnation, 2);
  for (const char* next : {"web.2", "web.3"}) {
    size_t sig = s.signals.size();
    s.Ready(s.spawns.back().id);
    EXPECT_EQ(s.ReadyWebCount(), 3) << "capacity never dips";
    ASSERT_EQ(s.spawns.back().instance, next) << "the next slot starts once the last is ready";
    s.ExitSignalled(sig);
    EXPECT_EQ(s.Of("died").back().reason, DeathReason::kRotated);
  }
  EXPECT_TRUE(s.Of("rotated").empty());
  s.Ready(s.spawns.back().id);
  ASSERT_EQ(s.Of("rotated").size(), 1u);
  EXPECT_EQ(s.Of("rotated")[0].message, "every instance was replaced (3)");
  EXPECT_FALSE(s.sup.rotating());
  EXPECT_FALSE(s.sup.Rotate("nope", s.now).ok());
  // Scaled to 0 (the slots retiring): nothing to rotate, said as such.
  ASSERT_TRUE(s.sup.Scale("web", 0, s.now).ok());
  s.Pump();
  Status none = s.sup.Rotate("web", s.now);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message, "no instance to rotate");
}

// A release that cannot boot: the rotation fails at its first replacement, the instance it
// was to replace keeps serving, nothing is retried in the background, the rest stay as they are.
TEST(SupervisorOpsTest, RotateFailsWhenAReplacementCannotGetReady) {
  for (bool timeout : {false, true}) {
    Shell s(OpsConfig(2));
    s.StartRotating("web");
    ASSERT_EQ(s.spawns.size(), 1u);
    IncarnationId bad = s.spawns[0].id;
    if (timeout) {
      size_t sig = s.signals.size();
      s.TickAt(s.now + 5min);  // past boot_timeout: SIGTERM
      ASSERT_GT(s.signals.size(), sig);
      s.ExitSignalled(sig);
    } else {
      s.Exit(bad, ExitStatus{false, 1});
    }
    ASSERT_EQ(s.Of("rotation-failed").size(), 1u) << timeout;
    const Event e = s.Of("rotation-failed")[0];
    EXPECT_EQ(e.instance, "web.1");
    EXPECT_NE(e.message.find(timeout ? "web.1 #2 timed out booting before it was ready"
                                     : "web.1 #2 crashed before it was ready (exit 1)"),
              std::string::npos)
        << e.message;
    EXPECT_NE(e.message.find("web.1 #1 keeps serving; 0 of 2 instances replaced"),
              std::string::npos)
        << e.message;
    EXPECT_TRUE(s.Of("rotated").empty());
    EXPECT_FALSE(s.sup.rotating());
    EXPECT_EQ(s.ReadyWebCount(), 2);
    auto view = s.sup.View(s.now);
    EXPECT_EQ(view[0].state, "ready");
    EXPECT_EQ(view[0].incarnation, 1);
    s.spawns.clear();
    s.TickAt(s.now + 10min);
    EXPECT_TRUE(s.spawns.empty()) << "no replacement retried in the background";
    // A new rotate may be asked for (after a fix).
    EXPECT_TRUE(s.sup.Rotate("web", s.now).ok());
  }
}

// What a rotation must survive: its slot scaled away under it, and phoenix stopping (the
// waiting command gets an answer each time). (A second `rotate` while it runs: below.)
TEST(SupervisorOpsTest, RotationEndsWhenItsSlotIsScaledAwayOrPhoenixStops) {
  Shell s(OpsConfig(3));
  s.StartRotating("web");
  for (int i = 0; i < 2; ++i) {
    size_t sig = s.signals.size();
    s.Ready(s.spawns.back().id);
    s.ExitSignalled(sig);
  }
  ASSERT_EQ(s.spawns.back().instance, "web.3");
  // web.3 scaled away while its successor boots: the rotation ends, without web.3.
  ASSERT_TRUE(s.sup.Scale("web", 2, s.now).ok());
  s.Pump();
  s.ExitSignalled(0);
  ASSERT_EQ(s.Of("rotated").size(), 1u) << "the rotation ended";
  EXPECT_EQ(s.Of("rotated")[0].message,
            "2 of 3 instances replaced; the others were gone or being born");
  EXPECT_FALSE(s.sup.rotating());
  EXPECT_EQ(s.spawns.size(), 3u) << "no slot replaced twice";

  // Stopping phoenix during a rotation answers the waiting command.
  Shell t(OpsConfig(2));
  t.Start();
  t.ReadyAllBooting();
  ASSERT_TRUE(t.sup.Rotate("web", t.now).ok());
  t.Pump();
  t.sup.Shutdown(t.now);
  t.Pump();
  ASSERT_EQ(t.Of("rotation-failed").size(), 1u);
  EXPECT_EQ(t.Of("rotation-failed")[0].message, "phoenix is stopping; 0 of 2 instances replaced");
}

// A scheduled replacement that crashes waits in backoff beside the instance it replaces,
// which keeps serving: ps says so ("replacing", the next try as the next rebirth).
TEST(SupervisorOpsTest, AReplacementInBackoffShowsInTheView) {
  Shell s(OpsConfig(1, 1h, 0ms));
  s.Start();
  s.ReadyAllBooting();
  s.spawns.clear();
  s.TickAt(t0 + 1h);
  ASSERT_EQ(s.spawns.size(), 1u);
  // The first retry comes at once; after that, backoff.
  for (int i = 0; i < 5 && s.Of("backoff").empty(); ++i)
    s.Exit(s.spawns.back().id, ExitStatus{false, 1});
  ASSERT_FALSE(s.Of("backoff").empty());
  auto v = s.sup.View(s.now)[0];
  EXPECT_EQ(v.state, "replacing");
  EXPECT_EQ(v.incarnation, 1);
  ASSERT_TRUE(v.next_rebirth.has_value());
  EXPECT_GT(*v.next_rebirth, Millis(0));
  EXPECT_LT(*v.next_rebirth, Millis(10min));
  EXPECT_NE(v.last_exit.find("crash"), std::string::npos) << v.last_exit;
}

TEST(SupervisorOpsTest, ScheduledRebirthsOfOneTypeNeverOverlap) {
  Shell s(OpsConfig(2, 1h, 0ms));  // no jitter: both are due at the same moment
  s.Start();
  s.ReadyAllBooting();
  s.spawns.clear();
  s.TickAt(t0 + 1h);
  ASSERT_EQ(s.spawns.size(), 1u) << "one replacement at a time for a type";
  s.Ready(s.spawns[0].id);
  // The other one is overdue: the next tick (the deadline says now) starts it.
  ASSERT_TRUE(s.sup.NextDeadline().has_value());
  EXPECT_LE(*s.sup.NextDeadline(), s.now);
  s.TickAt(s.now);
  ASSERT_EQ(s.spawns.size(), 2u);
  EXPECT_NE(s.spawns[1].instance, s.spawns[0].instance);
}

TEST(SupervisorOpsTest, RotateWindowHoldsScheduledRebirthsUntilItOpens) {
  Config c = OpsConfig(1, 1h, 0ms);
  c.processes[0].rotate_window = DailyWindow{2 * 60, 5 * 60};
  Shell s(c);
  int minute = 10 * 60;  // 10:00, outside 02:00-05:00
  s.sup.SetMinuteOfDay([&](Time t) {
    return (minute +
            static_cast<int>(std::chrono::duration_cast<std::chrono::minutes>(t - t0).count())) %
           1440;
  });
  s.Start();
  s.ReadyAllBooting();
  s.spawns.clear();
  // ps says when it will really happen: 02:00, not "now" once max_age has passed.
  EXPECT_EQ(s.sup.View(s.now)[0].next_rebirth, Millis(16h));
  s.TickAt(t0 + 1h);  // 11:00: due, but outside the window
  EXPECT_TRUE(s.spawns.empty());
  EXPECT_EQ(s.sup.View(s.now)[0].next_rebirth, Millis(15h));
  ASSERT_TRUE(s.sup.NextDeadline().has_value());
  EXPECT_EQ(*s.sup.NextDeadline(), t0 + 16h) << "02:00 the next day";
  s.TickAt(t0 + 16h);
  EXPECT_EQ(s.spawns.size(), 1u);
}

TEST(SupervisorOpsTest, RotateDuringARotationReplacesTheOneBeingReplacedAgain) {
  Shell s(OpsConfig(3));
  s.StartRotating("web");  // web.1 #2 booting; web.2, web.3 queued
  ASSERT_TRUE(s.sup.Rotate("web", s.now).ok());
  s.Pump();
  auto rotating = s.Of("rotating");
  ASSERT_EQ(rotating.size(), 2u);
  EXPECT_EQ(rotating[1].message, "1 more instance, one after another");
  // web.1 is done once its #2 is ready, then web.2, web.3, then web.1 again: its #2 was born
  // before the second request.
  std::vector<std::string> order;
  for (int i = 0; i < 4 && !s.spawns.empty(); ++i) {
    SpawnAction next = s.spawns.back();
    order.push_back(next.instance + "#" + std::to_string(next.incarnation));
    size_t sig = s.signals.size();
    s.Ready(next.id);
    s.ExitSignalled(sig);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"web.1#2", "web.2#2", "web.3#2", "web.1#3"}));
  auto done = s.Of("rotated");
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].message, "every instance was replaced (4)");
}

TEST(SupervisorOpsTest, DrillKillsAtOnceAndReportsRecovery) {
  Shell s(OpsConfig(2));
  s.Start();
  s.ReadyAllBooting();
  s.spawns.clear();
  ASSERT_TRUE(s.sup.Drill("", 1.0, s.now).ok());
  s.Pump();
  EXPECT_EQ(s.signals.size(), 3u);
  for (const auto& g : s.signals) EXPECT_EQ(g.signal, SIGKILL);
  EXPECT_FALSE(s.sup.Drill("", 1.0, s.now).ok()) << "one drill at a time";
  sandbox::LostState lost;
  lost.files.push_back({"uploads/a.jpg", 1000, sandbox::Change::kCreated});
  lost.bytes = 1000;
  s.ExitSignalled(0, lost);
  for (const auto& e : s.Of("died")) EXPECT_EQ(e.reason, DeathReason::kDrill);
  ASSERT_EQ(s.spawns.size(), 3u) << "reborn at once";
  EXPECT_TRUE(s.Of("drill").empty());
  s.now += 250ms;
  s.ReadyAllBooting();
  auto done = s.Of("drill");
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].age, 250ms);
  ASSERT_TRUE(done[0].lost.has_value());
  EXPECT_EQ(done[0].lost->files.size(), 3u);
  EXPECT_EQ(done[0].lost->bytes, 3000u);
}

TEST(SupervisorOpsTest, DrillFailsWhenAKilledSlotCannotComeBack) {
  Shell s(OpsConfig(2));
  s.Start();
  s.ReadyAllBooting();
  s.spawns.clear();
  ASSERT_TRUE(s.sup.Drill("web", 1.0, s.now).ok());
  s.Pump();
  s.ExitSignalled(0);
  ASSERT_EQ(s.spawns.size(), 2u);
  s.now += 300ms;
  // The release no longer boots: the first successor crashes before it is ready.
  s.Exit(s.spawns[0].id, ExitStatus{false, 1});
  auto failed = s.Of("drill-failed");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_NE(failed[0].message.find("did not come back"), std::string::npos) << failed[0].message;
  EXPECT_NE(failed[0].message.find("exit 1"), std::string::npos) << failed[0].message;
  EXPECT_EQ(failed[0].age, 300ms);
  EXPECT_TRUE(s.Of("drill").empty());
  // Over: another drill may start, and the slot goes on being reborn with backoff.
  ASSERT_TRUE(s.sup.Drill("web", 0.5, s.now).ok());
}

TEST(SupervisorOpsTest, DrillFractionAndErrors) {
  Shell s(OpsConfig(4));
  s.Start();
  s.ReadyAllBooting();
  EXPECT_FALSE(s.sup.Drill("web", 0.0, s.now).ok());
  EXPECT_FALSE(s.sup.Drill("web", 1.5, s.now).ok());
  EXPECT_FALSE(s.sup.Drill("wbe", 0.5, s.now).ok());
  ASSERT_TRUE(s.sup.Drill("web", 0.5, s.now).ok());
  s.Pump();
  EXPECT_EQ(s.signals.size(), 2u);
}

TEST(SupervisorOpsTest, ChaosKillsAtRandomButNeverTheLastReadyOfAType) {
  Config c = OpsConfig(2);
  c.chaos.mean_time_between_kills = 1min;
  c.chaos.hours = DailyWindow{0, 24 * 60};
  Shell s(c);
  s.sup.SetMinuteOfDay([](Time) { return 12 * 60; });
  s.Start();
  s.ReadyAllBooting();
  int kills = 0;
  for (int i = 0; i < 20; ++i) {
    auto next = s.sup.NextDeadline();
    ASSERT_TRUE(next.has_value());
    size_t sig = s.signals.size();
    s.TickAt(*next);
    for (size_t k = sig; k < s.signals.size(); ++k) {
      ASSERT_EQ(s.signals[k].signal, SIGKILL);
      ++kills;
    }
    EXPECT_GE(s.ReadyWebCount(), 1) << "never the last ready web instance";
    s.ExitSignalled(sig);
    s.ReadyAllBooting();
  }
  EXPECT_GT(kills, 5);
  for (const auto& e : s.Of("chaos"))
    EXPECT_EQ(e.instance.rfind("web.", 0), 0u) << "the lone worker is spared";
  for (const auto& e : s.Of("died")) EXPECT_EQ(e.reason, DeathReason::kChaos);
}

TEST(SupervisorOpsTest, ChaosOnlyWithinHours) {
  Config c = OpsConfig(2);
  c.chaos.mean_time_between_kills = 1min;
  c.chaos.hours = DailyWindow{9 * 60, 17 * 60};
  Shell s(c);
  s.sup.SetMinuteOfDay([](Time) { return 3 * 60; });  // 03:00: nobody around
  s.Start();
  s.ReadyAllBooting();
  for (int i = 0; i < 10; ++i) s.TickAt(*s.sup.NextDeadline());
  EXPECT_TRUE(s.signals.empty());
  EXPECT_TRUE(s.Of("chaos").empty());
}

}  // namespace
}  // namespace phoenix
