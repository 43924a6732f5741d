// phoenix: run any $PORT-reading app as disposable instances. main() parses the command line
// and hands over to one function per subcommand (cli/commands.h).
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "audit/audit.h"
#include "cli/commands.h"
#include "sandbox/init.h"

namespace {

// "0.5", ".25", "1": plain decimal in (0, 1]. Not "nan" (which passes every range check),
// "0x1p-1" or "5e-1", which strtod would take.
phoenix::Result<double> ParseFraction(const std::string& text) {
  constexpr std::string_view kExpected = "more than 0 and at most 1";
  bool well_formed = !text.empty() && text != ".";
  bool seen_point = false;
  for (char c : text) {
    if (c == '.' && !seen_point) {
      seen_point = true;
    } else if (c < '0' || c > '9') {
      well_formed = false;
    }
  }
  if (!well_formed) {
    return phoenix::Error{fmt::format("{} is not a decimal number (expected {}, e.g. 0.5)",
                                      phoenix::QuoteForMessage(text), kExpected)};
  }
  double value = std::strtod(text.c_str(), nullptr);
  if (value <= 0.0 || value > 1.0) {
    return phoenix::Error{fmt::format("{} is out of range (expected {})", text, kExpected)};
  }
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  // The sandbox init is this same binary, re-executed inside the new namespaces.
  if (argc > 1 && std::strcmp(argv[1], "__sandbox-init") == 0)
    phoenix::sandbox::RunInit(argc, argv);

  using namespace phoenix::cli;
  CLI::App app{"phoenix: run every process of an app as disposable instances"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all");

  UpOptions up;
  std::vector<std::string> scale_words;
  // Numbers are read as text and parsed here: CLI11 would take "044267" as octal and "0x48A9"
  // as hex, so a port would silently differ from the one typed.
  std::string port_text;
  auto* up_cmd = app.add_subcommand("up", "start the app in DIR (default .) and supervise it");
  up_cmd->add_option("dir", up.load.dir, "app root: a folder with a Procfile");
  up_cmd->add_option("--port", port_text, "public port of the web type (1..65535)");
  // One word an occurrence (repeatable), so that `up --scale web=1 DIR` leaves DIR positional.
  up_cmd->add_option("--scale", scale_words, "instances per type: web=3,worker=1")
      ->allow_extra_args(false);
  up_cmd->add_option("--config", up.load.config_file, "phoenix.toml to use");
  up_cmd->add_option("--env", up.load.env_file, ".env file to use");
  up_cmd->add_option("--events", up.events_file, "append events as JSON lines to FILE");
  // For `phoenix audit`, which runs `phoenix up` itself: not for people.
  up_cmd->add_flag("--audit", up.audit)->group("");
  up_cmd->add_flag("--keep-layers", up.keep_layers)->group("");

  bool json_out = false;
  auto* ps_cmd = app.add_subcommand("ps", "show instances");
  ps_cmd->add_flag("--json", json_out, "machine-readable output");

  std::vector<std::string> counts;
  auto* scale_cmd = app.add_subcommand("scale", "change instance counts: web=5 worker=2");
  scale_cmd->add_option("counts", counts, "TYPE=N ...")->required();

  std::string instance;
  bool now = false;
  auto* kill_cmd = app.add_subcommand("kill", "replace one instance (surge first)");
  kill_cmd->add_option("instance", instance, "e.g. web.2")->required();
  kill_cmd->add_flag("--now", now, "SIGKILL at once, no drain (chaos)");

  bool follow = false;
  std::string log_instance;
  auto* logs_cmd = app.add_subcommand("logs", "show recent output");
  logs_cmd->add_flag("-f,--follow", follow, "keep printing new lines");
  logs_cmd->add_option("instance", log_instance, "only this instance (e.g. web.1)");

  auto* stop_cmd = app.add_subcommand("stop", "stop every instance and phoenix");

  std::string rotate_type;
  auto* rotate_cmd =
      app.add_subcommand("rotate", "rolling rebirth of every instance, zero downtime");
  rotate_cmd->add_option("type", rotate_type, "only this process type");

  std::string drill_type;
  std::string fraction_text;
  bool drill_all = false;
  auto* drill_cmd =
      app.add_subcommand("drill", "SIGKILL instances at once, report the time to full recovery");
  drill_cmd->add_option("type", drill_type, "only this process type");
  auto* all_flag = drill_cmd->add_flag("--all", drill_all, "every instance (the default)");
  drill_cmd->add_option("--fraction", fraction_text, "this fraction of the instances, e.g. 0.5")
      ->excludes(all_flag);

  phoenix::audit::AuditOptions audit;
  std::string scenario_file, har_file, json_file, junit_file, audit_config, audit_env;
  std::string instances_text;
  auto* audit_cmd = app.add_subcommand(
      "audit", "is the app stateless? replay traffic on a baseline, spread and reborn instances");
  audit_cmd->add_option("dir", audit.dir, "app root: a folder with a Procfile (default .)");
  auto* scenario_opt =
      audit_cmd->add_option("--scenario", scenario_file, "the traffic: a scenario file (JSON)");
  auto* har_opt = audit_cmd->add_option("--har", har_file, "the traffic: a HAR 1.2 recording");
  har_opt->excludes(scenario_opt);
  std::string audit_host;
  audit_cmd->add_option("--host", audit_host,
                        "the app's host in the HAR recording (default: the host most page loads "
                        "went to)");
  audit_cmd->add_option("--instances", instances_text,
                        "instances in the spread run, 2..16 (default 2)");
  audit_cmd->add_option("--json", json_file, "write the report as JSON to FILE");
  audit_cmd->add_option("--junit", junit_file, "write the report as JUnit XML to FILE");
  audit_cmd->add_flag("--keep", audit.keep, "keep the runs' logs and instances' layers");
  audit_cmd->add_option("--config", audit_config, "phoenix.toml to use");
  audit_cmd->add_option("--env", audit_env, ".env file to use");

  // `phoenix audit [DIR] [OPTIONS] -- TEST-COMMAND ...`: everything after "--" is the command.
  if (argc > 1 && std::strcmp(argv[1], "audit") == 0) {
    for (int i = 2; i < argc; ++i) {
      if (std::strcmp(argv[i], "--") == 0) {
        audit.command.assign(argv + i + 1, argv + argc);
        argc = i;
        break;
      }
    }
  }

  // CLI11 would only say "A subcommand is required" for `phoenix bogus`; name the word instead.
  if (argc > 1 && argv[1][0] != '-') {
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands({})) names.push_back(sub->get_name());
    if (std::find(names.begin(), names.end(), argv[1]) == names.end()) {
      std::string hint;
      if (auto closest = phoenix::ClosestName(argv[1], names)) {
        hint = fmt::format(" (did you mean '{}'?)", *closest);
      }
      std::string known;
      for (const std::string& name : names) known += (known.empty() ? "" : ", ") + name;
      std::fprintf(stderr, "phoenix: unknown command %s%s; commands: %s\n",
                   phoenix::QuoteForMessage(argv[1]).c_str(), hint.c_str(), known.c_str());
      return kExitUsage;
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }

  auto parse_counts = [](const std::string& what, const std::vector<std::string>& words,
                         std::map<std::string, int>& out) {
    std::string joined;
    for (const auto& w : words) joined += (joined.empty() ? "" : ",") + w;
    if (joined.empty()) return true;
    auto parsed = phoenix::ParseScale(joined);
    if (!parsed.ok()) {
      std::fprintf(stderr, "phoenix: %s: %s\n", what.c_str(), parsed.error().message.c_str());
      return false;
    }
    out = parsed.value();
    return true;
  };

  // "--flag: 'x' is not a whole number (expected 1..65535)", as $PORT and --scale say it.
  auto parse_number = [](const std::string& flag, const std::string& text, int min, int max,
                         auto& out) {
    auto parsed = phoenix::ParseWholeNumber(text, min, max);
    if (!parsed.ok()) {
      std::fprintf(stderr, "phoenix: %s: %s\n", flag.c_str(), parsed.error().message.c_str());
      return false;
    }
    out = *parsed;
    return true;
  };

  if (*up_cmd) {
    if (up_cmd->count("--port") > 0 && !parse_number("--port", port_text, 1, 65535, up.load.port))
      return kExitUsage;
    if (!parse_counts("--scale", scale_words, up.load.scale)) return kExitUsage;
    return Up(up);
  }
  if (*audit_cmd) {
    if (audit_cmd->count("--instances") > 0 &&
        !parse_number("--instances", instances_text, 2, 16, audit.instances))
      return kExitUsage;
    if (!scenario_file.empty()) audit.scenario_file = scenario_file;
    if (!har_file.empty()) audit.har_file = har_file;
    if (!audit_host.empty()) audit.host = audit_host;
    if (!json_file.empty()) audit.json_file = json_file;
    if (!junit_file.empty()) audit.junit_file = junit_file;
    if (!audit_config.empty()) audit.config_file = audit_config;
    if (!audit_env.empty()) audit.env_file = audit_env;
    audit.progress_tty = isatty(STDERR_FILENO) && !std::getenv("NO_COLOR");
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd)) audit.command_dir = cwd;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    audit.phoenix_bin = n > 0 ? std::string(self, static_cast<size_t>(n)) : argv[0];
    return phoenix::audit::RunAudit(audit);
  }
  if (*ps_cmd) return Ps(json_out);
  if (*scale_cmd) {
    std::map<std::string, int> c;
    if (!parse_counts("scale", counts, c)) return kExitUsage;
    return Scale(c);
  }
  if (*kill_cmd) return Kill(instance, now);
  if (*logs_cmd) return Logs(log_instance, follow);
  if (*stop_cmd) return Stop();
  if (*rotate_cmd) return Rotate(rotate_type);
  if (*drill_cmd) {
    double fraction = 1.0;
    if (drill_cmd->count("--fraction") > 0) {
      auto parsed = ParseFraction(fraction_text);
      if (!parsed.ok()) {
        std::fprintf(stderr, "phoenix: drill: --fraction: %s\n", parsed.error().message.c_str());
        return kExitUsage;
      }
      fraction = *parsed;
    }
    return Drill(drill_type, drill_all ? 1.0 : fraction);
  }
  return kExitUsage;
}
