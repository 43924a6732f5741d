// The audit's traffic: a scenario (../shared/SCENARIO.md), the HTTP steps one client makes, in
// order, with what each must get back. Parsed and checked whole before anything runs: an error
// names the file, the step (number and name) and the field.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace phoenix::audit {

using Pairs = std::vector<std::pair<std::string, std::string>>;

struct Extract {
  enum class Kind { kRegex, kJson, kHeader };
  std::string name;
  Kind kind = Kind::kRegex;
  std::string expr;  // the regex, the JSON path (".a.b[0]") or the header name
};

struct Expect {
  std::optional<int> status;
  std::optional<std::string> location;
  std::vector<std::string> body_contains;
  Pairs header_contains;  // name -> substring
  bool any() const {
    return status || location || !body_contains.empty() || !header_contains.empty();
  }
};

struct Part {
  std::string name;
  std::string value;         // a field's text (may hold {{name}})
  bool is_file = false;      // "@PATH;type=MIME"
  std::string file;          // absolute path of the file
  std::string filename;      // as sent: the file's base name
  std::string content_type;  // of a file part
};

enum class BodyKind { kNone, kForm, kJson, kRaw, kMultipart };

struct Step {
  int number = 0;  // 1-based
  std::string name;
  std::string method = "GET";
  std::string path;
  Pairs headers;
  BodyKind body_kind = BodyKind::kNone;
  Pairs form;
  std::string json;  // serialized
  std::string raw;
  std::string content_type;  // of `raw`
  std::vector<Part> multipart;
  bool cookies = true;
  Expect expect;
  std::vector<Extract> extract;
  // HAR: the status the browser got. Checked against the baseline (a warning when it differs:
  // a recording is not a specification), then every run is compared with the baseline.
  std::optional<int> recorded_status;
  // False for a HAR step: its path, headers and body are sent verbatim; {{name}} belongs to
  // scenarios only (a recorded body may well hold a literal "{{name}}").
  bool templates = true;

  // "step 3 (\"upload a photo\")", for messages.
  std::string Label() const;
};

struct Scenario {
  std::string app;
  bool cookies = true;
  std::vector<Step> steps;
  std::string file;  // where it came from, for messages
  std::string dir;   // relative file parts are found from here
  // HAR: entries not replayed, "METHOD URL", and why ("another host", "a data: URL", ...).
  struct Skipped {
    std::string request;
    std::string why;
    bool counts = true;  // a request the app might have served (not a data:/blob: URL)
  };
  std::vector<Skipped> skipped;
  // HAR: how the app's host was chosen, for the report; empty when it was named (--host).
  std::string host_guess;
};

// `file` names the text in messages; `dir` resolves "@PATH" file parts.
Result<Scenario> ParseScenario(std::string_view text, const std::string& file,
                               const std::string& dir);
// Refuses a file over 16 MiB: a scenario is written by hand, so a bigger one is a wrong path.
Result<Scenario> LoadScenario(const std::string& file);

// Reads a traffic file named on the command line (`what`: "scenario", "recording"): a regular
// file or a pipe, not a folder, at most `max_bytes` (so that /dev/zero is an error, not a hang).
Result<std::string> ReadTrafficFile(const std::string& file, size_t max_bytes,
                                    std::string_view what);

// The JSON path of an `extract`: ".a.b[0].c" (a leading "." optional; "." alone is the root).
struct PathItem {
  std::string key;  // when !is_index
  size_t index = 0;
  bool is_index = false;
};
Result<std::vector<PathItem>> ParseJsonPath(std::string_view path);

// {{name}} references in a text, in order.
std::vector<std::string> TemplateNames(std::string_view text);
// Replaces every {{name}} by its value; false (with `missing`) when a name has none.
bool ExpandTemplate(std::string_view text, const Pairs& values, std::string& out,
                    std::string* missing = nullptr);

// Line and column (1-based) of a byte offset, for JSON syntax errors.
std::pair<int, int> LineColumn(std::string_view text, size_t offset);

// Only whitespace may follow a JSON document that ends at `used` (two recordings pasted into
// one file, a cut-and-paste tail): else an error at the first other byte's line:column.
Status NothingAfterDocument(std::string_view text, size_t used, const std::string& file);

// RFC 9110 5.6.2: a method or a header name. And a header value: no control byte but TAB
// (5.5), so that no value can end its line and start another header, or another request.
bool IsToken(std::string_view s);
bool IsFieldValue(std::string_view s);

}  // namespace phoenix::audit
