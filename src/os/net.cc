#include "os/net.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "os/fd.h"
#include "os/spawn.h"

namespace phoenix::os {

Result<int> PickFreePort() {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Error{fmt::format("socket: {}", strerror(errno))};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    return Error{fmt::format("bind: {}", strerror(errno))};
  }
  socklen_t len = sizeof addr;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  return static_cast<int>(ntohs(addr.sin_port));
}

namespace {

std::vector<pid_t> NumericEntries(const std::string& dir) {
  std::vector<pid_t> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long n = std::strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == '\0' && n > 0) out.push_back(static_cast<pid_t>(n));
  }
  closedir(d);
  return out;
}

std::set<unsigned long> SocketInodes(const std::vector<pid_t>& pids) {
  std::set<unsigned long> inodes;
  for (pid_t pid : pids) {
    std::string dir = fmt::format("/proc/{}/fd", pid);
    for (pid_t fd : NumericEntries(dir)) {
      char target[64];
      ssize_t n = readlink(fmt::format("{}/{}", dir, fd).c_str(), target, sizeof target - 1);
      if (n <= 0) continue;
      target[n] = '\0';
      unsigned long inode = 0;
      if (std::sscanf(target, "socket:[%lu]", &inode) == 1) inodes.insert(inode);
    }
  }
  return inodes;
}

// "0100007F:0BB8" (the kernel prints each 32-bit word of the address in host order).
std::string Address(const std::string& hex, bool v6) {
  size_t colon = hex.find(':');
  if (colon == std::string::npos) return "";
  std::string ip = hex.substr(0, colon);
  unsigned port = static_cast<unsigned>(std::strtoul(hex.c_str() + colon + 1, nullptr, 16));
  unsigned char bytes[16];
  size_t words = v6 ? 4 : 1;
  if (ip.size() != words * 8) return "";
  for (size_t w = 0; w < words; ++w) {
    uint32_t word = static_cast<uint32_t>(std::strtoul(ip.substr(w * 8, 8).c_str(), nullptr, 16));
    std::memcpy(bytes + w * 4, &word, 4);
  }
  char text[INET6_ADDRSTRLEN];
  if (!inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, text, sizeof text)) return "";
  return v6 ? fmt::format("[{}]:{}", text, port) : fmt::format("{}:{}", text, port);
}

// Calls f(local_address_hex, inode) for each listening socket in a /proc/PID/net/tcp{,6}.
template <class F>
void ForEachListener(const std::string& table, F f) {
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // the column titles
  while (std::getline(in, line)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    std::istringstream fields(line);
    std::string sl, local, remote, st, queues, timer, retr, uid, timeout;
    unsigned long inode = 0;
    if (!(fields >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >>
          inode)) {
      continue;
    }
    if (st == "0A") f(local, inode);  // 0A: LISTEN
  }
}

}  // namespace

std::vector<std::string> ListeningAddresses(pid_t root) {
  std::vector<pid_t> tree = Descendants(root);
  tree.push_back(root);
  std::set<unsigned long> inodes = SocketInodes(tree);
  std::set<std::string> found;
  for (bool v6 : {false, true}) {
    ForEachListener(fmt::format("/proc/{}/net/{}", root, v6 ? "tcp6" : "tcp"),
                    [&](const std::string& local, unsigned long inode) {
                      if (!inodes.count(inode)) return;
                      std::string address = Address(local, v6);
                      if (!address.empty()) found.insert(address);
                    });
  }
  return {found.begin(), found.end()};
}

std::vector<Listener> Ipv4Listeners(int port) {
  std::vector<Listener> out;
  ForEachListener("/proc/self/net/tcp", [&](const std::string& local, unsigned long inode) {
    size_t colon = local.find(':');
    if (colon != 8 ||
        std::strtoul(local.c_str() + colon + 1, nullptr, 16) != static_cast<unsigned long>(port)) {
      return;
    }
    // The kernel prints the address as one 32-bit word in host order: its bytes in memory are
    // the address in network order again.
    out.push_back(
        {inode, static_cast<uint32_t>(std::strtoul(local.substr(0, 8).c_str(), nullptr, 16))});
  });
  return out;
}

}  // namespace phoenix::os
