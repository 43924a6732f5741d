#include "os/line_sink.h"

#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>

namespace phoenix::os {

struct LineSink::State {
  int fd;
  size_t max_queued;
  std::string prefix;
  std::mutex mu;
  std::condition_variable wake;     // the writer: lines queued, or closing
  std::condition_variable drained;  // Flush: nothing queued or in flight
  std::string pending;
  bool writing = false;
  bool closing = false;
  bool broken = false;  // the output is gone (EPIPE, EBADF...): lines are discarded
  size_t unreported = 0;
  size_t dropped = 0;
  std::chrono::steady_clock::time_point first_drop;

  void Run() {
    std::unique_lock lock(mu);
    for (;;) {
      wake.wait(lock, [&] { return !pending.empty() || closing; });
      if (pending.empty()) return;  // closing, and all written
      std::string out;
      out.swap(pending);
      writing = true;
      lock.unlock();
      bool ok = WriteAll(out);
      lock.lock();
      writing = false;
      if (!ok) {
        broken = true;
        pending.clear();
      } else if (unreported > 0) {
        // Said where the lines went missing: after every line queued before the first drop
        // (Write drops all that comes until this notice is in), before what comes next.
        auto stuck = std::chrono::duration<double>(std::chrono::steady_clock::now() - first_drop);
        pending += fmt::format("{}{} line{} of output dropped: it was not read for {:.1f}s\n",
                               prefix, unreported, unreported == 1 ? "" : "s", stuck.count());
        unreported = 0;
      }
      if (pending.empty()) drained.notify_all();
    }
  }

  // False when the output is gone for good (EPIPE, EBADF...). A non-blocking descriptor (a
  // parent such as Node sets O_NONBLOCK on the pipe it shares with us) is waited on, not lost.
  bool WriteAll(std::string_view out) const {
    while (!out.empty()) {
      ssize_t n = ::write(fd, out.data(), out.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, -1) < 0 && errno != EINTR) return false;
        continue;
      }
      if (n <= 0) return false;
      out.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
};

LineSink::LineSink(int fd, size_t max_queued, std::string prefix)
    : state_(std::make_shared<State>()) {
  state_->fd = fd;
  state_->max_queued = max_queued;
  state_->prefix = std::move(prefix);
  writer_ = std::thread([s = state_] { s->Run(); });
}

LineSink::~LineSink() {
  bool done = Flush(1000);
  {
    std::lock_guard lock(state_->mu);
    state_->closing = true;
  }
  state_->wake.notify_one();
  // A writer stuck in write(2) keeps its own reference to the state and ends with the process.
  if (done) {
    writer_.join();
  } else {
    writer_.detach();
  }
}

void LineSink::Write(std::string_view lines) {
  if (lines.empty()) return;
  State& s = *state_;
  std::unique_lock lock(s.mu);
  if (s.broken || s.closing) return;
  // Once a line is dropped, all are until the writer has put the notice in its place.
  if (s.unreported > 0 ||
      (s.pending.size() + lines.size() > s.max_queued && (s.writing || !s.pending.empty()))) {
    if (s.unreported == 0) s.first_drop = std::chrono::steady_clock::now();
    size_t n = std::max<size_t>(1, std::count(lines.begin(), lines.end(), '\n'));
    s.unreported += n;
    s.dropped += n;
    return;
  }
  bool was_empty = s.pending.empty();
  s.pending.append(lines);
  lock.unlock();
  if (was_empty) s.wake.notify_one();
}

bool LineSink::Flush(int timeout_ms) {
  State& s = *state_;
  std::unique_lock lock(s.mu);
  return s.drained.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                            [&] { return s.broken || (s.pending.empty() && !s.writing); });
}

size_t LineSink::dropped() const {
  std::lock_guard lock(state_->mu);
  return state_->dropped;
}

LineSink& Stdout() {
  // 2 MiB: minutes of a busy access log, seconds of a chatty app; beyond that a reader that
  // does not read loses lines, not requests.
  static LineSink* sink = [] {
    auto* s = new LineSink(STDOUT_FILENO, 2 << 20, "phoenix | ");
    std::atexit([] { sink->Flush(1000); });
    return s;
  }();
  return *sink;
}

}  // namespace phoenix::os
