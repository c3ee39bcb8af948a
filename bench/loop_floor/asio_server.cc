// An empty Redis-protocol server for bench/loop_floor.sh, built as sealcached's RESP
// connection is (server/src/resp_connection.h, connection.h): one io_context and thread per
// loop, connections given to loops in turn, a coroutine per connection that awaits
// async_read_some and answers with a non-blocking write_some. Every command is answered with
// the same 2 KiB bulk string: no command work, only Asio's and the kernel's share.
//
//   asio_server PORT LOOPS
// clang-format off
#include <utility>  // before asio in C++20
#include <boost/asio.hpp>
// clang-format on
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "empty_reply.h"

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

awaitable<void> Serve(tcp::socket socket) {
  std::vector<char> in(16 << 10);
  std::string out;
  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  while (!ec) {
    const size_t got =
        co_await socket.async_read_some(asio::buffer(in), asio::redirect_error(use_awaitable, ec));
    if (ec) break;
    loop_floor::AnswerEach(in.data(), got, out);
    socket.write_some(asio::buffer(out), ec);  // 2 KiB replies: the socket takes them
  }
}

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PORT LOOPS\n", argv[0]);
    return 2;
  }
  const int port = std::atoi(argv[1]), count = std::atoi(argv[2]);
  asio::io_context accepting;
  std::vector<std::unique_ptr<asio::io_context>> loops;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::vector<std::thread> threads;
  for (int i = 0; i < count; ++i) {
    loops.push_back(std::make_unique<asio::io_context>(1));
    guards.push_back(asio::make_work_guard(*loops.back()));
  }
  for (auto& loop : loops) threads.emplace_back([&loop] { loop->run(); });
  tcp::acceptor acceptor(accepting,
                         {asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  for (size_t next = 0;; ++next) {
    tcp::socket accepted = acceptor.accept();
    accepted.set_option(tcp::no_delay(true));
    asio::io_context& loop = *loops[next % loops.size()];
    const auto protocol = accepted.local_endpoint().protocol();
    asio::co_spawn(loop, Serve(tcp::socket(loop, protocol, accepted.release())), asio::detached);
  }
}
