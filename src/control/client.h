// The client side of the control socket: one JSON request line out, JSON lines back until the
// daemon closes the connection. Plain blocking POSIX: commands are short-lived programs.
#pragma once

#include <functional>
#include <string>

#include "base/result.h"

namespace phoenix::control {

// Sends `request` (one line of JSON, no newline) and calls `on_line` for each line of the
// answer; returns when the daemon closes the connection or on_line returns false.
Status Call(const std::string& socket_path, const std::string& request,
            const std::function<bool(const std::string&)>& on_line);

}  // namespace phoenix::control
