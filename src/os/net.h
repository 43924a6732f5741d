// Loopback ports: a free one for each incarnation's $PORT.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace phoenix::os {

// A port free on 127.0.0.1 right now (the kernel's choice, so concurrent phoenixes differ).
Result<int> PickFreePort();

// The TCP addresses that `root` and every process under it listen on ("127.0.0.1:3000",
// "[::]:8080"), sorted, each once: what an instance that never got ready bound instead of $PORT.
// From /proc (socket inodes of their descriptors, matched in root's /proc/net/tcp and tcp6).
std::vector<std::string> ListeningAddresses(pid_t root);

// Every process's IPv4 listeners on `port` in this network namespace (SO_REUSEPORT lets another
// process of the same user join a port silently): socket inode and local address (network
// byte order; 0 for 0.0.0.0).
struct Listener {
  unsigned long inode = 0;
  uint32_t address = 0;
};
std::vector<Listener> Ipv4Listeners(int port);

}  // namespace phoenix::os
