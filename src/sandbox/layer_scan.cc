#include "sandbox/layer_scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace phoenix::sandbox {
namespace {

// The entries of `d` but "." and "..", sorted: stable, readable reports.
std::vector<std::string> SortedNames(DIR* d) {
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) names.push_back(e->d_name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

bool IsOpaque(const std::string& dir) {
  char v[4];
  for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"}) {
    ssize_t n = lgetxattr(dir.c_str(), name, v, sizeof v);
    if (n > 0 && (v[0] == 'y' || v[0] == 'x')) return true;
  }
  return false;
}

bool ExistsBelow(const std::string& lower, const std::string& rel) {
  struct stat st;
  return lstat((lower + "/" + rel).c_str(), &st) == 0;
}

class Scanner {
 public:
  Scanner(std::string upper, std::string lower, const std::vector<std::string>& writable)
      : upper_(std::move(upper)), lower_(std::move(lower)), writable_(writable) {}

  Status Walk(const std::string& rel, bool below_exists) {
    std::string dir = rel.empty() ? upper_ : upper_ + "/" + rel;
    DIR* d = opendir(dir.c_str());
    if (!d) return Error{fmt::format("{}: {}", dir, std::strerror(errno))};
    const std::vector<std::string> names = SortedNames(d);
    closedir(d);
    for (const auto& name : names) {
      std::string child = rel.empty() ? name : rel + "/" + name;
      struct stat st;
      if (lstat((upper_ + "/" + child).c_str(), &st) < 0) continue;  // raced away
      bool exists_below = below_exists && ExistsBelow(lower_, child);
      if (S_ISDIR(st.st_mode)) {
        bool opaque = IsOpaque(upper_ + "/" + child);
        // An empty new folder (multer's uploads/ at boot) holds no data: not reported.
        RETURN_IF_ERROR(Walk(child, exists_below && !opaque));
      } else if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
        Add(child, 0, Change::kDeleted, 0);
      } else if ((S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode)) && !exists_below) {
        // A Unix socket an app listened on, or a FIFO: a rendezvous point, no data in it.
        continue;
      } else {
        Add(child, static_cast<uint64_t>(st.st_size),
            exists_below ? Change::kModified : Change::kCreated, MtimeNs(st));
      }
    }
    return OkStatus();
  }

  LostState Take() { return std::move(state_); }

 private:
  void Add(const std::string& path, uint64_t bytes, Change change, int64_t mtime_ns) {
    if (IsScratch(path, writable_)) {
      state_.scratch.push_back({path, bytes, change, mtime_ns});
      state_.scratch_bytes += bytes;
    } else {
      state_.files.push_back({path, bytes, change, mtime_ns});
      state_.bytes += bytes;
    }
  }

  std::string upper_, lower_;
  const std::vector<std::string>& writable_;
  LostState state_;
};

}  // namespace

const char* ToString(Change change) {
  switch (change) {
    case Change::kCreated:
      return "created";
    case Change::kModified:
      return "modified";
    case Change::kDeleted:
      return "deleted";
  }
  return "?";
}

namespace {
// The '/'-separated parts of `text` (empty parts dropped: "a//b" is "a/b").
std::vector<std::string_view> Parts(std::string_view text) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = std::min(text.find('/', start), text.size());
    if (end > start) parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

// Whether pattern parts p[pi..] match path parts s[si..] or a folder they are under: "**"
// matches any number of parts, others one part each by fnmatch (where '*' and '?' do not cross
// a '/', and a leading dot needs no dot, as git's wildmatch). `memo` holds each (pi, si) once
// decided (0 unknown, 1 no, 2 yes), so that patterns with several "**" stay polynomial in the
// path's depth.
bool MatchParts(const std::vector<std::string>& p, size_t pi,
                const std::vector<std::string_view>& s, size_t si, std::vector<char>& memo) {
  if (pi == p.size()) return true;  // the pattern named this folder: all under it matches
  char& known = memo[pi * (s.size() + 1) + si];
  if (known) return known == 2;
  bool match = false;
  if (p[pi] == "**") {
    for (size_t k = si; k <= s.size() && !match; ++k) match = MatchParts(p, pi + 1, s, k, memo);
  } else if (si < s.size()) {
    match = fnmatch(p[pi].c_str(), std::string(s[si]).c_str(), 0) == 0 &&
            MatchParts(p, pi + 1, s, si + 1, memo);
  }
  known = match ? 2 : 1;
  return match;
}

// A writable entry with shell wildcards, as .gitignore reads them: without a '/' (but a last
// one), it matches a name at any depth ("*.log": app.log, logs/x.log, and all under a folder
// "cache-*"); with one, the path from the root ("uploads/*/thumbs"), where "**" stands for any
// number of folders ("logs/**/*.gz").
bool GlobMatches(std::string_view pattern, std::string_view path) {
  std::vector<std::string> p;
  while (pattern.ends_with('/')) pattern.remove_suffix(1);
  const bool anchored = pattern.find('/') != std::string_view::npos;
  if (!anchored) p.emplace_back("**");
  for (std::string_view part : Parts(pattern)) {
    if (part == "**" && !p.empty() && p.back() == "**") continue;  // "**/**" is "**"
    p.emplace_back(part);
  }
  const std::vector<std::string_view> s = Parts(path);
  std::vector<char> memo(p.size() * (s.size() + 1), 0);
  return MatchParts(p, 0, s, 0, memo);
}
bool HasWildcard(std::string_view w) { return w.find_first_of("*?[") != std::string_view::npos; }
}  // namespace

bool IsScratch(const std::string& path, const std::vector<std::string>& writable) {
  for (std::string w : writable) {
    while (!w.empty() && w.back() == '/') w.pop_back();
    if (w.empty()) continue;
    // Literally first: a name that holds '[' or '*' ("data[1]/") is still the folder it names.
    if (path.compare(0, w.size(), w) == 0 && (path.size() == w.size() || path[w.size()] == '/')) {
      return true;
    }
    if (HasWildcard(w) && GlobMatches(w, path)) return true;
  }
  return false;
}

Result<LostState> ScanLayer(const std::string& upper, const std::string& lower,
                            const std::vector<std::string>& writable) {
  Scanner scanner(upper, lower, writable);
  RETURN_IF_ERROR(scanner.Walk("", true));
  return scanner.Take();
}

namespace {
// The walk of a private /tmp goes by descriptor, never by path, and never through a symlink:
// the `scan` command reads it while the app runs, and the app may swap a folder for a link to
// anywhere between two calls. What vanishes or cannot be read meanwhile is skipped, not an
// error for the whole report.
void ScanScratchAt(int dir_fd, const std::string& shown_as, LostState& into, int depth) {
  DIR* d = fdopendir(dir_fd);
  if (!d) {
    close(dir_fd);
    return;
  }
  const std::vector<std::string> names = SortedNames(d);
  const int fd = dirfd(d);
  for (const auto& name : names) {
    struct stat st;
    if (fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (depth >= 256) continue;  // deeper than any real use: no unbounded recursion
      int child = openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (child >= 0) ScanScratchAt(child, shown_as + "/" + name, into, depth + 1);
    } else if (!S_ISSOCK(st.st_mode) && !S_ISFIFO(st.st_mode)) {
      into.files.push_back({shown_as + "/" + name, static_cast<uint64_t>(st.st_size),
                            Change::kCreated, MtimeNs(st)});
      into.bytes += static_cast<uint64_t>(st.st_size);
    }
  }
  closedir(d);
}
}  // namespace

Status ScanPrivateScratch(const std::string& dir, const std::string& shown_as, LostState& into) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Error{fmt::format("{}: {}", dir, std::strerror(errno))};
  ScanScratchAt(fd, shown_as, into, 0);
  return OkStatus();
}

}  // namespace phoenix::sandbox
