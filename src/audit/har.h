// A browser's HAR 1.2 recording as audit traffic: its requests to the main host, in order, with
// the recorded status codes as the expectation. Cookies come from the audit's own jar, not from
// the recorded headers (those belong to another session).
#pragma once

#include <string>
#include <string_view>

#include "audit/scenario.h"
#include "base/result.h"

namespace phoenix::audit {

// `file` names the recording in messages.
Result<Scenario> ParseHar(std::string_view text, const std::string& file);
Result<Scenario> LoadHar(const std::string& file);

}  // namespace phoenix::audit
