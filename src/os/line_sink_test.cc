#include "os/line_sink.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "os/fd.h"

namespace phoenix::os {
namespace {

struct Pipe {
  Fd r, w;
  Pipe() {
    int fds[2];
    EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
    r = Fd(fds[0]);
    w = Fd(fds[1]);
  }
};

std::string ReadAll(int fd) {
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

std::string Line(int i) { return "line " + std::to_string(i) + " " + std::string(90, 'x') + "\n"; }

// Starts reading the pipe, lets the sink write all it holds, writes "after\n" behind it, and
// returns everything that came out once the write end is closed.
std::string ReadWhileFlushing(Pipe& p, LineSink& sink) {
  std::string got;
  std::thread reader([&] { got = ReadAll(p.r.get()); });
  EXPECT_TRUE(sink.Flush(10000));
  sink.Write("after\n");
  EXPECT_TRUE(sink.Flush(10000));
  p.w.Reset();
  reader.join();
  return got;
}

TEST(LineSink, WritesInOrder) {
  Pipe p;
  std::string got;
  {
    LineSink sink(p.w.get(), 1 << 20, "phoenix | ");
    std::thread reader([&] { got = ReadAll(p.r.get()); });
    std::string want;
    for (int i = 0; i < 2000; ++i) {
      sink.Write(Line(i));
      want += Line(i);
    }
    EXPECT_TRUE(sink.Flush(10000));
    EXPECT_EQ(sink.dropped(), 0u);
    p.w.Reset();  // the reader sees the end
    reader.join();
    EXPECT_EQ(got, want);
  }
}

// Nobody reads: Write returns at once, past the queue's bound lines are counted as dropped,
// and once the output moves again the sink says how many, between what it had queued and
// what came after.
TEST(LineSink, NeverBlocksAndCountsDrops) {
  Pipe p;
  fcntl(p.w.get(), F_SETPIPE_SZ, 4096);
  LineSink sink(p.w.get(), 16 * 1024, "phoenix | ");
  int written = 0;
  while (sink.dropped() < 50) sink.Write(Line(written++));  // would hang if Write blocked
  size_t dropped = sink.dropped();
  std::string got = ReadWhileFlushing(p, sink);
  // Every line kept is whole and in order; the notice follows them; "after" comes last.
  std::string notice = "phoenix | " + std::to_string(dropped) + " lines of output dropped";
  size_t at = got.find(notice);
  ASSERT_NE(at, std::string::npos) << got.substr(got.size() > 300 ? got.size() - 300 : 0);
  std::string kept = got.substr(0, at);
  int i = 0;
  for (size_t pos = 0; pos < kept.size(); pos += Line(i).size(), ++i) {
    ASSERT_EQ(kept.compare(pos, Line(i).size(), Line(i)), 0) << "line " << i;
  }
  EXPECT_EQ(static_cast<size_t>(i) + dropped, static_cast<size_t>(written));
  EXPECT_TRUE(got.ends_with("s\nafter\n")) << got.substr(at);
}

// A parent (Node, with stdio inherited) may have set O_NONBLOCK on the pipe phoenix writes: a
// full pipe is then EAGAIN, which must mean "wait", not "the output is gone".
TEST(LineSink, NonBlockingOutputIsWaitedOn) {
  Pipe p;
  fcntl(p.w.get(), F_SETPIPE_SZ, 4096);
  fcntl(p.w.get(), F_SETFL, fcntl(p.w.get(), F_GETFL) | O_NONBLOCK);
  LineSink sink(p.w.get(), 1 << 20, "phoenix | ");
  std::string want;
  for (int i = 0; i < 500; ++i) {
    sink.Write(Line(i));
    want += Line(i);
  }
  std::string got = ReadWhileFlushing(p, sink);
  EXPECT_EQ(got, want + "after\n");
  EXPECT_EQ(sink.dropped(), 0u);
}

TEST(LineSink, GoneReaderIsNotAnError) {
  signal(SIGPIPE, SIG_IGN);  // as the daemon runs
  Pipe p;
  p.r.Reset();
  LineSink sink(p.w.get(), 1 << 20, "phoenix | ");
  for (int i = 0; i < 100; ++i) sink.Write(Line(i));
  EXPECT_TRUE(sink.Flush(10000));
  EXPECT_EQ(sink.dropped(), 0u);  // discarded, not dropped: there is nobody to tell
}

// A sink whose output is stuck does not hold up its owner's end for more than a second.
TEST(LineSink, StuckOutputDoesNotHangDestruction) {
  Pipe p;
  fcntl(p.w.get(), F_SETPIPE_SZ, 4096);
  auto start = std::chrono::steady_clock::now();
  {
    LineSink sink(p.w.get(), 1 << 20, "phoenix | ");
    for (int i = 0; i < 1000; ++i) sink.Write(Line(i));
    EXPECT_FALSE(sink.Flush(50));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  signal(SIGPIPE, SIG_IGN);
  p.r.Reset();  // the writer left behind gets EPIPE and ends
}

}  // namespace
}  // namespace phoenix::os
