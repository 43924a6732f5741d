// Output that never blocks its callers: lines are queued and one thread of the sink writes
// them. The router's loops and the supervisor write phoenix's terminal (instance output, the
// access log); when nobody reads it (`phoenix up | slow-logger`, a full pipe, a terminal
// paused with Ctrl-S), a write(2) to it would stop them, and with them every request. Past
// `max_queued` bytes, lines are dropped and counted, and the sink says how many once the
// output moves again (HAProxy and nginx drop log lines too rather than wait).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

namespace phoenix::os {

class LineSink {
 public:
  // Writes to `fd` (not owned; left open). `max_queued`: bytes waiting before lines drop;
  // `prefix` starts the line that counts them ("phoenix | ").
  LineSink(int fd, size_t max_queued, std::string prefix);
  ~LineSink();  // writes what is queued, for at most a second, then returns
  LineSink(const LineSink&) = delete;
  LineSink& operator=(const LineSink&) = delete;

  // Whole lines, each ending in '\n'; they go out in order, never torn. Thread-safe.
  void Write(std::string_view lines);

  // Waits until everything queued is written, or `timeout_ms` has passed (output stuck).
  // Returns true when nothing is left.
  bool Flush(int timeout_ms);

  // Lines dropped so far.
  size_t dropped() const;

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the writer, which may outlive a stuck sink
  std::thread writer_;
};

// phoenix's stdout, through a LineSink (created at first use, never destroyed: threads may
// still log while the process exits).
LineSink& Stdout();

}  // namespace phoenix::os
