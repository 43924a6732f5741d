// phoenix audit: is an app stateless? The same traffic is replayed from a fresh start of the app
// several ways (docs/audit.md):
//   baseline  one instance, never reborn, twice (what varies by itself between two runs);
//   spread    N instances, each request sent to another instance than the one before;
//   reborn    one instance, replaced (planned, with drain) after every request.
// A step whose outcome differs from the baseline is a finding; each finding is named with a kind
// of SCENARIO.md's vocabulary from the evidence (files written per request, the session cookie
// another instance did not know, data missing on another instance). Files written while serving
// are state even when every request passes.
//
// Each run is a child `phoenix up --audit` on a free loopback port with its own state folder,
// driven over its control socket (scan, kill, stop); nothing is left behind.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "audit/scenario.h"

namespace phoenix::audit {

struct AuditOptions {
  std::string dir = ".";  // the app root
  std::optional<std::string> scenario_file, har_file;
  std::optional<std::string> host;   // --host: the app's host in the HAR recording
  std::vector<std::string> command;  // after --
  std::string command_dir = ".";     // where the command runs (the caller's folder)
  std::chrono::seconds command_timeout{900};
  int instances = 2;
  std::optional<std::string> json_file, junit_file;
  bool keep = false;
  std::optional<std::string> config_file, env_file;
  bool progress_tty = false;  // a bar on the terminal instead of plain lines
  std::string phoenix_bin;    // this binary, run as `phoenix up --audit`
};

// A file an incarnation wrote, attributed to the step after which it appeared (0: at boot).
struct FileWrite {
  std::string path;
  uint64_t bytes = 0;
  std::string change;       // created, modified, deleted
  std::string incarnation;  // "web.2#3"
  int step = 0;
  std::string evidence;  // e.g. "same bytes as the uploaded part 'photo'"
};

// What one step got in one run.
struct Outcome {
  bool ran = false;
  std::string error;  // transport failure, or why the step could not be sent
  int status = 0;
  std::string location;
  std::string content_type;
  std::string body;  // kept up to a limit, for excerpts and extraction
  std::vector<std::string> tokens;
  std::string served;  // "web.2#3"
  std::vector<std::string> expect_failures;
  std::vector<std::string> extract_missed;  // names this step's `extract` found no value for
  std::vector<std::string> cookies_sent;    // names
  std::vector<std::string> cookies_set;     // names
  std::vector<FileWrite> files;             // written while this step was served
  bool carried_file = false;                // a multipart upload with a file part
  double ms = 0;
};

struct RunResult {
  std::string name;  // baseline, baseline-2, spread, reborn
  int instances = 1;
  std::vector<Outcome> steps;
  std::vector<FileWrite> boot_files;
  std::vector<FileWrite> files;  // every file written while serving, by step
  double seconds = 0;
  double boot_ms = 0;  // start of the run until every instance was ready
  std::string error;   // the run could not complete (the app did not start ...)
  // -- TEST-COMMAND: its exit status (-1: none) and the end of its output.
  int command_exit = -1;
  std::string command_output;
  std::vector<std::string> requests;  // "GET /path", in order
};

struct Finding {
  std::string kind;  // SCENARIO.md's vocabulary
  std::string run;   // spread, reborn
  int step = 0;      // 1-based; 0 when the finding is about files alone
  std::string step_name;
  std::string instances;  // "web.1#1 -> web.2#1"
  std::string baseline;   // the baseline's outcome, in words
  std::string observed;
  std::vector<std::string> evidence;
  std::vector<FileWrite> files;
  std::string advice;
  std::vector<int> also_steps;  // later steps of the same run that failed for the same cause
  // It rests on an answer's body alone (status and Location as the baseline's): what the
  // baselines taught about parts that vary by themselves decided it (see LearnMore).
  bool body_only = false;
};

// Extra baseline runs are named so; Analyze learns from them and compares nothing with them.
bool IsExtraBaseline(const std::string& run_name);

struct Report {
  std::string app;
  std::string source;   // scenario FILE, har FILE, command ...
  std::string verdict;  // stateless, stateful, baseline-broken, error
  std::vector<std::string> step_names;
  std::vector<RunResult> runs;
  std::vector<Finding> findings;
  std::vector<std::string> warnings;  // boot files, skipped HAR entries, ...
  std::string error;                  // for baseline-broken / error
  double seconds = 0;
};

// Runs the whole audit and prints the report; returns the exit code (0 stateless, 1 state
// found, 2 usage, config or broken baseline).
int RunAudit(const AuditOptions& options);

// Exposed for unit tests.
Report Analyze(const Scenario& scenario, std::vector<RunResult> runs);
std::string ReportText(const Report& report);
std::string ReportJson(const Report& report);
std::string ReportJunit(const Report& report);
const char* AdviceFor(const std::string& kind);

}  // namespace phoenix::audit
