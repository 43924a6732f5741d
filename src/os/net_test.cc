#include "os/net.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "os/fd.h"
#include "os/spawn.h"

namespace phoenix::os {
namespace {

int Listen(int family, const char* ip) {
  Fd fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &a->sin_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    inet_pton(AF_INET6, ip, &a->sin6_addr);
    len = sizeof *a;
  }
  EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len), 0);
  EXPECT_EQ(listen(fd.get(), 1), 0);
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  int port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                     : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  fd.Release();  // kept open for the test's life
  return port;
}

bool Has(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

TEST(ListeningAddressesTest, FindsWhatThisProcessListensOn) {
  int v4 = Listen(AF_INET, "127.0.0.1");
  int any = Listen(AF_INET, "0.0.0.0");
  auto found = ListeningAddresses(getpid());
  EXPECT_TRUE(Has(found, "127.0.0.1:" + std::to_string(v4))) << ::testing::PrintToString(found);
  EXPECT_TRUE(Has(found, "0.0.0.0:" + std::to_string(any))) << ::testing::PrintToString(found);
}

TEST(ListeningAddressesTest, FindsWhatAChildListensOn) {
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int port = Listen(AF_INET, "127.0.0.1");
    (void)!write(pipefd[1], &port, sizeof port);
    pause();
    _exit(0);
  }
  int port = 0;
  ASSERT_EQ(read(pipefd[0], &port, sizeof port), static_cast<ssize_t>(sizeof port));
  auto found = ListeningAddresses(getpid());
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(pipefd[0]);
  close(pipefd[1]);
  EXPECT_TRUE(Has(found, "127.0.0.1:" + std::to_string(port))) << ::testing::PrintToString(found);
}

TEST(ListeningAddressesTest, IPv6InBrackets) {
  int v6 = Listen(AF_INET6, "::1");
  auto found = ListeningAddresses(getpid());
  EXPECT_TRUE(Has(found, "[::1]:" + std::to_string(v6))) << ::testing::PrintToString(found);
}

TEST(DescendantsTest, ChildrenAndGrandchildren) {
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pid_t grandchild = fork();
    if (grandchild == 0) {
      pause();
      _exit(0);
    }
    (void)!write(pipefd[1], &grandchild, sizeof grandchild);
    pause();
    _exit(0);
  }
  pid_t grandchild = 0;
  ASSERT_EQ(read(pipefd[0], &grandchild, sizeof grandchild),
            static_cast<ssize_t>(sizeof grandchild));
  auto under = Descendants(getpid());
  auto under_child = Descendants(child);
  kill(grandchild, SIGKILL);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(pipefd[0]);
  close(pipefd[1]);
  EXPECT_TRUE(std::count(under.begin(), under.end(), child) == 1);
  EXPECT_TRUE(std::count(under.begin(), under.end(), grandchild) == 1);
  EXPECT_EQ(under_child, std::vector<pid_t>{grandchild});
}

TEST(Ipv4ListenersTest, ListsEveryListenerOnThePortAndNothingElse) {
  int port = Listen(AF_INET, "127.0.0.1");
  auto found = Ipv4Listeners(port);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].address, htonl(INADDR_LOOPBACK));
  // It is this process's socket: its inode is among our descriptors'.
  bool ours = false;
  for (int fd = 0; fd < 1024 && !ours; ++fd) {
    struct stat st {};
    ours = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == found[0].inode;
  }
  EXPECT_TRUE(ours);
  // A connected socket on a port is no listener; a port nobody listens on has none.
  Fd c(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ASSERT_EQ(connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  sockaddr_in local{};
  socklen_t len = sizeof local;
  getsockname(c.get(), reinterpret_cast<sockaddr*>(&local), &len);
  EXPECT_TRUE(Ipv4Listeners(ntohs(local.sin_port)).empty());
  EXPECT_EQ(Ipv4Listeners(port).size(), 1u);
}

TEST(ListeningAddressesTest, NoSuchProcessIsEmpty) {
  EXPECT_TRUE(ListeningAddresses(999999999).empty());
}

}  // namespace
}  // namespace phoenix::os
