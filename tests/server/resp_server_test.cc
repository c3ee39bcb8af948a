// The Redis-protocol port of an in-process server over a plain socket, so that the RESP
// connection (reading, pipelining, the in-flight budget, closing) also runs in the sanitizer
// trees. The real clients' test is tests/resp.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "server_fixture.h"

namespace sealcache::server {
namespace {

using testing::ServerTest;

class RespSocket {
 public:
  explicit RespSocket(uint16_t port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    timeval timeout{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  ~RespSocket() { close(fd_); }
  void Send(const std::string& bytes) {
    ASSERT_EQ(send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  // Reads until the bytes received end with `until` (or the peer closes or 5 s pass).
  std::string ReadUntil(const std::string& until) {
    std::string out;
    char buf[4096];
    while (out.size() < until.size() ||
           out.compare(out.size() - until.size(), until.size(), until) != 0) {
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  // Sends `chunk` repeatedly without reading, without blocking, until the kernel stops
  // taking bytes for a while or `limit` bytes went; returns how many it took.
  size_t SendWithoutReading(const std::string& chunk, size_t limit) {
    const int small = 64 << 10;  // no autotuning of this side's buffers
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    size_t sent = 0;
    int stalls = 0;
    while (sent < limit && stalls < 3) {
      const ssize_t n = send(fd_, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        stalls = 0;
      } else {
        ++stalls;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    return sent;
  }
  // True once the server has closed the connection (reads end).
  bool Closed() {
    char c;
    return recv(fd_, &c, 1, 0) == 0;
  }

 private:
  int fd_;
};

class RespServerTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    auto o = Options();
    o.resp_enabled = true;
    o.resp_port = 0;
    StartServer(o);
    org_ = NewOrg("acme");
  }
  std::string Auth() { return "AUTH acme " + tokens_["acme"] + "\r\n"; }
  std::unique_ptr<client::Client> org_;
};

TEST_F(RespServerTest, PipelinedCommandsAreAnsweredInOrder) {
  RespSocket s(server_->resp_port());
  std::string pipeline = Auth();
  std::string expected = "+OK\r\n";
  for (int i = 0; i < 500; ++i) {
    const std::string word = "w" + std::to_string(i);
    pipeline += "*2\r\n$4\r\nECHO\r\n$" + std::to_string(word.size()) + "\r\n" + word + "\r\n";
    expected += "$" + std::to_string(word.size()) + "\r\n" + word + "\r\n";
  }
  s.Send(pipeline + "PING\r\n");
  EXPECT_EQ(s.ReadUntil("+PONG\r\n"), expected + "+PONG\r\n");
}

// Consecutive GETs of one read are answered together (their keys read as one batch): each
// still answers as on its own, in order with the commands around it, before AUTH, in MULTI
// and across the batch bound, and each counts as a Get and as a hit or miss.
TEST_F(RespServerTest, PipelinedGetsAnswerEachAsOnItsOwnInOrderWithTheCommandsAroundThem) {
  RespSocket s(server_->resp_port());
  const std::string wrongtype =
      "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
  s.Send("GET a\r\nget a\r\n" + Auth() +
         "SET a 1\r\nGET a\r\nGeT a\r\nGET missing\r\nHSET h f v\r\nGET h\r\nGET a\r\n"
         "DEL a\r\nGET a\r\nGET a\r\nSET a 2\r\nGET a\r\nGET a b\r\n"
         "MULTI\r\nGET a\r\nSET a 3\r\nGET a\r\nEXEC\r\nGET a\r\nPING\r\n");
  EXPECT_EQ(s.ReadUntil("+PONG\r\n"),
            "-NOAUTH Authentication required.\r\n-NOAUTH Authentication required.\r\n+OK\r\n"
            "+OK\r\n$1\r\n1\r\n$1\r\n1\r\n$-1\r\n:1\r\n" +
                wrongtype +
                "$1\r\n1\r\n:1\r\n$-1\r\n$-1\r\n+OK\r\n$1\r\n2\r\n"
                "-ERR wrong number of arguments for 'get' command\r\n"
                "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n$1\r\n2\r\n+OK\r\n$1\r\n3\r\n"
                "$1\r\n3\r\n+PONG\r\n");

  // 300 GETs in one write (past the batch bound), every other key present.
  std::string sets, gets, expected;
  for (int i = 0; i < 300; ++i) {
    const std::string key = "k" + std::to_string(i), value = "value of " + key;
    if (i % 2 == 0) sets += "SET " + key + " \"" + value + "\"\r\n";
    gets += "GET " + key + "\r\n";
    expected +=
        i % 2 == 0 ? "$" + std::to_string(value.size()) + "\r\n" + value + "\r\n" : "$-1\r\n";
  }
  s.Send(sets + "PING\r\n");
  ASSERT_TRUE(s.ReadUntil("+PONG\r\n").ends_with("+PONG\r\n"));
  auto before = org_->Stats();
  ASSERT_TRUE(before.ok());
  const uint64_t gets_before = (*before)->body_as_StatsResponse()->gets();
  const uint64_t hits_before = (*before)->body_as_StatsResponse()->hits();
  s.Send(gets + "PING\r\n");
  EXPECT_EQ(s.ReadUntil("+PONG\r\n"), expected + "+PONG\r\n");
  auto after = org_->Stats();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)->body_as_StatsResponse()->gets() - gets_before, 300u);
  EXPECT_EQ((*after)->body_as_StatsResponse()->hits() - hits_before, 150u);
}

// SET ... GET and SET with a time already past read and write under the key's lock: GET of
// a hash refuses without writing, NX/XX decide before a past time removes the key, and of
// many clients racing SET ... GET on one new key exactly one sees no previous value. An
// expiry past 64 bits of milliseconds is refused, not taken for the past.
TEST_F(RespServerTest, SetGetAndPastTimesAreDecidedUnderTheKeysLock) {
  RespSocket s(server_->resp_port());
  const std::string wrongtype =
      "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
  s.Send(Auth() +
         "HSET h f v\r\nSET h x GET\r\nHGET h f\r\n"
         "SET p 1 EX 100\r\nSET p 2 NX EXAT 1\r\nGET p\r\nSET p 3 GET PXAT 1\r\nEXISTS p\r\n"
         "SET e 1 EX 100\r\nPEXPIRE e 9223372036854775807\r\nEXISTS e\r\nPING\r\n");
  EXPECT_EQ(s.ReadUntil("+PONG\r\n"),
            "+OK\r\n:1\r\n" + wrongtype +
                "$1\r\nv\r\n"
                "+OK\r\n$-1\r\n$1\r\n1\r\n$1\r\n1\r\n:0\r\n"
                "+OK\r\n-ERR invalid expire time in 'pexpire' command\r\n:1\r\n+PONG\r\n");

  constexpr int kClients = 4, kSets = 100;
  std::vector<std::thread> clients;
  std::atomic<int> saw_nothing{0};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      RespSocket racer(server_->resp_port());
      std::string pipeline = Auth();
      for (int i = 0; i < kSets; ++i) {
        pipeline += "SET race c" + std::to_string(c) + "-" + std::to_string(i) + " GET\r\n";
      }
      racer.Send(pipeline + "PING\r\n");
      const std::string replies = racer.ReadUntil("+PONG\r\n");
      for (size_t at = replies.find("$-1\r\n"); at != std::string::npos;
           at = replies.find("$-1\r\n", at + 1)) {
        saw_nothing.fetch_add(1);
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(saw_nothing.load(), 1);
}

TEST_F(RespServerTest, ConnectionsFromBothPortsShareOneServer) {
  RespSocket s(server_->resp_port());
  s.Send(Auth() + "DBSIZE\r\n");
  EXPECT_EQ(s.ReadUntil(":0\r\n"), "+OK\r\n:0\r\n");
  ASSERT_TRUE(Put(*org_, 1, "native write").ok());
  s.Send("DBSIZE\r\n");
  EXPECT_EQ(s.ReadUntil(":1\r\n"), ":1\r\n");
}

// Keys without a vector are swept by the bucket their expiry falls in, also after EXPIRE
// moved it later (kept) or earlier (swept then); DBSIZE counts entries until they are swept.
TEST_F(RespServerTest, KeysAreSweptWhenTheirExpiryComesAlsoAfterItMoved) {
  RespSocket s(server_->resp_port());
  s.Send(Auth() + "SET short v PX 300\r\nSET extended v PX 300\r\nPEXPIRE extended 60000\r\n" +
         "SET shortened v EX 60\r\nPEXPIRE shortened 300\r\nSET kept v\r\nDBSIZE\r\n");
  EXPECT_EQ(s.ReadUntil(":4\r\n"), "+OK\r\n+OK\r\n+OK\r\n:1\r\n+OK\r\n:1\r\n+OK\r\n:4\r\n");
  // 10 s bounds a sweep due every second on a loaded machine; it is not a measurement.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::string size;
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    s.Send("DBSIZE\r\n");
    size = s.ReadUntil("\r\n");
  } while (size != ":2\r\n" && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(size, ":2\r\n");
  s.Send("GET short\r\nGET shortened\r\nEXISTS extended kept\r\n");
  EXPECT_EQ(s.ReadUntil(":2\r\n"), "$-1\r\n$-1\r\n:2\r\n");
  // Swept once, not again: the two that stay are still counted a few sweeps later.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  s.Send("DBSIZE\r\n");
  EXPECT_EQ(s.ReadUntil("\r\n"), ":2\r\n");
}

TEST_F(RespServerTest, AProtocolErrorIsAnsweredAndCloses) {
  RespSocket s(server_->resp_port());
  s.Send("*1\r\nx\r\n");
  EXPECT_EQ(s.ReadUntil("\r\n"), "-ERR Protocol error: expected '$', got 'x'\r\n");
  EXPECT_TRUE(s.Closed());
  EXPECT_TRUE(org_->Ping().ok());
}

TEST_F(RespServerTest, ARevocationReachesAnOpenRespConnection) {
  auto admin = ConnectAs(AdminToken());
  auto issued = admin->IssueToken("acme");
  ASSERT_TRUE(issued.ok());
  RespSocket s(server_->resp_port());
  s.Send("AUTH " + issued->first + "\r\nPING\r\n");
  EXPECT_EQ(s.ReadUntil("+PONG\r\n"), "+OK\r\n+PONG\r\n");
  ASSERT_TRUE(admin->RevokeToken("acme", issued->second).ok());
  s.Send("PING\r\n");
  EXPECT_EQ(s.ReadUntil("\r\n"), "-NOAUTH Authentication required.\r\n");
}

TEST_F(RespServerTest, AClientThatDoesNotReadCannotMakeTheServerBufferWithoutBound) {
  // Requests of 14 bytes answered with ~40: without a bound on queued replies the server
  // would read all 160 MB and queue ~450 MB of replies. With it, it stops reading once
  // 1 MiB waits, and the kernel's buffers (at most ~36 MB on loopback) stop the client.
  constexpr size_t kLimit = 160u << 20, kMostTheKernelHolds = 64u << 20;
  RespSocket s(server_->resp_port());
  s.Send(Auth());
  ASSERT_EQ(s.ReadUntil("+OK\r\n"), "+OK\r\n");
  std::string chunk;
  while (chunk.size() < (64u << 10)) chunk += "INFO cluster\r\n";
  const size_t sent = s.SendWithoutReading(chunk, kLimit);
  EXPECT_LT(sent, kMostTheKernelHolds) << "the server kept reading a client that does not read";
  std::printf("[ resp ] a client that does not read got %zu MB accepted\n", sent >> 20);
  // Everyone else is served meanwhile.
  EXPECT_TRUE(org_->Ping().ok());
}

TEST_F(RespServerTest, ManyConnectionsAtOnceUnderTheSanitizers) {
  std::vector<std::thread> clients;
  std::atomic<int> answered{0};
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&] {
      RespSocket s(server_->resp_port());
      s.Send(Auth());
      if (s.ReadUntil("+OK\r\n") != "+OK\r\n") return;
      for (int i = 0; i < 50; ++i) {
        s.Send("PING\r\nINFO cluster\r\n");
        if (s.ReadUntil("cluster_enabled:0\r\n\r\n").rfind("+PONG\r\n", 0) == 0) answered++;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(answered.load(), 8 * 50);
}

}  // namespace
}  // namespace sealcache::server
