// LoadConfig: from an app root and the command line to one Config, in the order a user would
// reason about it: the folder, its Procfile, its .env, its phoenix.toml, then the flags that
// override them. Nothing is started here, so a wrong file stops phoenix before any process is
// born. Also the message helpers the parsers share.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/text.h"
#include "config/config.h"

namespace phoenix {
namespace {

constexpr int kDefaultPort = 5000;
// Config files are small; a bigger one is a wrong path (a log, a binary) rather than config.
constexpr size_t kMaxConfigFileBytes = 1 << 20;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsTypeChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '_' || c == '-';
}

// "DIR/NAME" as the user would type it: plain "NAME" for the current folder.
std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir == ".") return name;
  if (!dir.empty() && dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

enum class FileKind { kMissing, kDirectory, kRegular, kOther };

Result<FileKind> Stat(const std::string& path, const std::string& display_name) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return FileKind::kMissing;
    return Error{fmt::format("{}: {}", display_name, std::strerror(errno))};
  }
  if (S_ISDIR(info.st_mode)) return FileKind::kDirectory;
  return S_ISREG(info.st_mode) ? FileKind::kRegular : FileKind::kOther;
}

// A file phoenix finds in the app root by its name must be a plain file: a named pipe there
// with no writer would hold `up` for ever, a device would be read without end. (One given on
// the command line may be a pipe: `--env <(vault read ...)`.)
Status ExpectRegular(FileKind kind, const std::string& display_name) {
  if (kind != FileKind::kOther) return OkStatus();
  return Error{fmt::format(
      "{}: not a regular file (a named pipe, socket or device); phoenix reads it from the app "
      "root only as a plain file",
      display_name)};
}

// Reads all of a file. Pipes are fine (`--env <(vault read ...)`); directories are not.
Result<std::string> ReadFile(const std::string& path, const std::string& display_name) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{fmt::format("{}: {}", display_name, std::strerror(errno))};
  struct stat info;
  if (fstat(fd, &info) == 0 && S_ISDIR(info.st_mode)) {
    close(fd);
    return Error{fmt::format("{}: is a directory, expected a file", display_name)};
  }
  std::string text;
  char buffer[16384];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int saved = errno;
      close(fd);
      return Error{fmt::format("{}: {}", display_name, std::strerror(saved))};
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxConfigFileBytes) {
      close(fd);
      return Error{fmt::format("{}: larger than {} bytes; is this the right file?", display_name,
                               kMaxConfigFileBytes)};
    }
  }
  close(fd);
  return text;
}

// A file named on the command line must exist; the default one in the app root may not.
Result<std::optional<std::string>> ReadOptionalFile(const std::optional<std::string>& given,
                                                    const std::string& flag,
                                                    const std::string& default_path,
                                                    const std::string& default_display) {
  if (given) {
    ASSIGN_OR_RETURN(FileKind kind, Stat(*given, *given));
    if (kind == FileKind::kMissing) {
      return Error{fmt::format("{}: not found (given with {})", *given, flag)};
    }
    ASSIGN_OR_RETURN(std::string text, ReadFile(*given, *given));
    return std::optional<std::string>(std::move(text));
  }
  ASSIGN_OR_RETURN(FileKind kind, Stat(default_path, default_display));
  if (kind == FileKind::kMissing) {
    // A symbolic link to a file that is not there (a shared secrets file not mounted on this
    // machine) is a mistake to report, not an absent file: starting without it would run the
    // app with the wrong settings (docker --env-file refuses it too).
    char target[4096];
    ssize_t n = readlink(default_path.c_str(), target, sizeof target - 1);
    if (n > 0) {
      return Error{fmt::format("{}: a symbolic link to {}, which does not exist", default_display,
                               std::string_view(target, static_cast<size_t>(n)))};
    }
    return std::optional<std::string>();
  }
  RETURN_IF_ERROR(ExpectRegular(kind, default_display));
  ASSIGN_OR_RETURN(std::string text, ReadFile(default_path, default_display));
  return std::optional<std::string>(std::move(text));
}

Result<std::string> ResolveAppRoot(const std::string& dir) {
  ASSIGN_OR_RETURN(FileKind kind, Stat(dir, dir));
  if (kind == FileKind::kMissing) return Error{fmt::format("{}: no such directory", dir)};
  if (kind != FileKind::kDirectory) return Error{fmt::format("{}: not a directory", dir)};
  std::error_code error;
  std::filesystem::path root = std::filesystem::canonical(dir, error);
  if (error) return Error{fmt::format("{}: {}", dir, error.message())};
  return root.string();
}

std::string UnknownTypeMessage(std::string_view type, const Config& config) {
  std::vector<std::string> types;
  for (const ProcessConfig& process : config.processes) types.push_back(process.type);
  std::string suggestion;
  if (auto closest = ClosestName(type, types)) {
    suggestion = fmt::format(" (did you mean '{}'?)", *closest);
  }
  std::string known;
  for (const std::string& name : types) known += (known.empty() ? "" : ", ") + name;
  return fmt::format("unknown process type {}{}; the Procfile defines: {}", QuoteForMessage(type),
                     suggestion, known);
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::optional<std::string> ClosestName(std::string_view name,
                                       const std::vector<std::string>& candidates) {
  // Long names are not typos of short keys, and the distance costs length squared.
  constexpr size_t kMaxNameLength = 64;
  constexpr size_t kMaxDistance = 2;
  if (name.empty() || name.size() > kMaxNameLength) return std::nullopt;
  const std::string* best = nullptr;
  size_t best_distance = kMaxDistance + 1;
  for (const std::string& candidate : candidates) {
    size_t distance = EditDistance(name, candidate);
    // Guard against "x" suggesting "ms": a suggestion must keep some of the candidate.
    if (distance < best_distance && distance < candidate.size()) {
      best = &candidate;
      best_distance = distance;
    }
  }
  if (best != nullptr) return *best;
  // A truncated or extended name ("max", "instances_count") is close in intent, not letters.
  for (const std::string& candidate : candidates) {
    bool truncated = name.size() >= 2 && candidate.starts_with(name);
    bool extended = candidate.size() >= 3 && name.starts_with(candidate);
    if (truncated || extended) return candidate;
  }
  return std::nullopt;
}

namespace {
// Length of the valid UTF-8 sequence at the start of `text`, or 0 (a stray or broken byte).
size_t Utf8Length(std::string_view text) {
  const auto lead = static_cast<unsigned char>(text[0]);
  size_t n = lead < 0x80           ? 1
             : (lead >> 5) == 0x6  ? 2
             : (lead >> 4) == 0xe  ? 3
             : (lead >> 3) == 0x1e ? 4
                                   : 0;
  if (n == 0 || n > text.size()) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xc0) != 0x80) return 0;
  }
  return n;
}
}  // namespace

std::string_view FirstCharacter(std::string_view text) {
  if (text.empty()) return text;
  size_t n = Utf8Length(text);
  return text.substr(0, n ? n : 1);
}

std::string QuoteForMessage(std::string_view text) {
  return fmt::format("'{}'", PrintableLine(text));
}

Result<int> ParseWholeNumber(std::string_view text, int min, int max) {
  if (text.empty() || !std::all_of(text.begin(), text.end(), IsDigit)) {
    return Error{
        fmt::format("{} is not a whole number (expected {}..{})", QuoteForMessage(text), min, max)};
  }
  long long value = 0;
  for (char c : text) {
    value = value * 10 + (c - '0');
    if (value > max) break;  // Stops before a long run of digits can overflow.
  }
  if (value < min || value > max) {
    return Error{fmt::format("{} is out of range ({}..{})", text, min, max)};
  }
  return static_cast<int>(value);
}

Result<AdminConfig> ParseListenAddress(std::string_view text) {
  AdminConfig admin;
  if (text.empty()) {
    admin.enabled = false;
    return admin;
  }
  constexpr std::string_view kExample = "HOST:PORT, e.g. \"127.0.0.1:9100\" or \"[::1]:9100\"";
  if (text.find('\0') != std::string_view::npos) {
    return Error{fmt::format("{} contains a NUL byte", QuoteForMessage(text))};
  }
  std::string_view host, port;
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Error{fmt::format("{} is not {}", QuoteForMessage(text), kExample)};
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return Error{
          fmt::format("{} has no port ({}; \"\" turns it off)", QuoteForMessage(text), kExample)};
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return Error{fmt::format("{}: an IPv6 address goes in brackets ({})", QuoteForMessage(text),
                               kExample)};
    }
  }
  const bool bracketed = text.front() == '[';
  if (host == "localhost" && !bracketed) host = "127.0.0.1";
  in_addr v4{};
  in6_addr v6{};
  std::string host_z(host);
  const bool is_v4 = inet_pton(AF_INET, host_z.c_str(), &v4) == 1;
  const bool is_v6 = inet_pton(AF_INET6, host_z.c_str(), &v6) == 1;
  if (bracketed && !is_v6) {
    return Error{fmt::format("{}: only an IPv6 address goes in brackets ({})",
                             QuoteForMessage(text), kExample)};
  }
  if (!is_v4 && !is_v6) {
    return Error{
        fmt::format("{} is not an IP address (the host of {} must be an IPv4 or IPv6 "
                    "address, or localhost)",
                    QuoteForMessage(host), QuoteForMessage(text))};
  }
  auto number = ParseWholeNumber(port, 0, 65535);
  if (!number.ok()) return Error{fmt::format("port {}", number.error().message)};
  admin.host = host_z;
  admin.port = *number;
  return admin;
}

bool AddressRange::Contains(const std::array<uint8_t, 16>& address) const {
  const int whole = prefix / 8;
  if (std::memcmp(bytes.data(), address.data(), static_cast<size_t>(whole)) != 0) return false;
  const int rest = prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (bytes[whole] & mask) == (address[whole] & mask);
}

Result<AddressRange> ParseAddressRange(std::string_view text) {
  constexpr std::string_view kExample = "an address or a range, e.g. \"10.0.0.0/8\" or \"::1\"";
  if (text.find('\0') != std::string_view::npos) {
    return Error{fmt::format("{} contains a NUL byte", QuoteForMessage(text))};
  }
  const size_t slash = text.find('/');
  const std::string host(text.substr(0, slash));
  AddressRange range;
  in_addr v4{};
  in6_addr v6{};
  int max_prefix = 128;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    range.bytes[10] = range.bytes[11] = 0xff;  // ::ffff:a.b.c.d
    std::memcpy(&range.bytes[12], &v4, 4);
    max_prefix = 32;
  } else if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    std::memcpy(range.bytes.data(), &v6, 16);
  } else {
    return Error{fmt::format("{} is not {}", QuoteForMessage(text), kExample)};
  }
  int prefix = max_prefix;
  if (slash != std::string_view::npos) {
    auto bits = ParseWholeNumber(text.substr(slash + 1), 0, max_prefix);
    if (!bits.ok()) {
      return Error{fmt::format("{}: the prefix of an {} range is 0..{}", QuoteForMessage(text),
                               max_prefix == 32 ? "IPv4" : "IPv6", max_prefix)};
    }
    prefix = *bits;
  }
  range.prefix = max_prefix == 32 ? 96 + prefix : prefix;
  // Bits set past the prefix are a typo in a list that decides whom to believe ("10.0.0.1/0"
  // would trust every IPv4 client, "::ffff:10.0.0.0/8" is ::/8): refused, as Python's
  // ipaddress does, with the range that was probably meant.
  AddressRange meant = range;
  for (int bit = range.prefix; bit < 128; ++bit) {
    meant.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  if (meant.bytes != range.bytes) {
    char text_buf[INET6_ADDRSTRLEN];
    const void* src = max_prefix == 32 ? static_cast<const void*>(&meant.bytes[12])
                                       : static_cast<const void*>(meant.bytes.data());
    inet_ntop(max_prefix == 32 ? AF_INET : AF_INET6, src, text_buf, sizeof text_buf);
    return Error{fmt::format("{} has bits set past its /{} prefix (did you mean \"{}/{}\"?)",
                             QuoteForMessage(text), prefix, text_buf, prefix)};
  }
  return range;
}

std::vector<AddressRange> LoopbackRanges() {
  return {*ParseAddressRange("127.0.0.0/8"), *ParseAddressRange("::1")};
}

const ProcessConfig* Config::Find(const std::string& type) const {
  for (const ProcessConfig& process : processes) {
    if (process.type == type) return &process;
  }
  return nullptr;
}

Result<std::map<std::string, int>> ParseScale(const std::string& text) {
  constexpr std::string_view kExample = "expected TYPE=N[,TYPE=N...], e.g. web=3,worker=1";
  if (text.empty()) return Error{fmt::format("empty scale ({})", kExample)};
  std::map<std::string, int> scale;
  size_t start = 0;
  for (int index = 1; start <= text.size(); ++index) {
    size_t comma = std::min(text.find(',', start), text.size());
    std::string_view entry = std::string_view(text).substr(start, comma - start);
    start = comma + 1;
    if (entry.empty()) {
      return Error{
          fmt::format("entry {} of {} is empty ({})", index, QuoteForMessage(text), kExample)};
    }
    size_t equals = entry.find('=');
    if (equals == std::string_view::npos) {
      return Error{fmt::format("entry {} has no '=N' ({})", QuoteForMessage(entry), kExample)};
    }
    std::string_view type = entry.substr(0, equals);
    if (type.empty()) {
      return Error{fmt::format("entry {} has no process type before '=' ({})",
                               QuoteForMessage(entry), kExample)};
    }
    auto bad_char = std::find_if_not(type.begin(), type.end(), IsTypeChar);
    if (bad_char != type.end()) {
      return Error{
          fmt::format("entry {}: invalid character {} in process type (use letters, "
                      "digits, '_' and '-')",
                      QuoteForMessage(entry),
                      QuoteForMessage(FirstCharacter(type.substr(bad_char - type.begin()))))};
    }
    auto count = ParseWholeNumber(entry.substr(equals + 1), 0, kMaxInstances);
    if (!count.ok()) {
      return Error{fmt::format("entry {}: {}", QuoteForMessage(entry), count.error().message)};
    }
    if (!scale.emplace(std::string(type), *count).second) {
      return Error{
          fmt::format("entry {}: process type '{}' is given twice", QuoteForMessage(entry), type)};
    }
  }
  return scale;
}

Result<Config> LoadConfig(const LoadOptions& options, std::optional<std::string> environ_port) {
  const std::string dir = options.dir.empty() ? "." : options.dir;
  Config config;
  ASSIGN_OR_RETURN(config.app_root, ResolveAppRoot(dir));

  const std::string procfile_name = JoinPath(dir, "Procfile");
  const std::string procfile_path = config.app_root + "/Procfile";
  ASSIGN_OR_RETURN(FileKind procfile_kind, Stat(procfile_path, procfile_name));
  if (procfile_kind == FileKind::kMissing) {
    return Error{
        fmt::format("{}: not found (phoenix needs a Procfile with lines like "
                    "'web: node server.js')",
                    procfile_name)};
  }
  RETURN_IF_ERROR(ExpectRegular(procfile_kind, procfile_name));
  ASSIGN_OR_RETURN(std::string procfile_text, ReadFile(procfile_path, procfile_name));
  ASSIGN_OR_RETURN(std::vector<ProcfileEntry> entries, ParseProcfile(procfile_text, procfile_name));
  for (ProcfileEntry& entry : entries) {
    if (entry.type == "release") {
      // Run again and again as a process (it exits when done) it would be taken for a crash.
      config.release_command = std::move(entry.command);
      continue;
    }
    ProcessConfig process;
    process.instances = entry.type == "web" ? 2 : 1;  // web is routed: two keep it up in a rebirth
    process.type = std::move(entry.type);
    process.command = std::move(entry.command);
    config.processes.push_back(std::move(process));
  }

  if (config.processes.empty()) {
    return Error{fmt::format(
        "{}: only a 'release' line: it is a deploy's one-off task, which phoenix does not run; "
        "add the processes to run, e.g. 'web: node server.js'",
        procfile_name)};
  }

  const std::string env_name = options.env_file.value_or(JoinPath(dir, ".env"));
  ASSIGN_OR_RETURN(
      std::optional<std::string> env_text,
      ReadOptionalFile(options.env_file, "--env", config.app_root + "/.env", env_name));
  if (env_text) {
    ASSIGN_OR_RETURN(config.env, ParseDotenv(*env_text, env_name));
  }

  // 0 marks "no port in phoenix.toml": ApplyToml refuses 0, so only the default leaves it.
  config.router.port = 0;
  const std::string toml_name = options.config_file.value_or(JoinPath(dir, "phoenix.toml"));
  ASSIGN_OR_RETURN(std::optional<std::string> toml_text,
                   ReadOptionalFile(options.config_file, "--config",
                                    config.app_root + "/phoenix.toml", toml_name));
  if (toml_text) RETURN_IF_ERROR(ApplyToml(*toml_text, toml_name, config));

  for (const auto& entry : options.scale) {
    const std::string& type = entry.first;  // a plain name: clang 14 cannot capture bindings
    const int instances = entry.second;
    auto it = std::find_if(config.processes.begin(), config.processes.end(),
                           [&](const ProcessConfig& p) { return p.type == type; });
    if (it == config.processes.end() && type == "release" && !config.release_command.empty()) {
      // release=0, the old way to keep the release line from running, is what happens anyway.
      if (instances == 0) continue;
      return Error{fmt::format("--scale: release={}: {}", instances, kReleaseNotRun)};
    }
    if (it == config.processes.end()) {
      return Error{"--scale: " + UnknownTypeMessage(type, config)};
    }
    if (instances < 0 || instances > kMaxInstances) {
      return Error{
          fmt::format("--scale: {}={} is out of range (0..{})", type, instances, kMaxInstances)};
    }
    it->instances = instances;
  }

  if (options.port) {
    if (*options.port < 1 || *options.port > 65535) {
      return Error{fmt::format("--port: {} is out of range (1..65535)", *options.port)};
    }
    config.router.port = *options.port;
  } else if (config.router.port != 0) {
    // [router] port from phoenix.toml: the file is more specific than the environment.
  } else if (environ_port) {
    auto port = ParseWholeNumber(*environ_port, 1, 65535);
    if (!port.ok()) return Error{"$PORT: " + port.error().message};
    config.router.port = *port;
  } else {
    config.router.port = kDefaultPort;
  }
  return config;
}

std::string ReleaseNote(const Config& config) {
  if (config.release_command.empty()) return "";
  return fmt::format(
      "note: the Procfile's 'release' line is not run ({}): it is a deploy's one-off task "
      "(migrations), not a process to keep alive; run it before `phoenix up`, as Heroku runs it "
      "before a release starts (`heroku local` skips it too)",
      config.release_command);
}

}  // namespace phoenix
