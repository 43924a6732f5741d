// Socket::Quiet reads Asio's reactor state (router.cc): these check that it says what the pool
// relies on (Worker::Take), on the Boost this is built with; and that SendNow, which writes
// beside Asio, leaves what it could not send for the loop.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <string>

#include "router/router_internal.h"

namespace phoenix::router {
namespace {

using namespace std::chrono_literals;

class SocketQuietTest : public testing::Test {
 protected:
  SocketQuietTest()
      : io_(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO),  // as a Worker's loop
        guard_(asio::make_work_guard(io_)),
        ours_(io_.get_executor()),
        peer_(io_) {
    Acceptor acceptor(io_.get_executor(), tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    peer_.connect(acceptor.local_endpoint());
    acceptor.accept(ours_);
    ours_.Tune();
  }

  // Runs the loop (its epoll_wait included) until `done` or 5 s.
  template <class Pred>
  bool RunUntil(Pred done) {
    for (auto end = std::chrono::steady_clock::now() + 5s;
         !done() && std::chrono::steady_clock::now() < end;) {
      io_.run_for(5ms);
    }
    return done();
  }

  // One read through the loop, as the router's reads go; returns what it got.
  std::string Read() {
    char buf[64];
    size_t got = 0;
    bool finished = false;
    ours_.async_read_some(asio::buffer(buf), [&](boost::system::error_code ec, size_t n) {
      EXPECT_FALSE(ec) << ec.message();
      got = n;
      finished = true;
    });
    EXPECT_TRUE(RunUntil([&] { return finished; }));
    return std::string(buf, got);
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  Socket ours_;
  tcp::socket peer_;
};

TEST_F(SocketQuietTest, QuietOnlyWhileNothingCameSinceAReadEmptiedIt) {
  // Nothing read yet: the reactor cannot know the socket is empty.
  EXPECT_FALSE(ours_.Quiet());
  asio::write(peer_, asio::buffer(std::string("response")));
  EXPECT_EQ(Read(), "response");
  EXPECT_TRUE(ours_.Quiet());  // the read took all there was
  io_.run_for(20ms);           // and polling finds nothing new
  EXPECT_TRUE(ours_.Quiet());

  // A byte after the response (a body to a HEAD, a second response): not quiet once polled.
  asio::write(peer_, asio::buffer(std::string("x")));
  EXPECT_TRUE(RunUntil([&] { return !ours_.Quiet(); }));
  EXPECT_EQ(Read(), "x");
  EXPECT_TRUE(ours_.Quiet());

  // The instance closes its end (its keep-alive timeout, or it died).
  peer_.close();
  EXPECT_TRUE(RunUntil([&] { return !ours_.Quiet(); }));
}

TEST_F(SocketQuietTest, AReadThatLeavesBytesBehindIsNotQuiet) {
  asio::write(peer_, asio::buffer(std::string(100, 'a')));
  // Wait until all 100 bytes are in our socket, then read 64 of them.
  EXPECT_TRUE(RunUntil([&] { return ours_.available() == 100; }));
  EXPECT_EQ(Read().size(), 64u);
  EXPECT_FALSE(ours_.Quiet());
  EXPECT_EQ(Read().size(), 36u);
  EXPECT_TRUE(ours_.Quiet());
}

// SendNow: what the kernel takes goes at once, the rest is left in the buffers for the loop.
TEST_F(SocketQuietTest, SendNowSendsAllThatFitsAndLeavesTheRest) {
  std::string head = "HTTP/1.1 200 OK\r\n\r\n", body = "hello";
  std::array<asio::const_buffer, 3> bufs{asio::buffer(head), asio::const_buffer(),
                                         asio::buffer(body)};
  boost::system::error_code ec;
  EXPECT_TRUE(ours_.SendNow(bufs, ec));
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(asio::buffer_size(bufs), 0u);
  std::string got(head.size() + body.size(), '\0');
  asio::read(peer_, asio::buffer(got));
  EXPECT_EQ(got, head + body);

  // The peer reads nothing: the send buffer fills, and SendNow stops short without blocking.
  std::string big(64 << 20, 'x');
  asio::const_buffer rest = asio::buffer(big);
  EXPECT_FALSE(ours_.SendNow(rest, ec));
  EXPECT_FALSE(ec) << ec.message();
  const size_t sent = big.size() - rest.size();
  EXPECT_GT(sent, 0u);
  EXPECT_GT(rest.size(), 0u);
  EXPECT_EQ(rest.data(), big.data() + sent);  // what is left starts where the kernel stopped
  // A second try, with the buffer still full (but for what acknowledgements freed since), does
  // not block either and leaves the rest.
  EXPECT_FALSE(ours_.SendNow(rest, ec));
  EXPECT_FALSE(ec);
  EXPECT_GE(big.size() - rest.size(), sent);
  EXPECT_GT(rest.size(), 0u);
}

TEST_F(SocketQuietTest, SendNowToAClosedPeerFailsWithoutSignal) {
  peer_.set_option(asio::socket_base::linger(true, 0));  // its close resets the connection
  peer_.close();
  std::string data(1024, 'x');
  boost::system::error_code ec;
  // The reset may take the kernel a moment, and the first send may still be taken.
  EXPECT_TRUE(RunUntil([&] {
    asio::const_buffer b = asio::buffer(data);
    return ours_.SendNow(b, ec) && ec;
  }));
  EXPECT_TRUE(ec == asio::error::connection_reset || ec == asio::error::broken_pipe)
      << ec.message();
}

}  // namespace
}  // namespace phoenix::router
