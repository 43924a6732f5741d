// phoenix.toml onto a Config. toml++ does the TOML; this file decides which tables and keys
// exist, what each value may be, and says where a wrong one is. Every key is checked, because a
// mistyped `max_ag = "1h"` that is silently ignored leaves instances living 24 hours while the
// user believes they rotate every hour.
#include <fmt/format.h>
#include <sys/stat.h>
#include <toml++/toml.h>

#include <algorithm>
#include <exception>
#include <span>
#include <string_view>

#include "config/config.h"

namespace phoenix {
namespace {

// The schema, in the order PRODUCT.md documents it (also the order of "known keys" hints);
// constexpr so that no static object needs destroying.
using NameList = std::span<const std::string_view>;
constexpr std::string_view kTopLevelTables[] = {"router", "process", "filesystem", "chaos",
                                                "admin"};
constexpr std::string_view kRouterKeys[] = {
    "port",           "health_path",    "threads",         "balance",          "access_log",
    "header_timeout", "idle_timeout",   "connect_timeout", "response_timeout", "max_header_bytes",
    "retry_timeout",  "tunnel_timeout", "trusted_proxies"};
constexpr std::string_view kProcessKeys[] = {"instances",    "max_age",       "max_age_jitter",
                                             "boot_timeout", "drain_timeout", "stop_timeout",
                                             "rotate_window"};
constexpr std::string_view kFilesystemKeys[] = {"mode", "writable"};
constexpr std::string_view kChaosKeys[] = {"mean_time_between_kills", "hours"};
constexpr std::string_view kAdminKeys[] = {"listen"};
constexpr std::string_view kFilesystemModes[] = {"ephemeral", "strict", "none"};

// Durations end up added to steady_clock time points, which count nanoseconds in an int64 (about
// 292 years); a longer one overflows into the past, so "200000d" would mean "at once". A century
// is longer than any real timeout or max_age.
constexpr Millis kMaxDuration = std::chrono::hours(24 * 36500);
// Chaos draws its gaps from an exponential distribution, which can reach ~40 times the mean; a
// year keeps the longest draw far inside the clock's range. Rarer kills than that: "0" (off).
constexpr Millis kMaxChaosMean = std::chrono::hours(24 * 365);

bool Contains(NameList names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::vector<std::string> ToStrings(NameList names) { return {names.begin(), names.end()}; }

// "file:line:column: ", or "file: " for nodes toml++ made up (implicit tables have no place).
std::string Where(const std::string& file_name, const toml::source_region& region) {
  if (region.begin.line == 0) return file_name + ": ";
  return fmt::format("{}:{}:{}: ", file_name, region.begin.line, region.begin.column);
}

std::string_view KindName(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// "string 'abc'" tells the user which value we mean when they wrote several.
std::string DescribeValue(const toml::node& node) {
  if (const auto* text = node.as_string()) {
    return fmt::format("string {}", QuoteForMessage(text->get()));
  }
  if (const auto* number = node.as_integer()) return fmt::format("integer {}", number->get());
  return std::string(KindName(node.type()));
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// "(did you mean 'x'?)" when one is close, else the list of what exists.
std::string Hint(std::string_view name, const std::vector<std::string>& known,
                 std::string_view what) {
  if (auto closest = ClosestName(name, known)) return fmt::format("(did you mean '{}'?)", *closest);
  return fmt::format("(known {}: {})", what, JoinNames(known));
}

struct Entry {
  const toml::key* key;
  const toml::node* node;
};

// toml++ keeps tables sorted by key; errors should come in the order the user wrote them.
std::vector<Entry> InSourceOrder(const toml::table& table) {
  std::vector<Entry> entries;
  for (const auto& [key, node] : table) entries.push_back(Entry{&key, &node});
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    const auto& pa = a.key->source().begin;
    const auto& pb = b.key->source().begin;
    return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
  });
  return entries;
}

// Writable paths are prefixes matched against what an incarnation wrote, relative to the app
// root: "./tmp//x" becomes "tmp/x"; a trailing '/' is kept. Paths that leave the root are
// refused rather than ignored, since they could never match.
Result<std::string> NormalizeWritable(std::string_view raw) {
  if (raw.empty()) return Error{"empty path"};
  if (raw.find('\0') != std::string_view::npos) return Error{"the path contains a NUL byte"};
  if (raw.front() == '/') {
    return Error{fmt::format("{} is absolute; writable paths are relative to the app root",
                             QuoteForMessage(raw))};
  }
  std::string normalized;
  bool ends_as_directory = false;
  size_t start = 0;
  while (start <= raw.size()) {
    size_t slash = std::min(raw.find('/', start), raw.size());
    std::string_view part = raw.substr(start, slash - start);
    start = slash + 1;
    if (part.empty() || part == ".") {
      ends_as_directory = true;
      continue;
    }
    if (part == "..") {
      return Error{fmt::format("{} uses '..'; writable paths must stay inside the app root",
                               QuoteForMessage(raw))};
    }
    normalized += (normalized.empty() ? "" : "/") + std::string(part);
    ends_as_directory = false;
  }
  // A prefix of "" would hide every lost file, which defeats the point of reporting them.
  if (normalized.empty()) {
    return Error{
        fmt::format("{} names the whole app root; list the folders the app is "
                    "expected to write to, e.g. \"tmp/\"",
                    QuoteForMessage(raw))};
  }
  if (ends_as_directory) normalized += '/';
  return normalized;
}

class TomlApplier {
 public:
  TomlApplier(const std::string& file_name, Config& config)
      : file_name_(file_name), config_(config) {}

  Status Apply(const toml::table& root) {
    for (const Entry& entry : InSourceOrder(root)) {
      std::string name(entry.key->str());
      if (!Contains(kTopLevelTables, name)) {
        return UnknownTopLevel(entry);
      }
      ASSIGN_OR_RETURN(const toml::table* table, ExpectTable(entry, name));
      if (name == "router") RETURN_IF_ERROR(ApplyRouter(*table));
      if (name == "process") RETURN_IF_ERROR(ApplyProcesses(*table));
      if (name == "filesystem") RETURN_IF_ERROR(ApplyFilesystem(*table));
      if (name == "chaos") RETURN_IF_ERROR(ApplyChaos(*table));
      if (name == "admin") RETURN_IF_ERROR(ApplyAdmin(*table));
    }
    return OkStatus();
  }

 private:
  Error ErrorAt(const toml::source_region& where, std::string_view message) const {
    return Error{Where(file_name_, where) + std::string(message)};
  }
  Error ValueError(const toml::node& node, std::string_view path, std::string_view message) const {
    return ErrorAt(node.source(), fmt::format("{}: {}", path, message));
  }
  Error UnknownKey(const Entry& entry, std::string_view table_path, NameList known) const {
    std::string_view name = entry.key->str();
    return ErrorAt(
        entry.key->source(),
        fmt::format("unknown key {} {}", QuoteForMessage(fmt::format("{}.{}", table_path, name)),
                    Hint(name, ToStrings(known), "keys")));
  }

  // A key at the top level: a mistyped table, or a key that belongs inside one.
  Error UnknownTopLevel(const Entry& entry) const {
    std::string name(entry.key->str());
    const std::pair<std::string, NameList> tables[] = {
        {"router", kRouterKeys},
        {"process." + FirstProcessType(), kProcessKeys},
        {"filesystem", kFilesystemKeys},
        {"chaos", kChaosKeys},
        {"admin", kAdminKeys}};
    for (const auto& [table, keys] : tables) {
      if (Contains(keys, name)) {
        return ErrorAt(entry.key->source(),
                       fmt::format("unknown key '{}' (did you mean '{}.{}'? it belongs in [{}])",
                                   name, table, name, table));
      }
    }
    std::string_view what = entry.node->is_table() ? "table" : "key";
    return ErrorAt(entry.key->source(),
                   fmt::format("unknown {} {} {}", what, QuoteForMessage(name),
                               Hint(name, ToStrings(kTopLevelTables), "tables")));
  }

  std::string FirstProcessType() const {
    return config_.processes.empty() ? "web" : config_.processes.front().type;
  }

  Result<const toml::table*> ExpectTable(const Entry& entry, std::string_view path) const {
    if (const toml::table* table = entry.node->as_table()) return table;
    return ValueError(*entry.node, path,
                      fmt::format("expected a table, got {}", DescribeValue(*entry.node)));
  }

  Result<int64_t> ExpectInteger(const toml::node& node, std::string_view path, int64_t min,
                                int64_t max) const {
    const auto* value = node.as_integer();
    if (value == nullptr) {
      return ValueError(node, path,
                        fmt::format("expected an integer, got {}", DescribeValue(node)));
    }
    if (value->get() < min || value->get() > max) {
      return ValueError(node, path,
                        fmt::format("{} is out of range ({}..{})", value->get(), min, max));
    }
    return value->get();
  }

  Result<std::string> ExpectString(const toml::node& node, std::string_view path,
                                   std::string_view example) const {
    if (const auto* value = node.as_string()) return value->get();
    return ValueError(
        node, path, fmt::format("expected a string like {}, got {}", example, DescribeValue(node)));
  }

  Result<Millis> ExpectDuration(const toml::node& node, std::string_view path,
                                std::string_view max_text = "100 years",
                                Millis max = kMaxDuration) const {
    // A bare 0 can only mean "none"; any other bare number lacks the unit users must choose.
    if (const auto* number = node.as_integer(); number != nullptr && number->get() == 0) {
      return Millis{0};
    }
    ASSIGN_OR_RETURN(std::string text, ExpectString(node, path, "\"90s\" or \"24h\""));
    auto duration = ParseDuration(text);
    if (!duration.ok()) return ValueError(node, path, duration.error().message);
    if (*duration > max) {
      return ValueError(node, path,
                        fmt::format("{} is too long (at most {}, {})", QuoteForMessage(text),
                                    FormatDuration(max), max_text));
    }
    return *duration;
  }

  Result<DailyWindow> ExpectWindow(const toml::node& node, std::string_view path) const {
    ASSIGN_OR_RETURN(std::string text, ExpectString(node, path, "\"02:00-05:00\""));
    auto window = ParseDailyWindow(text);
    if (!window.ok()) return ValueError(node, path, window.error().message);
    return *window;
  }

  Status ApplyRouter(const toml::table& table) {
    for (const Entry& entry : InSourceOrder(table)) {
      std::string_view name = entry.key->str();
      std::string path = fmt::format("router.{}", name);
      if (name == "port") {
        ASSIGN_OR_RETURN(int64_t port, ExpectInteger(*entry.node, path, 1, 65535));
        config_.router.port = static_cast<int>(port);
      } else if (name == "health_path") {
        ASSIGN_OR_RETURN(std::string health_path, ExpectString(*entry.node, path, "\"/health\""));
        if (!health_path.empty() && health_path.front() != '/') {
          return ValueError(
              *entry.node, path,
              fmt::format("must be \"\" or start with '/', got {}", QuoteForMessage(health_path)));
        }
        // It goes into a request line as is; a space or newline would break the request.
        if (std::any_of(health_path.begin(), health_path.end(),
                        [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; })) {
          return ValueError(*entry.node, path,
                            fmt::format("must not contain spaces or control characters, got {}",
                                        QuoteForMessage(health_path)));
        }
        config_.router.health_path = std::move(health_path);
      } else if (name == "threads") {
        ASSIGN_OR_RETURN(int64_t threads, ExpectInteger(*entry.node, path, 0, 256));
        config_.router.threads = static_cast<int>(threads);
      } else if (name == "balance") {
        ASSIGN_OR_RETURN(std::string balance, ExpectString(*entry.node, path, "\"round-robin\""));
        if (balance == "round-robin") {
          config_.router.balance = Balance::kRoundRobin;
        } else if (balance == "least-outstanding") {
          config_.router.balance = Balance::kLeastOutstanding;
        } else {
          return ValueError(*entry.node, path,
                            fmt::format("must be \"round-robin\" or \"least-outstanding\", got {}",
                                        QuoteForMessage(balance)));
        }
      } else if (name == "access_log") {
        const auto* value = entry.node->as_boolean();
        if (value == nullptr) {
          return ValueError(
              *entry.node, path,
              fmt::format("expected true or false, got {}", DescribeValue(*entry.node)));
        }
        config_.router.access_log = value->get();
      } else if (name == "max_header_bytes") {
        ASSIGN_OR_RETURN(int64_t bytes, ExpectInteger(*entry.node, path, 1024, 1 << 20));
        config_.router.max_header_bytes = static_cast<int>(bytes);
      } else if (name == "header_timeout" || name == "idle_timeout" || name == "connect_timeout" ||
                 name == "response_timeout" || name == "retry_timeout" ||
                 name == "tunnel_timeout") {
        ASSIGN_OR_RETURN(Millis timeout, ExpectDuration(*entry.node, path));
        if (timeout.count() <= 0 && name != "retry_timeout") {
          return ValueError(*entry.node, path, "must be more than 0");
        }
        if (name == "header_timeout") config_.router.header_timeout = timeout;
        if (name == "idle_timeout") config_.router.idle_timeout = timeout;
        if (name == "connect_timeout") config_.router.connect_timeout = timeout;
        if (name == "response_timeout") config_.router.response_timeout = timeout;
        if (name == "retry_timeout") config_.router.retry_timeout = timeout;
        if (name == "tunnel_timeout") config_.router.tunnel_timeout = timeout;
      } else if (name == "trusted_proxies") {
        ASSIGN_OR_RETURN(
            config_.router.trusted_proxies,
            ExpectArrayOf<AddressRange>(*entry.node, path,
                                        "addresses or ranges like [\"127.0.0.1\", \"10.0.0.0/8\"]",
                                        "\"10.0.0.0/8\"", ParseAddressRange));
      } else {
        return UnknownKey(entry, "router", kRouterKeys);
      }
    }
    return OkStatus();
  }

  Status ApplyProcesses(const toml::table& table) {
    std::vector<std::string> types;
    for (const ProcessConfig& process : config_.processes) types.push_back(process.type);
    for (const Entry& entry : InSourceOrder(table)) {
      std::string type(entry.key->str());
      auto it = std::find_if(config_.processes.begin(), config_.processes.end(),
                             [&](const ProcessConfig& p) { return p.type == type; });
      // The Procfile's release line is a one-off task phoenix does not run (`up` says so):
      // a table for it, the old way to keep it from running, has nothing left to set.
      if (it == config_.processes.end() && type == "release" && !config_.release_command.empty()) {
        continue;
      }
      if (it == config_.processes.end()) {
        std::string suggestion;
        if (auto closest = ClosestName(type, types)) {
          suggestion = fmt::format(" (did you mean '{}'?)", *closest);
        }
        std::string quoted = QuoteForMessage(type);
        return ErrorAt(
            entry.key->source(),
            fmt::format("unknown process type {} in [process.{}]{}; the Procfile "
                        "defines: {}",
                        quoted, quoted.substr(1, quoted.size() - 2), suggestion, JoinNames(types)));
      }
      std::string path = "process." + type;
      ASSIGN_OR_RETURN(const toml::table* process_table, ExpectTable(entry, path));
      RETURN_IF_ERROR(ApplyProcess(entry, *process_table, *it));
    }
    return OkStatus();
  }

  Status ApplyProcess(const Entry& table_entry, const toml::table& table, ProcessConfig& process) {
    std::string prefix = "process." + process.type;
    const toml::key* max_age_key = nullptr;
    const toml::key* jitter_key = nullptr;
    for (const Entry& entry : InSourceOrder(table)) {
      std::string_view name = entry.key->str();
      std::string path = fmt::format("{}.{}", prefix, name);
      const toml::node& node = *entry.node;
      if (name == "instances") {
        ASSIGN_OR_RETURN(int64_t instances, ExpectInteger(node, path, 0, kMaxInstances));
        process.instances = static_cast<int>(instances);
      } else if (name == "max_age") {
        ASSIGN_OR_RETURN(process.max_age, ExpectDuration(node, path));
        max_age_key = entry.key;
      } else if (name == "max_age_jitter") {
        ASSIGN_OR_RETURN(process.max_age_jitter, ExpectDuration(node, path));
        jitter_key = entry.key;
      } else if (name == "boot_timeout" || name == "stop_timeout") {
        ASSIGN_OR_RETURN(Millis timeout, ExpectDuration(node, path));
        if (timeout.count() == 0) {
          return ValueError(node, path, "must be greater than 0");
        }
        (name == "boot_timeout" ? process.boot_timeout : process.stop_timeout) = timeout;
      } else if (name == "drain_timeout") {
        ASSIGN_OR_RETURN(process.drain_timeout, ExpectDuration(node, path));
      } else if (name == "rotate_window") {
        ASSIGN_OR_RETURN(process.rotate_window, ExpectWindow(node, path));
      } else {
        return UnknownKey(entry, prefix, kProcessKeys);
      }
    }
    // The default jitter is 15 % of max_age (216m of the default 24h): `max_age = "1h"` alone
    // gets 9m, not the 216m that would be longer than the age itself.
    if (max_age_key != nullptr && jitter_key == nullptr) {
      process.max_age_jitter = process.max_age * 15 / 100;
    }
    // Jitter is subtracted from max_age; as large as max_age, an incarnation could be replaced
    // as soon as it is born. max_age 0 means never rotate, so there is nothing to jitter.
    if (process.max_age.count() > 0 && process.max_age_jitter >= process.max_age) {
      const toml::key* where = jitter_key ? jitter_key : table_entry.key;
      return ErrorAt(where->source(),
                     fmt::format("{}.max_age_jitter ({}) must be less than {}.max_age ({})", prefix,
                                 FormatDuration(process.max_age_jitter), prefix,
                                 FormatDuration(process.max_age)));
    }
    return OkStatus();
  }

  Status ApplyFilesystem(const toml::table& table) {
    const toml::node* writable_node = nullptr;
    for (const Entry& entry : InSourceOrder(table)) {
      std::string_view name = entry.key->str();
      std::string path = fmt::format("filesystem.{}", name);
      const toml::node& node = *entry.node;
      if (name == "mode") {
        ASSIGN_OR_RETURN(std::string mode, ExpectString(node, path, "\"ephemeral\""));
        if (mode == "ephemeral") {
          config_.filesystem.mode = FilesystemMode::kEphemeral;
        } else if (mode == "strict") {
          config_.filesystem.mode = FilesystemMode::kStrict;
        } else if (mode == "none") {
          config_.filesystem.mode = FilesystemMode::kNone;
        } else {
          std::string suggestion;
          if (auto closest = ClosestName(mode, ToStrings(kFilesystemModes))) {
            suggestion = fmt::format("did you mean '{}'? ", *closest);
          }
          return ValueError(node, path,
                            fmt::format("unknown mode {} ({}expected \"ephemeral\", \"strict\" "
                                        "or \"none\")",
                                        QuoteForMessage(mode), suggestion));
        }
      } else if (name == "writable") {
        ASSIGN_OR_RETURN(config_.filesystem.writable,
                         ExpectArrayOf<std::string>(node, path, "paths like [\"tmp/\"]", "\"tmp/\"",
                                                    NormalizeWritable));
        writable_node = &node;
      } else {
        return UnknownKey(entry, "filesystem", kFilesystemKeys);
      }
    }
    // Strict mode makes each writable path writable before the app starts (a bind mount of
    // it): a pattern names files that do not exist yet, which no mount can cover. Said here,
    // rather than a folder silently made under the pattern's literal name.
    if (config_.filesystem.mode == FilesystemMode::kStrict && writable_node != nullptr) {
      const toml::array& array = *writable_node->as_array();
      for (size_t i = 0; i < array.size(); ++i) {
        const std::string& w = config_.filesystem.writable[i];
        if (w.find_first_of("*?[") == std::string::npos) continue;
        // A name that holds such characters ("data[1]/") and is in the release is that name.
        struct stat st;
        std::string literal = config_.app_root + "/" + w;
        while (literal.ends_with('/')) literal.pop_back();
        if (!config_.app_root.empty() && lstat(literal.c_str(), &st) == 0) continue;
        return ValueError(
            *array.get(i), fmt::format("filesystem.writable[{}]", i),
            fmt::format("{} is a pattern, and mode = \"strict\" makes writable only paths it can "
                        "name before the app starts; name the folder (e.g. \"logs/\"), or use "
                        "mode = \"ephemeral\", where patterns sort the lost-state report",
                        QuoteForMessage(w)));
      }
    }
    return OkStatus();
  }

  // An array of strings, each made into a T by `parse`; an error names the element.
  // `what`: "paths like [\"tmp/\"]", for "expected an array of ...".
  template <class T, class Parse>
  Result<std::vector<T>> ExpectArrayOf(const toml::node& node, std::string_view path,
                                       std::string_view what, std::string_view example,
                                       Parse parse) const {
    const toml::array* array = node.as_array();
    if (array == nullptr) {
      return ValueError(node, path,
                        fmt::format("expected an array of {}, got {}", what, DescribeValue(node)));
    }
    std::vector<T> out;
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = *array->get(i);
      std::string element_path = fmt::format("{}[{}]", path, i);
      ASSIGN_OR_RETURN(std::string text, ExpectString(element, element_path, example));
      auto parsed = parse(text);
      if (!parsed.ok()) return ValueError(element, element_path, parsed.error().message);
      out.push_back(std::move(parsed).value());
    }
    return out;
  }

  Status ApplyChaos(const toml::table& table) {
    for (const Entry& entry : InSourceOrder(table)) {
      std::string_view name = entry.key->str();
      std::string path = fmt::format("chaos.{}", name);
      if (name == "mean_time_between_kills") {
        ASSIGN_OR_RETURN(
            config_.chaos.mean_time_between_kills,
            ExpectDuration(*entry.node, path, "a year; \"0\" turns chaos off", kMaxChaosMean));
      } else if (name == "hours") {
        ASSIGN_OR_RETURN(config_.chaos.hours, ExpectWindow(*entry.node, path));
      } else {
        return UnknownKey(entry, "chaos", kChaosKeys);
      }
    }
    return OkStatus();
  }

  Status ApplyAdmin(const toml::table& table) {
    for (const Entry& entry : InSourceOrder(table)) {
      std::string_view name = entry.key->str();
      std::string path = fmt::format("admin.{}", name);
      if (name == "listen") {
        ASSIGN_OR_RETURN(std::string text, ExpectString(*entry.node, path, "\"127.0.0.1:9100\""));
        auto admin = ParseListenAddress(text);
        if (!admin.ok()) return ValueError(*entry.node, path, admin.error().message);
        config_.admin = *admin;
      } else {
        return UnknownKey(entry, "admin", kAdminKeys);
      }
    }
    return OkStatus();
  }

  const std::string& file_name_;
  Config& config_;
};

}  // namespace

const char* ToString(FilesystemMode mode) {
  switch (mode) {
    case FilesystemMode::kEphemeral:
      return "ephemeral";
    case FilesystemMode::kStrict:
      return "strict";
    case FilesystemMode::kNone:
      return "none";
  }
  return "unknown";
}

Status ApplyToml(const std::string& text, const std::string& file_name, Config& config) {
  toml::table root;
  try {
    root = toml::parse(text, file_name);
  } catch (const toml::parse_error& error) {
    return Error{Where(file_name, error.source()) + std::string(error.description())};
  } catch (const std::exception& error) {  // std::bad_alloc on an absurd document.
    return Error{fmt::format("{}: {}", file_name, error.what())};
  }
  // Work on a copy so that a file with an error late in it leaves `config` untouched.
  Config updated = config;
  RETURN_IF_ERROR(TomlApplier(file_name, updated).Apply(root));
  config = std::move(updated);
  return OkStatus();
}

}  // namespace phoenix
