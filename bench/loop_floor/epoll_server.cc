// An empty Redis-protocol server for bench/loop_floor.sh: a level-triggered epoll loop per
// thread, one read and one write per readiness (as redis-server's loop), every command
// answered with the same 2 KiB bulk string. It does no command work at all: what it costs
// per request is the kernel's and the loop's share, the floor under any server's GET.
//
//   epoll_server PORT THREADS
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "empty_reply.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PORT THREADS\n", argv[0]);
    return 2;
  }
  const int port = std::atoi(argv[1]), threads = std::atoi(argv[2]);
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(listener, 128) != 0) {
    std::perror("listen");
    return 1;
  }
  std::vector<int> loops(threads);
  for (int& fd : loops) fd = epoll_create1(0);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([fd = loops[t]] {
      epoll_event events[64];
      std::vector<char> in(16 << 10);
      std::string out;
      for (;;) {
        const int n = epoll_wait(fd, events, 64, -1);
        for (int i = 0; i < n; ++i) {
          const int client = events[i].data.fd;
          const ssize_t got = read(client, in.data(), in.size());
          if (got <= 0) {
            close(client);
            continue;
          }
          loop_floor::AnswerEach(in.data(), static_cast<size_t>(got), out);
          if (write(client, out.data(), out.size()) < 0) close(client);
        }
      }
    });
  }
  for (size_t next = 0;; ++next) {
    const int client = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
    if (client < 0) continue;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = client;
    epoll_ctl(loops[next % loops.size()], EPOLL_CTL_ADD, client, &event);
  }
}
