// The supervisor's decisions, as a state machine with no I/O: it is fed inputs (a process was
// spawned, became ready, exited; a timer fired; an operator command) with the current time, and
// answers with actions for the shell to carry out (spawn, signal, stop routing) and events to
// report. Unit tests drive hours of lifecycle with a fake clock.
//
// A slot ("web.2") holds one current incarnation, and during a planned replacement a successor
// too: the successor is born and ready before the current one drains (surge first, so capacity
// never dips). An incarnation's life:
//   Booting → Ready → Draining → Stopping → Dead
//   Booting → Stopping (boot timeout, shutdown) ; any state → Dead (exit)
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "config/config.h"
#include "sandbox/layer_scan.h"
#include "supervisor/schedule.h"

namespace phoenix {

using Clock = std::chrono::steady_clock;
using Time = Clock::time_point;
using IncarnationId = uint64_t;

enum class IncarnationState { kBooting, kReady, kDraining, kStopping, kDead };
const char* ToString(IncarnationState state);

enum class DeathReason {
  kCrash,
  kMaxAge,
  kKilled,
  kScaledDown,
  kBootTimeout,
  kShutdown,
  kPhoenixKilled,  // found on disk after a phoenix that was SIGKILLed
  kRotated,        // `phoenix rotate`
  kChaos,          // an unannounced SIGKILL of [chaos]
  kDrill,          // `phoenix drill`
};
const char* ToString(DeathReason reason);

// How a process ended: exit code or signal.
struct ExitStatus {
  bool signaled = false;
  int code = 0;                  // exit code, or signal number when signaled
  std::string ToString() const;  // "exit 0", "exit 127 (command not found)", "SIGKILL"
  static ExitStatus FromWaitStatus(int wait_status);
};

// ---- actions for the shell ----
struct SpawnAction {
  IncarnationId id;
  std::string instance;  // "web.2"
  std::string type;
  int incarnation;
  bool probe_port;  // ready when $PORT accepts; else ready once started
};
struct SignalAction {
  IncarnationId id;
  int signal;
};
struct StartRoutingAction {  // a ready `web` incarnation joins the router's rotation
  IncarnationId id;
};
struct StopRoutingAction {  // answer with Drained when its in-flight requests are done
  IncarnationId id;
};
struct ExitAction {};  // shutdown finished: every incarnation is dead
using Action =
    std::variant<SpawnAction, SignalAction, StartRoutingAction, StopRoutingAction, ExitAction>;

// The one process type the router serves, as on Heroku.
inline constexpr const char* kRoutedType = "web";

// ---- events to report (terminal, --events file, logs) ----
struct Event {
  std::string kind;  // born, ready, draining, stopping, died, backoff, scaled
  std::string instance;
  int incarnation = 0;
  pid_t pid = 0;
  int port = 0;
  std::optional<DeathReason> reason;
  std::optional<ExitStatus> status;
  Millis age{0};
  Millis delay{0};      // backoff: time until the next birth
  std::string message;  // free text: spawn errors, scale details
  std::optional<sandbox::LostState> lost;
  std::optional<uint64_t> failed_requests;  // drill: filled in by the shell from the router
};

// ---- what `ps` shows ----
struct InstanceView {
  std::string instance;
  std::string type;
  int incarnation = 0;
  pid_t pid = 0;
  int port = 0;
  std::string state;  // booting, ready, draining, stopping, backoff, replacing
  Millis age{0};
  std::optional<Millis> next_rebirth;  // time until the scheduled replacement
  int restarts = 0;
  uint64_t lost_files = 0, lost_bytes = 0;
  std::string last_exit;  // why the last incarnation died
  // Filled in by the shell from the router (web type, current incarnation in rotation).
  std::optional<uint64_t> requests;
  int in_flight = 0;
  // Earlier incarnations of the slot still alive: replaced, finishing their requests
  // (draining) or stopping.
  struct Leaving {
    int incarnation = 0;
    pid_t pid = 0;
    std::string state;
    Millis age{0};
    std::optional<uint64_t> requests;  // from the router, while it drains
    int in_flight = 0;
  };
  std::vector<Leaving> leaving;
};

class Supervisor {
 public:
  Supervisor(const Config& config, uint64_t seed);

  // Inputs. Each returns nothing; read actions and events with Take*() afterwards.
  void Start(Time now);
  void Spawned(IncarnationId id, pid_t pid, int port, Time now);
  void SpawnFailed(IncarnationId id, const std::string& why, Time now);
  void Ready(IncarnationId id, Time now);
  void Drained(IncarnationId id, Time now);
  void Exited(IncarnationId id, ExitStatus status, std::optional<sandbox::LostState> lost,
              Time now);
  void Tick(Time now);  // timers: call at NextDeadline() (or any time)

  // Commands. Errors are for the operator (unknown instance or type).
  // Both answer what they did, in a line for the operator ("web: 2 → 3 instances").
  Result<std::string> Scale(const std::string& type, int count, Time now);
  Result<std::string> Kill(const std::string& instance, bool now_hard, Time now);
  // Rolling rebirth of every instance of `type` ("" = all types), one after another: each
  // successor is ready before the next slot starts. Ends with a "rotated" event.
  Status Rotate(const std::string& type, Time now);  // ends with "rotated" or "rotation-failed"
  // Fowler's baseball bat: SIGKILL a `fraction` of the instances of `type` ("" = all) at once;
  // a "drill" event reports the time until every one of them is ready again.
  Status Drill(const std::string& type, double fraction, Time now);
  bool rotating() const { return !rotating_.empty() || !rotate_queue_.empty(); }
  bool drilling() const { return drill_.has_value(); }
  // Local wall-clock minute of the day (0..1439) at a steady time; tests replace it.
  void SetMinuteOfDay(std::function<int(Time)> f) { minute_of_day_ = std::move(f); }
  void Shutdown(Time now);
  void ForceShutdown(Time now);  // a second SIGINT: SIGKILL everything

  std::optional<Time> NextDeadline() const;
  std::vector<Action> TakeActions() { return std::exchange(actions_, {}); }
  std::vector<Event> TakeEvents() { return std::exchange(events_, {}); }
  std::vector<InstanceView> View(Time now) const;
  bool shutting_down() const { return shutting_down_; }
  int LiveCount() const { return static_cast<int>(incarnations_.size()); }

 private:
  struct Incarnation {
    IncarnationId id;
    std::string instance, type;
    int number;
    IncarnationState state = IncarnationState::kBooting;
    pid_t pid = 0;
    int port = 0;
    Time born, ready_at, deadline;  // deadline: of the current state (boot, drain, stop)
    std::optional<Time> rebirth_at;
    std::optional<DeathReason> stop_reason;  // set when phoenix decided it dies
    bool hard_killed = false;                // kill --now: not a crash, reborn at once
  };
  struct Slot {
    std::string instance, type;
    int index;
    int next_number = 1;
    IncarnationId current = 0, successor = 0;
    DeathReason successor_reason = DeathReason::kMaxAge;
    int crashes = 0;
    int restarts = 0;
    std::optional<Time> spawn_at;  // backoff: a birth is due then
    bool retired = false;
    uint64_t lost_files = 0, lost_bytes = 0;
    std::string last_exit;
  };

  const ProcessConfig& Process(const std::string& type) const;
  Slot* FindSlot(const std::string& instance);
  Incarnation* Find(IncarnationId id);
  void AddSlot(const std::string& type, int index, Time now);
  IncarnationId SpawnInto(Slot& slot, Time now);
  void BeginStop(Incarnation& inc, DeathReason reason, Time now);  // drain if ready
  void SendTerm(Incarnation& inc, Time now);
  void ScheduleRebirth(Slot& slot, Time now);
  void Emit(Event e) { events_.push_back(std::move(e)); }
  Event EventFor(const Incarnation& inc, const char* kind, Time now) const;
  void MaybeFinishShutdown();

  Config config_;
  RebirthSchedule schedule_;
  std::map<std::string, Slot> slots_;  // by instance name
  std::map<IncarnationId, Incarnation> incarnations_;
  std::map<std::string, int> next_number_;  // by instance name, across scale down and up
  bool TypeReplacing(const std::string& type) const;
  bool RebirthDue(const Slot& slot, const Incarnation& inc, Time now) const;
  std::optional<Time> RebirthTime(const Slot& slot, const Incarnation& inc, Time now) const;
  Time NextInWindow(Time t, const DailyWindow& w) const;
  void HardKill(Incarnation& inc, DeathReason reason);
  void StepRotation(Time now);
  void NextRotationSlot(bool replaced, Time now);
  void AbortRotation(Event e);
  void FailRotation(const Slot& slot, const Incarnation& dead, DeathReason reason,
                    const ExitStatus& status);
  std::string RotationCount() const;  // "1 of 3 instances replaced"
  void CheckDrill(Time now);
  void FailDrill(const Incarnation& dead, DeathReason reason, const ExitStatus& status, Time now);
  void ChaosTick(Time now);

  void Seen(Time now) { last_now_ = std::max(last_now_, now); }

  Time last_now_{};  // the latest time an input brought: NextDeadline() takes none
  std::function<int(Time)> minute_of_day_;
  std::mt19937_64 rng_;
  std::deque<std::string> rotate_queue_;
  std::string rotating_;  // the slot whose successor we wait for
  bool rotation_active_ = false;
  int rotation_total_ = 0, rotation_done_ = 0;  // slots queued by `phoenix rotate`, replaced
  std::optional<Time> next_chaos_;
  struct DrillRun {
    Time start;
    std::map<std::string, int> slots;  // instance -> the incarnation number killed
    sandbox::LostState lost;
    int killed = 0;
  };
  std::optional<DrillRun> drill_;
  IncarnationId next_id_ = 1;
  bool shutting_down_ = false;
  bool exit_sent_ = false;
  std::vector<Action> actions_;
  std::vector<Event> events_;
};

}  // namespace phoenix
