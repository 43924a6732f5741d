// The HTTP router: the public port of the `web` type, an HTTP/1.1 reverse proxy in front of
// the ready instances. Event-loop threads (one per core by default) each accept on their own
// SO_REUSEPORT socket, keep their own pool of upstream connections, and read the set of
// backends as a snapshot that the supervisor's thread replaces. No Beast or Asio in this
// header: the rest of phoenix only adds, drains and removes backends.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "config/config.h"

namespace phoenix::router {

struct BackendInfo {
  uint64_t id = 0;       // the incarnation id
  std::string instance;  // "web.2", for logs
  int incarnation = 0;
  int port = 0;  // on 127.0.0.1, or on ::1 when `ipv6`
  // The instance accepted on ::1 and not on 127.0.0.1: it listens on "localhost", which can
  // resolve to ::1 alone, or on "::1" itself.
  bool ipv6 = false;
};

// Counters, summed over threads when read.
struct Stats {
  uint64_t requests = 0, responses_2xx = 0, responses_3xx = 0, responses_4xx = 0, responses_5xx = 0;
  uint64_t router_errors = 0;  // answers phoenix made itself (400, 408, 431, 502, 503, 504)
  uint64_t retries = 0, connections = 0, active_connections = 0, upgrades = 0;
  uint64_t parked_connections = 0;  // keep-alive connections idle long enough to hold no buffers
  uint64_t interrupted = 0;  // responses the instance cut short after their head went on (H18)
};

// What one incarnation's backend has carried so far.
struct BackendTraffic {
  uint64_t id = 0;
  uint64_t requests = 0;  // routed to it; a retried request counts on each instance it tried
  int in_flight = 0;
};

class Router {
 public:
  // `log` receives whole access-log lines (several at a time, each ending in '\n'), from any
  // router thread; it must be thread-safe.
  static Result<std::unique_ptr<Router>> Start(const RouterConfig& config,
                                               std::function<void(std::string_view)> log);
  virtual ~Router() = default;

  // Called from the supervisor's thread.
  virtual void Add(const BackendInfo& backend) = 0;
  // Out of rotation at once; `drained` runs (on a router thread) once its in-flight requests
  // are done, and its idle pooled connections are closed.
  virtual void Drain(uint64_t id, std::function<void()> drained) = 0;
  // Died: out of rotation at once, no waiting.
  virtual void Remove(uint64_t id) = 0;
  // About to be SIGKILLed by phoenix (kill --now, a drill, chaos): out of rotation at once, and
  // the requests it takes down with it may be retried again (they did not kill it).
  virtual void Killed(uint64_t id) = 0;
  virtual Stats GetStats() const = 0;
  // Every backend in rotation or draining.
  virtual std::vector<BackendTraffic> Traffic() const = 0;
  virtual int port() const = 0;
  virtual void Stop() = 0;  // closes the listeners, then joins the threads
};

}  // namespace phoenix::router
