// `.env` as the dotenv family (Node's dotenv, docker compose, foreman) reads it, so that a file
// that works with `node -r dotenv/config` works under phoenix unchanged:
//
//   # comment                 KEY=unquoted value   # trailing comment
//   export KEY=value          KEY='literal $HOME \n'
//   KEY="line\nnext \"q\""    KEY="a value that
//                             spans lines"
//
// Where dotenv silently drops a line it cannot read, phoenix stops with its line and column.
// No variable expansion: dotenv does not expand either (that is dotenv-expand's job).
#include <fmt/format.h>

#include <algorithm>
#include <string_view>

#include "config/config.h"

namespace phoenix {
namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
// Linux refuses at exec an environment string ("KEY=value" and its NUL) over MAX_ARG_STRLEN,
// 128 KiB; the instance would then fail as "command not found" on every birth.
constexpr size_t kMaxEnvStringBytes = 128 * 1024 - 1;

bool IsBlank(char c) { return c == ' ' || c == '\t'; }
bool IsKeyStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsKeyChar(char c) { return IsKeyStart(c) || (c >= '0' && c <= '9'); }

// A read position in the file that knows its line and column, so that every error, even one
// found deep inside a multi-line value, points at the right place.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}

  bool AtEnd() const { return pos_ >= text_.size(); }
  bool AtEndOfLine() const { return AtEnd() || text_[pos_] == '\n'; }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }
  std::string_view Rest() const { return text_.substr(pos_); }
  int line() const { return line_; }
  size_t column() const { return column_; }

  char Next() {
    char c = text_[pos_++];
    if (c == '\n') {
      ++line_;
      column_ = 1;
    } else {
      ++column_;
    }
    return c;
  }
  void SkipBlanks() {
    while (!AtEnd() && IsBlank(Peek())) Next();
  }
  // Returns the rest of the current line and moves to the start of the next one.
  std::string_view TakeLine() {
    std::string_view rest = Rest();
    std::string_view line = rest.substr(0, rest.find('\n'));
    for (size_t i = 0; i < line.size(); ++i) Next();
    if (!AtEnd()) Next();
    return line;
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  int line_ = 1;
  size_t column_ = 1;
};

class DotenvParser {
 public:
  DotenvParser(std::string_view text, const std::string& file_name)
      : cursor_(text), file_name_(file_name) {}

  Result<std::map<std::string, std::string>> Parse() {
    RETURN_IF_ERROR(RefuseNul());
    std::map<std::string, std::string> env;
    while (!cursor_.AtEnd()) {
      cursor_.SkipBlanks();
      if (cursor_.AtEndOfLine() || cursor_.Peek() == '#') {
        cursor_.TakeLine();
        continue;
      }
      SkipExport();
      ASSIGN_OR_RETURN(std::string key, ParseKey());
      int value_line = cursor_.line();
      size_t value_column = cursor_.column();
      ASSIGN_OR_RETURN(std::string value, ParseValue(key));
      if (size_t bytes = key.size() + 1 + value.size(); bytes > kMaxEnvStringBytes) {
        return ErrorAt(value_line, value_column,
                       fmt::format("'{}=...' is {} bytes long (at most {}: Linux limits one "
                                   "environment variable to 128 KiB)",
                                   key, bytes, kMaxEnvStringBytes));
      }
      env[key] = std::move(value);  // The last definition wins, as in dotenv and docker.
    }
    return env;
  }

 private:
  Error ErrorAt(int line, size_t column, std::string_view message) const {
    return Error{fmt::format("{}:{}:{}: {}", file_name_, line, column, message)};
  }
  Error ErrorHere(std::string_view message) const {
    return ErrorAt(cursor_.line(), cursor_.column(), message);
  }

  // The environment is C strings: a NUL would silently cut the value short ("a\0b" is "a").
  Status RefuseNul() const {
    std::string_view text = cursor_.Rest();
    size_t nul = text.find('\0');
    if (nul == std::string_view::npos) return OkStatus();
    std::string_view before = text.substr(0, nul);
    int line = 1 + static_cast<int>(std::count(before.begin(), before.end(), '\n'));
    size_t line_start = before.rfind('\n');
    size_t column = line_start == std::string_view::npos ? nul + 1 : nul - line_start;
    return ErrorAt(line, column, "NUL byte (a .env file is text; remove it)");
  }

  // `export KEY=value` lets the same file be sourced by a shell.
  void SkipExport() {
    constexpr std::string_view kExport = "export";
    std::string_view rest = cursor_.Rest();
    if (rest.substr(0, kExport.size()) != kExport || rest.size() <= kExport.size() ||
        !IsBlank(rest[kExport.size()])) {
      return;
    }
    for (size_t i = 0; i < kExport.size(); ++i) cursor_.Next();
    cursor_.SkipBlanks();
  }

  // Reads KEY and the '=' after it (blanks around '=' are allowed, as dotenv allows them).
  Result<std::string> ParseKey() {
    int line = cursor_.line();
    size_t column = cursor_.column();
    std::string_view line_rest = cursor_.Rest().substr(0, cursor_.Rest().find('\n'));
    std::string key;
    while (!cursor_.AtEnd() && IsKeyChar(cursor_.Peek())) key += cursor_.Next();
    if (key.empty()) {
      if (cursor_.Peek() == '=') return ErrorHere("missing key before '=' (expected KEY=value)");
      return ErrorHere(
          fmt::format("invalid character {} at the start of a key (keys are letters, "
                      "digits and '_', and do not start with a digit)",
                      QuoteForMessage(FirstCharacter(line_rest))));
    }
    if (!IsKeyStart(key.front())) {
      return ErrorAt(line, column,
                     fmt::format("invalid key '{}': keys do not start with a digit", key));
    }
    size_t key_end_column = cursor_.column();
    std::string_view after_key = cursor_.Rest();
    cursor_.SkipBlanks();
    if (cursor_.Peek() == '=') {
      cursor_.Next();
      return key;
    }
    size_t equals = line_rest.find('=');
    if (equals == std::string_view::npos) {
      return ErrorAt(line, key_end_column,
                     fmt::format("missing '=' after key '{}' (expected KEY=value)", key));
    }
    std::string_view written_key = line_rest.substr(0, equals);
    while (!written_key.empty() && IsBlank(written_key.back())) written_key.remove_suffix(1);
    return ErrorAt(
        line, key_end_column,
        fmt::format("invalid character {} in key {} (keys are letters, digits and '_')",
                    QuoteForMessage(FirstCharacter(after_key)), QuoteForMessage(written_key)));
  }

  Result<std::string> ParseValue(const std::string& key) {
    bool blank_before_value = IsBlank(cursor_.Peek());
    cursor_.SkipBlanks();
    char first = cursor_.Peek();
    if (first == '"' || first == '\'') return ParseQuotedValue(key, first);

    std::string_view raw = cursor_.TakeLine();
    // A '#' starts a comment only after a blank, as docker compose and python-dotenv read it,
    // so that `COLOR=#fff` and URLs with fragments keep their value.
    size_t comment = std::string_view::npos;
    if (!raw.empty() && raw.front() == '#' && blank_before_value) comment = 0;
    for (size_t i = 1; i < raw.size() && comment == std::string_view::npos; ++i) {
      if (raw[i] == '#' && IsBlank(raw[i - 1])) comment = i;
    }
    raw = raw.substr(0, comment);
    while (!raw.empty() && IsBlank(raw.back())) raw.remove_suffix(1);
    return std::string(raw);
  }

  // Single quotes are literal; double quotes understand \n \r \t \" \\ (other backslashes are
  // kept as written, as dotenv keeps them). Both may span lines, as in dotenv.
  Result<std::string> ParseQuotedValue(const std::string& key, char quote) {
    int open_line = cursor_.line();
    size_t open_column = cursor_.column();
    cursor_.Next();
    std::string value;
    while (true) {
      if (cursor_.AtEnd()) {
        return ErrorAt(open_line, open_column,
                       fmt::format("unterminated {} in the value of '{}': the quote opened on "
                                   "line {} is never closed",
                                   quote == '"' ? "'\"'" : "\"'\"", key, open_line));
      }
      char c = cursor_.Next();
      if (c == quote) break;
      if (c == '\\' && quote == '"' && !cursor_.AtEnd()) {
        char escaped = cursor_.Peek();
        switch (escaped) {
          case 'n':
            value += '\n';
            break;
          case 'r':
            value += '\r';
            break;
          case 't':
            value += '\t';
            break;
          case '"':
            value += '"';
            break;
          case '\\':
            value += '\\';
            break;
          default:
            value += '\\';
            continue;  // Keep the next byte for the next round.
        }
        cursor_.Next();
        continue;
      }
      value += c;
    }
    cursor_.SkipBlanks();
    if (cursor_.Peek() == '#' || cursor_.AtEndOfLine()) {
      cursor_.TakeLine();
      return value;
    }
    return ErrorHere(
        fmt::format("unexpected {} after the closing quote of '{}' (quote the whole "
                    "value, or start a comment with '#')",
                    QuoteForMessage(cursor_.Rest().substr(0, 1)), key));
  }

  Cursor cursor_;
  const std::string& file_name_;
};

// Windows line ends become '\n' so that a multi-line value does not keep stray '\r's and an
// unquoted value does not end with one.
std::string NormalizeLineEnds(std::string_view text) {
  if (text.substr(0, kUtf8Bom.size()) == kUtf8Bom) text.remove_prefix(kUtf8Bom.size());
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    out += text[i];
  }
  return out;
}

}  // namespace

Result<std::map<std::string, std::string>> ParseDotenv(const std::string& text,
                                                       const std::string& file_name) {
  std::string normalized = NormalizeLineEnds(text);
  return DotenvParser(normalized, file_name).Parse();
}

}  // namespace phoenix
