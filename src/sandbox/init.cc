#include "sandbox/init.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace phoenix::sandbox {
namespace {

constexpr int kStatusFd = 3;
constexpr int kForwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

void Report(const std::string& line) {
  std::string l = line + "\n";
  (void)!write(kStatusFd, l.data(), l.size());
}

[[noreturn]] void Fail(const std::string& what) {
  Report("error " + what + ": " + std::strerror(errno));
  _exit(126);
}

// Appends the kernel's own explanation of a failed fsconfig(), which is far better than EINVAL.
std::string KernelLog(int fs_fd) {
  std::string out;
  char buf[512];
  for (int i = 0; i < 8; ++i) {
    ssize_t n = read(fs_fd, buf, sizeof buf - 1);
    if (n <= 0) break;
    buf[n] = 0;
    out += std::string(" [") + buf + "]";
  }
  return out;
}

// overlayfs splits lowerdir on ':' and ','; a backslash escapes them.
std::string EscapeLayerPath(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == ':' || c == ',' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

void MakeDirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      std::string part = path.substr(0, i);
      if (mkdir(part.c_str(), 0755) < 0 && errno != EEXIST) Fail("mkdir " + part);
    }
  }
}

int MountOverlay(const InitOptions& o) {
  int fs = fsopen("overlay", FSOPEN_CLOEXEC);
  if (fs < 0) Fail("fsopen overlay (is overlayfs available?)");
  auto set = [&](const char* key, const std::string& value) {
    if (fsconfig(fs, FSCONFIG_SET_STRING, key, value.c_str(), 0) < 0) {
      int saved = errno;
      std::string log = KernelLog(fs);
      errno = saved;
      Fail(std::string("overlay ") + key + "=" + value + log);
    }
  };
  set("lowerdir", EscapeLayerPath(o.root));
  set("upperdir", o.upper);
  set("workdir", o.work);
  if (o.userns && fsconfig(fs, FSCONFIG_SET_FLAG, "userxattr", nullptr, 0) < 0) {
    Fail("overlay userxattr");
  }
  if (fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) {
    int saved = errno;
    std::string log = KernelLog(fs);
    errno = saved;
    Fail("overlay mount of " + o.root + log);
  }
  int mnt = fsmount(fs, FSMOUNT_CLOEXEC, 0);
  if (mnt < 0) Fail("fsmount overlay");
  close(fs);
  return mnt;
}

// Strict mode: the app root (already attached) becomes read-only, except the folders and files
// listed in filesystem.writable, which stay writable through binds of the same overlay (so
// what is written there is still scanned, as scratch, at death).
// Creates the folders of `rel` under `root` (in the incarnation's own layer) that do not exist,
// through real folders only: a symbolic link in the release could point outside the app.
// False when a part of the way is a link or a file.
bool MakeDirsInside(const std::string& root, const std::string& rel) {
  std::string path = root;
  size_t start = 0;
  while (start < rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    std::string part = rel.substr(start, end - start);
    start = end + 1;
    if (part.empty() || part == ".") continue;
    path += "/" + part;
    struct stat st;
    if (lstat(path.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return false;
      continue;
    }
    if (errno != ENOENT || mkdir(path.c_str(), 0755) < 0) return false;
  }
  return true;
}

// mount_setattr is Linux 5.12; before it, a bind remount sets the same flags. That remount must
// repeat the flags the kernel locked on the mount (in a user namespace, every flag it had:
// read-only, noexec, nosuid, nodev, atime), or it fails with EPERM.
void RemountBind(const std::string& path, unsigned long add) {
  unsigned long flags = MS_REMOUNT | MS_BIND | add;
  struct statvfs sv;
  if (statvfs(path.c_str(), &sv) == 0) {
    if (sv.f_flag & ST_RDONLY) flags |= MS_RDONLY;
    if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
    if (sv.f_flag & ST_NOSUID) flags |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
    if (sv.f_flag & ST_NOATIME) flags |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  }
  if (mount(nullptr, path.c_str(), nullptr, flags, nullptr) < 0) Fail("remount " + path);
}

void MakeReadOnlyExceptWritable(const InitOptions& o) {
  std::vector<std::pair<int, std::string>> keep;
  for (const auto& w : o.writable) {
    std::string path = o.root + "/" + w;
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    struct stat st;
    // A writable folder the release lacks ("tmp/" of an app that never shipped one) is made in
    // the layer, so the app can write there as promised; a writable file stays absent.
    if (lstat(path.c_str(), &st) < 0) {
      if (!(w.ends_with('/') && MakeDirsInside(o.root, w))) continue;
    } else if (S_ISLNK(st.st_mode)) {
      continue;  // writes through a link go where it points (tmp -> /tmp: the private /tmp)
    }
    int fd = open_tree(AT_FDCWD, path.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (fd < 0) Fail("bind of writable " + w);
    keep.emplace_back(fd, path);
  }
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (mount_setattr(AT_FDCWD, o.root.c_str(), 0, &attr, sizeof attr) < 0) {
    if (errno != ENOSYS) Fail("read-only " + o.root);
    RemountBind(o.root, MS_RDONLY);
  }
  for (const auto& [fd, path] : keep) {
    if (move_mount(fd, "", AT_FDCWD, path.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0) {
      Fail("attach writable " + path);
    }
    close(fd);
  }
}

// Builds the filesystem the command sees. The app root's new mount is made detached first and
// attached last, so an app root under /tmp still works after the private /tmp hides the host's.
void BuildFilesystem(const InitOptions& o) {
  // Without this, mounts made here would propagate back to the host's namespace.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) Fail("make / private");
  int root_mnt = MountOverlay(o);
  // The host's world-writable scratch places, private (as systemd's PrivateTmp does /tmp and
  // /var/tmp, and PrivateDevices /dev/shm): a session or upload kept there would otherwise be
  // shared by every instance and outlive each. Each is a folder of the incarnation's on the
  // host, whose files the death report lists, as it does the layer's (formidable and multer
  // keep uploads in os.tmpdir()). All are opened before any is attached: the state folder
  // may itself be under /tmp.
  std::vector<std::pair<int, std::string>> scratch;
  bool remount = false;  // mount_setattr is Linux 5.12: on older kernels, a remount after
  for (const PrivateScratch& p : kPrivateScratch) {
    std::string at = p.path;
    struct stat st;
    if (lstat(at.c_str(), &st) < 0) continue;
    if (S_ISLNK(st.st_mode)) {
      // A link (/dev/shm -> /run/shm, /var/tmp -> /data/tmp): its target is made private, as
      // the place the app's writes reach; one that leads into another of these places (/var/tmp
      // -> /tmp) is private with it already.
      char resolved[PATH_MAX];
      if (!realpath(at.c_str(), resolved)) continue;
      at = resolved;
      bool inside_another = false;
      for (const PrivateScratch& q : kPrivateScratch) {
        std::string_view other = q.path;
        inside_another =
            inside_another || at == other ||
            (at.starts_with(other) && at.size() > other.size() && at[other.size()] == '/');
      }
      if (inside_another || stat(at.c_str(), &st) < 0) continue;
    }
    if (!S_ISDIR(st.st_mode)) continue;
    if (o.private_dirs == "-") {
      scratch.emplace_back(-1, at);
      continue;
    }
    std::string from = o.private_dirs + "/" + p.folder;
    int fd = open_tree(AT_FDCWD, from.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (fd < 0) Fail("bind of " + from);
    struct mount_attr attr {};
    attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    if (mount_setattr(fd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) {
      if (errno != ENOSYS) Fail("nosuid " + from);
      remount = true;
    }
    scratch.emplace_back(fd, at);
  }
  for (const auto& [fd, path] : scratch) {
    if (fd < 0) {
      if (mount("tmpfs", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0) {
        Fail("tmpfs " + path);
      }
    } else {
      if (move_mount(fd, "", AT_FDCWD, path.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0) {
        Fail("attach private " + path);
      }
      close(fd);
      if (remount) RemountBind(path, MS_NOSUID | MS_NODEV);
    }
  }
  // Our own /proc, so the app sees its own process tree (and we do not leak the host's pids).
  (void)mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  MakeDirs(o.root);
  if (move_mount(root_mnt, "", AT_FDCWD, o.root.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0) {
    Fail("attach " + o.root);
  }
  close(root_mnt);
  if (o.mode == "strict") MakeReadOnlyExceptWritable(o);
}

void Noop(int) {}

// `sh -c "node server.js"` leaves sh between us and node, and sh dies of SIGTERM at once, while
// node would still be finishing its requests. A single simple command is run as
// `exec COMMAND` instead, so the app itself is our child and gets the signals, as with Heroku's
// and Foreman's usual Procfiles. Anything with shell syntax beyond words and redirections, or
// starting with VAR=value, is left to sh as written.
std::string ShellLine(const std::string& command) {
  if (command.find_first_of(";&|()`\n{}") != std::string::npos) return command;
  size_t start = command.find_first_not_of(" \t");
  if (start == std::string::npos) return command;
  size_t end = command.find_first_of(" \t", start);
  std::string first = command.substr(start, end == std::string::npos ? end : end - start);
  static const char* kKeywords[] = {"if", "for", "while",  "until", "case", "exec", "!",
                                    "[[", "cd",  "export", "set",   "time", "eval", "."};
  if (first.find('=') != std::string::npos) return command;
  for (const char* k : kKeywords) {
    if (first == k) return command;
  }
  return "exec " + command;
}

}  // namespace

std::vector<std::string> InitArgv(const InitOptions& o) {
  std::vector<std::string> argv = {
      "phoenix-init", "__sandbox-init",          o.mode,    o.root,        o.upper,
      o.work,         o.userns ? "userns" : "-", o.command, o.private_dirs};
  argv.insert(argv.end(), o.writable.begin(), o.writable.end());
  return argv;
}

void RunInit(int argc, char** argv) {
  if (argc < 9) {
    std::fprintf(stderr, "__sandbox-init is internal to phoenix\n");
    _exit(2);
  }
  InitOptions o;
  o.mode = argv[2];
  o.root = argv[3];
  o.upper = argv[4];
  o.work = argv[5];
  o.userns = std::string(argv[6]) == "userns";
  o.command = argv[7];
  o.private_dirs = argv[8];
  for (int i = 9; i < argc; ++i) o.writable.push_back(argv[i]);
  close_range(kStatusFd + 1, ~0U, 0);  // nothing of phoenix's leaks into the app
  // Out of phoenix's session: a Ctrl-C at phoenix's terminal is for phoenix, which then stops
  // every instance in order, not for each app at once.
  setsid();

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  for (int s : kForwarded) {
    sigaddset(&set, s);
    signal(s, Noop);  // a handler, so PID 1 never drops them
  }
  sigprocmask(SIG_BLOCK, &set, nullptr);
  prctl(PR_SET_CHILD_SUBREAPER, 1);

  if (o.mode != "none") BuildFilesystem(o);
  if (chdir(o.root.c_str()) < 0) Fail("chdir " + o.root);

  pid_t child = fork();
  if (child < 0) Fail("fork");
  if (child == 0) {
    setpgid(0, 0);
    // Without namespaces (mode "none") nothing else would stop the app when its init dies.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (int s : kForwarded) signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    close(kStatusFd);
    std::string line = ShellLine(o.command);
    execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(child, child);
  Report("started " + std::to_string(child));

  // After a forwarded SIGTERM/SIGINT, every process gets to finish (phoenix's stop_timeout
  // SIGKILL bounds the wait); otherwise the command's own exit ends the incarnation at once.
  bool stopping = false;
  int main_status = -1;
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&set, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) stopping = true;
      // To every process of the incarnation, as systemd's KillMode=control-group: as PID 1 of
      // its own namespace, kill(-1) reaches them all, even those that left the group. Without
      // namespaces, to the group, as tini -g: `sh -c "npm start"` must reach node too.
      if (o.mode != "none") {
        kill(-1, sig);
      } else if (kill(-child, sig) < 0) {
        kill(child, sig);
      }
      continue;
    }
    int status;
    pid_t pid;
    bool none_left = false;
    for (;;) {
      pid = waitpid(-1, &status, WNOHANG);
      if (pid < 0 && errno == ECHILD) none_left = true;
      if (pid <= 0) break;
      if (pid == child) main_status = status;  // others: adopted orphans, just reaped
    }
    if (main_status < 0 || (stopping && !none_left && o.mode != "none")) continue;
    if (o.mode == "none") kill(-child, SIGKILL);  // no namespace to take the rest down
    if (WIFEXITED(main_status)) {
      Report("exit " + std::to_string(WEXITSTATUS(main_status)));
      _exit(WEXITSTATUS(main_status));
    }
    Report("signal " + std::to_string(WTERMSIG(main_status)));
    _exit(128 + WTERMSIG(main_status));
  }
}

}  // namespace phoenix::sandbox
