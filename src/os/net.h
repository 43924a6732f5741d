// Loopback ports: a free one for each incarnation's $PORT.
#pragma once

#include "base/result.h"

namespace phoenix::os {

// A port free on 127.0.0.1 right now (the kernel's choice, so concurrent phoenixes differ).
Result<int> PickFreePort();

}  // namespace phoenix::os
