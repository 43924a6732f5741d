// The router's event loops. Each thread owns an io_context, a SO_REUSEPORT listener, a pool of
// idle upstream connections and a coarse timer that enforces every deadline (one sweep every
// 100 ms instead of a timer per I/O, as HAProxy and h2o do). A client connection is one C++20
// coroutine (proxy.cc); this file holds what they share.
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "os/net.h"
#include "router/router_internal.h"

namespace boost::asio::detail {

reactor_op::status reactive_socket_recv_op_base<phoenix::router::ReadBuffer>::do_perform(
    reactor_op* base) {
  auto* o = static_cast<reactive_socket_recv_op_base*>(base);
  iovec iov{o->buffer_.data(), o->buffer_.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  for (;;) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(o->socket_, &msg, o->flags_);
    if (n > 0) {
      o->ec_ = boost::system::error_code();
      o->bytes_transferred_ = static_cast<size_t>(n);
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ) {
          int left = 0;
          std::memcpy(&left, CMSG_DATA(c), sizeof left);
          return left == 0 ? done_and_exhausted : done;
        }
      }
      return done;
    }
    if (n == 0) {           // (only TCP sockets read into a ReadBuffer)
      o->ec_ = error::eof;  // as Asio: end of stream, and nothing more will come
      o->bytes_transferred_ = 0;
      return done_and_exhausted;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return not_done;
    o->ec_ = boost::system::error_code(errno, error::get_system_category());
    o->bytes_transferred_ = 0;
    return done;
  }
}

}  // namespace boost::asio::detail

namespace {
// Socket::Quiet reads the epoll reactor's per-descriptor `try_speculative_` flags, which Asio
// keeps private: an explicit instantiation may name a private member (C++20 [temp.spec]/6),
// and this one hands out a pointer to it. The flag for reads is cleared when a read finds the
// socket exhausted (done_and_exhausted, above) and set by every epoll event that could make it
// readable (EPOLLIN, EPOLLERR, EPOLLHUP): Boost 1.81, detail/impl/epoll_reactor.ipp.
using DescriptorState = boost::asio::detail::epoll_reactor::descriptor_state;
using SpeculativeFlags = bool (DescriptorState::*)[boost::asio::detail::epoll_reactor::max_ops];
SpeculativeFlags TrySpeculativeMember();
template <SpeculativeFlags M>
struct TrySpeculativeAccess {
  friend SpeculativeFlags TrySpeculativeMember() { return M; }
};
template struct TrySpeculativeAccess<&DescriptorState::try_speculative_>;
static_assert(BOOST_VERSION == 108100, "Socket::Quiet reads Asio's reactor state: check it");
}  // namespace

namespace phoenix::router {

bool Socket::Quiet() const {
  const DescriptorState* d = impl_.get_implementation().reactor_data_;
  return d != nullptr && !(d->*TrySpeculativeMember())[asio::detail::epoll_reactor::read_op];
}

Socket::Queued Socket::Peek() {
  char c;
  for (;;) {
    const ssize_t n = ::recv(native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return Queued::kBytes;
    if (n == 0) return Queued::kClosed;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK ? Queued::kNothing : Queued::kClosed;
  }
}

bool Socket::SendNow(std::span<asio::const_buffer> bufs, boost::system::error_code& ec) {
  ec.clear();
  std::array<iovec, 8> iov;
  for (;;) {
    size_t k = 0;
    for (const auto& b : bufs) {
      if (b.size() == 0) continue;
      if (k == iov.size()) break;
      iov[k++] = {const_cast<void*>(b.data()), b.size()};
    }
    if (k == 0) return true;
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = k;
    const ssize_t n = ::sendmsg(native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      ec = boost::system::error_code(errno, boost::system::system_category());
      return true;
    }
    size_t left = static_cast<size_t>(n);
    for (auto& b : bufs) {
      const size_t m = std::min(left, b.size());
      b += m;
      left -= m;
    }
    // A short send: the socket's buffer is full, the rest waits for the loop.
    for (const auto& b : bufs) {
      if (b.size() != 0) return false;
    }
    return true;
  }
}

void Socket::Tune() {
  boost::system::error_code ignored;
  set_option(tcp::no_delay(true), ignored);
  const int on = 1;  // refused before Linux 4.18: the reads then behave as Asio's own
  ::setsockopt(native_handle(), IPPROTO_TCP, TCP_INQ, &on, sizeof on);
}

Worker::Worker(RouterImpl& router, int index)
    : router(router),
      rng(std::random_device{}() ^ (static_cast<uint64_t>(index) << 32)),
      // One thread runs this loop, and only it touches its sockets (other threads only post):
      // no locking per descriptor operation.
      io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO),
      acceptor(io.get_executor()),
      tick(io.get_executor()),
      accept_pause(io.get_executor()) {}

Time CoarseNow() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return Time(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
}

void Worker::Sweep() {
  now = Clock::now();
  deadlines.ForEach([this](Deadline* d) {
    if (d->client_gone) {
      // Again on every pass until the request ends: a composed read (Beast's) whose inner read
      // had completed when the first cancel came starts another one, uncancelled; and a 1xx's
      // passing resets `fired`.
      boost::system::error_code ec;
      if (d->sock) d->sock->cancel(ec);
    } else if (!d->fired && now >= d->at) {
      d->fired = true;
      boost::system::error_code ec;
      if (d->sock) d->sock->cancel(ec);  // (none: its socket was closed and freed already)
    } else if (!d->fired && !d->park && now >= d->park_at) {
      d->park = true;
      boost::system::error_code ec;
      d->sock->cancel(ec);
    } else if (!d->fired && d->client && now >= d->watch_from && !d->client->Quiet()) {
      // Something came from a client whose request waits (no syscall while nothing did): a
      // FIN or reset ends the request; bytes (a pipelined request) stop the watch.
      const Socket::Queued q = d->client->Peek();
      if (q == Socket::Queued::kClosed) {
        d->fired = d->client_gone = true;
        boost::system::error_code ec;
        if (d->sock) d->sock->cancel(ec);
      } else if (q == Socket::Queued::kBytes) {
        d->client = nullptr;
      }
    }
  });
  // Idle upstream connections: closed after kIdleUpstream (before the app's own keep-alive
  // timeout closes them under us), or when their instance left.
  auto stale = [this](const Upstream& u) {
    return u.backend->OutOfRotation() || now - u.idle_since > kIdleUpstream;
  };
  CloseKeptIf(stale);
  // Given back by clients that left: to the pool once quiet for kCool.
  std::erase_if(cooling, [&](std::unique_ptr<Upstream>& u) {
    if (stale(*u)) return true;
    if (now - u->idle_since < kCool) return false;
    auto& list = pool[u->backend->info.id];
    if (list.size() < kMaxIdlePerBackend) list.push_back(std::move(u));
    return true;
  });
  // An instance's list stays while it is in rotation, even empty: a request takes a connection
  // out and puts it back, and the list would be allocated anew each time.
  for (auto it = pool.begin(); it != pool.end();) {
    auto& list = it->second;
    bool out_of_rotation = false;
    std::erase_if(list, [&](const std::unique_ptr<Upstream>& u) {
      out_of_rotation = out_of_rotation || u->backend->OutOfRotation();
      return out_of_rotation || now - u->idle_since > kIdleUpstream;
    });
    bool in_rotation = false;
    if (list.empty() && !out_of_rotation && snapshot) {
      for (const auto& b : snapshot->ready) in_rotation = in_rotation || b->info.id == it->first;
    }
    it = list.empty() && !in_rotation ? pool.erase(it) : std::next(it);
  }
  // No connection left: the head-field blocks kept for the busiest moment go back to malloc.
  if (counters.active.load(std::memory_order_relaxed) == 0) field_blocks.Release();
  FlushLog();
}

void Worker::FlushLog() {
  if (log_buf.empty()) return;
  if (router.log) router.log(log_buf);
  log_buf.clear();
}

void Worker::Refresh() {
  uint64_t g = router.backends.generation();
  if (g != generation || !snapshot) {
    snapshot = router.backends.Load();
    generation = snapshot->generation;
  }
}

std::unique_ptr<Upstream> Worker::Take(const std::shared_ptr<Backend>& backend, bool replayable) {
  auto it = pool.find(backend->info.id);
  if (it == pool.end()) return nullptr;
  auto& list = it->second;
  while (!list.empty()) {
    std::unique_ptr<Upstream> u = std::move(list.back());
    list.pop_back();
    if (Reusable(*u, replayable)) {
      u->backend = backend;
      return u;
    }
  }
  return nullptr;
}

bool Worker::Reusable(Upstream& u, bool replayable) {
  if (!u.sock.is_open() || CoarseNow() - u.idle_since >= kIdleUpstream) return false;
  // Nothing may be waiting on an idle connection: bytes the instance sent after its response
  // (a body to a HEAD or a 204, a second response) would be read as the answer to the next
  // request, and a FIN means it closed. HAProxy and nginx watch their idle connections for
  // this in their poller; so does Asio's reactor, which says whether any event came since the
  // response's last read emptied the socket (Socket::Quiet). It may not have polled an event
  // the kernel has queued meanwhile: a request that can go again on another connection takes
  // that chance (a dead one fails at once and the request is retried, proxy.cc); any other
  // request, and a connection after a response that should have had no body, pays one
  // syscall to ask the kernel itself.
  const bool alive = (replayable && !u.peek_before_reuse && u.sock.Quiet()) || u.sock.Empty();
  u.reused = alive;
  return alive;
}

void Worker::Put(std::unique_ptr<Upstream> u) {
  if (u->backend->OutOfRotation()) return;  // closes it
  if (CoarseNow() - u->idle_since < kCool) {
    if (cooling.size() < kMaxCooling) cooling.push_back(std::move(u));
    return;
  }
  auto& list = pool[u->backend->info.id];
  if (list.size() < kMaxIdlePerBackend) list.push_back(std::move(u));
}

void Worker::Keep(Upstream& u) {
  u.idle_since = CoarseNow();
  u.kept = true;
  kept.Insert(&u);
}

void Worker::Unkeep(Upstream& u) {
  if (!u.kept) return;
  u.kept = false;
  kept.Erase(&u);
}

template <class Pred>
void Worker::CloseKeptIf(Pred pred) {
  kept.ForEach([&](Upstream* u) {
    if (!pred(*u)) return;
    boost::system::error_code ec;
    u->sock.close(ec);  // its client connection finds it closed and lets it go
    Unkeep(*u);
  });
}

void Worker::ForgetBackend(uint64_t id) {
  pool.erase(id);
  std::erase_if(cooling,
                [id](const std::unique_ptr<Upstream>& u) { return u->backend->info.id == id; });
  CloseKeptIf([id](const Upstream& u) { return u.backend->info.id == id; });
}

void Worker::StartTick() {
  if (ticking) return;
  ticking = true;
  tick.expires_after(kTick);
  tick.async_wait([this](boost::system::error_code ec) {
    ticking = false;
    if (ec) return;
    Sweep();
    // Idle (no connection, nothing pooled, nothing to log): no wake-ups until the next accept.
    bool pooled = false;
    for (const auto& [id, list] : pool) pooled = pooled || !list.empty();
    pooled = pooled || !cooling.empty() || !kept.empty();
    if (!deadlines.empty() || pooled || !log_buf.empty()) StartTick();
  });
}

void Worker::Accept() {
  acceptor.async_accept(accepted_peer, [this](boost::system::error_code ec, Socket sock) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (ec == asio::error::no_descriptors || ec.value() == ENFILE || ec == asio::error::no_memory ||
        ec == asio::error::no_buffer_space) {
      // Out of descriptors or memory: trying again at once would spin on the same error with
      // the connection still queued. New connections wait in the backlog for 100 ms (nginx
      // waits 500), while the ones we hold finish and free theirs.
      if (!accept_paused) {
        accept_paused = true;
        if (router.log) {
          router.log(
              fmt::format("at=error desc=\"accept: {}; new connections wait\"\n", ec.message()));
        }
      }
      accept_pause.expires_after(std::chrono::milliseconds(100));
      accept_pause.async_wait([this](boost::system::error_code wec) {
        if (!wec) Accept();
      });
      return;
    }
    accept_paused = false;
    if (!ec) {
      sock.Tune();
      Dispatch(std::move(sock), accepted_peer);
    }
    Accept();
  });
}

namespace {
// A descriptor on its way to another loop: closed if that loop stops before taking it.
struct PassedFd {
  int fd;
  explicit PassedFd(int f) : fd(f) {}
  PassedFd(PassedFd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  PassedFd(const PassedFd&) = delete;
  ~PassedFd() {
    if (fd >= 0) ::close(fd);
  }
};
}  // namespace

// SO_REUSEPORT spreads new connections by a hash of their addresses, not by load, and with a
// few long keep-alive connections one loop can hold many more than another (its clients then
// wait longer). So, as HAProxy does, a connection goes to the loop that has the fewest.
void Worker::Dispatch(Socket sock, const tcp::endpoint& peer) {
  Worker* target = this;
  uint64_t least = counters.active.load(std::memory_order_relaxed);
  for (auto& w : router.workers) {
    uint64_t a = w->counters.active.load(std::memory_order_relaxed);
    if (a < least) {
      least = a;
      target = w.get();
    }
  }
  target->counters.active.fetch_add(1, std::memory_order_relaxed);
  if (target == this) {
    Start(std::move(sock), peer);
    return;
  }
  boost::system::error_code ec;
  tcp protocol = sock.local_endpoint(ec).protocol();
  PassedFd fd(ec ? -1 : sock.release(ec));
  if (ec || fd.fd < 0) {
    target->counters.active.fetch_sub(1, std::memory_order_relaxed);
    return;  // the client is gone already
  }
  asio::post(target->io, [target, protocol, peer, fd = std::move(fd)]() mutable {
    boost::system::error_code ec;
    Socket s(target->io.get_executor());
    s.assign(protocol, std::exchange(fd.fd, -1), ec);
    if (ec) {
      target->counters.active.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
    target->Start(std::move(s), peer);
  });
}

// A connection counted in `active` already (Dispatch): its coroutine on this loop.
void Worker::Start(Socket sock, const tcp::endpoint& peer) {
  StartTick();
  asio::co_spawn(io.get_executor(), Serve(*this, std::move(sock), peer), asio::detached);
}

// ---------------------------------------------------------------------------- RouterImpl

RouterImpl::~RouterImpl() { Stop(); }

// One listener a loop, bound with SO_REUSEPORT so the kernel spreads new connections over
// them. SO_REUSEPORT would also let another process of the same user (a second phoenix left
// on the same port) join the group and take a share of the connections, silently: so no
// other listener may be on the port, neither before ours listen (they take no connection
// until then) nor after (one that started at the same moment).
Status RouterImpl::Listen(int port) {
  auto busy = [&](std::string_view why) {
    for (auto& w : workers) {
      boost::system::error_code ignored;
      w->acceptor.close(ignored);
    }
    return Error{fmt::format("port {} is busy ({}): choose another with --port or [router] port",
                             port, why)};
  };
  auto others = [&] {
    std::vector<unsigned long> ours;
    for (auto& w : workers) {
      struct stat st {};
      if (w->acceptor.is_open() && fstat(w->acceptor.native_handle(), &st) == 0) {
        ours.push_back(st.st_ino);
      }
    }
    // Only one whose address overlaps ours takes connections meant for us: 0.0.0.0, or ours.
    const uint32_t mine = config.audit ? htonl(INADDR_LOOPBACK) : 0;
    for (const os::Listener& l : os::Ipv4Listeners(port)) {
      if (std::find(ours.begin(), ours.end(), l.inode) != ours.end()) continue;
      if (mine == 0 || l.address == 0 || l.address == mine) return true;
    }
    return false;
  };
  for (auto& w : workers) {
    boost::system::error_code ec;
    tcp::endpoint ep(config.audit ? asio::ip::address_v4::loopback() : asio::ip::address_v4::any(),
                     static_cast<unsigned short>(port));
    w->acceptor.open(ep.protocol(), ec);
    if (!ec) w->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
      // One listener a thread; the kernel spreads new connections over them.
      int one = 1;
      if (setsockopt(w->acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        ec.assign(errno, boost::system::system_category());
      }
    }
    if (!ec) w->acceptor.bind(ep, ec);
    if (ec) return busy(ec.message());
    if (port == 0) port = w->acceptor.local_endpoint().port();
  }
  if (others()) return busy("another process listens on it");
  for (auto& w : workers) {
    boost::system::error_code ec;
    w->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return busy(ec.message());
  }
  if (others()) return busy("another process listens on it");
  port_ = port;
  return OkStatus();
}

void RouterImpl::Add(const BackendInfo& backend) { backends.Add(backend); }

void RouterImpl::Drain(uint64_t id, std::function<void()> drained) {
  // Out of rotation now: the idle connections to it go at once on every loop, so that no new
  // request takes one.
  for (auto& w : workers) asio::post(w->io, [w = w.get(), id] { w->ForgetBackend(id); });
  // Once its last request ended, every loop closes what it still holds (a connection kept by
  // a client, or given back as that request ended) before `drained` says it may get SIGTERM:
  // an app's shutdown may wait for idle keep-alive connections to close.
  backends.Drain(id, [this, id, drained = std::move(drained)] {
    if (workers.empty()) return drained();
    auto left = std::make_shared<std::atomic<size_t>>(workers.size());
    for (auto& w : workers) {
      asio::post(w->io, [w = w.get(), id, left, drained] {
        w->ForgetBackend(id);
        if (left->fetch_sub(1) == 1) drained();
      });
    }
  });
}

void RouterImpl::Remove(uint64_t id) { RemoveBackend(id, false); }

void RouterImpl::Killed(uint64_t id) { RemoveBackend(id, true); }

void RouterImpl::RemoveBackend(uint64_t id, bool killed) {
  backends.Remove(id, killed);
  for (auto& w : workers) asio::post(w->io, [w = w.get(), id] { w->ForgetBackend(id); });
}

Stats RouterImpl::GetStats() const {
  Stats s;
  for (const auto& w : workers) {
    const Counters& c = w->counters;
    s.requests += c.requests.load(std::memory_order_relaxed);
    s.responses_2xx += c.status[2].load(std::memory_order_relaxed);
    s.responses_3xx += c.status[3].load(std::memory_order_relaxed);
    s.responses_4xx += c.status[4].load(std::memory_order_relaxed);
    s.responses_5xx += c.status[5].load(std::memory_order_relaxed);
    s.router_errors += c.router_errors.load(std::memory_order_relaxed);
    s.retries += c.retries.load(std::memory_order_relaxed);
    s.connections += c.connections.load(std::memory_order_relaxed);
    s.active_connections += c.active.load(std::memory_order_relaxed);
    s.upgrades += c.upgrades.load(std::memory_order_relaxed);
    s.parked_connections += c.parked.load(std::memory_order_relaxed);
    s.interrupted += c.interrupted.load(std::memory_order_relaxed);
  }
  return s;
}

void RouterImpl::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& w : workers) {
    asio::post(w->io, [w = w.get()] {
      boost::system::error_code ec;
      w->acceptor.close(ec);
      w->FlushLog();
      w->io.stop();
    });
  }
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
}

// The CPUs this process may run on (taskset, cpuset cgroups), as nginx's `worker_processes auto`
// counts them; hardware_concurrency() counts every CPU online.
static int UsableCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

Result<std::unique_ptr<Router>> Router::Start(const RouterConfig& config,
                                              std::function<void(std::string_view)> log) {
  // Slow clients each hold a descriptor: take the whole allowance the system gives us.
  rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  auto r = std::make_unique<RouterImpl>();
  r->config = config;
  r->log = config.access_log ? std::move(log) : nullptr;
  int n = config.threads > 0 ? config.threads : UsableCpus();
  for (int i = 0; i < n; ++i) r->workers.push_back(std::make_unique<Worker>(*r, i));
  RETURN_IF_ERROR(r->Listen(config.port));
  for (size_t i = 0; i < r->workers.size(); ++i) {
    Worker* w = r->workers[i].get();
    w->now = Clock::now();
    w->Refresh();
    w->Accept();
    r->threads.emplace_back([w, i] {
      // `top -H`, `ps -L` and perf name each loop.
      pthread_setname_np(pthread_self(), fmt::format("router-{}", i).c_str());
      w->io.run();
    });
  }
  return std::unique_ptr<Router>(std::move(r));
}

}  // namespace phoenix::router
