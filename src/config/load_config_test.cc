#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "config/config.h"

namespace phoenix {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;
using std::chrono::seconds;

// A fresh app root per test, removed afterwards.
class LoadConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::error_code error;
    fs::path base = fs::temp_directory_path(error);
    if (error) base = "/tmp";
    std::string pattern = (base / "phx_config_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code error;
    fs::remove_all(dir_, error);
  }

  void Write(const std::string& name, const std::string& content) {
    fs::path path = fs::path(dir_) / name;
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out << content;
    ASSERT_TRUE(out.good()) << path;
  }

  LoadOptions Options() const {
    LoadOptions options;
    options.dir = dir_;
    return options;
  }

  Config MustLoad(const LoadOptions& options, std::optional<std::string> environ_port = {}) {
    auto result = LoadConfig(options, environ_port);
    EXPECT_TRUE(result.ok()) << result.error().message;
    return result.ok() ? *result : Config{};
  }

  std::string ErrorOf(const LoadOptions& options, std::optional<std::string> environ_port = {}) {
    auto result = LoadConfig(options, environ_port);
    return result.ok() ? "<unexpectedly ok>" : result.error().message;
  }

  std::string dir_;
};

// ---- the app root and its Procfile --------------------------------------------------------

TEST_F(LoadConfigTest, ProcfileOnlyGivesTheDefaults) {
  Write("Procfile", "web: node server.js\nworker: node worker.js\n");
  Config config = MustLoad(Options());
  EXPECT_EQ(config.app_root, fs::canonical(dir_).string());
  ASSERT_EQ(config.processes.size(), 2u);
  EXPECT_EQ(config.processes[0].type, "web");
  EXPECT_EQ(config.processes[0].command, "node server.js");
  EXPECT_EQ(config.processes[0].instances, 2);
  EXPECT_EQ(config.processes[1].type, "worker");
  EXPECT_EQ(config.processes[1].instances, 1);
  EXPECT_EQ(config.processes[1].max_age, hours(24));
  EXPECT_EQ(config.processes[1].boot_timeout, seconds(60));
  EXPECT_TRUE(config.env.empty());
  EXPECT_EQ(config.router.port, 5000);
  EXPECT_EQ(config.router.health_path, "");
  EXPECT_EQ(config.filesystem.mode, FilesystemMode::kEphemeral);
  EXPECT_EQ(config.filesystem.writable, std::vector<std::string>{"tmp/"});
  EXPECT_EQ(config.chaos.mean_time_between_kills.count(), 0);
}

TEST_F(LoadConfigTest, FindLooksUpProcessTypes) {
  Write("Procfile", "web: a\nworker: b\n");
  Config config = MustLoad(Options());
  ASSERT_NE(config.Find("worker"), nullptr);
  EXPECT_EQ(config.Find("worker")->command, "b");
  EXPECT_EQ(config.Find("clock"), nullptr);
  EXPECT_EQ(Config{}.Find("web"), nullptr);
}

TEST_F(LoadConfigTest, AppRootIsAbsoluteWithSymlinksResolved) {
  Write("real/Procfile", "web: a\n");
  fs::create_directory_symlink(fs::path(dir_) / "real", fs::path(dir_) / "link");
  LoadOptions options;
  options.dir = dir_ + "/link/";
  Config config = MustLoad(options);
  EXPECT_EQ(config.app_root, fs::canonical(fs::path(dir_) / "real").string());
}

TEST_F(LoadConfigTest, CurrentDirectoryByDefault) {
  Write("Procfile", "web: a\n");
  std::error_code error;
  fs::path saved = fs::current_path();
  fs::current_path(dir_);
  auto dot = LoadConfig(LoadOptions{}, std::nullopt);
  LoadOptions empty;
  empty.dir = "";
  auto empty_dir = LoadConfig(empty, std::nullopt);
  fs::remove(fs::path(dir_) / "Procfile");
  auto missing = LoadConfig(LoadOptions{}, std::nullopt);
  fs::current_path(saved);

  ASSERT_TRUE(dot.ok()) << dot.error().message;
  EXPECT_EQ(dot->app_root, fs::canonical(dir_).string());
  ASSERT_TRUE(empty_dir.ok()) << empty_dir.error().message;
  ASSERT_FALSE(missing.ok());
  // Messages name files as the user would type them: no "./" for the current folder.
  EXPECT_EQ(missing.error().message.rfind("Procfile: not found", 0), 0u) << missing.error().message;
}

TEST_F(LoadConfigTest, MissingDirectory) {
  LoadOptions options;
  options.dir = dir_ + "/nope";
  EXPECT_EQ(ErrorOf(options), dir_ + "/nope: no such directory");
}

TEST_F(LoadConfigTest, DirectoryIsAFile) {
  Write("file", "x");
  LoadOptions options;
  options.dir = dir_ + "/file";
  EXPECT_EQ(ErrorOf(options), dir_ + "/file: not a directory");
}

TEST_F(LoadConfigTest, MissingProcfile) {
  EXPECT_EQ(ErrorOf(Options()), dir_ +
                                    "/Procfile: not found (phoenix needs a Procfile with "
                                    "lines like 'web: node server.js')");
}

// Heroku's release phase is a deploy's one-off task: kept aside, never a process type.
TEST_F(LoadConfigTest, AReleaseLineIsNoProcessType) {
  Write("Procfile", "release: node migrate.js\nweb: node server.js\n");
  Config config = MustLoad(Options());
  ASSERT_EQ(config.processes.size(), 1u);
  EXPECT_EQ(config.processes[0].type, "web");
  EXPECT_EQ(config.release_command, "node migrate.js");
  // The old ways to keep it from running are no errors: it does not run anyway.
  Write("phoenix.toml", "[process.release]\ninstances = 0\n");
  LoadOptions options = Options();
  options.scale = {{"release", 0}};
  EXPECT_EQ(MustLoad(options).processes.size(), 1u);
  EXPECT_EQ(ReleaseNote(MustLoad(options))
                .rfind("note: the Procfile's 'release' line is not run "
                       "(node migrate.js)",
                       0),
            0u);
  options.scale = {{"release", 1}};
  EXPECT_NE(ErrorOf(options).find("--scale: release=1: the Procfile's 'release' line is a "
                                  "deploy's one-off task"),
            std::string::npos);
  // Without a release line, it is a process type like any other: unknown.
  Write("Procfile", "web: node server.js\n");
  EXPECT_NE(ErrorOf(Options()).find("unknown process type 'release'"), std::string::npos);
  fs::remove(fs::path(dir_) / "phoenix.toml");
  Write("Procfile", "release: node migrate.js\n");
  EXPECT_NE(ErrorOf(Options()).find("only a 'release' line"), std::string::npos);
}

// A named pipe found in the app root (no writer: reading it would wait for ever) is refused at
// once; one given on the command line is read, as `--env <(vault read ...)` is.
TEST_F(LoadConfigTest, NamedPipesInTheAppRootAreRefused) {
  Write("Procfile", "web: node server.js\n");
  for (const char* name : {".env", "phoenix.toml"}) {
    std::string path = dir_ + "/" + name;
    ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
    EXPECT_EQ(ErrorOf(Options()), path +
                                      ": not a regular file (a named pipe, socket or device); "
                                      "phoenix reads it from the app root only as a plain file");
    fs::remove(path);
  }
  fs::remove(fs::path(dir_) / "Procfile");
  ASSERT_EQ(mkfifo((dir_ + "/Procfile").c_str(), 0600), 0);
  EXPECT_NE(ErrorOf(Options()).find("/Procfile: not a regular file"), std::string::npos);
}

// Strict mode binds writable paths by name: a pattern is refused, but a name in the release
// that only looks like one is that name.
TEST_F(LoadConfigTest, StrictWritableNamesThatLookLikePatterns) {
  Write("Procfile", "web: node server.js\n");
  Write("data[1]/notes.json", "[]");
  Write("phoenix.toml", "[filesystem]\nmode = \"strict\"\nwritable = [\"data[1]/\"]\n");
  EXPECT_EQ(MustLoad(Options()).filesystem.writable, std::vector<std::string>{"data[1]/"});
  Write("phoenix.toml", "[filesystem]\nmode = \"strict\"\nwritable = [\"data[2]/\"]\n");
  EXPECT_NE(ErrorOf(Options()).find("'data[2]/' is a pattern"), std::string::npos);
}

TEST_F(LoadConfigTest, ProcfileIsADirectory) {
  fs::create_directory(fs::path(dir_) / "Procfile");
  EXPECT_EQ(ErrorOf(Options()), dir_ + "/Procfile: is a directory, expected a file");
}

TEST_F(LoadConfigTest, ProcfileErrorsCarryItsPath) {
  Write("Procfile", "web: a\nweb: b\n");
  EXPECT_EQ(ErrorOf(Options()),
            dir_ + "/Procfile:2:1: duplicate process type 'web' (first defined on line 1)");
  Write("Procfile", "\n# none\n");
  EXPECT_EQ(ErrorOf(Options()), dir_ +
                                    "/Procfile: no process types (expected lines like "
                                    "'web: node server.js')");
}

TEST_F(LoadConfigTest, OversizedFileIsRefused) {
  Write("Procfile", "web: a\n");
  Write(".env", std::string((1 << 20) + 1, '#'));
  std::string message = ErrorOf(Options());
  EXPECT_EQ(message.rfind(dir_ + "/.env: larger than 1048576 bytes", 0), 0u) << message;
}

TEST_F(LoadConfigTest, UnreadablePathsSayWhy) {
  fs::create_symlink("loop", fs::path(dir_) / "loop");
  LoadOptions options;
  options.dir = dir_ + "/loop";
  EXPECT_EQ(ErrorOf(options), dir_ + "/loop: Too many levels of symbolic links");

  Write("Procfile", "web: a\n");
  fs::create_symlink(".env", fs::path(dir_) / ".env");
  EXPECT_EQ(ErrorOf(Options()), dir_ + "/.env: Too many levels of symbolic links");
}

TEST_F(LoadConfigTest, ALinkToAMissingFileIsAnErrorNotAnAbsentFile) {
  Write("Procfile", "web: a\n");
  fs::create_symlink("/run/secrets/app.env", fs::path(dir_) / ".env");
  EXPECT_EQ(ErrorOf(Options()),
            dir_ + "/.env: a symbolic link to /run/secrets/app.env, which does not exist");
  fs::remove(fs::path(dir_) / ".env");
  fs::create_symlink("shared/phoenix.toml", fs::path(dir_) / "phoenix.toml");
  EXPECT_EQ(ErrorOf(Options()),
            dir_ + "/phoenix.toml: a symbolic link to shared/phoenix.toml, which does not exist");
}

// ---- .env ---------------------------------------------------------------------------------

TEST_F(LoadConfigTest, DotenvInTheAppRoot) {
  Write("Procfile", "web: a\n");
  Write(".env", "DATABASE_URL=postgres://localhost/app\nexport SECRET='s'\n");
  Config config = MustLoad(Options());
  EXPECT_EQ(config.env, (std::map<std::string, std::string>{
                            {"DATABASE_URL", "postgres://localhost/app"}, {"SECRET", "s"}}));
}

TEST_F(LoadConfigTest, EnvFlagReplacesTheDefaultFile) {
  Write("Procfile", "web: a\n");
  Write(".env", "FROM=default\n");
  Write("prod.env", "FROM=flag\n");
  LoadOptions options = Options();
  options.env_file = dir_ + "/prod.env";
  EXPECT_EQ(MustLoad(options).env, (std::map<std::string, std::string>{{"FROM", "flag"}}));
}

TEST_F(LoadConfigTest, EnvFlagFileMustExist) {
  Write("Procfile", "web: a\n");
  LoadOptions options = Options();
  options.env_file = dir_ + "/missing.env";
  EXPECT_EQ(ErrorOf(options), dir_ + "/missing.env: not found (given with --env)");
}

TEST_F(LoadConfigTest, EnvErrorsCarryTheirPath) {
  Write("Procfile", "web: a\n");
  Write(".env", "OK=1\nBAD KEY=2\n");
  std::string message = ErrorOf(Options());
  EXPECT_EQ(message.rfind(dir_ + "/.env:2:4: invalid character ' ' in key 'BAD KEY'", 0), 0u)
      << message;

  Write("other.env", "X=\"open\n");
  LoadOptions options = Options();
  options.env_file = dir_ + "/other.env";
  message = ErrorOf(options);
  EXPECT_EQ(message.rfind(dir_ + "/other.env:1:3: unterminated", 0), 0u) << message;
}

TEST_F(LoadConfigTest, DotenvThatIsADirectory) {
  Write("Procfile", "web: a\n");
  fs::create_directory(fs::path(dir_) / ".env");
  EXPECT_EQ(ErrorOf(Options()), dir_ + "/.env: is a directory, expected a file");
}

TEST_F(LoadConfigTest, EnvFlagMayNameAFileThatIsNotRegular) {
  // `--env <(vault read ...)` hands phoenix a pipe; /dev/null stands in for one here.
  Write("Procfile", "web: a\n");
  Write(".env", "FROM=default\n");
  LoadOptions options = Options();
  options.env_file = "/dev/null";
  EXPECT_TRUE(MustLoad(options).env.empty());
}

TEST_F(LoadConfigTest, FlagFilesThatAreDirectories) {
  Write("Procfile", "web: a\n");
  LoadOptions options = Options();
  options.env_file = dir_;
  EXPECT_EQ(ErrorOf(options), dir_ + ": is a directory, expected a file");
  options = Options();
  options.config_file = dir_;
  EXPECT_EQ(ErrorOf(options), dir_ + ": is a directory, expected a file");
}

// ---- phoenix.toml -------------------------------------------------------------------------

TEST_F(LoadConfigTest, TomlInTheAppRoot) {
  Write("Procfile", "web: a\nworker: b\n");
  Write("phoenix.toml", "[process.worker]\ninstances = 4\n[filesystem]\nmode = \"strict\"\n");
  Config config = MustLoad(Options());
  EXPECT_EQ(config.processes[1].instances, 4);
  EXPECT_EQ(config.filesystem.mode, FilesystemMode::kStrict);
}

TEST_F(LoadConfigTest, ConfigFlagReplacesTheDefaultFile) {
  Write("Procfile", "web: a\n");
  Write("phoenix.toml", "[process.web]\ninstances = 4\n");
  Write("staging.toml", "[process.web]\ninstances = 7\n");
  LoadOptions options = Options();
  options.config_file = dir_ + "/staging.toml";
  EXPECT_EQ(MustLoad(options).processes[0].instances, 7);
}

TEST_F(LoadConfigTest, ConfigFlagFileMustExist) {
  Write("Procfile", "web: a\n");
  LoadOptions options = Options();
  options.config_file = dir_ + "/nope.toml";
  EXPECT_EQ(ErrorOf(options), dir_ + "/nope.toml: not found (given with --config)");
}

TEST_F(LoadConfigTest, TomlErrorsCarryTheirPath) {
  Write("Procfile", "web: a\n");
  Write("phoenix.toml", "[process.web]\nmax_ag = \"1h\"\n");
  EXPECT_EQ(ErrorOf(Options()), dir_ +
                                    "/phoenix.toml:2:1: unknown key 'process.web.max_ag' "
                                    "(did you mean 'max_age'?)");
  Write("phoenix.toml", "[process.wbe]\n");
  std::string message = ErrorOf(Options());
  EXPECT_NE(message.find("unknown process type 'wbe' in [process.wbe] (did you mean 'web'?)"),
            std::string::npos)
      << message;
}

// ---- --scale ------------------------------------------------------------------------------

TEST_F(LoadConfigTest, ScaleOverridesInstances) {
  Write("Procfile", "web: a\nworker: b\n");
  Write("phoenix.toml", "[process.web]\ninstances = 4\n");
  LoadOptions options = Options();
  options.scale = {{"web", 6}, {"worker", 0}};
  Config config = MustLoad(options);
  EXPECT_EQ(config.processes[0].instances, 6);
  EXPECT_EQ(config.processes[1].instances, 0);
}

TEST_F(LoadConfigTest, ScaleOfUnknownTypeSuggests) {
  Write("Procfile", "web: a\nworker: b\n");
  LoadOptions options = Options();
  options.scale = {{"wbe", 3}};
  EXPECT_EQ(ErrorOf(options),
            "--scale: unknown process type 'wbe' (did you mean 'web'?); the "
            "Procfile defines: web, worker");
  options.scale = {{"clock", 1}};
  EXPECT_EQ(ErrorOf(options),
            "--scale: unknown process type 'clock'; the Procfile defines: web, worker");
}

TEST_F(LoadConfigTest, ScaleOutOfRange) {
  Write("Procfile", "web: a\n");
  LoadOptions options = Options();
  options.scale = {{"web", 1001}};
  EXPECT_EQ(ErrorOf(options), "--scale: web=1001 is out of range (0..1000)");
  options.scale = {{"web", -1}};
  EXPECT_EQ(ErrorOf(options), "--scale: web=-1 is out of range (0..1000)");
}

// ---- the port -----------------------------------------------------------------------------

TEST_F(LoadConfigTest, PortPrecedence) {
  Write("Procfile", "web: a\n");
  EXPECT_EQ(MustLoad(Options()).router.port, 5000);
  EXPECT_EQ(MustLoad(Options(), "8000").router.port, 8000);

  Write("phoenix.toml", "[router]\nport = 7000\n");
  EXPECT_EQ(MustLoad(Options(), "8000").router.port, 7000);
  EXPECT_EQ(MustLoad(Options(), "not a port").router.port, 7000);  // $PORT unused, not checked.

  LoadOptions options = Options();
  options.port = 9000;
  EXPECT_EQ(MustLoad(options, "8000").router.port, 9000);
}

TEST_F(LoadConfigTest, TomlPortEqualToTheDefaultStillBeatsEnvironment) {
  Write("Procfile", "web: a\n");
  Write("phoenix.toml", "[router]\nport = 5000\n");
  EXPECT_EQ(MustLoad(Options(), "8000").router.port, 5000);
}

TEST_F(LoadConfigTest, PortFlagRange) {
  Write("Procfile", "web: a\n");
  LoadOptions options = Options();
  options.port = 0;
  EXPECT_EQ(ErrorOf(options), "--port: 0 is out of range (1..65535)");
  options.port = 65536;
  EXPECT_EQ(ErrorOf(options), "--port: 65536 is out of range (1..65535)");
  options.port = 65535;
  EXPECT_EQ(MustLoad(options).router.port, 65535);
}

TEST_F(LoadConfigTest, InvalidEnvironmentPort) {
  Write("Procfile", "web: a\n");
  EXPECT_EQ(ErrorOf(Options(), "abc"), "$PORT: 'abc' is not a whole number (expected 1..65535)");
  EXPECT_EQ(ErrorOf(Options(), ""), "$PORT: '' is not a whole number (expected 1..65535)");
  EXPECT_EQ(ErrorOf(Options(), "+80"), "$PORT: '+80' is not a whole number (expected 1..65535)");
  EXPECT_EQ(ErrorOf(Options(), " 80"), "$PORT: ' 80' is not a whole number (expected 1..65535)");
  EXPECT_EQ(ErrorOf(Options(), "0"), "$PORT: 0 is out of range (1..65535)");
  EXPECT_EQ(ErrorOf(Options(), "65536"), "$PORT: 65536 is out of range (1..65535)");
  EXPECT_EQ(ErrorOf(Options(), "99999999999999999999999"),
            "$PORT: 99999999999999999999999 is out of range (1..65535)");
  EXPECT_EQ(MustLoad(Options(), "0080").router.port, 80);
}

// ---- the order errors are found in --------------------------------------------------------

TEST_F(LoadConfigTest, ProcfileIsCheckedBeforeTheOtherFiles) {
  Write("Procfile", "bad\n");
  Write(".env", "BAD KEY=1\n");
  std::string message = ErrorOf(Options());
  EXPECT_EQ(message.rfind(dir_ + "/Procfile:1:4: ", 0), 0u) << message;
}

// ---- ParseScale ---------------------------------------------------------------------------

std::string ScaleError(const std::string& text) {
  auto result = ParseScale(text);
  return result.ok() ? "<unexpectedly ok>" : result.error().message;
}

TEST(ParseScaleTest, Entries) {
  auto scale = ParseScale("web=3,worker=1");
  ASSERT_TRUE(scale.ok()) << scale.error().message;
  EXPECT_EQ(*scale, (std::map<std::string, int>{{"web", 3}, {"worker", 1}}));
  EXPECT_EQ(*ParseScale("web=0"), (std::map<std::string, int>{{"web", 0}}));
  EXPECT_EQ(*ParseScale("my_type-2=1000"), (std::map<std::string, int>{{"my_type-2", 1000}}));
  EXPECT_EQ(*ParseScale("web=007"), (std::map<std::string, int>{{"web", 7}}));
}

TEST(ParseScaleTest, Empty) {
  EXPECT_EQ(ScaleError(""), "empty scale (expected TYPE=N[,TYPE=N...], e.g. web=3,worker=1)");
}

TEST(ParseScaleTest, EmptyEntry) {
  EXPECT_EQ(ScaleError("web=3,,worker=1").rfind("entry 2 of 'web=3,,worker=1' is empty", 0), 0u);
  EXPECT_EQ(ScaleError("web=3,").rfind("entry 2 of 'web=3,' is empty", 0), 0u);
  EXPECT_EQ(ScaleError(",web=3").rfind("entry 1 of ',web=3' is empty", 0), 0u);
}

TEST(ParseScaleTest, MissingCount) {
  EXPECT_EQ(ScaleError("web=3,worker").rfind("entry 'worker' has no '=N'", 0), 0u)
      << ScaleError("web=3,worker");
  EXPECT_EQ(ScaleError("web=").rfind("entry 'web=': '' is not a whole number", 0), 0u)
      << ScaleError("web=");
}

TEST(ParseScaleTest, MissingType) {
  EXPECT_EQ(ScaleError("=3").rfind("entry '=3' has no process type before '='", 0), 0u);
}

TEST(ParseScaleTest, StrictAboutSpaces) {
  std::string message = ScaleError("web=3, worker=1");
  EXPECT_EQ(message.rfind("entry ' worker=1': invalid character ' ' in process type", 0), 0u)
      << message;
  message = ScaleError("web =3");
  EXPECT_EQ(message.rfind("entry 'web =3': invalid character ' '", 0), 0u) << message;
  message = ScaleError("web= 3");
  EXPECT_EQ(message.rfind("entry 'web= 3': ' 3' is not a whole number", 0), 0u) << message;
}

TEST(ParseScaleTest, BadTypeCharacter) {
  EXPECT_EQ(
      ScaleError("web.1=3").rfind("entry 'web.1=3': invalid character '.' in process type", 0), 0u);
}

TEST(ParseScaleTest, BadCount) {
  EXPECT_EQ(ScaleError("web=three"),
            "entry 'web=three': 'three' is not a whole number (expected 0..1000)");
  EXPECT_EQ(ScaleError("web=-1"), "entry 'web=-1': '-1' is not a whole number (expected 0..1000)");
  EXPECT_EQ(ScaleError("web=1.5"),
            "entry 'web=1.5': '1.5' is not a whole number (expected 0..1000)");
  EXPECT_EQ(ScaleError("worker=1001"), "entry 'worker=1001': 1001 is out of range (0..1000)");
  EXPECT_EQ(ScaleError("web=99999999999999999999"),
            "entry 'web=99999999999999999999': 99999999999999999999 is out of range (0..1000)");
  EXPECT_EQ(ScaleError("web=3=4"),
            "entry 'web=3=4': '3=4' is not a whole number (expected "
            "0..1000)");
}

TEST(ParseScaleTest, DuplicateType) {
  EXPECT_EQ(ScaleError("web=1,worker=1,web=2"), "entry 'web=2': process type 'web' is given twice");
}

}  // namespace
}  // namespace phoenix
