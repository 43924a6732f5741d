// Config: everything phoenix reads from an app root (Procfile, .env, phoenix.toml) and the
// command line, resolved into one immutable value. Loading never starts anything: a config
// error is found before the first process is born.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/duration.h"
#include "base/result.h"

namespace phoenix {

struct ProcfileEntry {
  std::string type;     // [A-Za-z0-9_-]+, e.g. "web"
  std::string command;  // run as `sh -c command`
  int line = 0;         // 1-based line in the Procfile, for messages
};

enum class FilesystemMode { kEphemeral, kStrict, kNone };
const char* ToString(FilesystemMode mode);

// The most instances of one process type, from phoenix.toml or --scale.
inline constexpr int kMaxInstances = 1000;

struct ProcessConfig {
  std::string type;
  std::string command;
  int instances = 1;  // default: 2 for web, 1 for other types
  Millis max_age = std::chrono::hours(24);
  Millis max_age_jitter = std::chrono::minutes(216);
  Millis boot_timeout = std::chrono::seconds(60);
  Millis drain_timeout = std::chrono::seconds(30);
  Millis stop_timeout = std::chrono::seconds(30);
  std::optional<DailyWindow> rotate_window;
};

enum class Balance { kRoundRobin, kLeastOutstanding };

// A range of client addresses: "10.0.0.0/8", "fd00::/8", or one address ("127.0.0.1", "::1").
// IPv4 is held as IPv4-mapped IPv6 (::ffff:a.b.c.d), so one comparison serves both families.
struct AddressRange {
  std::array<uint8_t, 16> bytes{};
  int prefix = 128;  // leading bits of `bytes` an address must share
  bool Contains(const std::array<uint8_t, 16>& address) const;
  bool operator==(const AddressRange&) const = default;
};
// The message says what is wrong ("10.0.0.0/33: the prefix of an IPv4 range is 0..32").
Result<AddressRange> ParseAddressRange(std::string_view text);
// 127.0.0.0/8 and ::1: trusted_proxies' default.
std::vector<AddressRange> LoopbackRanges();

struct RouterConfig {
  int port = 5000;  // from --port, else [router] port, else $PORT, else 5000
  std::string health_path;
  int threads = 0;  // event-loop threads; 0: one per CPU the process may use
  Balance balance = Balance::kRoundRobin;
  bool access_log = true;            // one line a request on the terminal, Heroku router style
  int max_header_bytes = 32 * 1024;  // request line + headers; more is 431
  Millis header_timeout = std::chrono::seconds(10);    // whole request head (slowloris)
  Millis idle_timeout = std::chrono::seconds(60);      // keep-alive wait for the next request
  Millis connect_timeout = std::chrono::seconds(5);    // to an instance
  Millis response_timeout = std::chrono::seconds(60);  // instance's response head, and each read
  // With no instance ready (all booting, a drill), a request waits this long for one before
  // its 503; 0 answers at once.
  Millis retry_timeout = std::chrono::seconds(5);
  // An upgraded connection (WebSocket...) with no byte either way for this long is closed, as
  // HAProxy's `timeout tunnel`: a peer that vanished without a FIN does not hold it (and its
  // instance's drain) forever. WebSocket apps ping well within it (socket.io: every 25 s).
  Millis tunnel_timeout = std::chrono::hours(1);
  // Clients whose X-Forwarded-Proto and X-Forwarded-Port are taken as true, and whose
  // X-Forwarded-For names the client for the access log: the TLS proxy or load balancer in
  // front. From anyone else those fields are replaced (a client could claim https). Loopback by
  // default: a local TLS proxy (nginx, Caddy) works as is, and a local process gains nothing, as
  // it can reach the instances directly.
  std::vector<AddressRange> trusted_proxies = LoopbackRanges();
  // `phoenix audit` only (never from phoenix.toml): listen on 127.0.0.1, send a request that
  // names an instance in X-Phoenix-Instance to that one, and name the incarnation that served
  // each answer in X-Phoenix-Instance ("web.2#3").
  bool audit = false;
};

struct FilesystemConfig {
  FilesystemMode mode = FilesystemMode::kEphemeral;
  std::vector<std::string> writable = {"tmp/"};  // relative to the app root
};

struct ChaosConfig {
  Millis mean_time_between_kills{0};  // 0 = off
  DailyWindow hours{9 * 60, 17 * 60};
};

// The admin address: Prometheus metrics (/metrics), status as JSON (/status) and a status page
// (/). Read-only, so loopback is only a default, not a requirement.
struct AdminConfig {
  bool enabled = true;             // [admin] listen = "" turns it off
  std::string host = "127.0.0.1";  // an IP literal (IPv6 without brackets)
  int port = 0;                    // 0: a free port, said at start and by `ps`
};

// "127.0.0.1:9100", "[::1]:9100", "localhost:9100"; "" is off. The message says what is wrong.
Result<AdminConfig> ParseListenAddress(std::string_view text);

struct Config {
  std::string app_root;                  // absolute, symlinks resolved
  std::vector<ProcessConfig> processes;  // in Procfile order
  // Heroku's `release:` line: a one-off task of a deploy (migrations), not a process to keep
  // running; phoenix does not run it (as `heroku local`), `up` says so.
  std::string release_command;
  std::map<std::string, std::string> env;  // from .env (and --env)
  RouterConfig router;
  FilesystemConfig filesystem;
  ChaosConfig chaos;
  AdminConfig admin;

  const ProcessConfig* Find(const std::string& type) const;
};

// Parsers of the three files. Each error message starts with "file:line:column: ".
Result<std::vector<ProcfileEntry>> ParseProcfile(const std::string& text,
                                                 const std::string& file_name);
Result<std::map<std::string, std::string>> ParseDotenv(const std::string& text,
                                                       const std::string& file_name);

// Options from the command line of `phoenix up` / `phoenix audit`.
struct LoadOptions {
  std::string dir = ".";
  std::optional<std::string> config_file;  // default DIR/phoenix.toml, optional
  std::optional<std::string> env_file;     // default DIR/.env, optional
  std::optional<int> port;
  std::map<std::string, int> scale;  // from --scale web=3,worker=1
};

// A whole number as users type it in flags and $PORT: decimal digits only ("80", "0080"; not
// "+80", " 80", "0x50" or "1e3"), within min..max. The message says which rule was broken.
Result<int> ParseWholeNumber(std::string_view text, int min, int max);

// Parses "web=3,worker=1" (also accepts separate "web=3" words joined by the caller).
Result<std::map<std::string, int>> ParseScale(const std::string& text);

// Reads and validates everything; `environ_port` is $PORT if set.
Result<Config> LoadConfig(const LoadOptions& options, std::optional<std::string> environ_port);

// Applies phoenix.toml text onto `config` (whose processes already come from the Procfile).
// Unknown keys are errors with a "did you mean" suggestion.
Status ApplyToml(const std::string& text, const std::string& file_name, Config& config);

// Why the Procfile's `release:` line never runs: for --scale/`scale release=N`, N > 0.
inline constexpr const char* kReleaseNotRun =
    "the Procfile's 'release' line is a deploy's one-off task (migrations), which phoenix does "
    "not run; run it before `phoenix up`";
// The note `up` and `audit` print when the Procfile has a release line.
std::string ReleaseNote(const Config& config);

// Message helpers shared by the parsers (and usable by the CLI for its own "did you mean").
// The candidate closest to a mistyped `name` (edit distance <= 2, or a prefix), if any.
std::optional<std::string> ClosestName(std::string_view name,
                                       const std::vector<std::string>& candidates);
// `text` in single quotes with control bytes escaped (\n, \x01), for a one-line message.
std::string QuoteForMessage(std::string_view text);
// The first character of `text`: its whole UTF-8 sequence ("é" is two bytes), or one byte when
// that is not valid UTF-8; for "invalid character X" messages.
std::string_view FirstCharacter(std::string_view text);

}  // namespace phoenix
