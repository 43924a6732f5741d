#include "supervisor/supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace phoenix {
namespace {

using namespace std::chrono_literals;

const Time t0 = Time{} + std::chrono::hours(1);

constexpr Millis kBoot = 60s, kDrain = 30s, kStop = 30s;

// web: 2 instances, replaced every 50–60 min; worker: 1 instance with the default schedule.
Config TestConfig(int web = 2, int worker = 1) {
  Config c;
  c.app_root = "/srv/app";
  ProcessConfig w;
  w.type = "web";
  w.command = "node server.js";
  w.instances = web;
  w.max_age = 1h;
  w.max_age_jitter = 10min;
  w.boot_timeout = kBoot;
  w.drain_timeout = kDrain;
  w.stop_timeout = kStop;
  ProcessConfig k;
  k.type = "worker";
  k.command = "node worker.js";
  k.instances = worker;
  c.processes = {w, k};
  return c;
}

const ExitStatus kExit0{false, 0};
const ExitStatus kExit1{false, 1};
const ExitStatus kSigterm{true, SIGTERM};
const ExitStatus kSigkill{true, SIGKILL};

sandbox::LostState Lost(std::vector<std::pair<std::string, uint64_t>> files) {
  sandbox::LostState s;
  for (auto& [path, bytes] : files) {
    s.files.push_back({path, bytes, sandbox::Change::kCreated});
    s.bytes += bytes;
  }
  return s;
}

// What the shell knows of an incarnation, rebuilt from actions and events only.
struct Tracked {
  IncarnationId id = 0;
  std::string instance, type;
  int number = 0;
  pid_t pid = 0;
  int port = 0;
  std::string state = "spawning";  // spawning, booting, ready, draining, stopping, dead
  std::vector<int> signals;
  int stop_routing = 0;
};

// Drives a Supervisor as the shell would: carries SpawnActions out at once (fake pids and
// ports), records every action and event, and checks the capacity of `guarded` instances
// after every single event.
class Harness {
 public:
  explicit Harness(const Config& config = TestConfig(), uint64_t seed = 42) : sup(config, seed) {}

  // ---- inputs: each forgets the previous input's actions and events ----
  void Start() {
    Begin();
    sup.Start(now);
    Pump();
  }
  void Spawned(IncarnationId id) {
    Begin();
    DoSpawned(id);
    Pump();
  }
  void SpawnFailed(IncarnationId id, const std::string& why) {
    Begin();
    sup.SpawnFailed(id, why, now);
    Pump();
  }
  void Ready(IncarnationId id) {
    Begin();
    sup.Ready(id, now);
    Pump();
  }
  void ReadyAll() {  // every booting incarnation
    Begin();
    for (IncarnationId id : InState("booting")) sup.Ready(id, now);
    Pump();
  }
  void Drained(IncarnationId id) {
    Begin();
    sup.Drained(id, now);
    Pump();
  }
  void Exit(IncarnationId id, ExitStatus status = kExit0,
            std::optional<sandbox::LostState> lost = std::nullopt) {
    Begin();
    sup.Exited(id, status, std::move(lost), now);
    Pump();
  }
  void Tick() {
    Begin();
    sup.Tick(now);
    Pump();
  }
  void TickAt(Time t) {
    now = t;
    Tick();
  }
  void Advance(Millis d) { now += d; }
  Result<std::string> Kill(const std::string& instance, bool hard = false) {
    Begin();
    auto s = sup.Kill(instance, hard, now);
    Pump();
    return s;
  }
  Result<std::string> Scale(const std::string& type, int count) {
    Begin();
    auto s = sup.Scale(type, count, now);
    Pump();
    return s;
  }
  void Shutdown() {
    Begin();
    sup.Shutdown(now);
    Pump();
  }
  void ForceShutdown() {
    Begin();
    sup.ForceShutdown(now);
    Pump();
  }

  // ---- lookups ----
  IncarnationId Id(const std::string& instance, int number) const {
    auto it = by_name_.find({instance, number});
    if (it == by_name_.end()) {
      ADD_FAILURE() << "no incarnation " << instance << " #" << number;
      return 0;
    }
    return it->second;
  }
  std::optional<InstanceView> FindView(const std::string& instance) const {
    for (const InstanceView& v : sup.View(now)) {
      if (v.instance == instance) return v;
    }
    return std::nullopt;
  }
  InstanceView ViewOf(const std::string& instance) const {
    auto v = FindView(instance);
    if (!v) ADD_FAILURE() << "no view of " << instance;
    return v.value_or(InstanceView{});
  }
  IncarnationId Current(const std::string& instance) const {
    return Id(instance, ViewOf(instance).incarnation);
  }
  const Tracked& Inc(IncarnationId id) const { return incs.at(id); }
  std::vector<IncarnationId> InState(const std::string& state) const {
    std::vector<IncarnationId> out;
    for (const auto& [id, t] : incs) {
      if (t.state == state) out.push_back(id);
    }
    return out;
  }
  int ServingCount(const std::string& type) const {
    int n = 0;
    for (const auto& [id, t] : incs) n += t.type == type && t.state == "ready";
    return n;
  }

  template <class A>
  std::vector<A> ActionsOf() const {
    std::vector<A> out;
    for (const Action& a : actions) {
      if (const A* x = std::get_if<A>(&a)) out.push_back(*x);
    }
    return out;
  }
  std::vector<SpawnAction> Spawns() const { return ActionsOf<SpawnAction>(); }
  std::vector<SignalAction> Signals() const { return ActionsOf<SignalAction>(); }
  std::vector<StopRoutingAction> StopRoutings() const { return ActionsOf<StopRoutingAction>(); }
  std::vector<Event> EventsOf(const std::string& kind) const {
    std::vector<Event> out;
    for (const Event& e : events) {
      if (e.kind == kind) out.push_back(e);
    }
    return out;
  }
  std::vector<std::string> Kinds() const {
    std::vector<std::string> out;
    for (const Event& e : events) out.push_back(e.kind + " " + e.instance);
    return out;
  }
  // The one event of `kind` in the last input's output.
  Event OnlyEvent(const std::string& kind) const {
    auto all = EventsOf(kind);
    if (all.size() != 1) {
      ADD_FAILURE() << all.size() << " '" << kind << "' events, expected one";
      return Event{};
    }
    return all[0];
  }

  Supervisor sup;
  Time now = t0;
  bool auto_spawn = true;
  std::vector<Action> actions;  // of the last input, with the Spawned answers it caused
  std::vector<Event> events;
  std::vector<Event> log;  // every event since the start
  std::map<IncarnationId, Tracked> incs;
  std::set<std::string> guarded;  // instances that must never be without a ready incarnation
  int exit_actions_total = 0;

 private:
  void Begin() {
    actions.clear();
    events.clear();
  }

  void DoSpawned(IncarnationId id) {
    Tracked& t = incs.at(id);
    EXPECT_EQ(t.state, "spawning") << "Spawned twice: " << t.instance << " #" << t.number;
    t.pid = next_pid_++;
    t.port = next_port_++;
    sup.Spawned(id, t.pid, t.port, now);
  }

  void Pump() {
    for (int round = 0; round < 100; ++round) {
      auto evs = sup.TakeEvents();
      auto acts = sup.TakeActions();
      if (evs.empty() && acts.empty()) return;
      for (const Action& a : acts) {
        if (const auto* s = std::get_if<SpawnAction>(&a)) Register(*s);
      }
      for (const Event& e : evs) OnEvent(e);
      events.insert(events.end(), evs.begin(), evs.end());
      log.insert(log.end(), evs.begin(), evs.end());
      actions.insert(actions.end(), acts.begin(), acts.end());
      for (const Action& a : acts) OnAction(a);
    }
    ADD_FAILURE() << "the supervisor keeps producing output";
  }

  void Register(const SpawnAction& s) {
    EXPECT_EQ(incs.count(s.id), 0u) << "incarnation id reused: " << s.id;
    // A slot created again (scale down, then up) counts from #1 again; a live one never
    // repeats a number.
    auto same = by_name_.find({s.instance, s.incarnation});
    if (same != by_name_.end()) {
      EXPECT_EQ(incs.at(same->second).state, "dead")
          << "incarnation number reused: " << s.instance << " #" << s.incarnation;
    }
    Tracked t;
    t.id = s.id;
    t.instance = s.instance;
    t.type = s.type;
    t.number = s.incarnation;
    incs[s.id] = t;
    by_name_[{s.instance, s.incarnation}] = s.id;
  }

  void OnEvent(const Event& e) {
    auto it = by_name_.find({e.instance, e.incarnation});
    if (it != by_name_.end()) {
      Tracked& t = incs.at(it->second);
      if (e.kind == "born") {
        EXPECT_EQ(t.state, "spawning");
        EXPECT_EQ(e.pid, t.pid);
        EXPECT_EQ(e.port, t.port);
        t.state = "booting";
      } else if (e.kind == "ready") {
        EXPECT_EQ(t.state, "booting") << e.instance << " #" << e.incarnation;
        t.state = "ready";
      } else if (e.kind == "draining") {
        EXPECT_EQ(t.state, "ready") << e.instance << " #" << e.incarnation;
        t.state = "draining";
      } else if (e.kind == "stopping") {
        EXPECT_NE(t.state, "dead");
        t.state = "stopping";
      } else if (e.kind == "died") {
        EXPECT_NE(t.state, "dead") << "died twice: " << e.instance << " #" << e.incarnation;
        t.state = "dead";
      }
    }
    for (const std::string& g : guarded) {
      bool serving = false;
      for (const auto& [id, t] : incs) serving |= t.instance == g && t.state == "ready";
      if (!serving) {
        ADD_FAILURE() << "capacity dipped: " << g << " has no ready incarnation after '" << e.kind
                      << "' of " << e.instance << " #" << e.incarnation;
      }
    }
  }

  void OnAction(const Action& a) {
    if (const auto* s = std::get_if<SpawnAction>(&a)) {
      if (auto_spawn) DoSpawned(s->id);
    } else if (const auto* s = std::get_if<SignalAction>(&a)) {
      auto it = incs.find(s->id);
      if (it == incs.end() || it->second.state == "dead") {
        ADD_FAILURE() << "signal " << s->signal << " for an incarnation not alive: " << s->id;
      } else {
        it->second.signals.push_back(s->signal);
      }
    } else if (const auto* s = std::get_if<StopRoutingAction>(&a)) {
      auto it = incs.find(s->id);
      if (it == incs.end()) {
        ADD_FAILURE() << "stop routing of an unknown incarnation " << s->id;
      } else {
        ++it->second.stop_routing;
      }
    } else if (std::holds_alternative<ExitAction>(a)) {
      ++exit_actions_total;
    }
  }

  std::map<std::pair<std::string, int>, IncarnationId> by_name_;
  pid_t next_pid_ = 1000;
  int next_port_ = 20000;
};

// Start, and every incarnation ready one second later.
void StartReady(Harness& h) {
  h.Start();
  h.Advance(1s);
  h.ReadyAll();
}

// ---------------------------------------------------------------- names and statuses

TEST(SupervisorNamesTest, StatesAndReasons) {
  EXPECT_STREQ(ToString(IncarnationState::kBooting), "booting");
  EXPECT_STREQ(ToString(IncarnationState::kReady), "ready");
  EXPECT_STREQ(ToString(IncarnationState::kDraining), "draining");
  EXPECT_STREQ(ToString(IncarnationState::kStopping), "stopping");
  EXPECT_STREQ(ToString(IncarnationState::kDead), "dead");
  EXPECT_STREQ(ToString(DeathReason::kCrash), "crash");
  EXPECT_STREQ(ToString(DeathReason::kMaxAge), "max-age");
  EXPECT_STREQ(ToString(DeathReason::kKilled), "killed");
  EXPECT_STREQ(ToString(DeathReason::kScaledDown), "scaled-down");
  EXPECT_STREQ(ToString(DeathReason::kBootTimeout), "boot-timeout");
  EXPECT_STREQ(ToString(DeathReason::kShutdown), "shutdown");
  EXPECT_STREQ(ToString(DeathReason::kPhoenixKilled), "phoenix-killed");
}

TEST(ExitStatusTest, ToString) {
  EXPECT_EQ(kExit0.ToString(), "exit 0");
  EXPECT_EQ(kExit1.ToString(), "exit 1");
  EXPECT_EQ((ExitStatus{false, 127}).ToString(), "exit 127 (command not found)");
  EXPECT_EQ((ExitStatus{false, 126}).ToString().rfind("exit 126 (", 0), 0u);
  EXPECT_EQ(kSigkill.ToString(), "SIGKILL");
  EXPECT_EQ(kSigterm.ToString(), "SIGTERM");
  EXPECT_EQ((ExitStatus{true, SIGSEGV}).ToString(), "SIGSEGV");
  EXPECT_EQ((ExitStatus{true, 200}).ToString(), "signal 200");
}

TEST(ExitStatusTest, FromWaitStatus) {
  ExitStatus exited = ExitStatus::FromWaitStatus(3 << 8);  // as wait() reports exit(3)
  EXPECT_FALSE(exited.signaled);
  EXPECT_EQ(exited.code, 3);
  ExitStatus killed = ExitStatus::FromWaitStatus(SIGKILL);
  EXPECT_TRUE(killed.signaled);
  EXPECT_EQ(killed.code, SIGKILL);
  ExitStatus clean = ExitStatus::FromWaitStatus(0);
  EXPECT_FALSE(clean.signaled);
  EXPECT_EQ(clean.code, 0);
}

// ---------------------------------------------------------------- birth

TEST(SupervisorTest, StartSpawnsEveryInstanceAndProbesOnlyWeb) {
  Harness h;
  h.auto_spawn = false;
  h.Start();
  auto spawns = h.Spawns();
  ASSERT_EQ(spawns.size(), 3u);
  EXPECT_EQ(h.actions.size(), 3u);
  EXPECT_TRUE(h.events.empty()) << "nothing is born before the shell spawned it";
  std::map<std::string, SpawnAction> by_instance;
  std::set<IncarnationId> ids;
  for (const SpawnAction& s : spawns) {
    by_instance.emplace(s.instance, s);
    ids.insert(s.id);
  }
  EXPECT_EQ(ids.size(), 3u);
  ASSERT_EQ(by_instance.count("web.1"), 1u);
  ASSERT_EQ(by_instance.count("web.2"), 1u);
  ASSERT_EQ(by_instance.count("worker.1"), 1u);
  EXPECT_EQ(by_instance.at("web.1").type, "web");
  EXPECT_EQ(by_instance.at("web.1").incarnation, 1);
  EXPECT_TRUE(by_instance.at("web.1").probe_port);
  EXPECT_TRUE(by_instance.at("web.2").probe_port);
  EXPECT_EQ(by_instance.at("worker.1").type, "worker");
  EXPECT_EQ(by_instance.at("worker.1").incarnation, 1);
  EXPECT_FALSE(by_instance.at("worker.1").probe_port);
  EXPECT_EQ(h.sup.LiveCount(), 3);
  EXPECT_FALSE(h.sup.shutting_down());
  // The first deadline is the boot timeout.
  EXPECT_EQ(h.sup.NextDeadline(), t0 + kBoot);
}

TEST(SupervisorTest, BornAndReadyEvents) {
  Harness h;
  h.auto_spawn = false;
  h.Start();
  IncarnationId web1 = h.Id("web.1", 1);
  h.Advance(5ms);
  h.Spawned(web1);
  Event born = h.OnlyEvent("born");
  EXPECT_EQ(born.instance, "web.1");
  EXPECT_EQ(born.incarnation, 1);
  EXPECT_EQ(born.pid, h.Inc(web1).pid);
  EXPECT_EQ(born.port, h.Inc(web1).port);
  EXPECT_NE(born.pid, 0);
  EXPECT_FALSE(born.reason.has_value());
  EXPECT_EQ(h.ViewOf("web.1").state, "booting");
  EXPECT_EQ(h.ViewOf("web.1").pid, born.pid);

  h.Advance(2s);
  h.Ready(web1);
  Event ready = h.OnlyEvent("ready");
  EXPECT_EQ(ready.instance, "web.1");
  EXPECT_EQ(ready.incarnation, 1);
  EXPECT_EQ(ready.pid, born.pid);
  EXPECT_EQ(ready.port, born.port);
  EXPECT_EQ(ready.age, 2005ms);
  // A ready `web` incarnation joins the router's rotation, and nothing else happens.
  ASSERT_EQ(h.actions.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<StartRoutingAction>(h.actions[0]));
  EXPECT_EQ(std::get<StartRoutingAction>(h.actions[0]).id, web1);
  EXPECT_EQ(h.ViewOf("web.1").state, "ready");

  // A second Ready, or one for an unknown incarnation, changes nothing.
  h.Ready(web1);
  h.Ready(9999);
  EXPECT_TRUE(h.events.empty());
  EXPECT_TRUE(h.actions.empty());
}

TEST(SupervisorTest, InputsForUnknownIncarnationsAreIgnored) {
  Harness h;
  StartReady(h);
  h.sup.Spawned(777, 1, 2, h.now);
  h.sup.SpawnFailed(777, "nope", h.now);
  h.sup.Ready(777, h.now);
  h.sup.Drained(777, h.now);
  h.sup.Exited(777, kExit1, std::nullopt, h.now);
  EXPECT_TRUE(h.sup.TakeEvents().empty());
  EXPECT_TRUE(h.sup.TakeActions().empty());
  EXPECT_EQ(h.sup.LiveCount(), 3);
}

// ---------------------------------------------------------------- crashes and backoff

TEST(SupervisorTest, CrashOfReadyIncarnationIsRebornAtOnce) {
  Harness h;
  StartReady(h);
  IncarnationId old = h.Id("web.1", 1);
  h.Advance(10s);
  auto lost = Lost({{"uploads/a.jpg", 1000}});
  h.Exit(old, kExit1, lost);

  Event died = h.OnlyEvent("died");
  EXPECT_EQ(died.instance, "web.1");
  EXPECT_EQ(died.incarnation, 1);
  EXPECT_EQ(died.reason, DeathReason::kCrash);
  ASSERT_TRUE(died.status.has_value());
  EXPECT_FALSE(died.status->signaled);
  EXPECT_EQ(died.status->code, 1);
  EXPECT_EQ(died.age, 11s);
  ASSERT_TRUE(died.lost.has_value());
  EXPECT_EQ(died.lost->files.size(), 1u);
  EXPECT_TRUE(h.EventsOf("backoff").empty());

  auto spawns = h.Spawns();
  ASSERT_EQ(spawns.size(), 1u);
  EXPECT_EQ(spawns[0].instance, "web.1");
  EXPECT_EQ(spawns[0].incarnation, 2);
  EXPECT_TRUE(spawns[0].probe_port);
  EXPECT_TRUE(h.Signals().empty());

  InstanceView v = h.ViewOf("web.1");
  EXPECT_EQ(v.incarnation, 2);
  EXPECT_EQ(v.state, "booting");
  EXPECT_EQ(v.restarts, 1);
  EXPECT_EQ(v.last_exit, "crash (exit 1)");
  EXPECT_EQ(v.lost_files, 1u);
  EXPECT_EQ(v.lost_bytes, 1000u);
  // The other instances are untouched.
  EXPECT_EQ(h.ViewOf("web.2").incarnation, 1);
  EXPECT_EQ(h.ViewOf("web.2").restarts, 0);
}

TEST(SupervisorTest, RepeatedCrashesWhileBootingBackOff) {
  Harness h;
  h.Start();
  h.Advance(1s);
  h.Ready(h.Id("web.1", 1));
  h.Ready(h.Id("worker.1", 1));

  // The first crash: reborn at once.
  h.Exit(h.Id("web.2", 1), kExit1);
  ASSERT_EQ(h.Spawns().size(), 1u);
  EXPECT_EQ(h.Spawns()[0].incarnation, 2);
  EXPECT_TRUE(h.EventsOf("backoff").empty());

  int number = 2;
  for (Millis delay : {Millis(1s), Millis(2s), Millis(4s), Millis(8s)}) {
    SCOPED_TRACE(delay.count());
    h.Advance(500ms);
    h.Exit(h.Id("web.2", number), kExit1);
    EXPECT_EQ(h.OnlyEvent("died").reason, DeathReason::kCrash);
    EXPECT_TRUE(h.Spawns().empty()) << "no birth before the backoff";
    Event backoff = h.OnlyEvent("backoff");
    EXPECT_EQ(backoff.instance, "web.2");
    EXPECT_EQ(backoff.delay, delay);
    EXPECT_EQ(backoff.incarnation, number + 1);
    EXPECT_FALSE(backoff.message.empty());

    InstanceView v = h.ViewOf("web.2");
    EXPECT_EQ(v.state, "backoff");
    EXPECT_EQ(v.next_rebirth, delay);
    EXPECT_EQ(v.incarnation, number);

    const Time due = h.now + delay;
    ASSERT_EQ(h.sup.NextDeadline(), due);
    h.TickAt(due - 1ms);
    EXPECT_TRUE(h.Spawns().empty());
    EXPECT_EQ(h.sup.NextDeadline(), due);
    h.TickAt(due);
    ASSERT_EQ(h.Spawns().size(), 1u);
    EXPECT_EQ(h.Spawns()[0].instance, "web.2");
    EXPECT_EQ(h.Spawns()[0].incarnation, number + 1);
    EXPECT_EQ(h.ViewOf("web.2").state, "booting");
    EXPECT_EQ(h.ViewOf("web.2").incarnation, number + 1);
    ++number;
  }
  EXPECT_EQ(h.ViewOf("web.2").restarts, 5);
  // The neighbours never noticed.
  EXPECT_EQ(h.ViewOf("web.1").incarnation, 1);
  EXPECT_EQ(h.ViewOf("web.1").restarts, 0);
}

TEST(SupervisorTest, CrashesRightAfterReadyStillCount) {
  Harness h;
  StartReady(h);
  for (int n = 1; n <= 2; ++n) {
    h.Advance(5s);  // well under the healthy stretch
    h.Exit(h.Current("web.1"), kExit1);
    h.Advance(1s);
    if (n == 1) {
      EXPECT_EQ(h.Spawns().size(), 1u);
      h.ReadyAll();
    } else {
      EXPECT_TRUE(h.Spawns().empty());
      EXPECT_EQ(h.OnlyEvent("backoff").delay, 1s);
    }
  }
}

TEST(SupervisorTest, CrashCountResetsAfterAHealthyStretch) {
  Harness h;
  StartReady(h);
  // Three crashes in a row while booting: the next birth is 2 s away.
  h.Exit(h.Id("web.1", 1), kExit1);  // crash 1 (ready less than a minute): at once
  h.Exit(h.Id("web.1", 2), kExit1);  // crash 2: 1 s
  h.TickAt(h.now + 1s);
  h.Exit(h.Id("web.1", 3), kExit1);  // crash 3: 2 s
  EXPECT_EQ(h.OnlyEvent("backoff").delay, 2s);
  h.TickAt(h.now + 2s);
  IncarnationId healthy = h.Id("web.1", 4);
  h.Ready(healthy);

  // Ready for a whole healthy stretch: the next crash is the first of a new series.
  h.Advance(kHealthyStretch);
  h.Exit(healthy, kExit1);
  EXPECT_TRUE(h.EventsOf("backoff").empty());
  ASSERT_EQ(h.Spawns().size(), 1u);
  EXPECT_EQ(h.Spawns()[0].incarnation, 5);

  // And the one after it backs off from 1 s again, not from 4 s.
  h.Exit(h.Id("web.1", 5), kExit1);
  EXPECT_EQ(h.OnlyEvent("backoff").delay, 1s);
}

TEST(SupervisorTest, CleanExitRightAfterBirthHintsAtADaemon) {
  Harness h;
  h.Start();
  h.Advance(2s);
  h.Exit(h.Id("web.1", 1), kExit0);  // `nginx` without daemon off: forked and returned
  Event died = h.OnlyEvent("died");
  EXPECT_NE(died.message.find("in the foreground"), std::string::npos) << died.message;

  // A crash with another status, or a clean exit after a while, gets no such hint.
  h.Advance(1s);
  h.Exit(h.Id("web.1", 2), kExit1);
  EXPECT_EQ(h.OnlyEvent("died").message, "");
  h.TickAt(h.now + 1s);
  h.Ready(h.Id("web.1", 3));
  h.Advance(kDaemonHint);
  h.Exit(h.Id("web.1", 3), kExit0);
  EXPECT_EQ(h.OnlyEvent("died").message, "");
}

TEST(SupervisorTest, ReadyJustShortOfTheHealthyStretchKeepsCounting) {
  Harness h;
  StartReady(h);
  h.Exit(h.Id("web.1", 1), kExit1);  // 1
  h.Exit(h.Id("web.1", 2), kExit1);  // 2: 1 s
  h.TickAt(h.now + 1s);
  h.Ready(h.Id("web.1", 3));
  h.Advance(kHealthyStretch - 1ms);
  h.Exit(h.Id("web.1", 3), kExit1);  // 3: 2 s
  EXPECT_EQ(h.OnlyEvent("backoff").delay, 2s);
}

TEST(SupervisorTest, SpawnFailedCountsAsACrash) {
  Harness h;
  h.auto_spawn = false;
  h.Start();
  IncarnationId first = h.Id("web.1", 1);
  h.SpawnFailed(first, "overlay mount: permission denied");
  Event failed = h.OnlyEvent("spawn-failed");
  EXPECT_EQ(failed.instance, "web.1");
  EXPECT_EQ(failed.message, "overlay mount: permission denied");
  Event died = h.OnlyEvent("died");
  EXPECT_EQ(died.reason, DeathReason::kCrash);
  ASSERT_TRUE(died.status.has_value());
  EXPECT_EQ(died.status->code, 126);
  // The first failure is reborn at once, as any first crash.
  ASSERT_EQ(h.Spawns().size(), 1u);
  EXPECT_EQ(h.Spawns()[0].incarnation, 2);

  h.SpawnFailed(h.Id("web.1", 2), "again");
  EXPECT_TRUE(h.Spawns().empty());
  EXPECT_EQ(h.OnlyEvent("backoff").delay, 1s);
  EXPECT_EQ(h.ViewOf("web.1").state, "backoff");
  EXPECT_EQ(h.sup.LiveCount(), 2);  // web.2 and worker.1, never spawned by this shell
}

// ---------------------------------------------------------------- boot timeout

TEST(SupervisorTest, BootTimeoutStopsThenKills) {
  Harness h;
  h.Start();
  IncarnationId slow = h.Id("web.1", 1);
  h.Advance(1s);
  h.Ready(h.Id("web.2", 1));
  h.Ready(h.Id("worker.1", 1));
  ASSERT_EQ(h.sup.NextDeadline(), t0 + kBoot);

  h.TickAt(t0 + kBoot - 1ms);
  EXPECT_TRUE(h.actions.empty());
  EXPECT_TRUE(h.events.empty());

  h.TickAt(t0 + kBoot);
  EXPECT_EQ(h.OnlyEvent("boot-timeout").instance, "web.1");
  Event stopping = h.OnlyEvent("stopping");
  EXPECT_EQ(stopping.instance, "web.1");
  EXPECT_EQ(stopping.reason, DeathReason::kBootTimeout);
  ASSERT_EQ(h.Signals().size(), 1u);
  EXPECT_EQ(h.Signals()[0].id, slow);
  EXPECT_EQ(h.Signals()[0].signal, SIGTERM);
  EXPECT_TRUE(h.StopRoutings().empty()) << "it never served";
  EXPECT_EQ(h.ViewOf("web.1").state, "stopping");
  EXPECT_EQ(h.sup.NextDeadline(), t0 + kBoot + kStop);

  // A Ready that arrives too late does not bring it back.
  h.Ready(slow);
  EXPECT_TRUE(h.EventsOf("ready").empty());

  h.TickAt(t0 + kBoot + kStop);
  EXPECT_EQ(h.OnlyEvent("sigkill").instance, "web.1");
  ASSERT_EQ(h.Signals().size(), 1u);
  EXPECT_EQ(h.Signals()[0].id, slow);
  EXPECT_EQ(h.Signals()[0].signal, SIGKILL);
  auto next = h.sup.NextDeadline();
  ASSERT_TRUE(next.has_value());
  EXPECT_GT(*next, h.now) << "no deadline left for the killed one";
  h.Tick();
  EXPECT_TRUE(h.Signals().empty()) << "SIGKILL is sent once";

  h.Advance(10ms);
  h.Exit(slow, kSigkill);
  Event died = h.OnlyEvent("died");
  EXPECT_EQ(died.reason, DeathReason::kBootTimeout);
  EXPECT_EQ(died.status->signaled, true);
  EXPECT_EQ(died.status->code, SIGKILL);
  // The first boot timeout is reborn at once; a second one backs off.
  ASSERT_EQ(h.Spawns().size(), 1u);
  EXPECT_EQ(h.Spawns()[0].incarnation, 2);
  EXPECT_EQ(h.ViewOf("web.1").last_exit, "boot-timeout (SIGKILL)");

  h.TickAt(h.now + kBoot);
  EXPECT_EQ(h.OnlyEvent("boot-timeout").incarnation, 2);
  h.Exit(h.Id("web.1", 2), kSigterm);
  EXPECT_EQ(h.OnlyEvent("died").reason, DeathReason::kBootTimeout);
  EXPECT_EQ(h.OnlyEvent("backoff").delay, 1s);
}

// ---------------------------------------------------------------- max age

TEST(SupervisorTest, MaxAgeReplacesWithoutADip) {
  Harness h;
  StartReady(h);  // born t0, ready t0+1s
  h.guarded = {"web.1", "web.2", "worker.1"};

  // Each web incarnation is due between 50 and 60 min after its birth.
  for (const char* name : {"web.1", "web.2"}) {
    InstanceView v = h.ViewOf(name);
    ASSERT_TRUE(v.next_rebirth.has_value()) << name;
    EXPECT_GE(*v.next_rebirth + 1s, Millis(50min)) << name;
    EXPECT_LE(*v.next_rebirth + 1s, Millis(60min)) << name;
  }
  auto due = h.sup.NextDeadline();
  ASSERT_TRUE(due.has_value());
  EXPECT_GE(*due, t0 + 50min);
  EXPECT_LE(*due, t0 + 60min);

  h.TickAt(*due - 1ms);
  EXPECT_TRUE(h.actions.empty());
  h.TickAt(*due);
  auto spawns = h.Spawns();
  ASSERT_EQ(spawns.size(), 1u);
  const std::string name = spawns[0].instance;
  const std::string other = name == "web.1" ? "web.2" : "web.1";
  EXPECT_EQ(spawns[0].incarnation, 2);
  EXPECT_TRUE(h.Signals().empty()) << "the old one keeps serving";
  EXPECT_TRUE(h.StopRoutings().empty());
  IncarnationId old = h.Id(name, 1), successor = spawns[0].id;
  EXPECT_EQ(h.Inc(old).state, "ready");
  EXPECT_EQ(h.ServingCount("web"), 2);

  InstanceView v = h.ViewOf(name);
  EXPECT_EQ(v.state, "replacing");
  EXPECT_EQ(v.incarnation, 1);
  EXPECT_EQ(h.ViewOf(other).state, "ready");

  // While the successor boots, the next wake-up is a real one, not the passed rebirth.
  auto next = h.sup.NextDeadline();
  ASSERT_TRUE(next.has_value());
  EXPECT_GT(*next, h.now);
  h.Tick();
  EXPECT_TRUE(h.actions.empty()) << "a due rebirth spawns one successor, not one a tick";

  h.Advance(3s);
  const Time successor_ready = h.now;
  h.Ready(successor);
  ASSERT_EQ(h.events.size(), 2u);
  EXPECT_EQ(h.events[0].kind, "ready");
  EXPECT_EQ(h.events[0].incarnation, 2);
  EXPECT_EQ(h.events[1].kind, "draining");
  EXPECT_EQ(h.events[1].incarnation, 1);
  ASSERT_EQ(h.StopRoutings().size(), 1u);
  EXPECT_EQ(h.StopRoutings()[0].id, old);
  EXPECT_TRUE(h.Signals().empty());
  v = h.ViewOf(name);
  EXPECT_EQ(v.incarnation, 2);
  EXPECT_EQ(v.state, "ready");
  EXPECT_EQ(v.restarts, 1);
  // The successor's own rebirth is 50–60 min after its birth.
  ASSERT_TRUE(v.next_rebirth.has_value());
  EXPECT_GE(*v.next_rebirth + 3s, Millis(50min));
  EXPECT_LE(*v.next_rebirth + 3s, Millis(60min));

  h.Advance(200ms);
  h.Drained(old);
  Event stopping = h.OnlyEvent("stopping");
  EXPECT_EQ(stopping.incarnation, 1);
  EXPECT_EQ(stopping.reason, DeathReason::kMaxAge);
  ASSERT_EQ(h.Signals().size(), 1u);
  EXPECT_EQ(h.Signals()[0].id, old);
  EXPECT_EQ(h.Signals()[0].signal, SIGTERM);

  h.Advance(100ms);
  const Time died_at = h.now;
  auto lost = Lost({{"uploads/a.jpg", 1200}, {"sessions/x.json", 300}});
  lost.scratch.push_back({"tmp/cache", 50, sandbox::Change::kCreated});
  lost.scratch_bytes = 50;
  h.Exit(old, kExit0, lost);
  Event died = h.OnlyEvent("died");
  EXPECT_EQ(died.instance, name);
  EXPECT_EQ(died.incarnation, 1);
  EXPECT_EQ(died.reason, DeathReason::kMaxAge);
  EXPECT_EQ(died.age, std::chrono::duration_cast<Millis>(died_at - t0));
  ASSERT_TRUE(died.lost.has_value());
  ASSERT_EQ(died.lost->files.size(), 2u);
  EXPECT_EQ(died.lost->files[0].path, "uploads/a.jpg");
  EXPECT_EQ(died.lost->files[1].path, "sessions/x.json");
  EXPECT_EQ(died.lost->bytes, 1500u);
  ASSERT_EQ(died.lost->scratch.size(), 1u);
  EXPECT_EQ(died.lost->scratch_bytes, 50u);
  EXPECT_TRUE(h.Spawns().empty()) << "its successor is already serving";

  v = h.ViewOf(name);
  EXPECT_EQ(v.incarnation, 2);
  EXPECT_EQ(v.state, "ready");
  EXPECT_EQ(v.lost_files, 2u);
  EXPECT_EQ(v.lost_bytes, 1500u);
  EXPECT_EQ(v.last_exit, "max-age (exit 0)");
  EXPECT_EQ(v.age, std::chrono::duration_cast<Millis>(h.now - (successor_ready - 3s)));
  EXPECT_EQ(h.sup.LiveCount(), 3);
}

TEST(SupervisorTest, MaxAgeDrainTimeoutSendsSigterm) {
  Harness h;
  StartReady(h);
  auto due = h.sup.NextDeadline();
  h.TickAt(*due);
  SpawnAction successor = h.Spawns().at(0);
  IncarnationId old = h.Id(successor.instance, 1);
  h.Ready(successor.id);
  ASSERT_EQ(h.Inc(old).state, "draining");
  const Time drain_due = h.now + kDrain;
  EXPECT_LE(h.sup.NextDeadline(), drain_due);
  h.TickAt(drain_due - 1ms);
  EXPECT_TRUE(h.Signals().empty());
  h.TickAt(drain_due);
  ASSERT_EQ(h.Signals().size(), 1u);
  EXPECT_EQ(h.Signals()[0].id, old);
  EXPECT_EQ(h.Signals()[0].signal, SIGTERM);
  EXPECT_EQ(h.OnlyEvent("stopping").reason, DeathReason::kMaxAge);
  // A late Drained does not signal again.
  h.Drained(old);
  EXPECT_TRUE(h.Signals().empty());
}

TEST(SupervisorTest, IgnoredSigtermIsFollowedBySigkill) {
  Harness h;
  StartReady(h);
  h.TickAt(*h.sup.NextDeadline());
  SpawnAction successor = h.Spawns().at(0);
  IncarnationId old = h.Id(successor.instance, 1);
  h.Ready(successor.id);
  h.Drained(old);
  ASSERT_EQ(h.Inc(old).signals, std::vector<int>{SIGTERM});
  const Time kill_due = h.now + kStop;
  EXPECT_LE(h.sup.NextDeadline(), kill_due);  // the other web may be due first

  h.TickAt(kill_due - 1ms);
  EXPECT_TRUE(h.Signals().empty());
  h.TickAt(kill_due);
  Event sigkill = h.OnlyEvent("sigkill");
  EXPECT_EQ(sigkill.instance, successor.instance);
  EXPECT_EQ(sigkill.incarnation, 1);
  EXPECT_FALSE(sigkill.message.empty());
  ASSERT_EQ(h.Signals().size(), 1u);
  EXPECT_EQ(h.Signals()[0].id, old);
  EXPECT_EQ(h.Signals()[0].signal, SIGKILL);
  EXPECT_NE(h.sup.NextDeadline(), kill_due);

  h.TickAt(h.now + 1h);
  EXPECT_EQ(h.Inc(old).signals, (std::vector<int>{SIGTERM, SIGKILL}));
  h.Exit(old, kSigkill);
  Event died = h.OnlyEvent("died");
  EXPECT_EQ(died.reason, DeathReason::kMaxAge);
  EXPECT_EQ(died.status->code, SIGKILL);
}

TEST(SupervisorTest, SuccessorCrashingDuringSurgeIsRetriedAndTheOldKeepsServing) {
  Harness h;
  StartReady(h);
  h.TickAt(*h.sup.NextDeadline());
  SpawnAction first = h.Spawns().at(0);
  const std::string name = first.instance;
  h.guarded = {name};
  h.Advance(1s);
  h.Exit(first.id, kExit1);  // crashed while booting: retried at once
  EXPECT_EQ(h.OnlyEvent("died").reason, DeathReason::kCrash);
  ASSERT_EQ(h.Spawns().size(), 1u);
  EXPECT_EQ(h.Spawns()[0].incarnation, 3);
  EXPECT_EQ(h.ViewOf(name).state, "replacing");
  EXPECT_EQ(h.ViewOf(name).incarnation, 1);

  h.Ready(h.Spawns()[0].id);
  EXPECT_EQ(h.OnlyEvent("draining").incarnation, 1);
  EXPECT_EQ(h.ViewOf(name).incarnation, 3);
}

TEST(SupervisorTest, OldCrashingDuringSurgeHandsTheSlotToTheSuccessor) {
  Harness h;
  StartReady(h);
  h.TickAt(*h.sup.NextDeadline());
  SpawnAction successor = h.Spawns().at(0);
  IncarnationId old = h.Id(successor.instance, 1);
  h.Exit(old, kExit1);
  EXPECT_EQ(h.OnlyEvent("died").reason, DeathReason::kCrash);
  EXPECT_TRUE(h.Spawns().empty()) << "the successor is already on its way";
  EXPECT_EQ(h.ViewOf(successor.instance).incarnation, 2);
  EXPECT_EQ(h.ViewOf(successor.instance).state, "booting");
  h.Ready(successor.id);
  EXPECT_TRUE(h.EventsOf("draining").empty());
  EXPECT_TRUE(h.StopRoutings().empty());
  EXPECT_EQ(h.ViewOf(successor.instance).state, "ready");
}

TEST(SupervisorTest, ZeroMaxAgeMeansNoRebirth) {
  Config c = TestConfig(1, 0);
  c.processes[0].max_age = Millis(0);
  Harness h(c);
  StartReady(h);
  EXPECT_FALSE(h.ViewOf("web.1").next_rebirth.has_value());
  EXPECT_FALSE(h.sup.NextDeadline().has_value());
  h.TickAt(h.now + 24h * 365);
  EXPECT_TRUE(h.actions.empty());
}

// Hours of lifecycle in microseconds: a shell that answers every action after a delay, driven
// only by NextDeadline. Capacity never dips, and every wake-up has something to do.
TEST(SupervisorTest, TwoDaysOfRebirthsNeverDipAndNeverSpin) {
  Harness h(TestConfig(), 7);
  StartReady(h);
  h.guarded = {"web.1", "web.2", "worker.1"};
  std::multimap<Time, std::function<void()>> shell;
  auto react = [&] {
    for (const Action& a : h.actions) {
      if (const auto* s = std::get_if<SpawnAction>(&a)) {
        IncarnationId id = s->id;
        shell.emplace(h.now + 2s, [&h, id] { h.Ready(id); });
      } else if (const auto* s = std::get_if<StopRoutingAction>(&a)) {
        IncarnationId id = s->id;
        shell.emplace(h.now + 1s, [&h, id] { h.Drained(id); });
      } else if (const auto* s = std::get_if<SignalAction>(&a)) {
        IncarnationId id = s->id;
        ExitStatus st = s->signal == SIGTERM ? kExit0 : kSigkill;
        shell.emplace(h.now + 500ms, [&h, id, st] { h.Exit(id, st, Lost({{"a", 1}})); });
      }
    }
  };
  const Time end = t0 + 48h;
  int wakeups = 0, idle_wakeups = 0;
  for (int i = 0; i < 100000 && h.now < end; ++i) {
    Time next = end;
    if (auto d = h.sup.NextDeadline()) next = std::min(next, *d);
    if (!shell.empty() && shell.begin()->first <= next) {
      auto it = shell.begin();
      auto fn = std::move(it->second);
      h.now = std::max(h.now, it->first);
      shell.erase(it);
      fn();
    } else {
      ++wakeups;
      h.TickAt(std::max(h.now, next));
      if (h.actions.empty() && h.events.empty() && h.now < end) ++idle_wakeups;
    }
    react();
  }
  EXPECT_GE(h.now, end) << "the loop did not get through two days";
  EXPECT_EQ(idle_wakeups, 0) << "of " << wakeups << " wake-ups";
  EXPECT_EQ(h.exit_actions_total, 0);
  for (const char* name : {"web.1", "web.2"}) {
    InstanceView v = h.ViewOf(name);
    EXPECT_GE(v.restarts, 47) << name;
    EXPECT_LE(v.restarts, 58) << name;
    // Every finished replacement reported the one file its predecessor wrote.
    EXPECT_LE(v.lost_files, static_cast<uint64_t>(v.restarts)) << name;
    EXPECT_GE(v.lost_files + 1, static_cast<uint64_t>(v.restarts)) << name;
    EXPECT_EQ(v.last_exit, "max-age (exit 0)");
  }
  InstanceView worker = h.ViewOf("worker.1");
  EXPECT_GE(worker.restarts, 1);
  EXPECT_LE(worker.restarts, 3);
  int crashes = 0;
  for (const Event& e : h.log) crashes += e.kind == "died" && e.reason != DeathReason::kMaxAge;
  EXPECT_EQ(crashes, 0);
}

// ---------------------------------------------------------------- kill

TEST(SupervisorTest, PlannedKillSurgesFirst) {
  Harness h;
  StartReady(h);
  h.guarded = {"web.1", "web.2", "worker.1"};
  IncarnationId old = h.Id("web.2", 1);
  h.Advance(10min);
  auto said = h.Kill("web.2");
  ASSERT_TRUE(said.ok());
  EXPECT_EQ(*said, "web.2 #1: replacement #2 booting; #1 drains and stops once it is ready");
  ASSERT_EQ(h.Spawns().size(), 1u);
  EXPECT_EQ(h.Spawns()[0].instance, "web.2");
  EXPECT_EQ(h.Spawns()[0].incarnation, 2);
  EXPECT_TRUE(h.Signals().empty());
  EXPECT_TRUE(h.StopRoutings().empty());
  EXPECT_EQ(h.ViewOf("web.2").state, "replacing");
  IncarnationId successor = h.Spawns()[0].id;

  auto again = h.Kill("web.2");
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("web.2"), std::string::npos);
  EXPECT_TRUE(h.actions.empty());

  EXPECT_TRUE(h.ViewOf("web.2").leaving.empty());

  h.Advance(2s);
  h.Ready(successor);
  EXPECT_EQ(h.OnlyEvent("draining").incarnation, 1);
  ASSERT_EQ(h.StopRoutings().size(), 1u);
  EXPECT_EQ(h.StopRoutings()[0].id, old);
  // `ps` shows the new one, and the old one on its way out.
  InstanceView during = h.ViewOf("web.2");
  EXPECT_EQ(during.incarnation, 2);
  ASSERT_EQ(during.leaving.size(), 1u);
  EXPECT_EQ(during.leaving[0].incarnation, 1);
  EXPECT_EQ(during.leaving[0].state, "draining");
  EXPECT_EQ(during.leaving[0].age, 10min + 3s);
  h.Drained(old);
  EXPECT_EQ(h.ViewOf("web.2").leaving.at(0).state, "stopping");
  EXPECT_EQ(h.OnlyEvent("stopping").reason, DeathReason::kKilled);
  EXPECT_EQ(h.Inc(old).signals, std::vector<int>{SIGTERM});
  h.Exit(old, kSigterm);
  Event died = h.OnlyEvent("died");
  EXPECT_EQ(died.reason, DeathReason::kKilled);
  EXPECT_EQ(died.age, 10min + 3s);
  EXPECT_TRUE(h.Spawns().empty());

  InstanceView v = h.ViewOf("web.2");
  EXPECT_EQ(v.incarnation, 2);
  EXPECT_EQ(v.state, "ready");
  EXPECT_TRUE(v.leaving.empty());
  EXPECT_EQ(v.restarts, 1);
  EXPECT_EQ(v.last_exit, "killed (SIGTERM)");
  // Killing it again once the replacement is over is fine.
  EXPECT_TRUE(h.Kill("web.2").ok());
}

TEST(SupervisorTest, PlannedKillOfABootingIncarnationStopsIt) {
  Harness h;
  h.Start();
  IncarnationId booting = h.Id("worker.1", 1);
  ASSERT_TRUE(h.Kill("worker.1").ok());
  EXPECT_TRUE(h.Spawns().empty());
  EXPECT_EQ(h.OnlyEvent("stopping").reason, DeathReason::kKilled);
  EXPECT_EQ(h.Inc(booting).signals, std::vector<int>{SIGTERM});
  // Killed again while it stops: nothing more happens, and the answer says so.
  auto again = h.Kill("worker.1");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message, "worker.1 #1 is already stopping; kill --now ends it at once");
  EXPECT_EQ(h.Inc(booting).signals, std::vector<int>{SIGTERM});
  h.Exit(booting, kSigterm);
  EXPECT_EQ(h.OnlyEvent("died").reason, DeathReason::kKilled);
  ASSERT_EQ(h.Spawns().size(), 1u);
  EXPECT_EQ(h.Spawns()[0].incarnation, 2);
}

TEST(SupervisorTest, PlannedKillDuringBackoffTriesNow) {
  Harness h;
  StartReady(h);
  h.Exit(h.Id("web.1", 1), kExit1);
  h.Exit(h.Id("web.1", 2), kExit1);
  ASSERT_EQ(h.ViewOf("web.1").state, "backoff");
  ASSERT_TRUE(h.Kill("web.1").ok());
  ASSERT_EQ(h.Spawns().size(), 1u);
  EXPECT_EQ(h.Spawns()[0].incarnation, 3);
  EXPECT_EQ(h.ViewOf("web.1").state, "booting");
  h.Exit(h.Id("web.1", 3), kExit1);  // the crash count started over
  EXPECT_EQ(h.Spawns().size(), 1u);
}

TEST(SupervisorTest, KillNowIsImmediateAndRebornAtOnceEvenAfterCrashes) {
  Harness h;
  StartReady(h);
  // Crashes first: the next crash would back off.
  h.Exit(h.Id("web.1", 1), kExit1);
  h.Exit(h.Id("web.1", 2), kExit1);
  h.TickAt(h.now + 1s);
  IncarnationId victim = h.Id("web.1", 3);
  h.Ready(victim);
  h.Advance(5s);

  ASSERT_TRUE(h.Kill("web.1", /*hard=*/true).ok());
  ASSERT_EQ(h.Signals().size(), 1u);
  EXPECT_EQ(h.Signals()[0].id, victim);
  EXPECT_EQ(h.Signals()[0].signal, SIGKILL);
  EXPECT_TRUE(h.StopRoutings().empty()) << "no drain";
  EXPECT_TRUE(h.Spawns().empty()) << "reborn when it is dead";

  h.Advance(3ms);
  h.Exit(victim, kSigkill);
  Event died = h.OnlyEvent("died");
  EXPECT_EQ(died.reason, DeathReason::kKilled);
  EXPECT_EQ(died.status->code, SIGKILL);
  EXPECT_TRUE(h.EventsOf("backoff").empty());
  ASSERT_EQ(h.Spawns().size(), 1u);
  EXPECT_EQ(h.Spawns()[0].instance, "web.1");
  EXPECT_EQ(h.Spawns()[0].incarnation, 4);
  EXPECT_EQ(h.ViewOf("web.1").last_exit, "killed (SIGKILL)");

  // The kill also reset the series: the next crash is a first one again.
  h.Exit(h.Id("web.1", 4), kExit1);
  EXPECT_TRUE(h.EventsOf("backoff").empty());
  EXPECT_EQ(h.Spawns().size(), 1u);
}

TEST(SupervisorTest, KillNowDuringAReplacementKillsBoth) {
  Harness h;
  StartReady(h);
  ASSERT_TRUE(h.Kill("web.1").ok());
  IncarnationId old = h.Id("web.1", 1), successor = h.Id("web.1", 2);
  auto said = h.Kill("web.1", true);
  ASSERT_TRUE(said.ok());
  EXPECT_EQ(*said, "web.1 #1 and #2: SIGKILL sent; out of rotation now, reborn at once");
  EXPECT_EQ(h.Signals().size(), 2u);
  EXPECT_EQ(h.Inc(old).signals, std::vector<int>{SIGKILL});
  EXPECT_EQ(h.Inc(successor).signals, std::vector<int>{SIGKILL});
  h.Exit(old, kSigkill);
  EXPECT_TRUE(h.Spawns().empty());
  h.Exit(successor, kSigkill);
  EXPECT_EQ(h.OnlyEvent("died").reason, DeathReason::kKilled);
  ASSERT_EQ(h.Spawns().size(), 1u);
  EXPECT_EQ(h.Spawns()[0].incarnation, 3);
}

TEST(SupervisorTest, KillOfAnUnknownInstanceIsAnError) {
  Harness h;
  StartReady(h);
  for (const char* name : {"web.3", "web", "web.0", "nope.1", "", "worker.2"}) {
    auto s = h.Kill(name);
    EXPECT_FALSE(s.ok()) << name;
    auto hard = h.Kill(name, true);
    EXPECT_FALSE(hard.ok()) << name;
  }
  EXPECT_TRUE(h.actions.empty());
  EXPECT_NE(h.Kill("web.9").error().message.find("web.9"), std::string::npos);
}

// ---------------------------------------------------------------- scale

TEST(SupervisorTest, ScaleUpAddsTheNextIndex) {
  Harness h;
  StartReady(h);
  auto said = h.Scale("web", 3);
  ASSERT_TRUE(said.ok());
  EXPECT_EQ(*said, "web: 2 → 3 instances (the new one boots now)");
  ASSERT_EQ(h.Spawns().size(), 1u);
  EXPECT_EQ(h.Spawns()[0].instance, "web.3");
  EXPECT_EQ(h.Spawns()[0].type, "web");
  EXPECT_EQ(h.Spawns()[0].incarnation, 1);
  EXPECT_TRUE(h.Spawns()[0].probe_port);
  Event scaled = h.OnlyEvent("scaled");
  EXPECT_EQ(scaled.instance, "web");
  EXPECT_EQ(scaled.message, "web 2 → 3");
  EXPECT_EQ(h.ViewOf("web.3").state, "booting");
  EXPECT_EQ(h.sup.LiveCount(), 4);
  // The others are untouched.
  EXPECT_TRUE(h.Signals().empty());
  EXPECT_TRUE(h.StopRoutings().empty());
}

TEST(SupervisorTest, ScaleDownRetiresTheHighestIndexWithoutRebirth) {
  Harness h;
  StartReady(h);
  ASSERT_TRUE(h.Scale("web", 3).ok());
  h.ReadyAll();
  IncarnationId third = h.Id("web.3", 1);

  auto said = h.Scale("web", 2);
  ASSERT_TRUE(said.ok());
  EXPECT_EQ(*said, "web: 3 → 2 instances (the one scaled away drains, then stops)");
  EXPECT_EQ(h.OnlyEvent("scaled").message, "web 3 → 2");
  EXPECT_EQ(h.OnlyEvent("draining").instance, "web.3");
  ASSERT_EQ(h.StopRoutings().size(), 1u);
  EXPECT_EQ(h.StopRoutings()[0].id, third);
  EXPECT_TRUE(h.Spawns().empty());
  EXPECT_EQ(h.ViewOf("web.3").state, "retiring");
  auto planned = h.Kill("web.3");
  ASSERT_FALSE(planned.ok()) << "a retiring instance is stopping already";
  EXPECT_EQ(planned.error().message,
            "web.3 is already stopping (scaled away); kill --now ends it at once");

  h.Drained(third);
  EXPECT_EQ(h.OnlyEvent("stopping").reason, DeathReason::kScaledDown);
  EXPECT_EQ(h.Inc(third).signals, std::vector<int>{SIGTERM});
  h.Exit(third, kExit0);
  EXPECT_EQ(h.OnlyEvent("died").reason, DeathReason::kScaledDown);
  EXPECT_TRUE(h.Spawns().empty());
  EXPECT_FALSE(h.FindView("web.3").has_value());
  EXPECT_EQ(h.sup.View(h.now).size(), 3u);

  // Scaling up again reuses web.3.
  ASSERT_TRUE(h.Scale("web", 3).ok());
  ASSERT_EQ(h.Spawns().size(), 1u);
  EXPECT_EQ(h.Spawns()[0].instance, "web.3");
}

TEST(SupervisorTest, KillNowCutsAScaledDownInstancesDrainShort) {
  Harness h;
  StartReady(h);
  ASSERT_TRUE(h.Scale("web", 3).ok());
  h.ReadyAll();
  IncarnationId third = h.Id("web.3", 1);
  ASSERT_TRUE(h.Scale("web", 2).ok());
  h.events.clear();
  ASSERT_TRUE(h.Kill("web.3", true).ok());
  EXPECT_EQ(h.Inc(third).signals, std::vector<int>{SIGKILL});
  h.Exit(third, kSigkill);
  EXPECT_EQ(h.OnlyEvent("died").reason, DeathReason::kScaledDown);
  EXPECT_TRUE(h.Spawns().empty()) << "scaled away: not reborn";
  EXPECT_FALSE(h.FindView("web.3").has_value());
}

TEST(SupervisorTest, ScaleDownByTwoKeepsTheLowestIndices) {
  Harness h;
  StartReady(h);
  ASSERT_TRUE(h.Scale("web", 4).ok());
  h.ReadyAll();
  ASSERT_TRUE(h.Scale("web", 2).ok());
  std::set<std::string> draining;
  for (const Event& e : h.EventsOf("draining")) draining.insert(e.instance);
  EXPECT_EQ(draining, (std::set<std::string>{"web.3", "web.4"}));
  EXPECT_EQ(h.ViewOf("web.1").state, "ready");
  EXPECT_EQ(h.ViewOf("web.2").state, "ready");
}

TEST(SupervisorTest, ScaleDownOfABootingOrBackingOffInstance) {
  Harness h;
  StartReady(h);
  ASSERT_TRUE(h.Scale("web", 4).ok());
  IncarnationId booting = h.Id("web.4", 1);
  // web.3 crashes twice and waits in backoff.
  h.Exit(h.Id("web.3", 1), kExit1);
  h.Exit(h.Id("web.3", 2), kExit1);
  ASSERT_EQ(h.ViewOf("web.3").state, "backoff");

  ASSERT_TRUE(h.Scale("web", 2).ok());
  EXPECT_EQ(h.OnlyEvent("stopping").reason, DeathReason::kScaledDown);
  EXPECT_EQ(h.Inc(booting).signals, std::vector<int>{SIGTERM});
  EXPECT_FALSE(h.FindView("web.3").has_value()) << "nothing alive: gone at once";
  h.TickAt(h.now + 5s);
  EXPECT_TRUE(h.Spawns().empty()) << "no birth after its backoff";
  h.Exit(booting, kSigterm);
  EXPECT_EQ(h.OnlyEvent("died").reason, DeathReason::kScaledDown);
  EXPECT_TRUE(h.Spawns().empty());
  EXPECT_FALSE(h.FindView("web.4").has_value());
}

TEST(SupervisorTest, ScaleToZeroAndBack) {
  Harness h;
  StartReady(h);
  ASSERT_TRUE(h.Scale("web", 0).ok());
  EXPECT_EQ(h.EventsOf("draining").size(), 2u);
  EXPECT_EQ(h.StopRoutings().size(), 2u);
  for (IncarnationId id : h.InState("draining")) {
    h.Drained(id);
    h.Exit(id, kExit0);
    EXPECT_EQ(h.OnlyEvent("died").reason, DeathReason::kScaledDown);
    EXPECT_TRUE(h.Spawns().empty());
  }
  auto views = h.sup.View(h.now);
  ASSERT_EQ(views.size(), 1u);
  EXPECT_EQ(views[0].instance, "worker.1");
  EXPECT_EQ(h.sup.LiveCount(), 1);
  EXPECT_FALSE(h.Kill("web.1").ok());

  ASSERT_TRUE(h.Scale("web", 2).ok());
  std::set<std::string> born;
  for (const SpawnAction& s : h.Spawns()) born.insert(s.instance);
  EXPECT_EQ(born, (std::set<std::string>{"web.1", "web.2"}));
  EXPECT_EQ(h.OnlyEvent("scaled").message, "web 0 → 2");
  // Incarnation numbers keep growing across the scale-down: "web.1 #1" names one life a run.
  for (const SpawnAction& s : h.Spawns()) EXPECT_EQ(s.incarnation, 2) << s.instance;
}

TEST(SupervisorTest, KillNowDuringBackoffTriesNow) {
  Harness h;
  StartReady(h);
  h.Exit(h.Id("web.1", 1), kExit1);
  h.Exit(h.Id("web.1", 2), kExit1);
  ASSERT_EQ(h.ViewOf("web.1").state, "backoff");
  ASSERT_TRUE(h.Kill("web.1", /*hard=*/true).ok());
  ASSERT_EQ(h.Spawns().size(), 1u);
  EXPECT_EQ(h.Spawns()[0].incarnation, 3);
}

TEST(SupervisorTest, KillNowOfABootingIncarnationLeavesNoDeadline) {
  Harness h;
  h.Start();  // all booting
  ASSERT_TRUE(h.Kill("web.1", /*hard=*/true).ok());
  auto next = h.sup.NextDeadline();
  ASSERT_TRUE(next.has_value());
  EXPECT_NE(*next, Time::max());
}

TEST(SupervisorTest, ScaleErrors) {
  Harness h;
  StartReady(h);
  auto unknown = h.Scale("wbe", 3);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("wbe"), std::string::npos);
  EXPECT_FALSE(h.Scale("", 1).ok());
  EXPECT_FALSE(h.Scale("web", -1).ok());
  EXPECT_FALSE(h.Scale("web", 1001).ok());
  EXPECT_TRUE(h.actions.empty());
  EXPECT_TRUE(h.events.empty());
  EXPECT_EQ(h.sup.LiveCount(), 3);
}

TEST(SupervisorTest, ScaleToTheSameCountChangesNothing) {
  Harness h;
  StartReady(h);
  ASSERT_TRUE(h.Scale("web", 2).ok());
  EXPECT_TRUE(h.actions.empty());
  EXPECT_EQ(h.sup.LiveCount(), 3);
}

// ---------------------------------------------------------------- shutdown

TEST(SupervisorTest, ShutdownStopsEveryoneAndExitsOnce) {
  Harness h;
  StartReady(h);
  // web.1 is booting again after a crash, web.2 in backoff would need two crashes: keep it ready.
  h.Exit(h.Id("web.1", 1), kExit1);
  IncarnationId booting = h.Id("web.1", 2);
  IncarnationId web2 = h.Id("web.2", 1), worker = h.Id("worker.1", 1);

  h.Shutdown();
  EXPECT_TRUE(h.sup.shutting_down());
  EXPECT_EQ(h.exit_actions_total, 0);
  EXPECT_TRUE(h.Spawns().empty());
  EXPECT_EQ(h.Inc(booting).signals, std::vector<int>{SIGTERM});
  EXPECT_EQ(h.Inc(web2).stop_routing, 1);
  EXPECT_EQ(h.Inc(worker).stop_routing, 1);
  EXPECT_TRUE(h.Inc(web2).signals.empty());
  EXPECT_EQ(h.OnlyEvent("stopping").reason, DeathReason::kShutdown);
  EXPECT_EQ(h.EventsOf("draining").size(), 2u);

  // Commands are refused from now on.
  EXPECT_FALSE(h.Scale("web", 5).ok());
  EXPECT_FALSE(h.Kill("web.2").ok());
  h.Shutdown();  // a second request changes nothing
  EXPECT_TRUE(h.actions.empty());

  h.Drained(web2);
  EXPECT_EQ(h.OnlyEvent("stopping").reason, DeathReason::kShutdown);
  h.Drained(worker);
  h.Exit(booting, kExit1);
  EXPECT_EQ(h.OnlyEvent("died").reason, DeathReason::kShutdown);
  EXPECT_TRUE(h.Spawns().empty());
  h.Exit(web2, kExit0);
  EXPECT_EQ(h.OnlyEvent("died").reason, DeathReason::kShutdown);
  EXPECT_TRUE(h.Spawns().empty());
  EXPECT_EQ(h.exit_actions_total, 0);
  h.Exit(worker, kSigterm);
  EXPECT_EQ(h.OnlyEvent("died").reason, DeathReason::kShutdown);
  EXPECT_TRUE(h.Spawns().empty());
  EXPECT_EQ(h.ActionsOf<ExitAction>().size(), 1u);
  EXPECT_EQ(h.exit_actions_total, 1);
  EXPECT_EQ(h.sup.LiveCount(), 0);

  // Nothing after the end: no second ExitAction, no births, no deadlines.
  h.Shutdown();
  h.ForceShutdown();
  h.TickAt(h.now + 24h);
  EXPECT_EQ(h.exit_actions_total, 1);
  EXPECT_TRUE(h.Spawns().empty());
  EXPECT_FALSE(h.sup.NextDeadline().has_value());
}

TEST(SupervisorTest, ShutdownCancelsABackoff) {
  Harness h;
  StartReady(h);
  h.Exit(h.Id("web.1", 1), kExit1);
  h.Exit(h.Id("web.1", 2), kExit1);
  ASSERT_EQ(h.ViewOf("web.1").state, "backoff");
  h.Shutdown();
  for (IncarnationId id : h.InState("draining")) {
    h.Drained(id);
    h.Exit(id, kExit0);
  }
  EXPECT_EQ(h.exit_actions_total, 1);
  h.TickAt(h.now + 1h);
  EXPECT_TRUE(h.Spawns().empty());
}

TEST(SupervisorTest, ShutdownDuringASurgeStopsBoth) {
  Harness h;
  StartReady(h);
  ASSERT_TRUE(h.Kill("web.1").ok());
  IncarnationId old = h.Id("web.1", 1), successor = h.Id("web.1", 2);
  h.Shutdown();
  EXPECT_EQ(h.Inc(successor).signals, std::vector<int>{SIGTERM});
  EXPECT_EQ(h.Inc(old).stop_routing, 1);
  h.Ready(successor);  // too late to serve
  EXPECT_TRUE(h.EventsOf("ready").empty());
  h.Exit(successor, kSigterm);
  h.Drained(old);
  h.Exit(old, kSigterm);
  EXPECT_TRUE(h.Spawns().empty());
  for (IncarnationId id : h.InState("draining")) {
    h.Drained(id);
    h.Exit(id, kExit0);
  }
  EXPECT_EQ(h.exit_actions_total, 1);
}

TEST(SupervisorTest, ShutdownWithNoInstancesExitsAtOnce) {
  Harness h(TestConfig(0, 0));
  h.Start();
  EXPECT_TRUE(h.actions.empty());
  EXPECT_TRUE(h.sup.View(h.now).empty());
  h.Shutdown();
  EXPECT_EQ(h.ActionsOf<ExitAction>().size(), 1u);
  h.Shutdown();
  EXPECT_EQ(h.exit_actions_total, 1);
}

TEST(SupervisorTest, ShutdownAfterScalingToZeroExitsAtOnce) {
  Harness h(TestConfig(1, 0));
  StartReady(h);
  ASSERT_TRUE(h.Scale("web", 0).ok());
  IncarnationId id = h.Id("web.1", 1);
  h.Drained(id);
  h.Exit(id);
  h.Shutdown();
  EXPECT_EQ(h.ActionsOf<ExitAction>().size(), 1u);
}

TEST(SupervisorTest, ShutdownWaitsForSigkillOfStubbornOnes) {
  Harness h;
  StartReady(h);
  h.Shutdown();
  for (IncarnationId id : h.InState("draining")) h.Drained(id);
  const Time kill_due = h.now + kStop;
  EXPECT_EQ(h.sup.NextDeadline(), kill_due);
  h.TickAt(kill_due);
  EXPECT_EQ(h.EventsOf("sigkill").size(), 3u);
  EXPECT_EQ(h.Signals().size(), 3u);
  for (const SignalAction& s : h.Signals()) EXPECT_EQ(s.signal, SIGKILL);
  for (IncarnationId id : h.InState("stopping")) h.Exit(id, kSigkill);
  EXPECT_EQ(h.exit_actions_total, 1);
}

TEST(SupervisorTest, ForceShutdownKillsEveryone) {
  Harness h;
  StartReady(h);
  ASSERT_TRUE(h.Scale("web", 3).ok());  // web.3 booting
  h.ForceShutdown();
  EXPECT_TRUE(h.sup.shutting_down());
  EXPECT_EQ(h.Spawns().size(), 0u);
  for (const auto& [id, t] : h.incs) {
    ASSERT_FALSE(t.signals.empty()) << t.instance;
    EXPECT_EQ(t.signals.back(), SIGKILL) << t.instance;
    EXPECT_EQ(std::count(t.signals.begin(), t.signals.end(), SIGKILL), 1) << t.instance;
  }
  EXPECT_FALSE(h.sup.NextDeadline().has_value()) << "nothing more to escalate";
  std::vector<IncarnationId> ids;
  for (const auto& [id, t] : h.incs) ids.push_back(id);
  for (IncarnationId id : ids) {
    EXPECT_EQ(h.exit_actions_total, 0);
    h.Exit(id, kSigkill);
    EXPECT_EQ(h.OnlyEvent("died").reason, DeathReason::kShutdown);
  }
  EXPECT_EQ(h.exit_actions_total, 1);
}

TEST(SupervisorTest, ForceShutdownAfterShutdownKillsThoseStillAlive) {
  Harness h;
  StartReady(h);
  h.Shutdown();
  IncarnationId gone = h.Id("worker.1", 1);
  h.Drained(gone);
  h.Exit(gone);
  h.ForceShutdown();
  EXPECT_EQ(h.Signals().size(), 2u);
  for (const SignalAction& s : h.Signals()) {
    EXPECT_EQ(s.signal, SIGKILL);
    EXPECT_NE(s.id, gone);
  }
  h.ForceShutdown();
  EXPECT_TRUE(h.Signals().empty()) << "SIGKILL once";
}

// ---------------------------------------------------------------- view

TEST(SupervisorTest, ViewStates) {
  Harness h;
  h.Start();
  for (const InstanceView& v : h.sup.View(h.now)) {
    EXPECT_EQ(v.state, "booting") << v.instance;
    EXPECT_EQ(v.incarnation, 1);
    EXPECT_NE(v.pid, 0);
    EXPECT_NE(v.port, 0);
    EXPECT_FALSE(v.next_rebirth.has_value()) << "scheduled once ready";
    EXPECT_EQ(v.restarts, 0);
    EXPECT_EQ(v.last_exit, "");
  }
  h.Advance(2s);
  h.ReadyAll();
  h.Advance(1s);
  InstanceView web1 = h.ViewOf("web.1");
  EXPECT_EQ(web1.state, "ready");
  EXPECT_EQ(web1.type, "web");
  EXPECT_EQ(web1.age, 3s);
  ASSERT_TRUE(web1.next_rebirth.has_value());
  EXPECT_GE(*web1.next_rebirth, Millis(50min) - 3s);
  EXPECT_LE(*web1.next_rebirth, Millis(60min) - 3s);
  InstanceView worker = h.ViewOf("worker.1");
  EXPECT_EQ(worker.type, "worker");
  ASSERT_TRUE(worker.next_rebirth.has_value());
  EXPECT_GE(*worker.next_rebirth, Millis(24h - 216min) - 3s);
  EXPECT_LE(*worker.next_rebirth, Millis(24h) - 3s);

  ASSERT_TRUE(h.Kill("web.2").ok());
  EXPECT_EQ(h.ViewOf("web.2").state, "replacing");

  h.Exit(h.Id("web.1", 1), kExit1);
  h.Exit(h.Id("web.1", 2), kExit1);
  h.Advance(250ms);
  InstanceView backoff = h.ViewOf("web.1");
  EXPECT_EQ(backoff.state, "backoff");
  EXPECT_EQ(backoff.next_rebirth, 750ms);
  EXPECT_EQ(backoff.restarts, 2);
  EXPECT_EQ(backoff.pid, 0);
}

TEST(SupervisorTest, ViewNextRebirthNeverNegative) {
  Harness h;
  StartReady(h);
  h.TickAt(*h.sup.NextDeadline());  // a surge begins
  h.Advance(10s);
  for (const InstanceView& v : h.sup.View(h.now)) {
    if (v.next_rebirth) {
      EXPECT_GE(*v.next_rebirth, Millis(0)) << v.instance;
    }
  }
}

TEST(SupervisorTest, ViewAccumulatesLostStateAndRestarts) {
  Harness h;
  StartReady(h);
  h.Advance(2min);  // healthy: each crash is a first one
  h.Exit(h.Current("web.1"), kExit1, Lost({{"uploads/a", 100}, {"uploads/b", 200}}));
  h.ReadyAll();
  h.Advance(2min);
  h.Exit(h.Current("web.1"), kExit1, Lost({{"sessions/c", 50}}));
  h.ReadyAll();
  h.Advance(2min);
  h.Exit(h.Current("web.1"), kSigkill, std::nullopt);  // no scan: nothing added
  InstanceView v = h.ViewOf("web.1");
  EXPECT_EQ(v.incarnation, 4);
  EXPECT_EQ(v.restarts, 3);
  EXPECT_EQ(v.lost_files, 3u);
  EXPECT_EQ(v.lost_bytes, 350u);
  EXPECT_EQ(v.last_exit, "crash (SIGKILL)");
  EXPECT_EQ(h.ViewOf("web.2").lost_files, 0u);
}

TEST(SupervisorTest, ViewOrdersByProcfileThenIndex) {
  Config c = TestConfig();
  std::swap(c.processes[0], c.processes[1]);  // worker first in the Procfile
  Harness h(c);
  h.Start();
  ASSERT_TRUE(h.Scale("web", 10).ok());
  ASSERT_TRUE(h.Scale("worker", 2).ok());
  std::vector<std::string> names;
  for (const InstanceView& v : h.sup.View(h.now)) names.push_back(v.instance);
  EXPECT_EQ(names,
            (std::vector<std::string>{"worker.1", "worker.2", "web.1", "web.2", "web.3", "web.4",
                                      "web.5", "web.6", "web.7", "web.8", "web.9", "web.10"}));
}

TEST(SupervisorTest, ViewWebTwoBeforeWebTen) {
  Harness h;
  StartReady(h);
  ASSERT_TRUE(h.Scale("web", 10).ok());
  auto views = h.sup.View(h.now);
  ASSERT_EQ(views.size(), 11u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(views[i].instance, "web." + std::to_string(i + 1));
  EXPECT_EQ(views[10].instance, "worker.1");
}

TEST(SupervisorTest, SameSeedSameSchedule) {
  Harness a(TestConfig(), 5), b(TestConfig(), 5), c(TestConfig(), 6);
  StartReady(a);
  StartReady(b);
  StartReady(c);
  EXPECT_EQ(a.sup.NextDeadline(), b.sup.NextDeadline());
  EXPECT_NE(a.sup.NextDeadline(), c.sup.NextDeadline());
  // Instances born together do not die together.
  EXPECT_NE(a.ViewOf("web.1").next_rebirth, a.ViewOf("web.2").next_rebirth);
}

}  // namespace
}  // namespace phoenix
