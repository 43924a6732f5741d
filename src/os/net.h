// Loopback ports: a free one for each incarnation's $PORT, and holding the public port.
#pragma once

#include "base/result.h"
#include "os/fd.h"

namespace phoenix::os {

// A port free on 127.0.0.1 right now (the kernel's choice, so concurrent phoenixes differ).
Result<int> PickFreePort();

// Binds (without listening) 0.0.0.0:port so that nobody else takes it; error if it is busy.
Result<Fd> ReservePort(int port);

}  // namespace phoenix::os
