#include "audit/interrupt.h"

#include <fmt/format.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "os/spawn.h"

namespace phoenix::audit::interrupt {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

struct State {
  std::mutex mu;
  std::map<pid_t, bool> children;  // pid -> end the processes under it too
  std::string work_dir;
  bool keep = false;
  std::atomic<bool> interrupted{false};
};

State& S() {
  static State* state = new State;  // never destroyed: the signal thread may outlive main
  return *state;
}

// Exited (a zombie nobody reaped yet) or gone.
bool Ended(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

bool WaitEnded(const std::vector<pid_t>& pids, std::chrono::seconds limit) {
  auto deadline = Clock::now() + limit;
  for (;;) {
    bool all = true;
    for (pid_t pid : pids) all = all && Ended(pid);
    if (all) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void SignalAll(const std::vector<pid_t>& pids, int sig) {
  for (pid_t pid : pids) {
    if (!Ended(pid)) ::kill(pid, sig);
  }
}

[[noreturn]] void Stop(int sig) {
  State& s = S();
  std::lock_guard lock(s.mu);  // held until the end: nothing is spawned or reaped meanwhile
  s.interrupted = true;
  std::fprintf(stderr, "\naudit: %s: stopping its runs\n", sigabbrev_np(sig));
  // The processes under a test command are listed before anything is signalled: once their
  // parent is gone they are reparented and can no longer be told apart.
  std::vector<pid_t> direct, all;
  for (const auto& [pid, tree] : s.children) {
    direct.push_back(pid);
    all.push_back(pid);
    if (tree) {
      for (pid_t d : os::Descendants(pid)) all.push_back(d);
    }
  }
  // A child phoenix stops its instances on the first SIGTERM and kills them at once on the
  // second; a test command and its processes get SIGTERM, then SIGKILL.
  SignalAll(all, SIGTERM);
  if (!WaitEnded(all, std::chrono::seconds(5))) {
    SignalAll(direct, SIGTERM);
    if (!WaitEnded(all, std::chrono::seconds(5))) SignalAll(all, SIGKILL);
  }
  WaitEnded(all, std::chrono::seconds(5));
  if (!s.work_dir.empty()) {
    if (s.keep) {
      std::fprintf(stderr, "audit: the runs' logs and layers are kept in %s\n", s.work_dir.c_str());
    } else {
      std::error_code ec;
      std::filesystem::remove_all(s.work_dir, ec);
      if (ec) {
        std::fprintf(stderr, "audit: cannot remove %s: %s\n", s.work_dir.c_str(),
                     ec.message().c_str());
      }
    }
  }
  std::fflush(stderr);
  // Die of the signal itself: a shell running audits in a loop stops on Ctrl-C only when its
  // child was killed by SIGINT (exiting 130 is not the same to it).
  signal(sig, SIG_DFL);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  raise(sig);
  _exit(128 + sig);
}

}  // namespace

void Arm(bool keep) {
  State& s = S();
  {
    std::lock_guard lock(s.mu);
    s.keep = keep;
  }
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kSignals) {
    struct sigaction old {};
    // Ignored by whoever started us (nohup, a background job of a script): left so. A blocked
    // signal would be taken by sigwait even though it is ignored.
    if (sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    sigaddset(&set, sig);
  }
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    Stop(sig);
  }).detach();
}

Result<std::string> MakeWorkDir(std::string path_template) {
  State& s = S();
  std::lock_guard lock(s.mu);
  if (!mkdtemp(path_template.data())) {
    return Error{fmt::format("cannot make a work folder {}: {}", path_template, strerror(errno))};
  }
  s.work_dir = path_template;
  return path_template;
}

Result<pid_t> SpawnTracked(const std::function<Result<pid_t>()>& spawn, bool tree) {
  State& s = S();
  std::lock_guard lock(s.mu);
  if (s.interrupted) return Error{"interrupted"};
  auto pid = spawn();
  if (pid.ok()) s.children[*pid] = tree;
  return pid;
}

pid_t Reap(pid_t pid, int* status, int options) {
  State& s = S();
  std::lock_guard lock(s.mu);
  pid_t r = waitpid(pid, status, options);
  if (r == pid || (r < 0 && errno == ECHILD)) s.children.erase(pid);
  return r;
}

void HoldIfInterrupted() {
  if (!S().interrupted) return;
  std::lock_guard lock(S().mu);  // the signal thread holds it until it ends the process
}

}  // namespace phoenix::audit::interrupt
