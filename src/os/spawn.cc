#include "os/spawn.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace phoenix::os {
namespace {

std::string Errno(const char* what) { return fmt::format("{}: {}", what, std::strerror(errno)); }

// Everything the cloned child touches is prepared before clone(): it must not allocate.
struct ChildArgs {
  int exe_fd;
  char* const* argv;
  char* const* envp;
  int stdin_fd;
  int output_fd;
  int status_fd;
  int sync_fd;        // user namespaces: the child waits for its uid/gid maps; -1 otherwise
  int sync_write_fd;  // the child's copy of the other end, closed so that EOF can come
};

int ChildMain(void* raw) {
  auto* a = static_cast<ChildArgs*>(raw);
  // If phoenix dies, however it dies, the sandbox init dies, and with PID 1 of the namespace
  // gone the kernel kills everything inside it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // phoenix's signal handlers (Asio's) must never run here: they would write into the
  // parent's own signal pipe. Signals are blocked across clone(), so reset them first.
  for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
  if (a->sync_fd >= 0) {
    close(a->sync_write_fd);
    char c;
    while (read(a->sync_fd, &c, 1) < 0 && errno == EINTR) {
    }
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (dup2(a->stdin_fd, 0) < 0 || dup2(a->output_fd, 1) < 0 || dup2(a->output_fd, 2) < 0 ||
      dup2(a->status_fd, 3) < 0) {
    _exit(127);
  }
  syscall(SYS_execveat, a->exe_fd, "", a->argv, a->envp, AT_EMPTY_PATH);
  _exit(127);
}

std::vector<char*> CStrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

Status WriteFile(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Error{Errno(path.c_str())};
  Fd owned(fd);
  if (write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return Error{Errno(path.c_str())};
  }
  return OkStatus();
}

}  // namespace

Result<SpawnedChild> Spawn(const SpawnRequest& request) {
  int out[2], st[2], sync[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) < 0) return Error{Errno("pipe")};
  Fd out_r(out[0]), out_w(out[1]);
  if (pipe2(st, O_CLOEXEC) < 0) return Error{Errno("pipe")};
  Fd st_r(st[0]), st_w(st[1]);
  Fd sync_r, sync_w;
  if (request.isolation == Isolation::kUserNamespace) {
    if (pipe2(sync, O_CLOEXEC) < 0) return Error{Errno("pipe")};
    sync_r.Reset(sync[0]);
    sync_w.Reset(sync[1]);
  }
  Fd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull.valid()) return Error{Errno("/dev/null")};

  auto argv = CStrings(request.argv);
  auto envp = CStrings(request.env);
  ChildArgs args{request.exe_fd, argv.data(), envp.data(),  devnull.get(),
                 out_w.get(),    st_w.get(),  sync_r.get(), sync_w.get()};

  int flags = SIGCHLD | CLONE_PIDFD;
  if (request.isolation != Isolation::kNone) flags |= CLONE_NEWNS | CLONE_NEWPID;
  if (request.isolation == Isolation::kUserNamespace) flags |= CLONE_NEWUSER;

  constexpr size_t kStack = 256 * 1024;
  void* stack =
      mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return Error{Errno("mmap")};
  int pidfd = -1;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = clone(ChildMain, static_cast<char*>(stack) + kStack, flags, &args, &pidfd);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  munmap(stack, kStack);
  if (pid < 0) {
    errno = clone_errno;
    return Error{Errno("clone")};
  }
  SpawnedChild child;
  child.pid = pid;
  child.pidfd.Reset(pidfd);
  if (request.isolation == Isolation::kUserNamespace) {
    // Map the caller to root inside: enough to mount overlay (userxattr), tmpfs and proc.
    std::string base = fmt::format("/proc/{}/", pid);
    Status s = WriteFile(base + "setgroups", "deny");
    if (s.ok()) s = WriteFile(base + "uid_map", fmt::format("0 {} 1\n", getuid()));
    if (s.ok()) s = WriteFile(base + "gid_map", fmt::format("0 {} 1\n", getgid()));
    sync_w.Reset();  // releases the child
    if (!s.ok()) {
      SendSignal(pidfd, SIGKILL);
      (void)Reap(child.pidfd);
      return Error{"user namespace: " + s.error().message};
    }
  }
  child.output = std::move(out_r);
  child.status = std::move(st_r);
  return child;
}

Result<int> Reap(const Fd& pidfd) {
  siginfo_t info{};
  while (waitid(P_PIDFD, pidfd.get(), &info, WEXITED) < 0) {
    if (errno != EINTR) return Error{Errno("waitid")};
  }
  if (info.si_code == CLD_EXITED) return W_EXITCODE(info.si_status, 0);
  return W_EXITCODE(0, info.si_status);  // killed or dumped: the signal number
}

bool SendSignal(int pidfd, int sig) {
  // Through the syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C" for C++.
  return pidfd >= 0 && syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) == 0;
}

Isolation ProbeIsolation(std::string* why) {
  if (geteuid() == 0) return Isolation::kNamespaces;
  pid_t pid = fork();
  if (pid == 0) {
    _exit(unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID) == 0 ? 0 : 1);
  }
  int status = 0;
  if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    return Isolation::kUserNamespace;
  }
  if (why) {
    *why =
        "not root, and this kernel refuses user namespaces to ordinary users "
        "(see /proc/sys/kernel/unprivileged_userns_clone and "
        "/proc/sys/user/max_user_namespaces)";
  }
  return Isolation::kNone;
}

Result<Fd> OpenSelfExe() {
  int fd = open("/proc/self/exe", O_PATH | O_CLOEXEC);
  if (fd < 0) return Error{Errno("/proc/self/exe")};
  return Fd(fd);
}

std::vector<pid_t> Descendants(pid_t root) {
  std::multimap<pid_t, pid_t> children;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      char* end = nullptr;
      long pid = std::strtol(e->d_name, &end, 10);
      if (end == e->d_name || *end != '\0' || pid <= 0) continue;
      std::ifstream in(fmt::format("/proc/{}/stat", pid));
      std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      size_t paren = stat.rfind(')');  // the command may hold spaces and parentheses
      if (paren == std::string::npos) continue;
      std::istringstream rest(stat.substr(paren + 1));
      std::string state;
      pid_t ppid = 0;
      if (rest >> state >> ppid) children.emplace(ppid, static_cast<pid_t>(pid));
    }
    closedir(d);
  }
  std::vector<pid_t> out;
  std::vector<pid_t> todo = {root};
  while (!todo.empty() && out.size() < 100000) {
    pid_t p = todo.back();
    todo.pop_back();
    auto [from, to] = children.equal_range(p);
    for (auto it = from; it != to; ++it) {
      out.push_back(it->second);
      todo.push_back(it->second);
    }
  }
  return out;
}

}  // namespace phoenix::os
