// Text the audit passes from a recording or an app's answer into its reports: the JSON report
// must be valid UTF-8 and the JUnit report well-formed XML 1.0, whatever bytes came in.
#pragma once

#include <string>
#include <string_view>

namespace phoenix::audit {

// `text` with every byte that is not part of a well-formed UTF-8 sequence (a stray
// continuation byte, a cut or overlong sequence, a surrogate) replaced by U+FFFD.
std::string ValidUtf8(std::string_view text);

// The longest prefix of `text` of at most `max_bytes` that does not cut a UTF-8 sequence.
std::string_view Utf8Prefix(std::string_view text, size_t max_bytes);

}  // namespace phoenix::audit
