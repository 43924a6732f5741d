#include "supervisor/supervisor.h"

#include <fmt/format.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>

namespace phoenix {

const char* ToString(IncarnationState state) {
  switch (state) {
    case IncarnationState::kBooting:
      return "booting";
    case IncarnationState::kReady:
      return "ready";
    case IncarnationState::kDraining:
      return "draining";
    case IncarnationState::kStopping:
      return "stopping";
    case IncarnationState::kDead:
      return "dead";
  }
  return "?";
}

const char* ToString(DeathReason reason) {
  switch (reason) {
    case DeathReason::kCrash:
      return "crash";
    case DeathReason::kMaxAge:
      return "max-age";
    case DeathReason::kKilled:
      return "killed";
    case DeathReason::kScaledDown:
      return "scaled-down";
    case DeathReason::kBootTimeout:
      return "boot-timeout";
    case DeathReason::kShutdown:
      return "shutdown";
    case DeathReason::kPhoenixKilled:
      return "phoenix-killed";
    case DeathReason::kRotated:
      return "rotated";
    case DeathReason::kChaos:
      return "chaos";
    case DeathReason::kDrill:
      return "drill";
  }
  return "?";
}

std::string ExitStatus::ToString() const {
  if (signaled) {
    const char* abbrev = sigabbrev_np(code);
    return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", code);
  }
  if (code == 127) return "exit 127 (command not found)";
  if (code == 126) return "exit 126 (not executable, or the sandbox could not be set up)";
  return fmt::format("exit {}", code);
}

ExitStatus ExitStatus::FromWaitStatus(int ws) {
  if (WIFSIGNALED(ws)) return {true, WTERMSIG(ws)};
  return {false, WEXITSTATUS(ws)};
}

Supervisor::Supervisor(const Config& config, uint64_t seed)
    : config_(config), schedule_(seed), rng_(seed ^ 0x9e3779b97f4a7c15ull) {
  minute_of_day_ = [](Time t) {
    auto wall = std::chrono::system_clock::now() +
                std::chrono::duration_cast<std::chrono::system_clock::duration>(t - Clock::now());
    time_t secs = std::chrono::system_clock::to_time_t(wall);
    struct tm tm;
    localtime_r(&secs, &tm);
    return tm.tm_hour * 60 + tm.tm_min;
  };
}

const ProcessConfig& Supervisor::Process(const std::string& type) const {
  return *config_.Find(type);
}

Supervisor::Slot* Supervisor::FindSlot(const std::string& instance) {
  auto it = slots_.find(instance);
  return it == slots_.end() ? nullptr : &it->second;
}

Supervisor::Incarnation* Supervisor::Find(IncarnationId id) {
  auto it = incarnations_.find(id);
  return it == incarnations_.end() ? nullptr : &it->second;
}

Event Supervisor::EventFor(const Incarnation& inc, const char* kind, Time now) const {
  Event e;
  e.kind = kind;
  e.instance = inc.instance;
  e.incarnation = inc.number;
  e.pid = inc.pid;
  e.port = inc.port;
  e.age = std::chrono::duration_cast<Millis>(now - inc.born);
  return e;
}

void Supervisor::Start(Time now) {
  Seen(now);
  for (const auto& p : config_.processes) {
    for (int i = 1; i <= p.instances; ++i) AddSlot(p.type, i, now);
  }
  if (config_.chaos.mean_time_between_kills.count() > 0) {
    std::exponential_distribution<double> gap(
        1.0 / static_cast<double>(config_.chaos.mean_time_between_kills.count()));
    next_chaos_ = now + Millis(static_cast<int64_t>(gap(rng_)) + 1);
  }
  MaybeFinishShutdown();
}

void Supervisor::AddSlot(const std::string& type, int index, Time now) {
  std::string name = fmt::format("{}.{}", type, index);
  Slot& slot = slots_[name];
  slot = Slot{};
  slot.instance = name;
  slot.type = type;
  slot.index = index;
  // A slot scaled away and back keeps counting, so "web.3 #1" names one incarnation per run.
  slot.next_number = next_number_[name];
  if (slot.next_number == 0) slot.next_number = 1;
  slot.current = SpawnInto(slot, now);
}

IncarnationId Supervisor::SpawnInto(Slot& slot, Time now) {
  Incarnation inc;
  inc.id = next_id_++;
  inc.instance = slot.instance;
  inc.type = slot.type;
  inc.number = slot.next_number++;
  next_number_[slot.instance] = slot.next_number;
  inc.born = now;
  inc.deadline = now + Process(slot.type).boot_timeout;
  slot.spawn_at.reset();
  actions_.push_back(
      SpawnAction{inc.id, inc.instance, inc.type, inc.number, inc.type == kRoutedType});
  incarnations_.emplace(inc.id, inc);
  return inc.id;
}

void Supervisor::Spawned(IncarnationId id, pid_t pid, int port, Time now) {
  Seen(now);
  Incarnation* inc = Find(id);
  if (!inc) return;
  inc->pid = pid;
  inc->port = port;
  Emit(EventFor(*inc, "born", now));
}

void Supervisor::SpawnFailed(IncarnationId id, const std::string& why, Time now) {
  Incarnation* inc = Find(id);
  if (!inc) return;
  Event e = EventFor(*inc, "spawn-failed", now);
  e.message = why;
  Emit(std::move(e));
  Exited(id, ExitStatus{false, 126}, std::nullopt, now);
}

void Supervisor::Ready(IncarnationId id, Time now) {
  Seen(now);
  Incarnation* inc = Find(id);
  if (!inc || inc->state != IncarnationState::kBooting || inc->stop_reason) return;
  inc->state = IncarnationState::kReady;
  inc->ready_at = now;
  Millis life = schedule_.Lifetime(Process(inc->type).max_age, Process(inc->type).max_age_jitter);
  if (life.count() > 0) inc->rebirth_at = inc->born + life;
  Emit(EventFor(*inc, "ready", now));
  if (inc->type == kRoutedType) actions_.push_back(StartRoutingAction{id});
  Slot* slot = FindSlot(inc->instance);
  if (slot && slot->successor == id) {
    // Surge complete: the successor serves, then the one it replaces drains.
    IncarnationId old = slot->current;
    slot->current = id;
    slot->successor = 0;
    if (Incarnation* o = Find(old)) BeginStop(*o, slot->successor_reason, now);
  }
  if (slot && slot->instance == rotating_ && slot->successor == 0) NextRotationSlot(true, now);
  CheckDrill(now);
}

void Supervisor::BeginStop(Incarnation& inc, DeathReason reason, Time now) {
  if (inc.stop_reason) return;  // already on its way out
  inc.stop_reason = reason;
  if (inc.state == IncarnationState::kReady) {
    inc.state = IncarnationState::kDraining;
    inc.deadline = now + Process(inc.type).drain_timeout;
    Emit(EventFor(inc, "draining", now));
    actions_.push_back(StopRoutingAction{inc.id});
  } else {
    SendTerm(inc, now);
  }
}

void Supervisor::SendTerm(Incarnation& inc, Time now) {
  inc.state = IncarnationState::kStopping;
  inc.deadline = now + Process(inc.type).stop_timeout;
  Event e = EventFor(inc, "stopping", now);
  e.reason = inc.stop_reason;
  Emit(std::move(e));
  actions_.push_back(SignalAction{inc.id, SIGTERM});
}

void Supervisor::Drained(IncarnationId id, Time now) {
  Seen(now);
  Incarnation* inc = Find(id);
  if (inc && inc->state == IncarnationState::kDraining) SendTerm(*inc, now);
}

void Supervisor::Exited(IncarnationId id, ExitStatus status, std::optional<sandbox::LostState> lost,
                        Time now) {
  Seen(now);
  auto it = incarnations_.find(id);
  if (it == incarnations_.end()) return;
  Incarnation inc = it->second;
  incarnations_.erase(it);

  DeathReason reason = inc.stop_reason.value_or(DeathReason::kCrash);
  if (drill_ && reason == DeathReason::kDrill && lost) {
    for (const auto& f : lost->files) drill_->lost.files.push_back(f);
    drill_->lost.bytes += lost->bytes;
  }
  Event e = EventFor(inc, "died", now);
  e.reason = reason;
  e.status = status;
  e.lost = lost;
  if (!inc.stop_reason && !status.signaled && status.code == 0 && now - inc.born < kDaemonHint) {
    // A command that forks into the background and returns (nginx, redis-server --daemonize,
    // `pm2 start`) looks like a clean exit; its daemon died with the sandbox. systemd's
    // Type=simple and Heroku want the same: the process stays in the foreground.
    e.message =
        "it exited at once with status 0: a command that puts itself in the background (a "
        "daemon) leaves nothing to supervise; run it in the foreground (nginx: -g 'daemon "
        "off;', redis-server: --daemonize no, pm2: pm2-runtime)";
  }
  Emit(std::move(e));

  if (drill_ && inc.state == IncarnationState::kBooting && !inc.hard_killed &&
      (reason == DeathReason::kCrash || reason == DeathReason::kBootTimeout)) {
    // A slot the drill hit cannot come back (the release does not boot): the drill ends here
    // and says so, as a rotation that makes no progress fails, rather than wait for ever.
    auto hit = drill_->slots.find(inc.instance);
    if (hit != drill_->slots.end() && inc.number > hit->second) FailDrill(inc, reason, status, now);
  }
  Slot* slot = FindSlot(inc.instance);
  if (!slot) return MaybeFinishShutdown();
  if (lost) {
    slot->lost_files += lost->files.size();
    slot->lost_bytes += lost->bytes;
  }
  slot->last_exit = fmt::format("{} ({})", ToString(reason), status.ToString());
  bool unplanned = !inc.stop_reason || inc.hard_killed;
  bool was_current = slot->current == id, was_successor = slot->successor == id;
  if (was_current) slot->current = 0;
  if (was_successor) slot->successor = 0;
  if (!was_current && !was_successor) return MaybeFinishShutdown();  // a drained old one

  if (slot->retired || shutting_down_) {
    if (slot->current == 0 && slot->successor == 0) {
      // The slot a rotation waits for was scaled away: on with the next one.
      if (slot->instance == rotating_) NextRotationSlot(false, now);
      slots_.erase(inc.instance);
    }
    return MaybeFinishShutdown();
  }
  if (was_current && slot->successor) {
    // The replacement is already on its way: it becomes the current one.
    slot->current = std::exchange(slot->successor, 0);
    if (slot->instance == rotating_) NextRotationSlot(true, now);
    return;
  }
  if (was_successor && slot->current && slot->instance == rotating_ && !inc.hard_killed &&
      (reason == DeathReason::kCrash || reason == DeathReason::kBootTimeout)) {
    // `phoenix rotate` started this replacement and it cannot get ready (a release that does
    // not boot): the rotation stops here, as a rollout that makes no progress fails, and the
    // instance it was to replace keeps serving. No retries in the background.
    ++slot->crashes;
    FailRotation(*slot, inc, reason, status);
    // A scheduled (max-age) replacement the rotation was waiting for is retried as any
    // scheduled one is, with backoff; one the rotation started is not.
    if (slot->successor_reason != DeathReason::kRotated) ScheduleRebirth(*slot, now);
    return;
  }
  if (inc.hard_killed) {
    slot->crashes = 0;  // an operator's or chaos' kill is no sign of a sick app
  } else if (unplanned) {
    bool healthy = inc.state != IncarnationState::kBooting && now - inc.ready_at >= kHealthyStretch;
    slot->crashes = healthy ? 1 : slot->crashes + 1;
  } else if (inc.stop_reason == DeathReason::kBootTimeout) {
    slot->crashes += 1;
  }
  ScheduleRebirth(*slot, now);
}

void Supervisor::ScheduleRebirth(Slot& slot, Time now) {
  ++slot.restarts;
  Millis delay = CrashBackoff(slot.crashes);
  if (delay.count() == 0) {
    IncarnationId id = SpawnInto(slot, now);
    (slot.current ? slot.successor : slot.current) = id;
    return;
  }
  slot.spawn_at = now + delay;
  Event e;
  e.kind = "backoff";
  e.instance = slot.instance;
  e.incarnation = slot.next_number;
  e.delay = delay;
  e.message = fmt::format("crashed {} times in a row; next birth in {}", slot.crashes,
                          FormatDuration(delay));
  Emit(std::move(e));
}

void Supervisor::Tick(Time now) {
  Seen(now);
  for (auto& [name, slot] : slots_) {
    if (slot.spawn_at && *slot.spawn_at <= now && !slot.retired && !shutting_down_) {
      IncarnationId id = SpawnInto(slot, now);
      (slot.current ? slot.successor : slot.current) = id;
    }
  }
  std::vector<IncarnationId> ids;
  for (auto& [id, inc] : incarnations_) ids.push_back(id);
  for (IncarnationId id : ids) {
    Incarnation* inc = Find(id);
    if (!inc) continue;
    switch (inc->state) {
      case IncarnationState::kBooting:
        if (!inc->stop_reason && now >= inc->deadline) {
          Event e = EventFor(*inc, "boot-timeout", now);
          e.message =
              fmt::format("not ready within {}", FormatDuration(Process(inc->type).boot_timeout));
          Emit(std::move(e));
          BeginStop(*inc, DeathReason::kBootTimeout, now);
        }
        break;
      case IncarnationState::kReady: {
        Slot* slot = FindSlot(inc->instance);
        if (slot && RebirthDue(*slot, *inc, now)) {
          slot->successor_reason = DeathReason::kMaxAge;
          slot->successor = SpawnInto(*slot, now);
          ++slot->restarts;
        }
        break;
      }
      case IncarnationState::kDraining:
        if (now >= inc->deadline) SendTerm(*inc, now);
        break;
      case IncarnationState::kStopping:
        if (now >= inc->deadline) {
          inc->deadline = Time::max();
          Event e = EventFor(*inc, "sigkill", now);
          e.message = fmt::format("still running {} after SIGTERM",
                                  FormatDuration(Process(inc->type).stop_timeout));
          Emit(std::move(e));
          actions_.push_back(SignalAction{id, SIGKILL});
        }
        break;
      case IncarnationState::kDead:
        break;
    }
  }
  ChaosTick(now);
  StepRotation(now);
  CheckDrill(now);
}

// Scheduled rebirths of one type never overlap, never run beside a rotation of it, and wait
// for rotate_window when one is set.
bool Supervisor::TypeReplacing(const std::string& type) const {
  for (const auto& [name, s] : slots_) {
    if (s.type == type && s.successor != 0) return true;
  }
  if (!rotating_.empty()) {
    auto it = slots_.find(rotating_);
    if (it != slots_.end() && it->second.type == type) return true;
  }
  return false;
}

std::optional<Time> Supervisor::RebirthTime(const Slot& slot, const Incarnation& inc,
                                            Time now) const {
  if (!inc.rebirth_at || slot.current != inc.id || slot.successor != 0 || slot.spawn_at ||
      shutting_down_ || TypeReplacing(slot.type)) {
    return std::nullopt;
  }
  const auto& window = Process(slot.type).rotate_window;
  if (!window) return inc.rebirth_at;
  return NextInWindow(std::max(*inc.rebirth_at, now), *window);
}

bool Supervisor::RebirthDue(const Slot& slot, const Incarnation& inc, Time now) const {
  auto t = RebirthTime(slot, inc, now);
  return t && now >= *t;
}

Time Supervisor::NextInWindow(Time t, const DailyWindow& w) const {
  int m = minute_of_day_(t);
  if (w.Contains(m)) return t;
  int wait = (w.start_min - m + 24 * 60) % (24 * 60);
  return t + std::chrono::minutes(wait);
}

std::optional<Time> Supervisor::NextDeadline() const {
  std::optional<Time> next;
  auto consider = [&](Time t) {
    if (!next || t < *next) next = t;
  };
  for (const auto& [name, slot] : slots_) {
    if (slot.spawn_at) consider(*slot.spawn_at);
  }
  if (next_chaos_ && !shutting_down_) consider(*next_chaos_);
  for (const auto& [id, inc] : incarnations_) {
    switch (inc.state) {
      case IncarnationState::kBooting:
        if (!inc.stop_reason) consider(inc.deadline);
        break;
      case IncarnationState::kReady: {
        // Only while Tick would act on it: once a successor is on its way (or the slot waits
        // in backoff, or phoenix shuts down), a passed rebirth_at would wake the loop at once,
        // again and again, until the successor is ready.
        auto slot = slots_.find(inc.instance);
        if (slot != slots_.end()) {
          if (auto t = RebirthTime(slot->second, inc, last_now_); t) consider(*t);
        }
        break;
      }
      case IncarnationState::kDraining:
      case IncarnationState::kStopping:
        if (inc.deadline != Time::max()) consider(inc.deadline);
        break;
      case IncarnationState::kDead:
        break;
    }
  }
  return next;
}

Result<std::string> Supervisor::Scale(const std::string& type, int count, Time now) {
  Seen(now);
  if (!config_.Find(type)) return Error{fmt::format("unknown process type '{}'", type)};
  if (count < 0 || count > 1000) return Error{"count must be 0..1000"};
  if (shutting_down_) return Error{"phoenix is shutting down"};
  std::vector<Slot*> live;
  for (auto& [name, slot] : slots_) {
    if (slot.type == type && !slot.retired) live.push_back(&slot);
  }
  std::sort(live.begin(), live.end(), [](Slot* a, Slot* b) { return a->index < b->index; });
  int have = static_cast<int>(live.size());
  for (int i = have; i > count; --i) {
    Slot* slot = live[i - 1];
    slot->retired = true;
    slot->spawn_at.reset();
    for (IncarnationId id : {slot->current, slot->successor}) {
      if (Incarnation* inc = Find(id)) BeginStop(*inc, DeathReason::kScaledDown, now);
    }
    if (!slot->current && !slot->successor) slots_.erase(slot->instance);
  }
  // New slots take the lowest free indices, so web.1..web.N is what `ps` shows.
  int index = 1;
  for (int added = have; added < count; ++added) {
    while (slots_.count(fmt::format("{}.{}", type, index))) ++index;
    AddSlot(type, index, now);
  }
  Event e;
  e.kind = "scaled";
  e.instance = type;
  e.message = fmt::format("{} {} → {}", type, have, count);
  Emit(std::move(e));
  const char* s = count == 1 ? "" : "s";
  if (have == count) return fmt::format("{}: {} instance{} already", type, count, s);
  bool one = std::abs(count - have) == 1;
  return fmt::format("{}: {} → {} instance{} ({})", type, have, count, s,
                     count > have ? (one ? "the new one boots now" : "the new ones boot now")
                                  : (one ? "the one scaled away drains, then stops"
                                         : "the ones scaled away drain, then stop"));
}

Result<std::string> Supervisor::Kill(const std::string& instance, bool hard, Time now) {
  Seen(now);
  Slot* slot = FindSlot(instance);
  if (!slot) return Error{fmt::format("no instance '{}'", instance)};
  if (shutting_down_) return Error{"phoenix is shutting down"};
  if (slot->retired) {
    // Scaled away and draining: a planned kill has nothing to add; --now cuts the drain short
    // (as `systemctl kill` does to a unit that is stopping). It is not reborn either way.
    if (!hard) {
      return Error{fmt::format("{} is already stopping (scaled away); kill --now ends it at once",
                               instance)};
    }
    for (IncarnationId id : {slot->current, slot->successor}) {
      if (Incarnation* i = Find(id)) HardKill(*i, DeathReason::kScaledDown);
    }
    return fmt::format("{}: SIGKILL sent (scaled away: not reborn)", instance);
  }
  Incarnation* inc = Find(slot->current);
  if (hard && (slot->current || slot->successor)) {
    std::string numbers;
    for (IncarnationId id : {slot->current, slot->successor}) {
      if (Incarnation* i = Find(id)) {
        HardKill(*i, DeathReason::kKilled);
        numbers += fmt::format("{}#{}", numbers.empty() ? "" : " and ", i->number);
      }
    }
    return fmt::format("{} {}: SIGKILL sent; out of rotation now, reborn at once", instance,
                       numbers);
  }
  if (slot->successor) return Error{fmt::format("{} is already being replaced", instance)};
  if (!inc) {
    // Waiting in backoff: an operator's kill means "try now".
    slot->crashes = 0;
    slot->current = SpawnInto(*slot, now);
    return fmt::format("{}: was waiting to be reborn after crashes; booting now", instance);
  }
  if (inc->state == IncarnationState::kReady) {
    int old = inc->number;
    slot->successor_reason = DeathReason::kKilled;
    slot->successor = SpawnInto(*slot, now);
    ++slot->restarts;  // as a max-age surge counts it
    const Incarnation* next = Find(slot->successor);
    return fmt::format("{} #{}: replacement{} booting; #{} drains and stops once it is ready",
                       instance, old, next ? fmt::format(" #{}", next->number) : "", old);
  }
  if (inc->stop_reason) {
    // Draining or stopping already (its own max age, a stop): the kill adds nothing to that.
    return Error{fmt::format("{} #{} is already {}; kill --now ends it at once", instance,
                             inc->number, ToString(inc->state))};
  }
  BeginStop(*inc, DeathReason::kKilled, now);  // not serving yet: nothing to surge for
  return fmt::format("{} #{}: was not ready yet; stopped and reborn", instance, inc->number);
}

void Supervisor::HardKill(Incarnation& inc, DeathReason reason) {
  inc.hard_killed = true;
  inc.stop_reason = reason;
  inc.state = IncarnationState::kStopping;  // no more boot or rebirth deadlines
  inc.deadline = Time::max();
  actions_.push_back(SignalAction{inc.id, SIGKILL});
}

Status Supervisor::Rotate(const std::string& type, Time now) {
  Seen(now);
  if (!type.empty() && !config_.Find(type)) {
    return Error{fmt::format("unknown process type '{}'", type)};
  }
  if (shutting_down_) return Error{"phoenix is shutting down"};
  std::vector<InstanceView> order = View(now);  // Procfile order, then index
  int queued = 0;
  for (const auto& v : order) {
    if (!type.empty() && v.type != type) continue;
    if (v.state == "retiring" || v.state == "dead") continue;  // scaled away, or nothing to replace
    // Queued already: replaced after this request anyway. The one being replaced right now is
    // queued again: its successor was born before this request (a deploy, then `rotate` while
    // the last one still ran, must not leave it on the old release).
    if (std::find(rotate_queue_.begin(), rotate_queue_.end(), v.instance) != rotate_queue_.end()) {
      continue;
    }
    rotate_queue_.push_back(v.instance);
    ++queued;
  }
  if (queued == 0 && !rotating()) return Error{"no instance to rotate"};
  if (!rotation_active_) rotation_total_ = rotation_done_ = 0;
  rotation_total_ += queued;
  rotation_active_ = true;
  Event e;
  e.kind = "rotating";
  e.instance = type.empty() ? "all" : type;
  e.message = fmt::format("{}{} instance{}, one after another", queued,
                          rotation_total_ > queued ? " more" : "", queued == 1 ? "" : "s");
  Emit(std::move(e));
  StepRotation(now);
  return OkStatus();
}

// Starts the next slot of a rotation once the previous one's successor is ready.
void Supervisor::StepRotation(Time now) {
  while (rotating_.empty() && !rotate_queue_.empty() && !shutting_down_) {
    std::string name = rotate_queue_.front();
    rotate_queue_.pop_front();
    Slot* slot = FindSlot(name);
    if (!slot || slot->retired) continue;
    if (slot->successor) {  // already being replaced: wait for that one
      rotating_ = name;
      break;
    }
    Incarnation* cur = Find(slot->current);
    if (!cur || cur->state != IncarnationState::kReady) continue;  // being born anyway
    slot->successor_reason = DeathReason::kRotated;
    slot->successor = SpawnInto(*slot, now);
    ++slot->restarts;
    rotating_ = name;
  }
  if (rotation_active_ && rotating_.empty() && rotate_queue_.empty()) {
    rotation_active_ = false;
    Event e;
    e.kind = "rotated";
    e.instance = "all";
    // Slots scaled away or dead meanwhile are not counted as replaced.
    e.message = rotation_done_ == rotation_total_
                    ? fmt::format("every instance was replaced ({})", rotation_done_)
                    : RotationCount() + "; the others were gone or being born";
    Emit(std::move(e));
  }
}

// The slot being rotated is done with (its successor serves, or the slot was scaled away).
void Supervisor::NextRotationSlot(bool replaced, Time now) {
  if (replaced) ++rotation_done_;
  rotating_.clear();
  StepRotation(now);
}

std::string Supervisor::RotationCount() const {
  return fmt::format("{} of {} instance{} replaced", rotation_done_, rotation_total_,
                     rotation_total_ == 1 ? "" : "s");
}

// Ends a rotation before its queue did: the waiting command gets `e` (rotation-failed).
void Supervisor::AbortRotation(Event e) {
  rotate_queue_.clear();
  rotating_.clear();
  rotation_active_ = false;
  e.kind = "rotation-failed";
  Emit(std::move(e));
}

void Supervisor::FailRotation(const Slot& slot, const Incarnation& dead, DeathReason reason,
                              const ExitStatus& status) {
  const Incarnation* cur = Find(slot.current);
  Event e;
  e.instance = slot.instance;
  e.incarnation = dead.number;
  e.reason = reason;
  e.status = status;
  e.message = fmt::format("{} #{} {} before it was ready ({}); {} #{} keeps serving; {}",
                          slot.instance, dead.number,
                          reason == DeathReason::kBootTimeout ? "timed out booting" : "crashed",
                          status.ToString(), slot.instance, cur ? cur->number : 0, RotationCount());
  AbortRotation(std::move(e));
}

Status Supervisor::Drill(const std::string& type, double fraction, Time now) {
  Seen(now);
  if (!type.empty() && !config_.Find(type)) {
    return Error{fmt::format("unknown process type '{}'", type)};
  }
  if (!(fraction > 0.0 && fraction <= 1.0)) return Error{"--fraction must be in (0, 1]"};
  if (shutting_down_) return Error{"phoenix is shutting down"};
  if (drill_) return Error{"a drill is already running"};
  std::vector<Slot*> live;
  for (auto& [name, slot] : slots_) {
    if (!slot.retired && (type.empty() || slot.type == type) && Find(slot.current)) {
      live.push_back(&slot);
    }
  }
  if (live.empty()) return Error{"no instance to drill"};
  std::shuffle(live.begin(), live.end(), rng_);
  size_t count = std::max<size_t>(1, static_cast<size_t>(std::ceil(fraction * live.size())));
  live.resize(std::min(count, live.size()));
  DrillRun run;
  run.start = now;
  for (Slot* slot : live) {
    Incarnation* cur = Find(slot->current);
    run.slots[slot->instance] = cur->number;
    for (IncarnationId id : {slot->current, slot->successor}) {
      if (Incarnation* i = Find(id)) {
        HardKill(*i, DeathReason::kDrill);
        ++run.killed;
      }
    }
  }
  Event e;
  e.kind = "drill-start";
  e.instance = type.empty() ? "all" : type;
  e.message = fmt::format("SIGKILL of {} instance{} at once", run.slots.size(),
                          run.slots.size() == 1 ? "" : "s");
  Emit(std::move(e));
  drill_ = std::move(run);
  return OkStatus();
}

void Supervisor::FailDrill(const Incarnation& dead, DeathReason reason, const ExitStatus& status,
                           Time now) {
  Event e;
  e.kind = "drill-failed";
  e.instance = "all";
  e.age = std::chrono::duration_cast<Millis>(now - drill_->start);
  e.reason = reason;
  e.status = status;
  e.message = fmt::format(
      "{} instance{} killed; {} did not come back after {}: #{} {} before it was ready ({})",
      drill_->slots.size(), drill_->slots.size() == 1 ? "" : "s", dead.instance,
      FormatDuration(e.age), dead.number,
      reason == DeathReason::kBootTimeout ? "timed out booting" : "crashed", status.ToString());
  e.lost = std::move(drill_->lost);
  Emit(std::move(e));
  drill_.reset();
}

// A drill ends when every slot it hit has a new incarnation ready.
void Supervisor::CheckDrill(Time now) {
  if (!drill_) return;
  for (const auto& [name, killed] : drill_->slots) {
    auto it = slots_.find(name);
    if (it == slots_.end() || it->second.retired) continue;
    const Incarnation* cur = nullptr;
    auto ci = incarnations_.find(it->second.current);
    if (ci != incarnations_.end()) cur = &ci->second;
    if (!cur || cur->number <= killed || cur->state != IncarnationState::kReady) return;
  }
  Event e;
  e.kind = "drill";
  e.instance = "all";
  e.age = std::chrono::duration_cast<Millis>(now - drill_->start);
  e.message =
      fmt::format("{} instance{} killed; every one ready again after {}", drill_->slots.size(),
                  drill_->slots.size() == 1 ? "" : "s", FormatDuration(e.age));
  e.lost = std::move(drill_->lost);
  Emit(std::move(e));
  drill_.reset();
}

// [chaos]: unannounced SIGKILLs at exponential intervals, inside `hours` only, and never of
// the last ready instance of a type (as Chaos Monkey and the Kubernetes descheduler promise).
void Supervisor::ChaosTick(Time now) {
  if (!next_chaos_ || now < *next_chaos_ || shutting_down_) return;
  const Millis mean = config_.chaos.mean_time_between_kills;
  std::exponential_distribution<double> gap(1.0 / static_cast<double>(mean.count()));
  next_chaos_ = now + Millis(static_cast<int64_t>(gap(rng_)) + 1);
  if (!config_.chaos.hours.Contains(minute_of_day_(now))) return;
  std::map<std::string, int> ready_by_type;
  std::vector<Incarnation*> candidates;
  for (auto& [name, slot] : slots_) {
    Incarnation* cur = Find(slot.current);
    if (!slot.retired && cur && cur->state == IncarnationState::kReady && !slot.successor) {
      ++ready_by_type[slot.type];
      candidates.push_back(cur);
    }
  }
  std::erase_if(candidates, [&](Incarnation* i) { return ready_by_type[i->type] < 2; });
  if (candidates.empty()) return;
  Incarnation* victim =
      candidates[std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng_)];
  Event e = EventFor(*victim, "chaos", now);
  e.message = fmt::format("unannounced SIGKILL (mean time between kills {})", FormatDuration(mean));
  Emit(std::move(e));
  HardKill(*victim, DeathReason::kChaos);
}

void Supervisor::Shutdown(Time now) {
  Seen(now);
  if (shutting_down_) return;
  shutting_down_ = true;
  if (rotation_active_) {
    // A waiting `phoenix rotate` gets its answer now, not a closed connection.
    Event e;
    e.instance = "all";
    e.message = "phoenix is stopping; " + RotationCount();
    AbortRotation(std::move(e));
  }
  for (auto& [name, slot] : slots_) slot.spawn_at.reset();
  for (auto& [id, inc] : incarnations_) BeginStop(inc, DeathReason::kShutdown, now);
  MaybeFinishShutdown();
}

void Supervisor::ForceShutdown(Time now) {
  Shutdown(now);
  for (auto& [id, inc] : incarnations_) {
    if (inc.deadline != Time::max() || inc.state != IncarnationState::kStopping) {
      inc.state = IncarnationState::kStopping;
      inc.deadline = Time::max();
      actions_.push_back(SignalAction{id, SIGKILL});
    }
  }
}

void Supervisor::MaybeFinishShutdown() {
  if (shutting_down_ && incarnations_.empty() && !exit_sent_) {
    exit_sent_ = true;
    actions_.push_back(ExitAction{});
  }
}

std::vector<InstanceView> Supervisor::View(Time now) const {
  std::vector<InstanceView> out;
  auto age = [&](Time t) { return std::chrono::duration_cast<Millis>(now - t); };
  for (const auto& [name, slot] : slots_) {
    InstanceView v;
    v.instance = slot.instance;
    v.type = slot.type;
    v.restarts = slot.restarts;
    v.lost_files = slot.lost_files;
    v.lost_bytes = slot.lost_bytes;
    v.last_exit = slot.last_exit;
    auto cur = incarnations_.find(slot.current);
    if (cur != incarnations_.end()) {
      const Incarnation& inc = cur->second;
      v.incarnation = inc.number;
      v.pid = inc.pid;
      v.port = inc.port;
      v.state = ToString(inc.state);
      v.age = age(inc.born);
      if (inc.rebirth_at) {
        // When it will be replaced: rotate_window can hold a due rebirth until the window opens.
        Time t = *inc.rebirth_at;
        if (const auto& w = Process(inc.type).rotate_window) t = NextInWindow(std::max(t, now), *w);
        v.next_rebirth = std::max(Millis(0), std::chrono::duration_cast<Millis>(t - now));
      }
      if (slot.successor) {
        v.state = "replacing";
      } else if (slot.spawn_at) {
        // Its replacement crashed and waits in backoff: the next try is the next rebirth.
        v.state = "replacing";
        v.next_rebirth =
            std::max(Millis(0), std::chrono::duration_cast<Millis>(*slot.spawn_at - now));
      }
    } else if (slot.spawn_at) {
      v.state = "backoff";
      v.incarnation = slot.next_number - 1;
      v.next_rebirth = std::chrono::duration_cast<Millis>(*slot.spawn_at - now);
    } else {
      v.state = "dead";
    }
    if (slot.retired) v.state = "retiring";
    for (const auto& [id, inc] : incarnations_) {
      if (inc.instance != slot.instance || id == slot.current || id == slot.successor) continue;
      InstanceView::Leaving l;
      l.incarnation = inc.number;
      l.pid = inc.pid;
      l.state = ToString(inc.state);
      l.age = age(inc.born);
      v.leaving.push_back(std::move(l));
    }
    std::sort(v.leaving.begin(), v.leaving.end(),
              [](const auto& a, const auto& b) { return a.incarnation < b.incarnation; });
    out.push_back(v);
  }
  // Procfile order, then index: web.2 before web.10.
  auto order = [&](const InstanceView& v) {
    int t = 0;
    for (size_t i = 0; i < config_.processes.size(); ++i)
      if (config_.processes[i].type == v.type) t = static_cast<int>(i);
    return std::pair{t, std::stoi(v.instance.substr(v.type.size() + 1))};
  };
  std::sort(out.begin(), out.end(),
            [&](const InstanceView& a, const InstanceView& b) { return order(a) < order(b); });
  return out;
}

}  // namespace phoenix
