#include "sandbox/layer_scan.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace phoenix::sandbox {
namespace {

namespace fs = std::filesystem;

// A fresh lower/ (the app root) and upper/ (an incarnation's writable layer), removed at the end.
class LayerScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "phx_layer_scan_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    root_ = tmpl;
    lower_ = root_ + "/lower";
    upper_ = root_ + "/upper";
    fs::create_directory(lower_);
    fs::create_directory(upper_);
  }
  void TearDown() override {
    if (!root_.empty()) {
      std::error_code ec;
      fs::remove_all(root_, ec);
    }
  }

  static void Write(const std::string& path, const std::string& content) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << content;
  }
  void Lower(const std::string& rel, const std::string& content = "old") {
    Write(lower_ + "/" + rel, content);
  }
  void Upper(const std::string& rel, const std::string& content) {
    Write(upper_ + "/" + rel, content);
  }
  void LowerDir(const std::string& rel) { fs::create_directories(lower_ + "/" + rel); }
  void UpperDir(const std::string& rel) { fs::create_directories(upper_ + "/" + rel); }

  // A whiteout as overlayfs writes it: a 0:0 character device. False when not permitted.
  bool Whiteout(const std::string& rel) {
    fs::create_directories(fs::path(upper_ + "/" + rel).parent_path());
    if (mknod((upper_ + "/" + rel).c_str(), S_IFCHR | 0000, makedev(0, 0)) == 0) return true;
    EXPECT_TRUE(errno == EPERM || errno == EACCES) << std::strerror(errno);
    return false;
  }
  // Marks an upper directory opaque; false when the file system or our privileges refuse.
  bool Opaque(const std::string& rel, const char* name = "trusted.overlay.opaque") {
    return setxattr((upper_ + "/" + rel).c_str(), name, "y", 1, 0) == 0;
  }

  LostState Scan(const std::vector<std::string>& writable = {}) {
    Result<LostState> r = ScanLayer(upper_, lower_, writable);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? std::move(r).value() : LostState{};
  }

  static std::vector<std::string> Paths(const std::vector<LostFile>& files) {
    std::vector<std::string> out;
    for (const LostFile& f : files) out.push_back(f.path);
    return out;
  }
  static std::optional<LostFile> Get(const std::vector<LostFile>& files, const std::string& path) {
    for (const LostFile& f : files) {
      if (f.path == path) return f;
    }
    return std::nullopt;
  }

  std::string root_, lower_, upper_;
};

using PathList = std::vector<std::string>;

TEST(ChangeTest, ToString) {
  EXPECT_STREQ(ToString(Change::kCreated), "created");
  EXPECT_STREQ(ToString(Change::kModified), "modified");
  EXPECT_STREQ(ToString(Change::kDeleted), "deleted");
}

// The private /tmp: every file left in it is lost, shown under the path the app used; sockets
// and FIFOs are not; an empty folder holds nothing.
TEST_F(LayerScanTest, PrivateScratchFilesAreLostUnderTheirAbsolutePath) {
  UpperDir("tmp/empty");
  Upper("tmp/upload_3f2a", "12345");
  Upper("tmp/sess/abc.json", "{}");
  ASSERT_EQ(mkfifo((upper_ + "/tmp/fifo").c_str(), 0600), 0) << std::strerror(errno);
  LostState lost;
  lost.bytes = 1;  // added to, not replaced
  ASSERT_TRUE(ScanPrivateScratch(upper_ + "/tmp", "/tmp", lost).ok());
  ASSERT_EQ(lost.files.size(), 2u);
  EXPECT_EQ(lost.files[0].path, "/tmp/sess/abc.json");
  EXPECT_EQ(lost.files[1].path, "/tmp/upload_3f2a");
  EXPECT_EQ(lost.files[1].bytes, 5u);
  EXPECT_EQ(lost.files[1].change, Change::kCreated);
  EXPECT_EQ(lost.bytes, 8u);
  EXPECT_TRUE(lost.scratch.empty());
  EXPECT_FALSE(ScanPrivateScratch(upper_ + "/nope", "/tmp", lost).ok());

  // A link to a folder elsewhere is the app's link, not a way into that folder.
  Lower("secret/key", "k");
  fs::create_directory_symlink(lower_ + "/secret", upper_ + "/tmp/escape");
  LostState linked;
  ASSERT_TRUE(ScanPrivateScratch(upper_ + "/tmp", "/tmp", linked).ok());
  for (const auto& f : linked.files) EXPECT_EQ(f.path.find("key"), std::string::npos) << f.path;
  EXPECT_EQ(linked.files.size(), 3u);  // escape (the link itself), sess/abc.json, upload_3f2a
}

TEST_F(LayerScanTest, EmptyLayerLosesNothing) {
  Lower("server.js");
  LostState s = Scan({"tmp/"});
  EXPECT_TRUE(s.files.empty());
  EXPECT_TRUE(s.scratch.empty());
  EXPECT_EQ(s.bytes, 0u);
  EXPECT_EQ(s.scratch_bytes, 0u);
}

TEST_F(LayerScanTest, NewFileIsCreatedWithItsSize) {
  Upper("sessions.json", std::string(1234, 'x'));
  LostState s = Scan();
  ASSERT_EQ(s.files.size(), 1u);
  EXPECT_EQ(s.files[0].path, "sessions.json");
  EXPECT_EQ(s.files[0].bytes, 1234u);
  EXPECT_EQ(s.files[0].change, Change::kCreated);
  EXPECT_EQ(s.bytes, 1234u);
  EXPECT_TRUE(s.scratch.empty());
}

TEST_F(LayerScanTest, EmptyNewFileIsStillReported) {
  Upper("touched", "");
  LostState s = Scan();
  ASSERT_EQ(s.files.size(), 1u);
  EXPECT_EQ(s.files[0].path, "touched");
  EXPECT_EQ(s.files[0].bytes, 0u);
  EXPECT_EQ(s.files[0].change, Change::kCreated);
}

TEST_F(LayerScanTest, SocketsAndFifosHoldNoStateAndAreNotReported) {
  UpperDir("run");
  ASSERT_EQ(mkfifo((upper_ + "/run/queue").c_str(), 0600), 0) << std::strerror(errno);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = upper_ + "/run/app.sock";
  ASSERT_LT(path.size(), sizeof addr.sun_path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  close(fd);
  Upper("run/app.pid", "42");
  LostState s = Scan();
  EXPECT_EQ(Paths(s.files), PathList{"run/app.pid"});
}

TEST_F(LayerScanTest, FileThatExistsBelowIsModified) {
  Lower("db.sqlite", "original");
  Upper("db.sqlite", std::string(4096, 'd'));
  LostState s = Scan();
  ASSERT_EQ(s.files.size(), 1u);
  EXPECT_EQ(s.files[0].path, "db.sqlite");
  EXPECT_EQ(s.files[0].change, Change::kModified);
  EXPECT_EQ(s.files[0].bytes, 4096u) << "the size of the new content";
  EXPECT_EQ(s.bytes, 4096u);
}

TEST_F(LayerScanTest, NewDirectoryWithFilesReportsTheFilesOnly) {
  Upper("uploads/a.jpg", std::string(100, 'a'));
  Upper("uploads/b.jpg", std::string(50, 'b'));
  LostState s = Scan();
  EXPECT_EQ(Paths(s.files), (PathList{"uploads/a.jpg", "uploads/b.jpg"}));
  for (const LostFile& f : s.files) EXPECT_EQ(f.change, Change::kCreated);
  EXPECT_EQ(s.bytes, 150u);
}

TEST_F(LayerScanTest, CopiedUpParentsAreNotReported) {
  // The app root has data/ and public/img/; an incarnation wrote one file deep inside and
  // overlayfs copied the parents up.
  Lower("data/seed.json");
  Lower("public/img/logo.png");
  Lower("public/index.html");
  UpperDir("data");                       // a copy-up parent left with nothing new in it
  Upper("public/img/avatar-7.png", "p");  // new file under copied-up parents
  LostState s = Scan();
  EXPECT_EQ(Paths(s.files), (PathList{"public/img/avatar-7.png"}));
  EXPECT_EQ(s.files[0].change, Change::kCreated);
}

TEST_F(LayerScanTest, NestedModifiedAndCreated) {
  Lower("a/b/c/keep.txt");
  Lower("a/b/changed.txt");
  Upper("a/b/changed.txt", "12345");
  Upper("a/b/c/new.txt", "1");
  Upper("a/b/c/d/e/deep.txt", "22");
  LostState s = Scan();
  EXPECT_EQ(Paths(s.files), (PathList{"a/b/c/d/e/deep.txt", "a/b/c/new.txt", "a/b/changed.txt"}));
  EXPECT_EQ(Get(s.files, "a/b/changed.txt")->change, Change::kModified);
  EXPECT_EQ(Get(s.files, "a/b/c/new.txt")->change, Change::kCreated);
  EXPECT_EQ(Get(s.files, "a/b/c/d/e/deep.txt")->change, Change::kCreated);
  EXPECT_EQ(s.bytes, 8u);
}

// layer_scan.h: directories are not reported themselves, only the files in them. An empty
// new folder (multer creates uploads/ at boot) holds no data.
TEST_F(LayerScanTest, NewEmptyDirectoryIsNotReported) {
  UpperDir("uploads");
  LostState s = Scan();
  EXPECT_TRUE(s.files.empty());
  EXPECT_TRUE(s.scratch.empty());
  EXPECT_EQ(s.bytes, 0u);
}

TEST_F(LayerScanTest, NestedEmptyDirectoriesAreNotReportedButTheirFilesAre) {
  UpperDir("x/y/z");
  LowerDir("data");
  UpperDir("data/empty");  // data/ is a copy-up parent, data/empty/ is new
  Upper("data/new/file", "abc");
  LostState s = Scan();
  EXPECT_EQ(Paths(s.files), (PathList{"data/new/file"}));
  for (const LostFile& f : s.files) EXPECT_NE(f.path.back(), '/') << f.path;
}

TEST_F(LayerScanTest, WhiteoutIsADeletedFile) {
  Lower("sessions/abc.json");
  Lower("README.md");
  if (!Whiteout("README.md")) GTEST_SKIP() << "mknod needs CAP_MKNOD";
  ASSERT_TRUE(Whiteout("sessions/abc.json"));
  LostState s = Scan();
  EXPECT_EQ(Paths(s.files), (PathList{"README.md", "sessions/abc.json"}));
  for (const LostFile& f : s.files) {
    EXPECT_EQ(f.change, Change::kDeleted) << f.path;
    EXPECT_EQ(f.bytes, 0u) << f.path;
  }
  EXPECT_EQ(s.bytes, 0u);
}

TEST_F(LayerScanTest, OtherCharacterDevicesAreNotWhiteouts) {
  if (mknod((upper_ + "/null").c_str(), S_IFCHR | 0600, makedev(1, 3)) != 0) {
    GTEST_SKIP() << "mknod: " << std::strerror(errno);
  }
  LostState s = Scan();
  ASSERT_EQ(s.files.size(), 1u);
  EXPECT_EQ(s.files[0].path, "null");
  EXPECT_EQ(s.files[0].change, Change::kCreated);
}

TEST_F(LayerScanTest, OpaqueDirectoryContentsAreCreated) {
  // `rm -rf cache && mkdir cache && echo > cache/a`: overlayfs marks the new cache/ opaque.
  Lower("cache/a", "old a");
  Lower("cache/b", "old b");
  Lower("cache/sub/c", "old c");
  Upper("cache/a", "new a!");
  Upper("cache/sub/c", "new c");
  if (!Opaque("cache")) GTEST_SKIP() << "setxattr trusted.*: " << std::strerror(errno);
  LostState s = Scan();
  EXPECT_EQ(Paths(s.files), (PathList{"cache/a", "cache/sub/c"}));
  for (const LostFile& f : s.files) EXPECT_EQ(f.change, Change::kCreated) << f.path;
  EXPECT_EQ(s.bytes, 11u);
}

TEST_F(LayerScanTest, EmptyOpaqueDirectoryIsNotReported) {
  Lower("cache/a");
  UpperDir("cache");
  if (!Opaque("cache")) GTEST_SKIP() << "setxattr trusted.*: " << std::strerror(errno);
  LostState s = Scan();
  EXPECT_TRUE(s.files.empty());
}

TEST_F(LayerScanTest, UserNamespaceOpaqueMarkerCountsToo) {
  // Overlays mounted with "userxattr" (unprivileged) use user.overlay.opaque.
  Lower("cache/a");
  Upper("cache/a", "n");
  if (!Opaque("cache", "user.overlay.opaque")) {
    GTEST_SKIP() << "setxattr user.*: " << std::strerror(errno);
  }
  LostState s = Scan();
  ASSERT_EQ(s.files.size(), 1u);
  EXPECT_EQ(s.files[0].change, Change::kCreated);
}

TEST_F(LayerScanTest, NonOpaqueXattrValueIsIgnored) {
  Lower("cache/a");
  Upper("cache/a", "n");
  if (setxattr((upper_ + "/cache").c_str(), "trusted.overlay.opaque", "n", 1, 0) != 0) {
    GTEST_SKIP() << "setxattr trusted.*: " << std::strerror(errno);
  }
  LostState s = Scan();
  ASSERT_EQ(s.files.size(), 1u);
  EXPECT_EQ(s.files[0].change, Change::kModified);
}

TEST_F(LayerScanTest, SymlinkIsReportedNotFollowed) {
  Lower("target.txt", std::string(500, 't'));
  fs::create_symlink("target.txt", upper_ + "/link");
  fs::create_directory_symlink("/etc", upper_ + "/etc-link");
  LostState s = Scan();
  EXPECT_EQ(Paths(s.files), (PathList{"etc-link", "link"}));
  EXPECT_EQ(Get(s.files, "link")->bytes, std::string("target.txt").size());
  EXPECT_EQ(Get(s.files, "link")->change, Change::kCreated);
}

TEST_F(LayerScanTest, WritablePrefixesGoToScratch) {
  LowerDir("logs");
  Lower("logs/.keep");
  Upper("tmp/upload-123", std::string(300, 'u'));
  Upper("tmp/deep/x", std::string(7, 'x'));
  Upper("logs/app.log", std::string(20, 'l'));
  Upper("logs/app.log.1", std::string(5, 'r'));
  Upper("logs/other.log", std::string(9, 'o'));
  Upper("tmpfile", "3by");
  LostState s = Scan({"tmp/", "logs/app.log"});
  EXPECT_EQ(Paths(s.scratch), (PathList{"logs/app.log", "tmp/deep/x", "tmp/upload-123"}));
  EXPECT_EQ(s.scratch_bytes, 327u);
  EXPECT_EQ(Paths(s.files), (PathList{"logs/app.log.1", "logs/other.log", "tmpfile"}));
  EXPECT_EQ(s.bytes, 17u);
}

TEST_F(LayerScanTest, ScratchKeepsItsChangeKinds) {
  Lower("tmp/seed");
  Lower("tmp/gone");
  Upper("tmp/seed", "12");
  Upper("tmp/fresh", "345");
  LostState s = Scan({"tmp"});
  EXPECT_TRUE(s.files.empty());
  EXPECT_EQ(Paths(s.scratch), (PathList{"tmp/fresh", "tmp/seed"}));
  EXPECT_EQ(Get(s.scratch, "tmp/seed")->change, Change::kModified);
  EXPECT_EQ(Get(s.scratch, "tmp/fresh")->change, Change::kCreated);
  EXPECT_EQ(s.scratch_bytes, 5u);
  if (Whiteout("tmp/gone")) {
    s = Scan({"tmp"});
    ASSERT_TRUE(Get(s.scratch, "tmp/gone").has_value());
    EXPECT_EQ(Get(s.scratch, "tmp/gone")->change, Change::kDeleted);
    EXPECT_TRUE(s.files.empty());
  }
}

TEST_F(LayerScanTest, EmptyWritableDirectoryIsNothing) {
  UpperDir("tmp/sub");
  LostState s = Scan({"tmp/"});
  EXPECT_TRUE(s.files.empty());
  EXPECT_TRUE(s.scratch.empty());
}

TEST_F(LayerScanTest, ParentOfScratchOnlyIsNotReported) {
  // logs/ is new but holds only scratch: the directory itself is not lost state.
  Upper("logs/app.log", "x");
  LostState s = Scan({"logs/app.log"});
  EXPECT_TRUE(s.files.empty()) << Paths(s.files).size();
  EXPECT_EQ(Paths(s.scratch), (PathList{"logs/app.log"}));
}

TEST_F(LayerScanTest, ResultsAreSorted) {
  for (const char* p : {"zeta", "alpha", "mid/b", "mid/a", "Mixed", "mid/zz/1", "beta/x", "_u"}) {
    Upper(p, "1");
  }
  UpperDir("empty");  // not reported
  for (const char* p : {"tmp/z", "tmp/a", "tmp/m/q"}) Upper(p, "1");
  LostState s = Scan({"tmp/"});
  auto files = Paths(s.files), scratch = Paths(s.scratch);
  EXPECT_TRUE(std::is_sorted(files.begin(), files.end()));
  EXPECT_TRUE(std::is_sorted(scratch.begin(), scratch.end()));
  EXPECT_EQ(files,
            (PathList{"Mixed", "_u", "alpha", "beta/x", "mid/a", "mid/b", "mid/zz/1", "zeta"}));
  EXPECT_EQ(scratch, (PathList{"tmp/a", "tmp/m/q", "tmp/z"}));
  // The same layer scans the same way twice.
  LostState again = Scan({"tmp/"});
  EXPECT_EQ(Paths(again.files), files);
}

TEST_F(LayerScanTest, MissingLowerMeansEverythingIsCreated) {
  Upper("server.js", "changed");
  Result<LostState> r = ScanLayer(upper_, root_ + "/no-such-root", {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->files.size(), 1u);
  EXPECT_EQ(r->files[0].change, Change::kCreated);
}

TEST_F(LayerScanTest, MissingUpperIsAnError) {
  const std::string missing = root_ + "/no-such-upper";
  Result<LostState> r = ScanLayer(missing, lower_, {"tmp/"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(missing), std::string::npos) << r.error().message;
}

TEST_F(LayerScanTest, UpperThatIsAFileIsAnError) {
  const std::string file = root_ + "/a-file";
  Write(file, "x");
  Result<LostState> r = ScanLayer(file, lower_, {});
  EXPECT_FALSE(r.ok());
}

// ---- IsScratch ----

TEST(IsScratchTest, DirectoryPrefixWithOrWithoutSlash) {
  for (const char* w : {"tmp", "tmp/", "tmp//"}) {
    SCOPED_TRACE(w);
    const std::vector<std::string> writable = {w};
    EXPECT_TRUE(IsScratch("tmp", writable));
    EXPECT_TRUE(IsScratch("tmp/", writable));
    EXPECT_TRUE(IsScratch("tmp/a", writable));
    EXPECT_TRUE(IsScratch("tmp/a/b/c.txt", writable));
    EXPECT_FALSE(IsScratch("tmpfile", writable));
    EXPECT_FALSE(IsScratch("tmp.txt", writable));
    EXPECT_FALSE(IsScratch("tm", writable));
    EXPECT_FALSE(IsScratch("a/tmp", writable));
    EXPECT_FALSE(IsScratch("a/tmp/b", writable));
    EXPECT_FALSE(IsScratch("", writable));
  }
}

// Shell wildcards as .gitignore reads them (users write "*.log").
TEST(IsScratchTest, Wildcards) {
  const std::vector<std::string> logs = {"*.log"};
  EXPECT_TRUE(IsScratch("app.log", logs));
  EXPECT_TRUE(IsScratch("logs/2026/x.log", logs));
  EXPECT_FALSE(IsScratch("app.log.gz", logs));
  EXPECT_TRUE(IsScratch(".log", logs));  // as git: a leading dot needs no dot in the pattern
  EXPECT_TRUE(IsScratch(".cache/x", {"*cache*"}));
  const std::vector<std::string> caches = {"cache-*/"};
  EXPECT_TRUE(IsScratch("cache-1/a/b", caches));
  EXPECT_TRUE(IsScratch("x/cache-2/a", caches));
  EXPECT_FALSE(IsScratch("cache/a", caches));
  const std::vector<std::string> thumbs = {"uploads/*/thumbs"};
  EXPECT_TRUE(IsScratch("uploads/u1/thumbs/a.png", thumbs));
  EXPECT_FALSE(IsScratch("uploads/u1/a.png", thumbs));
  EXPECT_FALSE(IsScratch("uploads/u1/x/thumbs/a.png", thumbs));  // '*' stops at '/'
  EXPECT_FALSE(IsScratch("x/uploads/u1/thumbs/a.png", thumbs));  // anchored at the root
  // "**": any number of folders, none included.
  const std::vector<std::string> gz = {"logs/**/*.gz"};
  EXPECT_TRUE(IsScratch("logs/a.gz", gz));
  EXPECT_TRUE(IsScratch("logs/2026/11/a.gz", gz));
  EXPECT_FALSE(IsScratch("logs/2026/a.txt", gz));
  EXPECT_FALSE(IsScratch("x/logs/a.gz", gz));
  EXPECT_TRUE(IsScratch("a/b/node_modules/.cache/x", {"**/.cache/"}));
  // Many "**" against a deep path: each (part, depth) is decided once.
  std::string deep;
  for (int i = 0; i < 80; ++i) deep += "d/";
  EXPECT_FALSE(IsScratch(deep + "y", {"**/**/**/**/**/**/x"}));
  EXPECT_FALSE(IsScratch(deep + "y", {"**/a*/**/b*/**/c*/**/x"}));
  EXPECT_TRUE(IsScratch(deep + "x", {"**/**/**/**/**/**/x"}));
  // A name with wildcard characters in it is still the folder it names.
  EXPECT_TRUE(IsScratch("data[1]/a.json", {"data[1]/"}));
}

TEST(IsScratchTest, SingleFile) {
  const std::vector<std::string> writable = {"logs/app.log"};
  EXPECT_TRUE(IsScratch("logs/app.log", writable));
  EXPECT_FALSE(IsScratch("logs/app.log.1", writable));
  EXPECT_FALSE(IsScratch("logs/app", writable));
  EXPECT_FALSE(IsScratch("logs/other.log", writable));
  EXPECT_FALSE(IsScratch("logs", writable));
  EXPECT_FALSE(IsScratch("logs/", writable));
}

TEST(IsScratchTest, NestedPrefix) {
  const std::vector<std::string> writable = {"var/cache/"};
  EXPECT_TRUE(IsScratch("var/cache", writable));
  EXPECT_TRUE(IsScratch("var/cache/", writable));
  EXPECT_TRUE(IsScratch("var/cache/x/y", writable));
  EXPECT_FALSE(IsScratch("var", writable));
  EXPECT_FALSE(IsScratch("var/", writable));
  EXPECT_FALSE(IsScratch("var/cached", writable));
  EXPECT_FALSE(IsScratch("var/log/x", writable));
}

TEST(IsScratchTest, SeveralPrefixes) {
  const std::vector<std::string> writable = {"tmp/", "logs/app.log", "run"};
  EXPECT_TRUE(IsScratch("tmp/x", writable));
  EXPECT_TRUE(IsScratch("logs/app.log", writable));
  EXPECT_TRUE(IsScratch("run/pid", writable));
  EXPECT_FALSE(IsScratch("uploads/a.jpg", writable));
  EXPECT_FALSE(IsScratch("running", writable));
}

TEST(IsScratchTest, EmptyPrefixesMatchNothing) {
  EXPECT_FALSE(IsScratch("anything", {}));
  EXPECT_FALSE(IsScratch("anything", {""}));
  EXPECT_FALSE(IsScratch("anything", {"/"}));
  EXPECT_FALSE(IsScratch("", {"", "/"}));
  EXPECT_TRUE(IsScratch("tmp/x", {"", "tmp"}));
}

}  // namespace
}  // namespace phoenix::sandbox
