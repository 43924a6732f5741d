// The Procfile as Heroku, Foreman and Overmind read it: one `type: command` a line. Where
// Foreman silently skips a line it cannot read, phoenix stops with the line and column, because
// a skipped process type is only noticed when it is missing in production.
#include <fmt/format.h>

#include <map>
#include <string_view>

#include "config/config.h"

namespace phoenix {
namespace {

constexpr std::string_view kProcfileExample =
    "expected 'type: command', e.g. 'web: node server.js'";
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
// A type names the instances ("web.2") and their layer folders, which must fit a file name.
constexpr size_t kMaxTypeLength = 63;
// The command reaches `sh -c` as one argument (after a short "exec " phoenix may add); Linux
// refuses an argument over MAX_ARG_STRLEN (128 KiB with its NUL), and exec fails as "not found".
constexpr size_t kMaxCommandBytes = 128 * 1024 - 64;

bool IsTypeChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r'; }

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

// Columns are 1-based byte offsets, as editors and compilers print them.
Error ErrorAt(const std::string& file_name, int line, size_t column, std::string_view message) {
  return Error{fmt::format("{}:{}:{}: {}", file_name, line, column, message)};
}

// Reads one line that is neither blank nor a comment; `line` has no line terminator.
Result<ProcfileEntry> ParseEntry(std::string_view line, int line_number,
                                 const std::string& file_name) {
  size_t begin = 0;
  while (begin < line.size() && IsSpace(line[begin])) ++begin;
  size_t type_end = begin;
  while (type_end < line.size() && IsTypeChar(line[type_end])) ++type_end;

  size_t colon = line.find(':', begin);
  if (colon == std::string_view::npos) {
    return ErrorAt(
        file_name, line_number, type_end + 1,
        fmt::format("malformed line: no ':' after the process type ({})", kProcfileExample));
  }
  if (colon == begin) {
    return ErrorAt(file_name, line_number, colon + 1,
                   fmt::format("missing process type before ':' ({})", kProcfileExample));
  }
  std::string_view type = line.substr(begin, colon - begin);
  if (type_end < colon) {
    return ErrorAt(
        file_name, line_number, type_end + 1,
        fmt::format("invalid character {} in process type {} (use letters, digits, "
                    "'_' and '-')",
                    QuoteForMessage(FirstCharacter(line.substr(type_end))), QuoteForMessage(type)));
  }
  if (type.size() > kMaxTypeLength) {
    return ErrorAt(file_name, line_number, begin + 1,
                   fmt::format("process type '{}...' is {} characters long (at most {})",
                               type.substr(0, 16), type.size(), kMaxTypeLength));
  }
  std::string_view command = Trim(line.substr(colon + 1));
  if (command.empty()) {
    return ErrorAt(file_name, line_number, colon + 2,
                   fmt::format("empty command for process type '{}' ({})", type, kProcfileExample));
  }
  if (command.size() > kMaxCommandBytes) {
    return ErrorAt(file_name, line_number, static_cast<size_t>(command.data() - line.data()) + 1,
                   fmt::format("the command of process type '{}' is {} bytes long (at most {}: "
                               "Linux limits one argument of `sh -c` to 128 KiB)",
                               type, command.size(), kMaxCommandBytes));
  }
  return ProcfileEntry{std::string(type), std::string(command), line_number};
}

}  // namespace

Result<std::vector<ProcfileEntry>> ParseProcfile(const std::string& text,
                                                 const std::string& file_name) {
  std::string_view rest = text;
  // Editors on Windows write a byte-order mark; it is not part of the first process type.
  if (rest.substr(0, kUtf8Bom.size()) == kUtf8Bom) rest.remove_prefix(kUtf8Bom.size());

  std::vector<ProcfileEntry> entries;
  std::map<std::string, int, std::less<>> first_line_of_type;
  int line_number = 0;
  while (!rest.empty()) {
    ++line_number;
    size_t newline = rest.find('\n');
    std::string_view line = rest.substr(0, newline);
    rest.remove_prefix(newline == std::string_view::npos ? rest.size() : newline + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // exec would end the command at the NUL, silently running less than what is written.
    if (size_t nul = line.find('\0'); nul != std::string_view::npos) {
      return ErrorAt(file_name, line_number, nul + 1,
                     "NUL byte in the line (a Procfile is text; remove it)");
    }

    std::string_view content = Trim(line);
    if (content.empty() || content.front() == '#') continue;

    auto entry = ParseEntry(line, line_number, file_name);
    if (!entry.ok()) return entry.error();
    auto [it, inserted] = first_line_of_type.emplace(entry->type, line_number);
    if (!inserted) {
      size_t column = 1;
      while (IsSpace(line[column - 1])) ++column;  // Stops at the type: `line` is not blank.
      return ErrorAt(file_name, line_number, column,
                     fmt::format("duplicate process type '{}' (first defined on line {})",
                                 entry->type, it->second));
    }
    entries.push_back(std::move(entry).value());
  }
  if (entries.empty()) {
    return Error{
        fmt::format("{}: no process types (expected lines like 'web: node server.js')", file_name)};
  }
  return entries;
}

}  // namespace phoenix
