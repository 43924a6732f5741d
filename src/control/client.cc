#include "control/client.h"

#include <errno.h>
#include <fmt/format.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "os/fd.h"

namespace phoenix::control {

Status Call(const std::string& socket_path, const std::string& request,
            const std::function<bool(const std::string&)>& on_line) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    return Error{fmt::format("{}: path too long for a unix socket", socket_path)};
  }
  memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  os::Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Error{fmt::format("socket: {}", strerror(errno))};
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    if (errno == ENOENT || errno == ECONNREFUSED) {
      return Error{"phoenix is not running for this app (start it with `phoenix up`)"};
    }
    return Error{fmt::format("{}: {}", socket_path, strerror(errno))};
  }
  std::string out = request + "\n";
  for (size_t done = 0; done < out.size();) {
    ssize_t n = write(fd.get(), out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{fmt::format("control socket: {}", strerror(errno))};
    done += n;
  }
  std::string buf;
  char chunk[65536];
  for (;;) {
    ssize_t n = read(fd.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{fmt::format("control socket: {}", strerror(errno))};
    if (n == 0) break;
    buf.append(chunk, n);
    size_t start = 0, nl;
    while ((nl = buf.find('\n', start)) != std::string::npos) {
      if (!on_line(buf.substr(start, nl - start))) return OkStatus();
      start = nl + 1;
    }
    buf.erase(0, start);
  }
  if (!buf.empty()) on_line(buf);
  return OkStatus();
}

}  // namespace phoenix::control
