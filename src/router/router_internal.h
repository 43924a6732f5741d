// Router internals shared by router.cc (threads, pools, deadlines) and proxy.cc (a client
// connection's coroutine). Includes Asio: only router/*.cc include this.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <memory>
#include <memory_resource>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "router/backends.h"
#include "router/router.h"

namespace phoenix::router {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Time = Clock::time_point;

// Every loop is one thread: a concrete executor (no type-erased any_io_executor on each
// operation) and sockets without per-descriptor locking (see Worker::io).
using Executor = asio::io_context::executor_type;

// The buffer a Socket reads into: its own type only so that the receive operation below can
// tell the reactor when the socket is empty (see the specialization).
struct ReadBuffer : asio::mutable_buffer {
  explicit ReadBuffer(asio::mutable_buffer b) : asio::mutable_buffer(b) {}
};

}  // namespace phoenix::router

// The receive operation of a ReadBuffer: Asio's own (detail/reactive_socket_recv_op.hpp, Boost
// 1.81) but for what it tells the reactor. Asio tries every read at once and waits for epoll
// only when the attempt fails with EAGAIN; in a proxy it nearly always fails (the answer to a
// request just sent, the next request of a client just answered): ~0.6 wasted recv calls a
// request, measured. With TCP_INQ (see Socket::Tune) each read also says how many bytes are left
// in the socket, and non-zero once a FIN is queued; when nothing is left, `done_and_exhausted`
// makes the edge-triggered reactor wait for the descriptor's next event before it reads again
// (as it already does after a short write and after end of stream). Any byte or FIN that
// arrives later raises that event, so nothing is missed; without the cmsg (TCP_INQ refused) it
// behaves as Asio's.
namespace boost::asio::detail {
template <>
class reactive_socket_recv_op_base<phoenix::router::ReadBuffer> : public reactor_op {
 public:
  reactive_socket_recv_op_base(const boost::system::error_code& success_ec, socket_type socket,
                               socket_ops::state_type /*state: always a TCP stream*/,
                               const phoenix::router::ReadBuffer& buffer,
                               socket_base::message_flags flags, func_type complete_func)
      : reactor_op(success_ec, &reactive_socket_recv_op_base::do_perform, complete_func),
        socket_(socket),
        buffer_(buffer),
        flags_(flags) {}

  static status do_perform(reactor_op* base);

 private:
  socket_type socket_;
  phoenix::router::ReadBuffer buffer_;
  socket_base::message_flags flags_;
};
}  // namespace boost::asio::detail

namespace phoenix::router {

// A TCP socket whose reads skip the attempt that would fail (see the receive operation above).
class Socket : public asio::basic_stream_socket<tcp, Executor> {
 public:
  using Base = asio::basic_stream_socket<tcp, Executor>;
  using Base::Base;
  Socket(Base&& s) noexcept : Base(std::move(s)) {}  // NOLINT: from the acceptor

  // No Nagle delay (every write is a whole head or chunk), and TCP_INQ for the reads.
  void Tune();

  // True when the reactor has seen no event on the socket since a read left it empty: no byte,
  // FIN or error has come since (but for one the kernel has queued and the loop not yet polled).
  // Costs no syscall; false means "maybe", never "no".
  bool Quiet() const;
  // Asks the kernel (one recv with MSG_PEEK) what is queued: nothing, a byte, or the peer's
  // close (a FIN with no byte before it, or an error).
  enum class Queued { kNothing, kBytes, kClosed };
  Queued Peek();
  bool Empty() { return Peek() == Queued::kNothing; }

  // Sends at once what the kernel takes, and drops the bytes sent from the front of `bufs`.
  // True when all went or the send failed (`ec`); false when the rest must wait for the loop
  // (asio::async_write). Asio's async_write sends at once too, but (1.81) queues its completion
  // behind every handler the loop has ready: a lock and a queue entry a write, and the
  // request's next step a round of a busy loop later. Only where no other write to the socket
  // can be under way.
  bool SendNow(std::span<asio::const_buffer> bufs, boost::system::error_code& ec);
  bool SendNow(asio::const_buffer& buf, boost::system::error_code& ec) {
    return SendNow({&buf, 1}, ec);
  }

  // Beast's parsers and asio::async_read call this; one buffer at a time, like Asio's own
  // single-buffer path (a read may return less than asked).
  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    asio::mutable_buffer first;
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
         ++it) {
      first = asio::mutable_buffer(*it);
      if (first.size()) break;
    }
    return Base::async_read_some(ReadBuffer(first), std::forward<Token>(token));
  }
};
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
using Timer = asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, Executor>;
template <class T>
using Task = asio::awaitable<T, Executor>;
inline constexpr auto kTuple = asio::as_tuple(asio::use_awaitable_t<Executor>{});

// Deadlines are coarse (the sweep runs every 100 ms): the kernel's tick clock is enough, and a
// request sets several of them. Same time line as steady_clock (CLOCK_MONOTONIC).
Time CoarseNow();

inline constexpr auto kTick = std::chrono::milliseconds(100);
// Below Node's default keepAliveTimeout (5 s), so the app never closes one as we reuse it.
inline constexpr auto kIdleUpstream = std::chrono::seconds(2);
inline constexpr size_t kMaxIdlePerBackend = 256;
// An upstream connection serves one client connection at a time, and goes to the shared pool
// only after its client left and it stayed quiet this long. An instance that writes after its
// answer (a second response, bytes past its Content-Length) would otherwise have those bytes
// read as the answer to another client's request, and every later answer on that connection
// go to the request after its own (measured: thousands of answers crossed between clients).
// Kept per client, a stray reaches at worst the client whose connection it is, as without a
// proxy; and a client's own connection is closed when anything came on it while it was idle.
inline constexpr auto kCool = std::chrono::milliseconds(100);
inline constexpr size_t kMaxCooling = 1024;

// A deadline on a socket, enforced by the worker's sweep: when it passes, the socket's
// pending operations are cancelled and `fired` says why.
struct Deadline {
  Time at = Time::max();
  Socket* sock = nullptr;
  bool fired = false;
  // A keep-alive connection idle past park_at has its read cancelled the same way, `park`
  // set, so that it waits for its next request without a read buffer (proxy.cc).
  Time park_at = Time::max();
  bool park = false;
  // While a request waits for its answer, its client's socket: when the client has closed it
  // (FIN or reset), `sock`'s operations are cancelled the same way, `client_gone` set, so the
  // app sees the request abandoned (nginx's default; HAProxy's `abortonclose`) and a drain is
  // not held up by a long poll nobody waits for.
  Socket* client = nullptr;
  Time watch_from = Time::max();  // a request that waited this long: a fast one is let be
  bool client_gone = false;
  Deadline* prev = nullptr;  // the worker's intrusive list: no allocation a request
  Deadline* next = nullptr;
};

// A doubly linked list through its elements' own `prev` and `next`: no allocation to add one
// (the deadlines of a worker, the connections its clients keep).
template <class T>
class IntrusiveList {
 public:
  void Insert(T* d) {
    d->prev = nullptr;
    d->next = head_;
    if (head_) head_->prev = d;
    head_ = d;
  }
  void Erase(T* d) {
    if (d->prev)
      d->prev->next = d->next;
    else
      head_ = d->next;
    if (d->next) d->next->prev = d->prev;
    d->prev = d->next = nullptr;
  }
  bool empty() const { return head_ == nullptr; }
  template <class F>
  void ForEach(F f) {  // f may erase the element it is given
    for (T* d = head_; d;) {
      T* next = d->next;
      f(d);
      d = next;
    }
  }

 private:
  T* head_ = nullptr;
};
using DeadlineList = IntrusiveList<Deadline>;

// The first block of each request's head fields, kept on a free list: a push and a pop a
// request (std::pmr::unsynchronized_pool_resource cost measurably more on the hot path, and
// with its default options sent every block to malloc). Larger blocks go to new/delete.
class BlockCache : public std::pmr::memory_resource {
 public:
  static constexpr size_t kBlock = 8 * 1024;
  ~BlockCache() override { Release(); }
  void Release() {  // every cached block back to malloc
    for (void* p : free_) ::operator delete(p);
    free_.clear();
  }

 private:
  void* do_allocate(size_t bytes, size_t align) override {
    if (bytes > kBlock || align > alignof(std::max_align_t)) {
      return std::pmr::new_delete_resource()->allocate(bytes, align);
    }
    if (free_.empty()) return ::operator new(kBlock);
    void* p = free_.back();
    free_.pop_back();
    return p;
  }
  void do_deallocate(void* p, size_t bytes, size_t align) override {
    if (bytes > kBlock || align > alignof(std::max_align_t)) {
      return std::pmr::new_delete_resource()->deallocate(p, bytes, align);
    }
    if (free_.size() < 256) {
      free_.push_back(p);
    } else {
      ::operator delete(p);
    }
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override {
    return this == &o;
  }
  std::vector<void*> free_;
};

struct Upstream {
  explicit Upstream(asio::io_context& io) : sock(io.get_executor()) {}
  Socket sock;
  boost::beast::flat_buffer buf;
  std::shared_ptr<Backend> backend;
  Time idle_since{};
  bool reused = false;
  // Its last response had no body by the rules (HEAD, 204, 304), where servers are known to
  // send one anyway: peeked before reuse whatever the reactor says (Worker::Reusable).
  bool peek_before_reuse = false;
  // Kept by a client connection between its requests (Worker::kept, proxy.cc).
  bool kept = false;
  Upstream* prev = nullptr;
  Upstream* next = nullptr;
};

struct Counters {
  std::atomic<uint64_t> requests{0}, router_errors{0}, retries{0}, connections{0}, active{0},
      upgrades{0}, parked{0}, interrupted{0};
  std::array<std::atomic<uint64_t>, 6> status{};
};

class RouterImpl;

class Worker {
 public:
  Worker(RouterImpl& router, int index);

  void Accept();
  // `peer` as accept(2) gave it: asked later, a client that has reset has none.
  void Dispatch(Socket sock, const tcp::endpoint& peer);  // to the loop with the fewest
  void Start(Socket sock, const tcp::endpoint& peer);
  void StartTick();  // if not ticking: the sweep runs only while there is something to sweep
  void Sweep();
  void FlushLog();
  void Refresh();  // the backend snapshot, when the generation moved
  // An idle connection to `backend` from the shared pool, or null.
  std::unique_ptr<Upstream> Take(const std::shared_ptr<Backend>& backend, bool replayable);
  // Whether an idle connection may carry the next request: young enough, and nothing came on
  // it since its last response. `replayable`: the request may go again on a fresh connection
  // if this one turns out dead (idempotent, no body), so a connection the reactor has seen
  // nothing on is taken without a peek.
  bool Reusable(Upstream& u, bool replayable);
  // A client connection that ended gives its connections to the pool, where others may take
  // them once they have been quiet for kCool (Sweep).
  void Put(std::unique_ptr<Upstream> upstream);
  // A client connection keeps `u` between its requests (listed, so that Sweep and
  // ForgetBackend can close it); Unkeep when it takes it back or lets it go.
  void Keep(Upstream& u);
  void Unkeep(Upstream& u);
  // Closes the kept connections `pred` picks (their sessions own them: they find them closed).
  template <class Pred>
  void CloseKeptIf(Pred pred);
  void ForgetBackend(uint64_t id);

  // Order matters: the io_context destroys the pending coroutines, whose guards still touch
  // `deadlines` and `counters` (declared before it, so destroyed after); the pooled sockets and
  // the acceptor need the io_context (declared after it, so destroyed before).
  RouterImpl& router;
  DeadlineList deadlines;
  Counters counters;
  std::shared_ptr<const Snapshot> snapshot;
  uint64_t generation = 0;
  uint64_t cursor = 0;
  std::mt19937_64 rng;
  std::string log_buf;
  // Body buffers that idle connections gave back, for the next request to take (proxy.cc).
  // Before `io`: the sessions it destroys give theirs back.
  std::vector<std::unique_ptr<char[]>> spare_chunks;
  // Upstream connections that client connections keep (their sessions own them). Before `io`:
  // the sessions it destroys take theirs off the list.
  IntrusiveList<Upstream> kept;
  // The blocks that requests' head fields live in, lent for one request each (an idle
  // connection holds none). Before `io`, as above.
  BlockCache field_blocks;
  Time now{};  // read once per sweep, for deadlines
  bool ticking = false;
  asio::io_context io;
  Acceptor acceptor;
  tcp::endpoint accepted_peer;  // filled by each accept (Accept)
  Timer tick;
  Timer accept_pause;          // after an accept that failed for want of descriptors
  bool accept_paused = false;  // (said once in the log)
  std::unordered_map<uint64_t, std::vector<std::unique_ptr<Upstream>>> pool;
  std::vector<std::unique_ptr<Upstream>> cooling;  // given back, not yet kCool quiet
};

// Registers a deadline with its worker for the guard's lifetime.
class Watch {
 public:
  Watch(Worker& w, Deadline& d) : w_(w), d_(d) { w_.deadlines.Insert(&d_); }
  ~Watch() { w_.deadlines.Erase(&d_); }
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

 private:
  Worker& w_;
  Deadline& d_;
};

class RouterImpl : public Router {
 public:
  ~RouterImpl() override;
  Status Listen(int port);
  void Add(const BackendInfo& backend) override;
  void Drain(uint64_t id, std::function<void()> drained) override;
  void Remove(uint64_t id) override;
  void Killed(uint64_t id) override;
  Stats GetStats() const override;
  std::vector<BackendTraffic> Traffic() const override { return backends.Traffic(); }
  int port() const override { return port_; }
  void Stop() override;

  RouterConfig config;
  std::function<void(std::string_view)> log;
  Backends backends;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::thread> threads;

 private:
  void RemoveBackend(uint64_t id, bool killed);
  int port_ = 0;
  bool stopped_ = false;
};

// One client connection, from accept to close (proxy.cc).
Task<void> Serve(Worker& w, Socket client, tcp::endpoint peer);

}  // namespace phoenix::router
