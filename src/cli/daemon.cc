#include "cli/daemon.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "cli/admin.h"
#include "cli/terminal.h"
#include "control/paths.h"
#include "control/protocol.h"
#include "metrics/events.h"
#include "metrics/status_pages.h"
#include "os/fs.h"
#include "os/net.h"
#include "sandbox/init.h"
#include "sandbox/layer_scan.h"
#include "supervisor/supervisor.h"

extern char** environ;

namespace phoenix::cli {
namespace asio = boost::asio;
namespace json = boost::json;
using asio::local::stream_protocol;

namespace {

// The backlog `phoenix logs` shows: the last 10,000 lines, and at most 4 MiB of them (a few
// MB of memory is the promise; 10,000 lines of 16 KiB would be 160 MB).
constexpr size_t kLogLines = 10000;
constexpr size_t kLogBytes = 4 << 20;
constexpr size_t kMaxLine = 16 * 1024;
constexpr size_t kMaxFollowerBacklog = 4 << 20;

// One life of a slot, as the shell sees it: the process and its pipes.
struct Running {
  Running(asio::io_context& io, IncarnationId id_)
      : id(id_), pidfd(io), output(io), status(io), probe_timer(io), linger(io) {}
  IncarnationId id;
  std::string instance;
  int number = 0, port = 0;
  pid_t pid = 0, app_pid = 0;
  std::string layer;
  asio::posix::stream_descriptor pidfd, output, status;
  std::string out_buf, status_buf;
  char out_chunk[8192], status_chunk[512];
  std::optional<ExitStatus> reported;
  std::optional<int> wait_status;
  std::string setup_error;
  std::string last_probe;  // what the last health check got, for a boot timeout's message
  bool started = false, probe_port = false, ready = false;
  bool ipv6 = false;         // accepted on ::1, not on 127.0.0.1
  bool warned_port = false;  // said that it listens elsewhere than $PORT
  Time next_port_check{};    // when to look at what it listens on again
  bool output_eof = false, status_eof = false, finalized = false;
  asio::steady_timer probe_timer, linger;
  Time spawned_at{};
};

// A control connection: requests in, JSON lines out, through a write queue.
struct Conn : std::enable_shared_from_this<Conn> {
  explicit Conn(stream_protocol::socket s) : sock(std::move(s)) {}
  stream_protocol::socket sock;
  asio::streambuf in;
  std::deque<std::string> queue;
  size_t queued = 0;
  bool writing = false, close_after = false;
  std::string follow;  // logs -f: instance filter ("" = all)
  bool following = false;

  void Send(std::string line) {
    queued += line.size() + 1;
    queue.push_back(std::move(line) + "\n");
    if (!writing) WriteNext();
  }
  void WriteNext() {
    if (queue.empty()) {
      writing = false;
      if (close_after) {
        boost::system::error_code ec;
        sock.shutdown(asio::socket_base::shutdown_both, ec);
        sock.close(ec);
      }
      return;
    }
    writing = true;
    auto self = shared_from_this();
    asio::async_write(sock, asio::buffer(queue.front()), [self](auto ec, size_t n) {
      self->queued -= n;
      self->queue.pop_front();
      if (ec) {
        self->queue.clear();
        self->following = false;
        return;
      }
      self->WriteNext();
    });
  }
  void Finish() {
    close_after = true;
    if (!writing) WriteNext();
  }
};

class Daemon {
 public:
  explicit Daemon(DaemonOptions options)
      : opt_(std::move(options)),
        sup_(opt_.config, std::random_device{}()),
        timer_(io_),
        signals_(io_, SIGINT, SIGTERM),
        acceptor_(io_),
        accept_retry_(io_),
        term_(opt_.config) {}

  int Run() {
    // Refusals before anything started go to stderr, as every other refusal of `up`.
    auto refuse = [](const std::string& why) {
      std::fprintf(stderr, "phoenix: %s\n", why.c_str());
    };
    if (auto exe = os::OpenSelfExe(); exe.ok()) {
      exe_ = std::move(exe.value());
    } else {
      refuse(exe.error().message);
      return 1;
    }
    if (opt_.events_file) {
      events_fd_.Reset(
          ::open(opt_.events_file->c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
      if (!events_fd_.valid()) {
        refuse(fmt::format("{}: {} (given with --events)", *opt_.events_file, strerror(errno)));
        return 2;
      }
    }
    if (Status s = Listen(); !s.ok()) {
      refuse(s.error().message);
      return 2;
    }
    if (Status s = StartAdmin(); !s.ok()) {
      refuse(s.error().message);
      return 2;
    }
    ReportStaleLayers();
    WaitSignals();
    term_.System(fmt::format("phoenix {} up in {} ({} isolation, filesystem {})", getpid(),
                             opt_.config.app_root, IsolationName(),
                             ToString(opt_.config.filesystem.mode)));
    if (opt_.router && opt_.config.Find(kRoutedType)) {
      term_.System(
          fmt::format("router on http://0.0.0.0:{} for the web instances", opt_.router->port()));
    }
    if (admin_)
      term_.System(fmt::format("admin on {} (/metrics, /status, /events)", admin_->url()));
    sup_.Start(Now());
    Pump();
    io_.run();
    if (admin_) admin_->Stop();
    if (opt_.router) opt_.router->Stop();
    boost::system::error_code ec;
    acceptor_.close(ec);
    accept_retry_.cancel();
    ::unlink(control::SocketPath(opt_.state_dir).c_str());
    term_.System("every instance stopped; bye");
    return 0;
  }

 private:
  static Time Now() { return Clock::now(); }

  const char* IsolationName() const {
    switch (opt_.isolation) {
      case os::Isolation::kNone:
        return "no";
      case os::Isolation::kNamespaces:
        return "namespace";
      case os::Isolation::kUserNamespace:
        return "user-namespace";
    }
    return "?";
  }

  // ---------------------------------------------------------------- the supervisor's loop
  void Pump() {
    for (;;) {
      auto events = sup_.TakeEvents();
      auto actions = sup_.TakeActions();
      if (events.empty() && actions.empty()) break;
      for (auto& e : events) {
        Report(e);
        if (e.kind == "rotated" || e.kind == "rotation-failed" || e.kind == "drill" ||
            e.kind == "drill-failed") {
          FinishWaiters(e);
        }
      }
      for (auto& a : actions) std::visit([this](auto& act) { Do(act); }, a);
    }
    ArmTimer();
  }

  void ArmTimer() {
    auto next = sup_.NextDeadline();
    if (!next) {
      timer_.cancel();
      return;
    }
    if (armed_ && *armed_ == *next) return;
    armed_ = *next;
    timer_.expires_at(*next);
    timer_.async_wait([this](auto ec) {
      if (ec) return;
      armed_.reset();
      sup_.Tick(Now());
      Pump();
    });
  }

  void Report(Event& e) {
    if (e.kind == "boot-timeout") ExplainBootTimeout(e);
    if (e.kind == "died" && e.reason) {
      std::string type = e.instance.substr(0, e.instance.rfind('.'));
      ++deaths_[{type, ToString(*e.reason)}];
      if (e.lost) {
        auto& [files, bytes] = lost_[type];
        files += e.lost->files.size();
        bytes += e.lost->bytes;
      }
    }
    if (e.kind == "drill") ++drills_;
    if (e.kind == "drill-start" && opt_.router) drill_stats_ = opt_.router->GetStats();
    if ((e.kind == "drill" || e.kind == "drill-failed") && opt_.router) {
      auto now = opt_.router->GetStats();
      // The 5xx answers, and the answers cut short (a download, an event stream) by the kill.
      e.failed_requests = now.responses_5xx - drill_stats_.responses_5xx + now.interrupted -
                          drill_stats_.interrupted;
    }
    std::string text = metrics::EventText(e);
    std::string line = metrics::EventJson(e);
    if (events_fd_.valid()) WriteEvent(line + "\n");
    // The last ones for the admin address's /events, with or without --events.
    recent_events_.push_back(line);
    if (recent_events_.size() > kRecentEvents) recent_events_.pop_front();
    if (!text.empty()) {
      term_.System(text);
      Log("phoenix", text);
    }
  }

  // Whether one of `bound` ("127.0.0.1:3000", "[::]:3000") is on `port`.
  static bool OnPort(const std::vector<std::string>& bound, int port) {
    std::string suffix = fmt::format(":{}", port);
    for (const auto& a : bound) {
      if (a.size() > suffix.size() && a.ends_with(suffix)) return true;
    }
    return false;
  }

  // Why an instance never got ready, as far as we can see (Heroku's R10 says "failed to bind to
  // $PORT"): what its health check got, or what its processes listen on instead of $PORT.
  void ExplainBootTimeout(Event& e) {
    for (const auto& [id, r] : running_) {
      if (r->instance != e.instance || r->number != e.incarnation || r->pid <= 0) continue;
      if (!r->last_probe.empty()) {
        e.message += "; " + r->last_probe;
        return;
      }
      std::vector<std::string> bound = os::ListeningAddresses(r->pid);
      if (OnPort(bound, r->port)) return;  // it does listen on $PORT (just now): nothing to add
      if (bound.empty()) {
        // Not ours to look into (another user's, not dumpable): say nothing rather than "none".
        if (::access(fmt::format("/proc/{}/fd", r->pid).c_str(), R_OK) != 0) return;
        e.message +=
            fmt::format("; it listens on no TCP port (it must listen on $PORT, {})", r->port);
      } else {
        std::string list;
        for (size_t i = 0; i < bound.size() && i < 5; ++i) list += (i ? ", " : "") + bound[i];
        e.message += fmt::format("; it listens on {} instead of $PORT ({}): the app must use $PORT",
                                 list, r->port);
      }
      return;
    }
  }

  // A full disk or a vanished mount must not stop the supervisor, nor lose events unseen: the
  // first failure of a run of them is said on the terminal.
  void WriteEvent(const std::string& line) {
    size_t done = 0;
    int error = 0;
    while (done < line.size()) {
      ssize_t n = ::write(events_fd_.get(), line.data() + done, line.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error = n < 0 ? errno : EIO;
        break;
      }
      done += static_cast<size_t>(n);
    }
    if (error == 0) {
      events_failing_ = false;
    } else if (!events_failing_) {
      events_failing_ = true;
      term_.System(fmt::format("warning: --events {}: {}; events are being lost", *opt_.events_file,
                               strerror(error)));
    }
  }

  void Do(const SpawnAction& a) {
    auto r = std::make_shared<Running>(io_, a.id);
    r->instance = a.instance;
    r->number = a.incarnation;
    r->probe_port = a.probe_port;
    if (Status s = Spawn(*r, a); !s.ok()) {
      sup_.SpawnFailed(a.id, s.error().message, Now());
      if (!r->layer.empty()) (void)os::RemoveTree(r->layer);
      return;
    }
    running_[a.id] = r;
    r->spawned_at = Clock::now();
    sup_.Spawned(a.id, r->pid, r->port, Now());
    ReadOutput(r);
    ReadStatus(r);
    r->pidfd.async_wait(asio::posix::descriptor_base::wait_read, [this, r](auto ec) {
      if (!ec) OnProcessGone(r);
    });
  }

  void Do(const SignalAction& a) {
    auto it = running_.find(a.id);
    if (it == running_.end()) return;
    Running& r = *it->second;
    // Out of rotation before it dies, and the requests it takes down with it may be retried
    // again (they did not kill it).
    if (a.signal == SIGKILL && opt_.router) opt_.router->Killed(a.id);
    if (!os::SendSignal(r.pidfd.native_handle(), a.signal) && errno != ESRCH) {
      term_.System(
          fmt::format("{} #{}: signal {}: {}", r.instance, r.number, a.signal, strerror(errno)));
    }
    // Without namespaces, SIGKILL of the init would leave the app's process group behind.
    if (a.signal == SIGKILL && opt_.isolation == os::Isolation::kNone && r.app_pid > 0) {
      ::kill(-r.app_pid, SIGKILL);
    }
  }

  void Do(const StartRoutingAction& a) {
    auto it = running_.find(a.id);
    if (it == running_.end() || !opt_.router) return;
    const Running& r = *it->second;
    opt_.router->Add({a.id, r.instance, r.number, r.port, r.ipv6});
  }

  void Do(const StopRoutingAction& a) {
    auto drained = [this, id = a.id] {
      // From a router thread: back to ours.
      asio::post(io_, [this, id] {
        sup_.Drained(id, Now());
        Pump();
      });
    };
    if (opt_.router) {
      opt_.router->Drain(a.id, drained);
    } else {
      drained();
    }
  }

  void Do(const ExitAction&) {
    timer_.cancel();
    signals_.cancel();
    boost::system::error_code ec;
    acceptor_.close(ec);
    accept_retry_.cancel();
    // Clients waiting on `stop` or `logs -f` see EOF when this process exits.
    asio::post(io_, [this] { io_.stop(); });
  }

  // ---------------------------------------------------------------- incarnations
  Status Spawn(Running& r, const SpawnAction& a) {
    const Config& cfg = opt_.config;
    const ProcessConfig& p = *cfg.Find(a.type);
    ASSIGN_OR_RETURN(r.port, os::PickFreePort());
    sandbox::InitOptions init;
    init.mode = ToString(cfg.filesystem.mode);
    if (opt_.isolation == os::Isolation::kNone) init.mode = "none";
    init.root = cfg.app_root;
    init.userns = opt_.isolation == os::Isolation::kUserNamespace;
    init.command = p.command;
    init.writable = cfg.filesystem.writable;
    if (init.mode != "none") {
      r.layer = fmt::format("{}/{}.{}-{}", control::LayersDir(opt_.state_dir), a.instance,
                            a.incarnation, a.id);
      init.upper = r.layer + "/upper";
      init.work = r.layer + "/work";
      init.private_dirs = r.layer + "/private";
      RETURN_IF_ERROR(os::MakeDirs(init.upper, 0755));
      RETURN_IF_ERROR(os::MakeDirs(init.work, 0700));
      for (const sandbox::PrivateScratch& p : sandbox::kPrivateScratch) {
        std::string dir = init.private_dirs + "/" + p.folder;
        RETURN_IF_ERROR(os::MakeDirs(dir, 0755));
        // World-writable and sticky, as the host's are (umask took those bits from mkdir).
        if (::chmod(dir.c_str(), 01777) < 0) {
          return Error{fmt::format("{}: {}", dir, std::strerror(errno))};
        }
      }
    } else {
      init.upper = init.work = "-";
    }
    os::SpawnRequest req;
    req.exe_fd = exe_.get();
    req.argv = sandbox::InitArgv(init);
    req.isolation = init.mode == "none" ? os::Isolation::kNone : opt_.isolation;
    std::map<std::string, std::string> env;
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      auto eq = kv.find('=');
      if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : cfg.env) env[k] = v;
    env["PORT"] = std::to_string(r.port);
    env["PHOENIX_INSTANCE"] = a.instance;
    env["PHOENIX_INCARNATION"] = std::to_string(a.incarnation);
    env["DYNO"] = a.instance;
    for (const auto& [k, v] : env) req.env.push_back(k + "=" + v);
    ASSIGN_OR_RETURN(os::SpawnedChild child, os::Spawn(req));
    r.pid = child.pid;
    r.pidfd.assign(child.pidfd.Release());
    r.output.assign(child.output.Release());
    r.status.assign(child.status.Release());
    return OkStatus();
  }

  void ReadOutput(std::shared_ptr<Running> r) {
    r->output.async_read_some(asio::buffer(r->out_chunk), [this, r](auto ec, size_t n) {
      if (ec) {
        if (!r->out_buf.empty()) EmitLine(*r, std::exchange(r->out_buf, {}));
        r->output_eof = true;
        MaybeFinalize(r);
        return;
      }
      r->out_buf.append(r->out_chunk, n);
      size_t start = 0, nl;
      while ((nl = r->out_buf.find('\n', start)) != std::string::npos) {
        EmitLine(*r, r->out_buf.substr(start, nl - start));
        start = nl + 1;
      }
      r->out_buf.erase(0, start);
      if (r->out_buf.size() > kMaxLine) EmitLine(*r, std::exchange(r->out_buf, {}));
      ReadOutput(r);
    });
  }

  void EmitLine(const Running& r, std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    term_.Instance(r.instance, line);
    Log(r.instance, line);
  }

  void ReadStatus(std::shared_ptr<Running> r) {
    r->status.async_read_some(asio::buffer(r->status_chunk), [this, r](auto ec, size_t n) {
      if (ec) {
        r->status_eof = true;
        MaybeFinalize(r);
        return;
      }
      r->status_buf.append(r->status_chunk, n);
      size_t nl;
      while ((nl = r->status_buf.find('\n')) != std::string::npos) {
        OnStatusLine(r, r->status_buf.substr(0, nl));
        r->status_buf.erase(0, nl + 1);
      }
      ReadStatus(r);
    });
  }

  void OnStatusLine(const std::shared_ptr<Running>& r, const std::string& line) {
    auto arg = [&](size_t skip) { return line.substr(std::min(skip, line.size())); };
    if (line.rfind("started", 0) == 0) {
      r->started = true;
      r->app_pid = std::atoi(arg(8).c_str());
      if (r->probe_port) {
        Probe(r);
      } else {
        r->ready = true;
        sup_.Ready(r->id, Now());
        Pump();
      }
    } else if (line.rfind("error ", 0) == 0) {
      r->setup_error = arg(6);
      term_.System(
          fmt::format("{} #{} sandbox set-up failed: {}", r->instance, r->number, r->setup_error));
    } else if (line.rfind("exit ", 0) == 0) {
      r->reported = ExitStatus{false, std::atoi(arg(5).c_str())};
    } else if (line.rfind("signal ", 0) == 0) {
      r->reported = ExitStatus{true, std::atoi(arg(7).c_str())};
    }
  }

  // Ready when $PORT accepts (and health_path answers 2xx/3xx).
  void Probe(std::shared_ptr<Running> r, bool v6 = false) {
    if (r->finalized || r->wait_status) return;
    auto sock = std::make_shared<asio::ip::tcp::socket>(io_);
    // An app may listen on 127.0.0.1, on ::1 only ("localhost" can resolve either way), or on
    // both: try IPv4, then IPv6, before waiting.
    asio::ip::tcp::endpoint ep(v6 ? asio::ip::address(asio::ip::address_v6::loopback())
                                  : asio::ip::address(asio::ip::address_v4::loopback()),
                               static_cast<unsigned short>(r->port));
    sock->async_connect(ep, [this, r, sock, v6](auto ec) {
      if (r->finalized || r->wait_status) return;
      if (ec) return v6 ? RetryProbe(r) : Probe(r, true);
      r->ipv6 = v6;  // where the router connects to it
      if (opt_.config.router.health_path.empty()) return MarkReady(r);
      HealthCheck(r, sock);
    });
  }

  // An app that listens on its own port (3000) instead of $PORT is said at once, not after
  // the whole boot_timeout (Heroku's R10 comes only then): a look every 5 s from 5 s on.
  void WarnIfListeningElsewhere(Running& r, Clock::duration booting) {
    if (r.warned_port || booting < std::chrono::seconds(5) || r.pid <= 0) return;
    Time now = Clock::now();
    if (now < r.next_port_check) return;
    r.next_port_check = now + std::chrono::seconds(5);
    std::vector<std::string> bound = os::ListeningAddresses(r.pid);
    if (bound.empty()) return;
    if (OnPort(bound, r.port)) return;  // on $PORT after all: the probe will see it
    std::string list;
    for (const auto& a : bound) {
      if (list.size() < 200) list += (list.empty() ? "" : ", ") + a;
    }
    r.warned_port = true;
    // "Not yet": the port it has may be a side one (a debugger's, a metrics endpoint) of an
    // app that is still booting, not a wrong one.
    term_.System(fmt::format(
        "{} #{} listens on {} but not yet on $PORT ({}) after {} s: the app must listen on "
        "$PORT; it is not ready until it does (boot_timeout ends it)",
        r.instance, r.number, list, r.port,
        std::chrono::duration_cast<std::chrono::seconds>(booting).count()));
  }

  void RetryProbe(std::shared_ptr<Running> r) {
    // Kill-to-ready must be the app's boot time plus a few ms, so poll every 2 ms while most
    // apps boot, then back off for the slow ones (a refused loopback connect costs ~10 µs).
    auto booting = Clock::now() - r->spawned_at;
    WarnIfListeningElsewhere(*r, booting);
    r->probe_timer.expires_after(booting < std::chrono::seconds(2)    ? Millis(2)
                                 : booting < std::chrono::seconds(10) ? Millis(20)
                                                                      : Millis(100));
    r->probe_timer.async_wait([this, r](auto ec) {
      if (!ec) Probe(r);
    });
  }

  void HealthCheck(std::shared_ptr<Running> r, std::shared_ptr<asio::ip::tcp::socket> sock) {
    auto req = std::make_shared<std::string>(
        fmt::format("GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: "
                    "phoenix-health\r\nConnection: close\r\n\r\n",
                    opt_.config.router.health_path, r->port));
    auto buf = std::make_shared<asio::streambuf>(4096);
    // Said only until a check completes: a boot timeout that falls while a check is in flight
    // reports what the last completed one got (503), not that this one had no answer yet.
    if (r->last_probe.empty()) {
      r->last_probe =
          fmt::format("$PORT accepts, but GET {} was not answered", opt_.config.router.health_path);
    }
    asio::async_write(*sock, asio::buffer(*req), [this, r, sock, req, buf](auto ec, size_t) {
      if (ec) return RetryProbe(r);
      asio::async_read_until(*sock, *buf, "\r\n", [this, r, sock, buf](auto ec2, size_t) {
        if (r->finalized || r->wait_status) return;
        std::string status_line(asio::buffers_begin(buf->data()), asio::buffers_end(buf->data()));
        int code = 0;
        if (!ec2 && status_line.rfind("HTTP/1.", 0) == 0 && status_line.size() >= 12) {
          code = std::atoi(status_line.c_str() + 9);
        }
        if (code >= 200 && code < 400) return MarkReady(r);
        r->last_probe = code ? fmt::format("$PORT accepts, but GET {} answered {}",
                                           opt_.config.router.health_path, code)
                             : fmt::format("$PORT accepts, but GET {} got no HTTP answer",
                                           opt_.config.router.health_path);
        RetryProbe(r);
      });
    });
  }

  void MarkReady(const std::shared_ptr<Running>& r) {
    if (r->ready) return;
    r->ready = true;
    sup_.Ready(r->id, Now());
    Pump();
  }

  void OnProcessGone(std::shared_ptr<Running> r) {
    // Out of rotation at once: nothing more is sent to a dead instance.
    if (opt_.router) opt_.router->Remove(r->id);
    auto ws = os::Reap(os::Fd(dup(r->pidfd.native_handle())));
    r->wait_status = ws.ok() ? ws.value() : 0;
    r->probe_timer.cancel();
    // Its last output may still be in the pipe: wait for EOF, but not forever (without
    // namespaces a grandchild can hold the pipe open).
    r->linger.expires_after(std::chrono::seconds(2));
    r->linger.async_wait([this, r](auto ec) {
      if (!ec) {
        r->output_eof = r->status_eof = true;
        MaybeFinalize(r);
      }
    });
    MaybeFinalize(r);
  }

  // What an incarnation kept: its layer's files, then those left in its private /tmp,
  // /var/tmp and /dev/shm (a layer from before those were kept on the host has none).
  Result<sandbox::LostState> ScanIncarnation(const std::string& layer) {
    ASSIGN_OR_RETURN(sandbox::LostState lost,
                     sandbox::ScanLayer(layer + "/upper", opt_.config.app_root,
                                        opt_.config.filesystem.writable));
    for (const sandbox::PrivateScratch& p : sandbox::kPrivateScratch) {
      std::string dir = layer + "/private/" + p.folder;
      if (::access(dir.c_str(), F_OK) != 0) continue;
      RETURN_IF_ERROR(sandbox::ScanPrivateScratch(dir, p.path, lost));
    }
    return lost;
  }

  void MaybeFinalize(const std::shared_ptr<Running>& r) {
    if (r->finalized || !r->wait_status || !r->output_eof || !r->status_eof) return;
    r->finalized = true;
    r->linger.cancel();
    boost::system::error_code ec;
    r->output.close(ec);
    r->status.close(ec);
    r->pidfd.close(ec);
    ExitStatus status = r->reported.value_or(ExitStatus::FromWaitStatus(*r->wait_status));
    std::optional<sandbox::LostState> lost;
    if (!r->layer.empty()) {
      // Every process of the incarnation is gone (PID 1 of its namespace reaps them all before
      // it is reaped itself), so nothing can still write into the layer.
      auto scan = ScanIncarnation(r->layer);
      if (scan.ok()) {
        lost = std::move(scan.value());
      } else {
        term_.System(fmt::format("{} #{}: layer scan failed: {}", r->instance, r->number,
                                 scan.error().message));
      }
      if (opt_.keep_layers) {
        term_.System(fmt::format("{} #{}: layer kept in {}", r->instance, r->number, r->layer));
      } else if (Status s = os::RemoveTree(r->layer); !s.ok()) {
        term_.System("warning: " + s.error().message);
      }
    }
    running_.erase(r->id);
    sup_.Exited(r->id, status, std::move(lost), Now());
    Pump();
  }

  // A phoenix killed with SIGKILL leaves its layers on disk (never its processes or mounts):
  // report what they held, then remove them.
  void ReportStaleLayers() {
    std::string dir = control::LayersDir(opt_.state_dir);
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      std::string name = entry.path().filename();
      auto scan = ScanIncarnation(entry.path().string());
      Event e;
      e.kind = "died";
      auto dash = name.rfind('-');
      auto dot = name.rfind('.', dash);
      e.instance = name.substr(0, dot);
      e.incarnation = std::atoi(name.substr(dot + 1).c_str());
      e.reason = DeathReason::kPhoenixKilled;
      // When it died is not known (with the phoenix, or before): the layer's folder was made at
      // its birth, so its age now is the most it can have lived.
      auto made = std::filesystem::last_write_time(entry.path(), ec);
      if (!ec) {
        auto lived = std::filesystem::file_time_type::clock::now() - made;
        e.age = std::max(Millis(0), std::chrono::duration_cast<Millis>(lived));
      }
      e.message = "found after a phoenix that was killed";
      if (scan.ok()) e.lost = std::move(scan.value());
      Report(e);
      (void)os::RemoveTree(entry.path().string());
    }
  }

  // ---------------------------------------------------------------- signals
  void WaitSignals() {
    signals_.async_wait([this](auto ec, int sig) {
      if (ec) return;
      if (!sup_.shutting_down()) {
        term_.System(fmt::format("{}: stopping every instance ({} again to kill them now)",
                                 sigabbrev_np(sig), sigabbrev_np(sig)));
        sup_.Shutdown(Now());
      } else {
        term_.System("killing every instance now");
        sup_.ForceShutdown(Now());
      }
      Pump();
      WaitSignals();
    });
  }

  // ---------------------------------------------------------------- logs
  void Log(const std::string& instance, const std::string& text) {
    logs_.push_back({instance, text});
    logs_bytes_ += instance.size() + text.size();
    while (logs_.size() > kLogLines || (logs_bytes_ > kLogBytes && logs_.size() > 1)) {
      logs_bytes_ -= logs_.front().first.size() + logs_.front().second.size();
      logs_.pop_front();
    }
    if (followers_.empty()) return;
    std::string line = LogJson(instance, text);
    for (auto it = followers_.begin(); it != followers_.end();) {
      auto& c = *it;
      if (!c->following || c->queued > kMaxFollowerBacklog) {  // gone, or too slow to keep up
        c->Finish();
        it = followers_.erase(it);
        continue;
      }
      if (c->follow.empty() || c->follow == instance) c->Send(line);
      ++it;
    }
  }

  static std::string LogJson(const std::string& instance, const std::string& text) {
    return json::serialize(json::object{{"instance", instance}, {"line", text}});
  }

  // ---------------------------------------------------------------- control socket
  Status Listen() {
    std::string path = control::SocketPath(opt_.state_dir);
    ::unlink(path.c_str());  // we hold the lock: a socket file here is a dead phoenix's
    boost::system::error_code ec;
    acceptor_.open(stream_protocol(), ec);
    try {
      if (!ec) acceptor_.bind(stream_protocol::endpoint(path), ec);
    } catch (const boost::system::system_error& error) {  // the path does not fit sun_path
      ec = error.code();
    }
    if (!ec) ::chmod(path.c_str(), 0600);  // only its owner may talk to phoenix
    if (!ec) acceptor_.listen(64, ec);
    if (ec) return Error{fmt::format("control socket {}: {}", path, ec.message())};
    Accept();
    return OkStatus();
  }

  void Accept() {
    acceptor_.async_accept([this](auto ec, stream_protocol::socket sock) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      if (ec) {
        // Out of descriptors (EMFILE, ENFILE) or memory: the command waits in the backlog and
        // is taken when some are free again; giving up here left phoenix deaf to every command.
        if (!accept_failing_) {
          term_.System(fmt::format("control socket: accept failed: {}; retrying", ec.message()));
        }
        accept_failing_ = true;
        accept_retry_.expires_after(std::chrono::milliseconds(100));
        accept_retry_.async_wait([this](auto ec2) {
          if (!ec2) Accept();
        });
        return;
      }
      accept_failing_ = false;
      ucred cred{};
      socklen_t len = sizeof cred;
      if (getsockopt(sock.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
          (cred.uid == geteuid() || cred.uid == 0)) {
        auto c = std::make_shared<Conn>(std::move(sock));
        asio::async_read_until(c->sock, c->in, '\n', [this, c](auto ec2, size_t n) {
          if (ec2) return;
          std::string line(asio::buffers_begin(c->in.data()),
                           asio::buffers_begin(c->in.data()) + n);
          Handle(c, line);
        });
      }
      Accept();
    });
  }

  void Handle(const std::shared_ptr<Conn>& c, const std::string& line) {
    auto parsed = control::ParseRequest(line);
    if (!parsed.ok()) {
      c->Send(control::ErrorAnswer(parsed.error().message, true));
      return c->Finish();
    }
    const control::Request& req = parsed.value();
    Time now = Now();
    switch (req.command) {
      case control::Command::kPs:
        c->Send(fmt::format("{{\"ok\":true,\"admin\":{},\"instances\":{}}}",
                            admin_ ? json::serialize(json::value(admin_->url())) : "null",
                            metrics::InstancesJson(Views(now))));
        break;
      case control::Command::kScale:
        // All or nothing: every type is checked before any count changes.
        for (const auto& [type, n] : req.counts) {
          if (type == "release" && !opt_.config.release_command.empty() && n > 0) {
            c->Send(control::ErrorAnswer(fmt::format("release={}: {}", n, kReleaseNotRun), true));
            return c->Finish();
          }
          if (type == "release" && !opt_.config.release_command.empty()) continue;
          if (!opt_.config.Find(type)) {
            std::vector<std::string> types;
            for (const auto& p : opt_.config.processes) types.push_back(p.type);
            auto hint = ClosestName(type, types);
            c->Send(control::ErrorAnswer(
                fmt::format("unknown process type '{}'{}", type,
                            hint ? fmt::format(" (did you mean '{}'?)", *hint) : std::string()),
                true));
            return c->Finish();
          }
        }
        {
          std::string said;
          for (const auto& [type, n] : req.counts) {
            if (type == "release" && !opt_.config.release_command.empty()) {
              said += std::string(said.empty() ? "" : "\n") + "release: not run (a one-off task)";
              continue;
            }
            auto s = sup_.Scale(type, n, now);
            if (!s.ok()) {
              c->Send(control::ErrorAnswer(s.error().message));
              Pump();
              return c->Finish();
            }
            said += (said.empty() ? "" : "\n") + *s;
          }
          c->Send(control::OkAnswer(said));
        }
        break;
      case control::Command::kKill:
        if (!IsSlot(req.instance, now)) {
          c->Send(control::ErrorAnswer(fmt::format("no instance '{}'", req.instance), true));
        } else if (auto s = sup_.Kill(req.instance, req.now, now); !s.ok()) {
          c->Send(control::ErrorAnswer(s.error().message));
        } else {
          c->Send(control::OkAnswer(*s));
        }
        break;
      case control::Command::kLogs:
        if (!req.instance.empty() && req.instance != "phoenix" && !HasInstance(req.instance, now)) {
          c->Send(control::ErrorAnswer(fmt::format("no instance '{}'", req.instance), true));
          return c->Finish();
        }
        for (const auto& [inst, text] : logs_) {
          if (req.instance.empty() || inst == req.instance) c->Send(LogJson(inst, text));
        }
        if (req.follow) {
          c->follow = req.instance;
          c->following = true;
          followers_.push_back(c);
          WatchHangUp(c);
          return;
        }
        break;
      case control::Command::kScan:
        // What each live incarnation has written so far (phoenix audit attributes files to
        // requests by scanning before and after each one).
        if (!req.instance.empty() && !HasInstance(req.instance, now)) {
          c->Send(control::ErrorAnswer(fmt::format("no instance '{}'", req.instance), true));
          return c->Finish();
        }
        c->Send(ScanJson(req.instance));
        break;
      case control::Command::kRotate:
        if (Status s = sup_.Rotate(req.type, now); !s.ok()) {
          c->Send(control::ErrorAnswer(s.error().message, UnknownType(req.type)));
          break;
        }
        rotate_waiters_.push_back(c);
        Pump();
        return;
      case control::Command::kDrill:
        if (Status s = sup_.Drill(req.type, req.fraction, now); !s.ok()) {
          c->Send(control::ErrorAnswer(s.error().message, UnknownType(req.type)));
          break;
        }
        drill_waiters_.push_back(c);
        Pump();
        return;
      case control::Command::kStop:
        c->Send(control::OkAnswer());
        stop_waiters_.push_back(c);
        term_.System("stop requested: stopping every instance");
        sup_.Shutdown(now);
        Pump();
        return;
    }
    Pump();
    c->Finish();
  }

  std::string ScanJson(const std::string& instance) {
    json::array list;
    for (const auto& [id, r] : running_) {
      if (!instance.empty() && r->instance != instance) continue;
      json::object o{{"instance", r->instance},
                     {"incarnation", r->number},
                     {"ready", r->ready},
                     {"layer", r->layer}};
      if (!r->layer.empty()) {
        auto scan = ScanIncarnation(r->layer);
        if (!scan.ok()) return control::ErrorAnswer(scan.error().message);
        auto files = [](const std::vector<sandbox::LostFile>& list) {
          json::array a;
          for (const auto& f : list) {
            a.push_back(json::object{{"path", f.path},
                                     {"bytes", f.bytes},
                                     {"change", sandbox::ToString(f.change)},
                                     {"mtime_ns", f.mtime_ns}});
          }
          return a;
        };
        o["files"] = files(scan->files);
        o["scratch"] = files(scan->scratch);
      }
      list.push_back(std::move(o));
    }
    return json::serialize(json::object{{"ok", true}, {"incarnations", std::move(list)}});
  }

  // A follower sends nothing more: a read that ends means it hung up.
  void WatchHangUp(const std::shared_ptr<Conn>& c) {
    c->sock.async_read_some(asio::buffer(hangup_buf_), [this, c](auto ec, size_t) {
      if (!ec) return WatchHangUp(c);
      c->following = false;
      std::erase(followers_, c);
    });
  }

  // Answers the `rotate` or `drill` commands waiting for this event, then closes them.
  void FinishWaiters(const Event& e) {
    const bool drill = e.kind == "drill" || e.kind == "drill-failed";
    const bool failed = e.kind == "rotation-failed" || e.kind == "drill-failed";
    auto& waiters = drill ? drill_waiters_ : rotate_waiters_;
    json::object o{{"ok", !failed},
                   {"message", metrics::EventText(e)},
                   {"event", json::parse(metrics::EventJson(e))}};
    if (failed) o["error"] = metrics::EventText(e);  // the CLI exits 1
    for (auto& c : waiters) {
      c->Send(json::serialize(o));
      c->Finish();
    }
    waiters.clear();
  }

  bool UnknownType(const std::string& type) const {
    return !type.empty() && !opt_.config.Find(type);
  }

  bool IsSlot(const std::string& name, Time now) const {
    for (const auto& v : sup_.View(now)) {
      if (v.instance == name) return true;
    }
    return false;
  }

  // A slot now, or one with lines still in the log (an instance scaled away).
  bool HasInstance(const std::string& name, Time now) const {
    if (IsSlot(name, now)) return true;
    for (const auto& [inst, text] : logs_) {
      if (inst == name) return true;
    }
    for (const auto& v : sup_.View(Now())) {
      if (v.instance == name) return true;
    }
    return false;
  }

  // The supervisor's view with the router's traffic of each incarnation in rotation.
  std::vector<InstanceView> Views(Time now) const {
    std::vector<InstanceView> views = sup_.View(now);
    if (!opt_.router) return views;
    for (const auto& t : opt_.router->Traffic()) {
      auto it = running_.find(t.id);
      if (it == running_.end()) continue;
      for (auto& v : views) {
        if (v.instance != it->second->instance) continue;
        if (v.incarnation == it->second->number) {
          v.requests = t.requests;
          v.in_flight = t.in_flight;
        }
        for (auto& l : v.leaving) {
          if (l.incarnation == it->second->number) {
            l.requests = t.requests;
            l.in_flight = t.in_flight;
          }
        }
      }
    }
    return views;
  }

  Status StartAdmin() {
    if (!opt_.config.admin.enabled) return OkStatus();
    auto server = AdminServer::Start(io_, opt_.config.admin,
                                     [this](std::string_view path) { return AdminAnswer(path); });
    if (!server.ok()) return server.error();
    admin_ = std::move(server.value());
    return OkStatus();
  }

  AdminPage AdminAnswer(std::string_view path) {
    metrics::StatusSnapshot s;
    Time now = Now();
    s.pid = getpid();
    s.app_root = opt_.config.app_root;
    s.start_time_s = started_unix_s_;
    s.uptime_s = std::chrono::duration<double>(now - started_).count();
    for (const auto& p : opt_.config.processes) s.types.push_back(p.type);
    s.instances = Views(now);
    if (opt_.router && opt_.config.Find(kRoutedType)) {
      s.router_port = opt_.router->port();
      s.router = opt_.router->GetStats();
    }
    s.deaths = deaths_;
    s.lost = lost_;
    s.drills = drills_;
    if (path == "/metrics") {
      return {200, "text/plain; version=0.0.4; charset=utf-8", metrics::PrometheusText(s)};
    }
    if (path == "/status") return {200, "application/json", metrics::StatusJson(s) + "\n"};
    if (path == "/") return {200, "text/html; charset=utf-8", metrics::StatusHtml(s)};
    if (path == "/events") {
      std::string body;
      for (const auto& line : recent_events_) body += line + "\n";
      return {200, "application/x-ndjson", std::move(body)};
    }
    return {404, "text/plain; charset=utf-8", "not found: try /, /status, /metrics or /events\n"};
  }

  asio::io_context io_;
  DaemonOptions opt_;
  Supervisor sup_;
  asio::steady_timer timer_;
  std::optional<Time> armed_;
  asio::signal_set signals_;
  stream_protocol::acceptor acceptor_;
  asio::steady_timer accept_retry_;  // after a failed accept (out of descriptors)
  Terminal term_;
  os::Fd exe_, events_fd_;
  bool events_failing_ = false;  // the last write to --events failed (said once)
  bool accept_failing_ = false;  // the control socket's last accept failed (said once)
  std::map<IncarnationId, std::shared_ptr<Running>> running_;
  std::deque<std::pair<std::string, std::string>> logs_;
  size_t logs_bytes_ = 0;  // of logs_' instance names and texts
  static constexpr size_t kRecentEvents = 1000;
  std::deque<std::string> recent_events_;         // JSON lines, oldest first
  std::vector<std::shared_ptr<Conn>> followers_;  // logs -f, until they hang up
  std::vector<std::shared_ptr<Conn>> stop_waiters_, rotate_waiters_, drill_waiters_;
  router::Stats drill_stats_;
  char hangup_buf_[256];
  Time started_ = Now();
  double started_unix_s_ =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::map<std::pair<std::string, std::string>, uint64_t> deaths_;  // (type, reason)
  std::map<std::string, std::pair<uint64_t, uint64_t>> lost_;       // type -> files, bytes
  uint64_t drills_ = 0;
  std::unique_ptr<AdminServer> admin_;  // after io_: closed before the loop goes
};

}  // namespace

int RunDaemon(DaemonOptions options) {
  signal(SIGPIPE, SIG_IGN);
  Daemon daemon(std::move(options));
  return daemon.Run();
}

}  // namespace phoenix::cli
