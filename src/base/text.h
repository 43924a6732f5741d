// Text from outside (a recording, an app's answer, a path) going into UTF-8 or XML/HTML output:
// the audit's JSON report must be valid UTF-8 and its JUnit report well-formed XML 1.0, and the
// admin status page valid HTML, whatever bytes came in.
#pragma once

#include <string>
#include <string_view>

namespace phoenix {

// ASCII case-insensitive comparisons, for names HTTP and its recordings compare so (header
// names, media types, methods in some recordings).
bool IEquals(std::string_view a, std::string_view b);
bool IStartsWith(std::string_view text, std::string_view prefix);

// `text` with every byte that is not part of a well-formed UTF-8 sequence (a stray
// continuation byte, a cut or overlong sequence, a surrogate) replaced by U+FFFD.
std::string ValidUtf8(std::string_view text);

// The longest prefix of `text` of at most `max_bytes` that does not cut a UTF-8 sequence.
std::string_view Utf8Prefix(std::string_view text, size_t max_bytes);

// `text` fit for one line of a terminal or log: control bytes (a newline, ESC of an escape
// sequence) written as \n, \r, \t or \xNN, and bytes that are not UTF-8 as \xNN; whole UTF-8
// characters as they are. For names from outside (an app's file names) in phoenix's own lines,
// which a name must not split or recolour.
std::string PrintableLine(std::string_view text);

// `text` as XML 1.0 (and HTML) character data or attribute value: valid UTF-8, & < > " '
// escaped, control characters XML does not allow (and U+FFFE, U+FFFF) replaced.
std::string XmlEscape(std::string_view text);

}  // namespace phoenix
