// A browser's HAR 1.2 recording as audit traffic: its requests to the app's host, in order, with
// the recorded status codes as the expectation. Cookies come from the audit's own jar, not from
// the recorded headers (those belong to another session).
#pragma once

#include <string>
#include <string_view>

#include "audit/scenario.h"
#include "base/result.h"

namespace phoenix::audit {

// `file` names the recording in messages. `host` (--host: "app.example", "app.example:8443" or
// a URL) names the app's host; empty: the host most page loads, else most requests, went to.
// Entries are replayed in startedDateTime order; path, headers and bodies are sent verbatim.
Result<Scenario> ParseHar(std::string_view text, const std::string& file,
                          const std::string& host = "");
Result<Scenario> LoadHar(const std::string& file, const std::string& host = "");

}  // namespace phoenix::audit
