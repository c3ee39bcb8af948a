#include "get_bench.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "protocol_generated.h"
#include "sealcache/server/frame.h"

namespace sealcache::bench {
namespace {

namespace P = protocol;
using server::kFrameHeaderSize;

constexpr size_t kReadChunk = 256 << 10;

struct Conn {
  int fd = -1;
  std::vector<uint8_t> in;  // received bytes not yet parsed: [begin, end)
  size_t begin = 0, end = 0;
  uint32_t awaiting = 0;       // responses of the current batch still to come
  std::vector<uint32_t> keys;  // the current batch's keys, by request id - 1
  ~Conn() {
    if (fd >= 0) close(fd);
  }
};

bool SendAll(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t sent = send(fd, p, n, MSG_NOSIGNAL);
    if (sent <= 0) return false;
    p += sent;
    n -= static_cast<size_t>(sent);
  }
  return true;
}

// The finished buffer of `fbb` appended to `out` as a frame.
void AppendFrame(const flatbuffers::FlatBufferBuilder& fbb, std::vector<uint8_t>& out) {
  server::AppendFrame({fbb.GetBufferPointer(), fbb.GetSize()}, &out);
}

// Blocking: connects and says Hello with the token. -1 on failure (printed).
int Open(const GetBenchOptions& o) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(o.port);
  if (fd < 0 || inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1 ||
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::fprintf(stderr, "bench: cannot connect to %s:%u\n", o.host.c_str(), o.port);
    if (fd >= 0) close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  flatbuffers::FlatBufferBuilder fbb;
  auto hello = P::CreateHelloRequest(fbb, fbb.CreateString(o.token));
  P::FinishRequestBuffer(fbb,
                         P::CreateRequest(fbb, 1, P::RequestBody::HelloRequest, hello.Union()));
  std::vector<uint8_t> frame;
  AppendFrame(fbb, frame);
  uint8_t header[kFrameHeaderSize];
  bool ok = SendAll(fd, frame.data(), frame.size()) &&
            recv(fd, header, sizeof(header), MSG_WAITALL) == sizeof(header);
  std::vector<uint8_t> body(ok ? server::DecodeFrameLength(header) : 0);
  ok = ok && recv(fd, body.data(), body.size(), MSG_WAITALL) == static_cast<ssize_t>(body.size());
  auto response = ok ? server::VerifyResponse(body) : Status::IOError("connection closed");
  if (!response.ok() || (*response)->status() != P::StatusCode::OK) {
    std::fprintf(stderr, "bench: Hello failed: %s\n",
                 response.ok() && (*response)->message() ? (*response)->message()->c_str()
                                                         : "no valid response");
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

GetBenchResult RunGetBench(const GetBenchOptions& o, const Workload& w) {
  GetBenchResult result;
  // Digests and payload sizes up front: a digest costs a generator's seeding, which would
  // load this single client thread more than the request.
  std::vector<Digest> digests(o.keys);
  std::vector<uint32_t> sizes(o.keys);
  for (uint32_t k = 0; k < o.keys; ++k) {
    digests[k] = w.DigestOf(0, k);
    sizes[k] = static_cast<uint32_t>(w.Payload(0, k).size());
  }
  std::vector<Conn> conns(o.connections);
  const int ep = epoll_create1(0);
  for (uint32_t c = 0; c < o.connections; ++c) {
    conns[c].fd = Open(o);
    if (conns[c].fd < 0) {
      result.errors++;
      close(ep);
      return result;
    }
    conns[c].in.resize(kReadChunk);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = c;
    epoll_ctl(ep, EPOLL_CTL_ADD, conns[c].fd, &ev);
  }
  std::mt19937_64 rng(o.seed);
  flatbuffers::FlatBufferBuilder fbb(256);
  std::vector<uint8_t> out;
  std::vector<uint8_t> aligned;  // a response body, copied to an aligned buffer to read it
  uint64_t sent = 0, done = 0;
  uint32_t open = 0;
  // Sends the connection's next batch, if any requests are left; false on a send error.
  auto send_batch = [&](Conn& c) {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(o.pipeline, o.requests - sent));
    if (n == 0) return true;
    out.clear();
    c.keys.resize(n);
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t key = static_cast<uint32_t>(rng() % o.keys);
      c.keys[i] = key;
      fbb.Clear();
      auto d = fbb.CreateVector(digests[key].data(), digests[key].size());
      auto get = P::CreateGetEntryRequest(fbb, d, true);
      P::FinishRequestBuffer(
          fbb, P::CreateRequest(fbb, i + 1, P::RequestBody::GetEntryRequest, get.Union()));
      AppendFrame(fbb, out);
    }
    sent += n;
    c.awaiting = n;
    ++open;
    return SendAll(c.fd, out.data(), out.size());
  };
  const auto start = std::chrono::steady_clock::now();
  for (auto& c : conns) {
    if (!send_batch(c)) result.errors++;
  }
  std::vector<epoll_event> events(o.connections);
  while (open > 0 && result.errors == 0) {
    const int ready = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 10'000);
    if (ready <= 0) {
      std::fprintf(stderr, "bench: no response for 10 s\n");
      result.errors++;
      break;
    }
    for (int e = 0; e < ready; ++e) {
      Conn& c = conns[events[e].data.u32];
      if (c.in.size() - c.end < kReadChunk / 2) {  // room for the next read
        std::memmove(c.in.data(), c.in.data() + c.begin, c.end - c.begin);
        c.end -= c.begin;
        c.begin = 0;
        if (c.in.size() - c.end < kReadChunk / 2) c.in.resize(c.in.size() * 2);
      }
      const ssize_t got = recv(c.fd, c.in.data() + c.end, c.in.size() - c.end, MSG_DONTWAIT);
      if (got <= 0) {
        if (got < 0 && errno == EAGAIN) continue;
        std::fprintf(stderr, "bench: connection closed by the server\n");
        result.errors++;
        break;
      }
      c.end += static_cast<size_t>(got);
      while (c.end - c.begin >= kFrameHeaderSize) {
        const uint32_t n = server::DecodeFrameLength(c.in.data() + c.begin);
        if (c.end - c.begin < kFrameHeaderSize + n) break;
        aligned.assign(c.in.data() + c.begin + kFrameHeaderSize,
                       c.in.data() + c.begin + kFrameHeaderSize + n);
        c.begin += kFrameHeaderSize + n;
        const P::Response* r = flatbuffers::GetRoot<P::Response>(aligned.data());
        const uint64_t id = r->id();
        if (id == 0 || id > c.keys.size()) {
          result.errors++;
          continue;
        }
        if (r->status() == P::StatusCode::NOT_FOUND) {
          result.misses++;
        } else if (r->status() != P::StatusCode::OK || r->body_as_GetEntryResponse() == nullptr ||
                   r->body_as_GetEntryResponse()->payload() == nullptr ||
                   r->body_as_GetEntryResponse()->payload()->size() != sizes[c.keys[id - 1]]) {
          result.errors++;
        } else {
          result.hits++;
        }
        ++done;
        if (--c.awaiting == 0) {
          --open;
          if (!send_batch(c)) result.errors++;
        }
      }
    }
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  close(ep);
  if (done != o.requests && result.errors == 0) result.errors++;
  return result;
}

}  // namespace sealcache::bench
