// `phoenix up`: every check that can refuse happens here, before anything is started, so a bad
// config, a busy port or a second phoenix leaves nothing behind.
#include <errno.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "cli/commands.h"
#include "cli/daemon.h"
#include "control/paths.h"
#include "os/fs.h"
#include "os/line_sink.h"
#include "os/spawn.h"

namespace phoenix::cli {
namespace {

// Access-log lines from the router's threads, "router  | ..." like an instance's output; each
// batch is queued whole, so lines are never torn.
void WriteAccessLog(std::string_view lines) {
  static const bool tty = isatty(STDOUT_FILENO);
  std::string out;
  out.reserve(lines.size() + lines.size() / 8);
  size_t start = 0;
  while (start < lines.size()) {
    size_t nl = lines.find('\n', start);
    if (nl == std::string_view::npos) nl = lines.size();
    out += tty ? "\x1b[90mrouter  |\x1b[0m " : "router  | ";
    out.append(lines.substr(start, nl - start));
    out += '\n';
    start = nl + 1;
  }
  os::Stdout().Write(out);  // queued: a stdout nobody reads must not stop the router
}

int Refuse(const std::string& message) {
  std::fprintf(stderr, "phoenix: %s\n", message.c_str());
  return kExitUsage;
}

}  // namespace

int Up(const UpOptions& options) {
  if (options.audit) {
    // A run of `phoenix audit` stops (and stops its instances) when the audit dies, even of
    // SIGKILL; and refuses to start if it is already gone (the race prctl leaves).
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (const char* parent = std::getenv("PHOENIX_AUDIT_PID");
        parent && std::atoi(parent) != getppid()) {
      return Refuse("the audit that started this run is gone");
    }
  }
  const char* env_port = std::getenv("PORT");
  auto config =
      LoadConfig(options.load, env_port ? std::optional<std::string>(env_port) : std::nullopt);
  if (!config.ok()) return Refuse(config.error().message);

  if (!config->release_command.empty()) {
    std::fprintf(stderr, "phoenix: %s\n", ReleaseNote(*config).c_str());
  }
  DaemonOptions d;
  d.events_file = options.events_file;
  if (config->filesystem.mode == FilesystemMode::kNone) {
    d.isolation = os::Isolation::kNone;
    std::fprintf(stderr,
                 "phoenix: warning: filesystem.mode = \"none\": instances are plain processes; "
                 "nothing is isolated and lost state is not reported\n");
  } else {
    std::string why;
    d.isolation = os::ProbeIsolation(&why);
    if (d.isolation == os::Isolation::kNone) {
      return Refuse(
          fmt::format("cannot isolate instances: {}. Run as root, allow user namespaces, or set "
                      "[filesystem] mode = \"none\" in phoenix.toml to run without isolation",
                      why));
    }
  }

  d.state_dir = control::AppStateDir(config->app_root);
  // Checked before the state folder is made: a socket path the kernel cannot bind would
  // otherwise stop phoenix only after the lock is taken and the router listens.
  if (std::string socket = control::SocketPath(d.state_dir);
      socket.size() >= sizeof(sockaddr_un::sun_path)) {
    return Refuse(fmt::format(
        "{}: path too long for a unix socket ({} bytes, at most {}); set PHOENIX_STATE_DIR to a "
        "shorter folder",
        socket, socket.size(), sizeof(sockaddr_un::sun_path) - 1));
  }
  if (Status s = os::MakeDirs(control::LayersDir(d.state_dir), 0700); !s.ok()) {
    return Refuse("state folder: " + s.error().message);
  }
  if (config->filesystem.mode == FilesystemMode::kEphemeral && os::IsOnOverlayfs(d.state_dir)) {
    return Refuse(fmt::format(
        "{} is on overlayfs, which cannot hold an overlay's upper layer; set PHOENIX_STATE_DIR "
        "to a folder on another filesystem",
        d.state_dir));
  }

  std::string lock_path = control::LockPath(d.state_dir);
  d.lock.Reset(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!d.lock.valid()) return Refuse(fmt::format("{}: {}", lock_path, strerror(errno)));
  if (flock(d.lock.get(), LOCK_EX | LOCK_NB) < 0) {
    char buf[32] = {};
    (void)!pread(d.lock.get(), buf, sizeof buf - 1, 0);
    return Refuse(fmt::format(
        "phoenix is already running for {} (pid {}); use `phoenix stop` in that folder first",
        config->app_root, atoi(buf)));
  }
  std::string pid = std::to_string(getpid()) + "\n";
  (void)!ftruncate(d.lock.get(), 0);
  (void)!pwrite(d.lock.get(), pid.data(), pid.size(), 0);

  if (options.audit) {
    // One loop: the audit's requests are served in the order they are sent.
    config->router.audit = true;
    config->router.threads = 1;
    config->admin.enabled = false;  // a run of seconds nobody scrapes; and never a port clash
  }
  d.keep_layers = options.keep_layers;
  auto router = router::Router::Start(config->router, WriteAccessLog);
  if (!router.ok()) return Refuse(router.error().message);
  d.router = std::move(router.value());

  d.config = std::move(config.value());
  return RunDaemon(std::move(d));
}

}  // namespace phoenix::cli
