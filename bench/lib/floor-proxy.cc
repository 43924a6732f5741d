// The floor under any HTTP proxy on this machine, for bench/router-floor.sh: one thread, one
// edge-triggered epoll loop, a TCP pass-through (no parsing, no rewriting) from each client
// connection to its own upstream connection. Each ready socket is read once (a small request
// or response fits one read) and what came is sent on at once, or, with BATCH=1, after every
// ready socket of the poll was read (HAProxy's order). WORK_NS burns that much CPU after each
// read, to see how a proxy that costs more a request (parsing, rewriting) would fare.
// Not a product: no partial-write queue (a short write waits in poll), no timeouts.
// usage: floor-proxy LISTEN_PORT UPSTREAM_PORT BATCH WORK_NS
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

struct Conn {
  int fd;  // -1 once closed
  Conn* pair;
};

int Listen(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 1024) != 0) {
    perror("floor-proxy: listen");
    exit(1);
  }
  return fd;
}

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void SendAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      p += w;
      n -= static_cast<size_t>(w);
    } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd pf{fd, POLLOUT, 0};
      poll(&pf, 1, 1000);
    } else {
      return;  // the peer is gone; its read side will see it
    }
  }
}

void Work(long ns) {
  if (ns <= 0) return;
  timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do {
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < ns);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: floor-proxy LISTEN_PORT UPSTREAM_PORT BATCH WORK_NS\n");
    return 2;
  }
  const int upstream = atoi(argv[2]);
  const bool batch = atoi(argv[3]) != 0;
  const long work_ns = atol(argv[4]);
  const int ls = Listen(atoi(argv[1]));
  const int ep = epoll_create1(0);
  epoll_event le{};
  le.events = EPOLLIN;
  le.data.ptr = nullptr;
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &le);
  auto add = [ep](Conn* c) {
    epoll_event e{};
    e.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    e.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
  };
  constexpr int kEvents = 256;
  std::vector<epoll_event> ev(kEvents);
  std::vector<char> scratch(16384);
  std::vector<std::vector<char>> held(kEvents, std::vector<char>(16384));  // BATCH=1
  std::vector<std::pair<int, size_t>> out(kEvents);
  std::vector<Conn*> dead;
  const int one = 1;
  for (;;) {
    int n = epoll_wait(ep, ev.data(), kEvents, -1);
    int pending = 0;
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Conn*>(ev[i].data.ptr);
      if (c == nullptr) {
        for (int cfd; (cfd = accept4(ls, nullptr, nullptr, SOCK_NONBLOCK)) >= 0;) {
          int ufd = Connect(upstream);
          if (ufd < 0) {
            close(cfd);
            continue;
          }
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          auto* a = new Conn{cfd, nullptr};
          auto* b = new Conn{ufd, a};
          a->pair = b;
          add(a);
          add(b);
        }
        continue;
      }
      if (c->fd < 0) continue;  // closed earlier in this poll
      char* dst = batch ? held[pending].data() : scratch.data();
      ssize_t r = recv(c->fd, dst, 16384, 0);
      if (r <= 0) {
        if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          // Both sides go together; the objects live until the end of this poll, whose
          // events may still name them.
          for (Conn* x : {c, c->pair}) {
            for (int k = 0; k < pending; ++k) {
              if (out[k].first == x->fd) out[k].first = -1;  // its number may be reused
            }
            if (x->fd >= 0) close(x->fd);
            x->fd = -1;
            dead.push_back(x);
          }
        }
        continue;
      }
      Work(work_ns);
      if (batch) {
        out[pending++] = {c->pair->fd, static_cast<size_t>(r)};
      } else {
        SendAll(c->pair->fd, dst, static_cast<size_t>(r));
      }
    }
    for (int k = 0; k < pending; ++k) {
      if (out[k].first >= 0) SendAll(out[k].first, held[k].data(), out[k].second);
    }
    for (Conn* x : dead) delete x;
    dead.clear();
  }
}
