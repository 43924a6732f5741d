// One line a request, in the key=value style of Heroku's router, e.g.
//   at=info method=GET path="/photos" host=example.com request_id=... fwd="127.0.0.1"
//   dyno=web.2 connect=0ms service=12ms status=200 bytes=5120 protocol=http
// and for answers phoenix made itself: at=error code=H14 desc="No web instances running" ...
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace phoenix::router {

struct AccessEntry {
  std::string_view method, path, host, request_id, client_ip, instance;
  std::string_view protocol = "http";  // "https" when a trusted proxy in front said so
  int status = 0;
  int64_t connect_ms = 0, service_ms = 0;
  uint64_t bytes = 0;
  const char* code = nullptr;  // Heroku-style error code when the router answered or failed
  const char* desc = nullptr;
};

// Appends the line (with '\n') to `out`.
void AppendAccessLine(const AccessEntry& e, std::string& out);

}  // namespace phoenix::router
