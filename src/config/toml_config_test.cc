#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "config/config.h"

namespace phoenix {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// A Config as LoadConfig builds it from "web: ..." and "worker: ..." Procfile lines.
Config TwoTypes() {
  Config config;
  ProcessConfig web;
  web.type = "web";
  web.command = "node server.js";
  web.instances = 2;
  ProcessConfig worker;
  worker.type = "worker";
  worker.command = "node worker.js";
  config.processes = {web, worker};
  return config;
}

Config MustApply(const std::string& text) {
  Config config = TwoTypes();
  Status status = ApplyToml(text, "phoenix.toml", config);
  EXPECT_TRUE(status.ok()) << status.error().message;
  return config;
}

std::string ErrorOf(const std::string& text) {
  Config config = TwoTypes();
  Status status = ApplyToml(text, "phoenix.toml", config);
  return status.ok() ? "<unexpectedly ok>" : status.error().message;
}

// Asserts that `text` fails with a message that starts with `prefix`.
#define EXPECT_TOML_ERROR(text, prefix)                              \
  do {                                                               \
    std::string message_ = ErrorOf(text);                            \
    EXPECT_EQ(message_.rfind(prefix, 0), 0u) << "got: " << message_; \
  } while (0)

// ---- what a valid file sets -----------------------------------------------------------------

TEST(ApplyTomlTest, EmptyFileChangesNothing) {
  Config config = MustApply("");
  EXPECT_EQ(config.router.port, 5000);
  EXPECT_EQ(config.processes[0].max_age, hours(24));
  EXPECT_EQ(config.filesystem.writable, std::vector<std::string>{"tmp/"});
}

TEST(ApplyTomlTest, TheDocumentedExampleParses) {
  Config config = MustApply(R"(
[router]
port = 5000                # or $PORT; the public port of the `web` type
health_path = ""           # "": ready when $PORT accepts; else GET must answer 2xx/3xx

[process.web]              # one table per Procfile type; `web` is routed
instances = 2
max_age = "24h"            # each incarnation is replaced after max_age minus a random jitter
max_age_jitter = "216m"    # so that instances never die together
boot_timeout = "60s"       # $PORT must accept by then, or the boot failed
drain_timeout = "30s"      # in-flight requests get this long before SIGTERM
stop_timeout = "30s"       # SIGTERM, then SIGKILL
# rotate_window = "02:00-05:00"   # optional: scheduled rebirths only inside this window

[filesystem]
mode = "ephemeral"         # each incarnation writes to its own layer, discarded at death
writable = ["tmp/"]        # writes under these are expected: not reported as lost state

[chaos]
mean_time_between_kills = "0"   # 0 = off; else unannounced SIGKILLs at random
hours = "09:00-17:00"           # only when people are around to see (as Chaos Monkey)
)");
  EXPECT_EQ(config.router.port, 5000);
  EXPECT_EQ(config.processes[0].instances, 2);
  EXPECT_EQ(config.filesystem.mode, FilesystemMode::kEphemeral);
  EXPECT_EQ(config.chaos.mean_time_between_kills, milliseconds(0));
  EXPECT_EQ(config.chaos.hours.start_min, 9 * 60);
}

TEST(ApplyTomlTest, Router) {
  Config config = MustApply("[router]\nport = 8080\nhealth_path = \"/healthz?full=1\"\n");
  EXPECT_EQ(config.router.port, 8080);
  EXPECT_EQ(config.router.health_path, "/healthz?full=1");
  EXPECT_EQ(MustApply("[router]\nport = 1\n").router.port, 1);
  EXPECT_EQ(MustApply("[router]\nport = 65535\n").router.port, 65535);
  EXPECT_EQ(config.router.tunnel_timeout, std::chrono::hours(1));
  EXPECT_EQ(MustApply("[router]\ntunnel_timeout = \"90s\"\n").router.tunnel_timeout,
            std::chrono::seconds(90));
  EXPECT_TOML_ERROR("[router]\ntunnel_timeout = \"0s\"\n",
                    "phoenix.toml:2:18: router.tunnel_timeout: must be more than 0");
}

TEST(ApplyTomlTest, Process) {
  Config config = MustApply(R"(
[process.worker]
instances = 0
max_age = "1h30m"
max_age_jitter = "10m"
boot_timeout = "5s"
drain_timeout = "0"
stop_timeout = "500ms"
rotate_window = "23:00-01:00"
)");
  const ProcessConfig& worker = config.processes[1];
  EXPECT_EQ(worker.instances, 0);
  EXPECT_EQ(worker.max_age, minutes(90));
  EXPECT_EQ(worker.max_age_jitter, minutes(10));
  EXPECT_EQ(worker.boot_timeout, seconds(5));
  EXPECT_EQ(worker.drain_timeout, milliseconds(0));
  EXPECT_EQ(worker.stop_timeout, milliseconds(500));
  ASSERT_TRUE(worker.rotate_window.has_value());
  EXPECT_EQ(worker.rotate_window->start_min, 23 * 60);
  EXPECT_EQ(worker.rotate_window->end_min, 60);
  // The other type keeps its values.
  EXPECT_EQ(config.processes[0].instances, 2);
  EXPECT_EQ(config.processes[0].max_age, hours(24));
  EXPECT_FALSE(config.processes[0].rotate_window.has_value());
}

TEST(ApplyTomlTest, DottedKeysAndInlineTables) {
  Config config = MustApply("[process]\nweb.instances = 4\nworker = { instances = 3 }\n");
  EXPECT_EQ(config.processes[0].instances, 4);
  EXPECT_EQ(config.processes[1].instances, 3);
  EXPECT_EQ(MustApply("router.port = 7000\n").router.port, 7000);
}

TEST(ApplyTomlTest, MaxAgeZeroMeansNeverAndIgnoresJitter) {
  Config config = MustApply("[process.web]\nmax_age = \"0\"\n");
  EXPECT_EQ(config.processes[0].max_age, milliseconds(0));
  EXPECT_EQ(MustApply("[process.web]\nmax_age = 0\n").processes[0].max_age, milliseconds(0));
}

TEST(ApplyTomlTest, ShortMaxAgeWithSmallerJitter) {
  Config config = MustApply("[process.web]\nmax_age = \"1s\"\nmax_age_jitter = \"999ms\"\n");
  EXPECT_EQ(config.processes[0].max_age, seconds(1));
}

TEST(ApplyTomlTest, FilesystemModes) {
  EXPECT_EQ(MustApply("[filesystem]\nmode = \"strict\"\n").filesystem.mode,
            FilesystemMode::kStrict);
  EXPECT_EQ(MustApply("[filesystem]\nmode = \"none\"\n").filesystem.mode, FilesystemMode::kNone);
  EXPECT_EQ(MustApply("[filesystem]\nmode = \"ephemeral\"\n").filesystem.mode,
            FilesystemMode::kEphemeral);
}

TEST(ApplyTomlTest, ToStringOfModes) {
  EXPECT_STREQ(ToString(FilesystemMode::kEphemeral), "ephemeral");
  EXPECT_STREQ(ToString(FilesystemMode::kStrict), "strict");
  EXPECT_STREQ(ToString(FilesystemMode::kNone), "none");
}

TEST(ApplyTomlTest, WritableIsNormalisedAndReplacesTheDefault) {
  Config config = MustApply(
      "[filesystem]\nwritable = [\"tmp\", \"./uploads//cache/\", \"logs/.\", \"app.log\", "
      "\"a/./b\"]\n");
  EXPECT_EQ(config.filesystem.writable,
            (std::vector<std::string>{"tmp", "uploads/cache/", "logs/", "app.log", "a/b"}));
  EXPECT_TRUE(MustApply("[filesystem]\nwritable = []\n").filesystem.writable.empty());
}

TEST(ApplyTomlTest, Chaos) {
  Config config =
      MustApply("[chaos]\nmean_time_between_kills = \"10m\"\nhours = \"22:00-06:00\"\n");
  EXPECT_EQ(config.chaos.mean_time_between_kills, minutes(10));
  EXPECT_EQ(config.chaos.hours.start_min, 22 * 60);
  EXPECT_EQ(config.chaos.hours.end_min, 6 * 60);
}

TEST(ApplyTomlTest, Admin) {
  Config defaults = MustApply("");
  EXPECT_TRUE(defaults.admin.enabled);
  EXPECT_EQ(defaults.admin.host, "127.0.0.1");
  EXPECT_EQ(defaults.admin.port, 0);
  Config v4 = MustApply("[admin]\nlisten = \"0.0.0.0:9100\"\n");
  EXPECT_EQ(v4.admin.host, "0.0.0.0");
  EXPECT_EQ(v4.admin.port, 9100);
  Config v6 = MustApply("[admin]\nlisten = \"[::1]:0\"\n");
  EXPECT_EQ(v6.admin.host, "::1");
  EXPECT_EQ(MustApply("[admin]\nlisten = \"localhost:9\"\n").admin.host, "127.0.0.1");
  EXPECT_FALSE(MustApply("[admin]\nlisten = \"\"\n").admin.enabled);
}

#define EXPECT_TOML_ERROR_HAS(text, part)                                     \
  do {                                                                        \
    std::string message_ = ErrorOf(text);                                     \
    EXPECT_NE(message_.find(part), std::string::npos) << "got: " << message_; \
  } while (0)

TEST(ApplyTomlTest, AdminErrorsSayWhat) {
  EXPECT_TOML_ERROR_HAS("[admin]\nlisten = \"9100\"\n",
                        "phoenix.toml:2:10: admin.listen: '9100' has no port");
  EXPECT_TOML_ERROR_HAS("[admin]\nlisten = \"::1:9100\"\n",
                        "admin.listen: '::1:9100': an IPv6 address goes in brackets");
  EXPECT_TOML_ERROR_HAS("[admin]\nlisten = \"example.com:9100\"\n",
                        "'example.com' is not an IP address");
  EXPECT_TOML_ERROR_HAS("[admin]\nlisten = \"127.0.0.1:65536\"\n",
                        "admin.listen: port 65536 is out of range (0..65535)");
  EXPECT_TOML_ERROR_HAS("[admin]\nlisten = \"127.0.0.1:-1\"\n", "port '-1' is not a whole number");
  EXPECT_TOML_ERROR_HAS("[admin]\nlisten = \"[::1]9100\"\n", "is not HOST:PORT");
  EXPECT_TOML_ERROR_HAS("[admin]\nlisten = 9100\n",
                        "admin.listen: expected a string like \"127.0.0.1:9100\"");
  EXPECT_TOML_ERROR_HAS("[admin]\nport = 9100\n", "unknown key 'admin.port'");
  EXPECT_TOML_ERROR_HAS("listen = \"127.0.0.1:1\"\n", "did you mean 'admin.listen'?");
  EXPECT_TOML_ERROR_HAS("[admin]\nlisten = \"127.0.0.1\\u0000junk:0\"\n", "contains a NUL byte");
  EXPECT_TOML_ERROR_HAS("[admin]\nlisten = \"[127.0.0.1]:0\"\n",
                        "only an IPv6 address goes in brackets");
}

TEST(ApplyTomlTest, FailureLeavesConfigUntouched) {
  Config config = TwoTypes();
  Status status =
      ApplyToml("[router]\nport = 8080\n[process.web]\ninstances = -1\n", "phoenix.toml", config);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(config.router.port, 5000);
}

// ---- syntax errors ------------------------------------------------------------------------

TEST(ApplyTomlTest, SyntaxErrorHasPosition) {
  EXPECT_TOML_ERROR("[router]\nport = \n", "phoenix.toml:2:");
  EXPECT_TOML_ERROR("[router\n", "phoenix.toml:1:");
  EXPECT_TOML_ERROR("[router]\nport = 1\nport = 2\n", "phoenix.toml:3:");
  EXPECT_TOML_ERROR("a = \"unterminated\n", "phoenix.toml:1:");
  std::string message = ErrorOf("\n\n[process.web]\ninstances = = 3\n");
  EXPECT_EQ(message.rfind("phoenix.toml:4:", 0), 0u) << message;
  EXPECT_GT(message.size(), std::string("phoenix.toml:4:13: ").size()) << message;
}

TEST(ApplyTomlTest, InvalidUtf8IsASyntaxError) {
  EXPECT_TOML_ERROR("[router]\nhealth_path = \"/\xff\"\n", "phoenix.toml:2:");
}

// ---- unknown tables and keys --------------------------------------------------------------

TEST(ApplyTomlTest, UnknownKeySuggestsTheClosest) {
  EXPECT_TOML_ERROR("[process.web]\ninstances = 2\nmax_ag = \"1h\"\n",
                    "phoenix.toml:3:1: unknown key 'process.web.max_ag' (did you mean "
                    "'max_age'?)");
  EXPECT_TOML_ERROR("[process.web]\n  max_age_jiter = \"1h\"\n",
                    "phoenix.toml:2:3: unknown key 'process.web.max_age_jiter' (did you mean "
                    "'max_age_jitter'?)");
  EXPECT_TOML_ERROR("[process.web]\ninstance = 3\n",
                    "phoenix.toml:2:1: unknown key 'process.web.instance' (did you mean "
                    "'instances'?)");
  EXPECT_TOML_ERROR("[router]\nprot = 1\n",
                    "phoenix.toml:2:1: unknown key 'router.prot' (did you mean 'port'?)");
  EXPECT_TOML_ERROR("[router]\nhealth = \"/\"\n",
                    "phoenix.toml:2:1: unknown key 'router.health' (did you mean 'health_path'?)");
  EXPECT_TOML_ERROR("[filesystem]\nwriteable = []\n",
                    "phoenix.toml:2:1: unknown key 'filesystem.writeable' (did you mean "
                    "'writable'?)");
  EXPECT_TOML_ERROR("[chaos]\nhour = \"09:00-17:00\"\n",
                    "phoenix.toml:2:1: unknown key 'chaos.hour' (did you mean 'hours'?)");
}

TEST(ApplyTomlTest, UnknownKeyWithoutSuggestionListsKnownKeys) {
  EXPECT_TOML_ERROR("[chaos]\nenabled = true\n",
                    "phoenix.toml:2:1: unknown key 'chaos.enabled' (known keys: "
                    "mean_time_between_kills, hours)");
}

TEST(ApplyTomlTest, UnknownTable) {
  EXPECT_TOML_ERROR("[rooter]\nport = 1\n",
                    "phoenix.toml:1:2: unknown table 'rooter' (did you mean 'router'?)");
  EXPECT_TOML_ERROR("[processes.web]\n",
                    "phoenix.toml:1:2: unknown table 'processes' (did you mean 'process'?)");
  EXPECT_TOML_ERROR("[metrics]\n",
                    "phoenix.toml:1:2: unknown table 'metrics' (known tables: router, process, "
                    "filesystem, chaos, admin)");
  EXPECT_TOML_ERROR("name = \"shop\"\n", "phoenix.toml:1:1: unknown key 'name' (known tables:");
}

TEST(ApplyTomlTest, TopLevelKeyThatBelongsInATable) {
  EXPECT_TOML_ERROR("port = 8080\n",
                    "phoenix.toml:1:1: unknown key 'port' (did you mean 'router.port'? it "
                    "belongs in [router])");
  EXPECT_TOML_ERROR("\ninstances = 3\n",
                    "phoenix.toml:2:1: unknown key 'instances' (did you mean "
                    "'process.web.instances'? it belongs in [process.web])");
}

TEST(ApplyTomlTest, FirstErrorInFileOrder) {
  // toml++ sorts keys; the message must still be about the first line the user wrote.
  EXPECT_TOML_ERROR("[process.web]\nzzz = 1\naaa = 2\n", "phoenix.toml:2:1: unknown key");
}

TEST(ApplyTomlTest, UnknownProcessTypeNamesTheKnownOnes) {
  EXPECT_TOML_ERROR("[process.wbe]\ninstances = 1\n",
                    "phoenix.toml:1:10: unknown process type 'wbe' in [process.wbe] (did you "
                    "mean 'web'?); the Procfile defines: web, worker");
  EXPECT_TOML_ERROR("[process.clock]\n",
                    "phoenix.toml:1:10: unknown process type 'clock' in [process.clock]; the "
                    "Procfile defines: web, worker");
}

// ---- wrong value types --------------------------------------------------------------------

TEST(ApplyTomlTest, WrongValueTypes) {
  EXPECT_TOML_ERROR("[process.web]\ninstances = \"3\"\n",
                    "phoenix.toml:2:13: process.web.instances: expected an integer, got string "
                    "'3'");
  EXPECT_TOML_ERROR("[process.web]\ninstances = 2.5\n",
                    "phoenix.toml:2:13: process.web.instances: expected an integer, got float");
  EXPECT_TOML_ERROR("[router]\nport = true\n",
                    "phoenix.toml:2:8: router.port: expected an integer, got boolean");
  EXPECT_TOML_ERROR("[router]\nhealth_path = 5\n",
                    "phoenix.toml:2:15: router.health_path: expected a string like \"/health\", "
                    "got integer 5");
  EXPECT_TOML_ERROR("[process.web]\nmax_age = 24\n",
                    "phoenix.toml:2:11: process.web.max_age: expected a string like \"90s\" or "
                    "\"24h\", got integer 24");
  EXPECT_TOML_ERROR("[process.web]\nrotate_window = [1]\n",
                    "phoenix.toml:2:17: process.web.rotate_window: expected a string like "
                    "\"02:00-05:00\", got array");
  EXPECT_TOML_ERROR("[filesystem]\nmode = 1979-05-27\n",
                    "phoenix.toml:2:8: filesystem.mode: expected a string like \"ephemeral\", "
                    "got date");
  EXPECT_TOML_ERROR("[filesystem]\nwritable = \"tmp/\"\n",
                    "phoenix.toml:2:12: filesystem.writable: expected an array of paths like "
                    "[\"tmp/\"], got string 'tmp/'");
  EXPECT_TOML_ERROR("[filesystem]\nwritable = [\"tmp/\", 3]\n",
                    "phoenix.toml:2:21: filesystem.writable[1]: expected a string like "
                    "\"tmp/\", got integer 3");
  EXPECT_TOML_ERROR("[chaos]\nhours = 07:32:00\n",
                    "phoenix.toml:2:9: chaos.hours: expected a string like \"02:00-05:00\", got "
                    "time");
  EXPECT_TOML_ERROR("[chaos]\nmean_time_between_kills = 1979-05-27T07:32:00Z\n",
                    "phoenix.toml:2:27: chaos.mean_time_between_kills: expected a string like");
}

TEST(ApplyTomlTest, TablesThatAreNotTables) {
  EXPECT_TOML_ERROR("router = 5\n", "phoenix.toml:1:10: router: expected a table, got integer 5");
  EXPECT_TOML_ERROR("process = \"web\"\n",
                    "phoenix.toml:1:11: process: expected a table, got string 'web'");
  EXPECT_TOML_ERROR("[process]\nweb = 3\n",
                    "phoenix.toml:2:7: process.web: expected a table, got integer 3");
}

// ---- out-of-range and invalid values ------------------------------------------------------

TEST(ApplyTomlTest, IntegerRanges) {
  EXPECT_TOML_ERROR("[router]\nport = 0\n",
                    "phoenix.toml:2:8: router.port: 0 is out of range (1..65535)");
  EXPECT_TOML_ERROR("[router]\nport = 65536\n",
                    "phoenix.toml:2:8: router.port: 65536 is out of range (1..65535)");
  EXPECT_TOML_ERROR("[process.web]\ninstances = -1\n",
                    "phoenix.toml:2:13: process.web.instances: -1 is out of range (0..1000)");
  EXPECT_TOML_ERROR("[process.worker]\ninstances = 1001\n",
                    "phoenix.toml:2:13: process.worker.instances: 1001 is out of range (0..1000)");
  EXPECT_TOML_ERROR("[process.web]\ninstances = 9223372036854775807\n",
                    "phoenix.toml:2:13: process.web.instances: 9223372036854775807 is out of "
                    "range");
}

TEST(ApplyTomlTest, HealthPath) {
  EXPECT_TOML_ERROR("[router]\nhealth_path = \"health\"\n",
                    "phoenix.toml:2:15: router.health_path: must be \"\" or start with '/', got "
                    "'health'");
  EXPECT_TOML_ERROR("[router]\nhealth_path = \"/a b\"\n",
                    "phoenix.toml:2:15: router.health_path: must not contain spaces or control "
                    "characters, got '/a b'");
  EXPECT_TOML_ERROR("[router]\nhealth_path = \"/a\\r\\nX: y\"\n",
                    "phoenix.toml:2:15: router.health_path: must not contain spaces or control "
                    "characters, got '/a\\r\\nX: y'");
}

TEST(ApplyTomlTest, BadDurationsNameTheKey) {
  EXPECT_TOML_ERROR("[process.web]\nmax_age = \"1 day\"\n",
                    "phoenix.toml:2:11: process.web.max_age: invalid duration '1 day'");
  EXPECT_TOML_ERROR("[process.web]\ndrain_timeout = \"30\"\n",
                    "phoenix.toml:2:17: process.web.drain_timeout: invalid duration '30': missing "
                    "unit after 30");
  EXPECT_TOML_ERROR("[process.web]\nboot_timeout = \"\"\n",
                    "phoenix.toml:2:16: process.web.boot_timeout: empty duration");
  EXPECT_TOML_ERROR("[process.web]\nstop_timeout = \"-1s\"\n",
                    "phoenix.toml:2:16: process.web.stop_timeout: invalid duration '-1s': "
                    "negative");
  EXPECT_TOML_ERROR("[chaos]\nmean_time_between_kills = \"5y\"\n",
                    "phoenix.toml:2:27: chaos.mean_time_between_kills: invalid duration '5y': "
                    "unknown unit 'y'");
}

// Durations are added to nanosecond clock time points later; beyond ~292 years those overflow.
TEST(ApplyTomlTest, DurationsAreCappedAtACentury) {
  EXPECT_TOML_ERROR("[process.web]\nmax_age = \"200000d\"\nmax_age_jitter = \"1h\"\n",
                    "phoenix.toml:2:11: process.web.max_age: '200000d' is too long (at most "
                    "36500d, 100 years)");
  for (const char* key : {"max_age_jitter", "boot_timeout", "drain_timeout", "stop_timeout"}) {
    EXPECT_TOML_ERROR(fmt::format("[process.worker]\nmax_age = 0\n{} = \"36501d\"\n", key),
                      fmt::format("phoenix.toml:3:{}: process.worker.{}: '36501d' is too long",
                                  std::string_view(key).size() + 4, key));
  }
  for (const char* key : {"header_timeout", "idle_timeout", "connect_timeout", "response_timeout",
                          "retry_timeout", "tunnel_timeout"}) {
    EXPECT_TOML_ERROR(fmt::format("[router]\n{} = \"876001h\"\n", key),
                      fmt::format("phoenix.toml:2:{}: router.{}: '876001h' is too long",
                                  std::string_view(key).size() + 4, key));
  }
  // Chaos gaps are random draws up to ~40 times the mean: a year at most.
  EXPECT_TOML_ERROR("[chaos]\nmean_time_between_kills = \"366d\"\n",
                    "phoenix.toml:2:27: chaos.mean_time_between_kills: '366d' is too long (at "
                    "most 365d, a year; \"0\" turns chaos off)");
  EXPECT_EQ(
      MustApply("[chaos]\nmean_time_between_kills = \"365d\"\n").chaos.mean_time_between_kills,
      hours(24 * 365));
  // The cap itself is fine.
  Config config = MustApply("[process.web]\nmax_age = \"36500d\"\nboot_timeout = \"36500d\"\n");
  EXPECT_EQ(config.processes[0].max_age, hours(24 * 36500));
}

TEST(ApplyTomlTest, BadWindowsNameTheKey) {
  EXPECT_TOML_ERROR("[process.web]\nrotate_window = \"02:00-02:00\"\n",
                    "phoenix.toml:2:17: process.web.rotate_window: empty window '02:00-02:00'");
  EXPECT_TOML_ERROR("[chaos]\nhours = \"9am-5pm\"\n",
                    "phoenix.toml:2:9: chaos.hours: invalid time '9am' in window '9am-5pm'");
}

TEST(ApplyTomlTest, TimeoutsMustBePositive) {
  EXPECT_TOML_ERROR("[process.web]\nboot_timeout = \"0s\"\n",
                    "phoenix.toml:2:16: process.web.boot_timeout: must be greater than 0");
  EXPECT_TOML_ERROR("[process.worker]\nstop_timeout = 0\n",
                    "phoenix.toml:2:16: process.worker.stop_timeout: must be greater than 0");
}

TEST(ApplyTomlTest, JitterMustBeLessThanMaxAge) {
  EXPECT_TOML_ERROR("[process.web]\nmax_age = \"2h\"\nmax_age_jitter = \"2h\"\n",
                    "phoenix.toml:3:1: process.web.max_age_jitter (2h) must be less than "
                    "process.web.max_age (2h)");
  EXPECT_TOML_ERROR("[process.web]\nmax_age_jitter = \"25h\"\n",
                    "phoenix.toml:2:1: process.web.max_age_jitter (1d1h) must be less than "
                    "process.web.max_age (1d)");
}

TEST(ApplyTomlTest, DefaultJitterIsFifteenPercentOfMaxAge) {
  EXPECT_EQ(
      MustApply("[process.web]\ninstances = 3\nmax_age = \"1h\"\n").processes[0].max_age_jitter,
      minutes(9));
  // Set explicitly, it is kept as given, in either order.
  EXPECT_EQ(MustApply("[process.web]\nmax_age_jitter = \"1m\"\nmax_age = \"1h\"\n")
                .processes[0]
                .max_age_jitter,
            minutes(1));
  EXPECT_EQ(MustApply("[process.web]\ninstances = 2\n").processes[0].max_age_jitter, minutes(216));
}

TEST(ApplyTomlTest, FilesystemModeTypo) {
  EXPECT_TOML_ERROR("[filesystem]\nmode = \"strcit\"\n",
                    "phoenix.toml:2:8: filesystem.mode: unknown mode 'strcit' (did you mean "
                    "'strict'? expected \"ephemeral\", \"strict\" or \"none\")");
  EXPECT_TOML_ERROR("[filesystem]\nmode = \"overlay\"\n",
                    "phoenix.toml:2:8: filesystem.mode: unknown mode 'overlay' (expected "
                    "\"ephemeral\", \"strict\" or \"none\")");
}

TEST(ApplyTomlTest, WritablePathsStayInsideTheAppRoot) {
  EXPECT_TOML_ERROR("[filesystem]\nwritable = [\"tmp/\", \"/var/log\"]\n",
                    "phoenix.toml:2:21: filesystem.writable[1]: '/var/log' is absolute; writable "
                    "paths are relative to the app root");
  EXPECT_TOML_ERROR("[filesystem]\nwritable = [\"../shared\"]\n",
                    "phoenix.toml:2:13: filesystem.writable[0]: '../shared' uses '..'");
  EXPECT_TOML_ERROR("[filesystem]\nwritable = [\"a/../../b\"]\n",
                    "phoenix.toml:2:13: filesystem.writable[0]: 'a/../../b' uses '..'");
  // Strict mode binds each writable path before the app starts: a pattern cannot be bound.
  EXPECT_TOML_ERROR("[filesystem]\nwritable = [\"tmp/\", \"*.log\"]\nmode = \"strict\"\n",
                    "phoenix.toml:2:21: filesystem.writable[1]: '*.log' is a pattern, and mode = "
                    "\"strict\" makes writable only paths it can name");
  EXPECT_TOML_ERROR("[filesystem]\nmode = \"strict\"\nwritable = [\"cache-?/\"]\n",
                    "phoenix.toml:3:13: filesystem.writable[0]: 'cache-?/' is a pattern");
  EXPECT_EQ(MustApply("[filesystem]\nwritable = [\"*.log\"]\n").filesystem.writable,
            std::vector<std::string>{"*.log"});
  EXPECT_TOML_ERROR("[filesystem]\nwritable = [\"\"]\n",
                    "phoenix.toml:2:13: filesystem.writable[0]: empty path");
  EXPECT_TOML_ERROR("[filesystem]\nwritable = [\"./\"]\n",
                    "phoenix.toml:2:13: filesystem.writable[0]: './' names the whole app root");
  EXPECT_TOML_ERROR("[filesystem]\nwritable = [\"a\\u0000b\"]\n",
                    "phoenix.toml:2:13: filesystem.writable[0]: the path contains a NUL byte");
}

TEST(ApplyTomlTest, TrustedProxies) {
  Config config;
  EXPECT_EQ(config.router.trusted_proxies, LoopbackRanges());  // the default
  ASSERT_TRUE(ApplyToml("[router]\ntrusted_proxies = [\"10.0.0.0/8\", \"fd00::/8\"]\n",
                        "phoenix.toml", config)
                  .ok());
  ASSERT_EQ(config.router.trusted_proxies.size(), 2u);
  EXPECT_EQ(config.router.trusted_proxies[0], *ParseAddressRange("10.0.0.0/8"));
  ASSERT_TRUE(ApplyToml("[router]\ntrusted_proxies = []\n", "phoenix.toml", config).ok());
  EXPECT_TRUE(config.router.trusted_proxies.empty());  // trust nobody

  EXPECT_TOML_ERROR("[router]\ntrusted_proxies = \"10.0.0.0/8\"\n",
                    "phoenix.toml:2:19: router.trusted_proxies: expected an array of addresses");
  EXPECT_TOML_ERROR("[router]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/33\"]\n",
                    "phoenix.toml:2:33: router.trusted_proxies[1]: '10.0.0.0/33': the prefix of "
                    "an IPv4 range is 0..32");
  EXPECT_TOML_ERROR("[router]\ntrusted_proxies = [\"localhost\"]\n",
                    "phoenix.toml:2:20: router.trusted_proxies[0]: 'localhost' is not an address "
                    "or a range");
  EXPECT_TOML_ERROR("[router]\ntrusted_proxies = [10]\n",
                    "phoenix.toml:2:20: router.trusted_proxies[0]: expected a string");
}

TEST(AddressRangeTest, ParsesAndMatches) {
  auto ip = [](const char* text) {
    auto r = ParseAddressRange(text);
    EXPECT_TRUE(r.ok()) << text;
    return r->bytes;  // a whole address: its bytes
  };
  auto range = [](const char* text) { return *ParseAddressRange(text); };
  EXPECT_TRUE(range("10.0.0.0/8").Contains(ip("10.255.1.2")));
  EXPECT_FALSE(range("10.0.0.0/8").Contains(ip("11.0.0.1")));
  EXPECT_TRUE(range("172.16.0.0/12").Contains(ip("172.31.255.255")));
  EXPECT_FALSE(range("172.16.0.0/12").Contains(ip("172.32.0.0")));
  EXPECT_TRUE(range("192.0.2.7").Contains(ip("192.0.2.7")));
  EXPECT_FALSE(range("192.0.2.7").Contains(ip("192.0.2.8")));
  EXPECT_TRUE(range("0.0.0.0/0").Contains(ip("8.8.8.8")));
  EXPECT_FALSE(range("0.0.0.0/0").Contains(ip("2001:db8::1")));  // IPv4 ranges hold IPv4 only
  EXPECT_TRUE(range("::1").Contains(ip("::1")));
  EXPECT_TRUE(range("fd00::/8").Contains(ip("fdab::1")));
  EXPECT_FALSE(range("fd00::/8").Contains(ip("fe80::1")));
  EXPECT_TRUE(range("127.0.0.0/8").Contains(ip("::ffff:127.0.0.1")));  // IPv4-mapped

  EXPECT_EQ(ParseAddressRange("10.0.0.0/").error().message,
            "'10.0.0.0/': the prefix of an IPv4 range is 0..32");
  EXPECT_EQ(ParseAddressRange("::/129").error().message,
            "'::/129': the prefix of an IPv6 range is 0..128");
  EXPECT_FALSE(ParseAddressRange("10.0.0.0/+8").ok());
  // Bits past the prefix: a typo that would trust far more than meant.
  EXPECT_EQ(ParseAddressRange("10.0.0.1/0").error().message,
            "'10.0.0.1/0' has bits set past its /0 prefix (did you mean \"0.0.0.0/0\"?)");
  EXPECT_EQ(ParseAddressRange("10.1.2.3/8").error().message,
            "'10.1.2.3/8' has bits set past its /8 prefix (did you mean \"10.0.0.0/8\"?)");
  EXPECT_EQ(ParseAddressRange("::ffff:10.0.0.0/8").error().message,
            "'::ffff:10.0.0.0/8' has bits set past its /8 prefix (did you mean \"::/8\"?)");
  EXPECT_TRUE(ParseAddressRange("::ffff:10.0.0.0/104").ok());  // mapped 10/8, written out
  EXPECT_TRUE(range("::ffff:10.0.0.0/104").Contains(ip("10.1.2.3")));
  EXPECT_FALSE(ParseAddressRange("").ok());
  EXPECT_FALSE(ParseAddressRange("10.0.0").ok());
  EXPECT_FALSE(ParseAddressRange("[::1]").ok());
  EXPECT_FALSE(ParseAddressRange(std::string_view("10.0.0.1\0", 9)).ok());
}

TEST(ApplyTomlTest, MessagesEscapeControlCharacters) {
  std::string message = ErrorOf("[process.web]\nmax_age = \"1\\nh\"\n");
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

// Quoted TOML keys may hold any character; a key is printed escaped, as values are.
TEST(ApplyTomlTest, KeyNamesInMessagesAreEscaped) {
  EXPECT_TOML_ERROR("[router]\n\"po\\u001b[2Jrt\" = 1\n",
                    "phoenix.toml:2:1: unknown key 'router.po\\x1b[2Jrt' ");
  EXPECT_TOML_ERROR("\"a\\nb\" = 1\n", "phoenix.toml:1:1: unknown key 'a\\nb' ");
  EXPECT_TOML_ERROR("[process.\"w\\teb\"]\ninstances = 1\n",
                    "phoenix.toml:1:10: unknown process type 'w\\teb' in [process.w\\teb]");
  for (const char* text : {"[router]\n\"a\\u0007\" = 1\n", "\"\\u0001\" = 1\n", "[\"\\u0001\"]\n",
                           "[process.\"\\r\"]\n"}) {
    std::string message = ErrorOf(text);
    EXPECT_TRUE(std::none_of(message.begin(), message.end(), [](char c) {
      return static_cast<unsigned char>(c) < 0x20;
    })) << message;
  }
}

// Arbitrary TOML-ish bytes never crash or throw; failures always say where.
TEST(ApplyTomlTest, SurvivesArbitraryInput) {
  const std::vector<std::string> pieces = {"[process.web]",
                                           "[router]",
                                           "[filesystem]",
                                           "[chaos]",
                                           "\n",
                                           "=",
                                           " ",
                                           "instances",
                                           "max_age",
                                           "port",
                                           "writable",
                                           "\"1h\"",
                                           "\"",
                                           "[",
                                           "]",
                                           "3",
                                           "-1",
                                           "{",
                                           "}",
                                           ",",
                                           "#",
                                           "\"02:00-05:00\"",
                                           "\"../x\"",
                                           "mode",
                                           "\xff",
                                           "'",
                                           "."};
  unsigned state = 777;
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    int length = static_cast<int>(state % 30);
    for (int i = 0; i < length; ++i) {
      state = state * 1103515245 + 12345;
      text += pieces[(state >> 16) % pieces.size()];
    }
    state = state * 1103515245 + 12345;
    Config config = TwoTypes();
    Status status = ApplyToml(text, "t.toml", config);
    if (!status.ok()) {
      EXPECT_EQ(status.error().message.rfind("t.toml:", 0), 0u) << status.error().message;
    }
  }
}

// ---- ClosestName, the did-you-mean behind the messages ------------------------------------

TEST(ClosestNameTest, EditDistanceAndPrefixes) {
  const std::vector<std::string> keys = {"instances", "max_age", "max_age_jitter"};
  EXPECT_EQ(ClosestName("max_ag", keys), "max_age");
  EXPECT_EQ(ClosestName("mxa_age", keys), "max_age");
  EXPECT_EQ(ClosestName("max_age_jitterr", keys), "max_age_jitter");
  EXPECT_EQ(ClosestName("inst", keys), "instances");             // truncated
  EXPECT_EQ(ClosestName("instances_count", keys), "instances");  // extended
  EXPECT_EQ(ClosestName("zzz", keys), std::nullopt);
  EXPECT_EQ(ClosestName("", keys), std::nullopt);
  EXPECT_EQ(ClosestName("anything", {}), std::nullopt);
  EXPECT_EQ(ClosestName(std::string(1000, 'a'), keys), std::nullopt);
}

TEST(ClosestNameTest, ShortNamesDoNotMatchEverything) {
  EXPECT_EQ(ClosestName("x", {"ms", "s"}), std::nullopt);
  EXPECT_EQ(ClosestName("wb", {"web", "worker"}), "web");
  EXPECT_EQ(ClosestName("wbe", {"web", "worker"}), "web");
}

TEST(QuoteForMessageTest, EscapesControlBytes) {
  EXPECT_EQ(QuoteForMessage("abc"), "'abc'");
  EXPECT_EQ(QuoteForMessage("a\nb\tc\rd"), "'a\\nb\\tc\\rd'");
  EXPECT_EQ(QuoteForMessage(std::string("\x01\x7f", 2)), "'\\x01\\x7f'");
  EXPECT_EQ(QuoteForMessage("caf\xC3\xA9"), "'caf\xC3\xA9'");  // UTF-8 stays readable.
  // A byte that is not whole UTF-8 is escaped: a message never prints broken text.
  EXPECT_EQ(QuoteForMessage("w\xC3"), "'w\\xc3'");
  EXPECT_EQ(QuoteForMessage("\xFF\xE2\x82\xAC"), "'\\xff\xE2\x82\xAC'");
  EXPECT_EQ(FirstCharacter("\xC3\xA9"
                           "b"),
            "\xC3\xA9");
  EXPECT_EQ(FirstCharacter("\xF0\x9F\x98\x80!"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(FirstCharacter("\xC3"
                           "b"),
            "\xC3");
  EXPECT_EQ(FirstCharacter(""), "");
}

}  // namespace
}  // namespace phoenix
