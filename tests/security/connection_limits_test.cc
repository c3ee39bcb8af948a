// Connections cannot be held without authenticating (issue 12, point 5): a Hello deadline, a
// small frame bound before Hello, and a cap on connections without a Hello that evicts the
// oldest of them, so that such clients can neither fill the server nor keep others out.
#include <gtest/gtest.h>

#include "sealcache/encoding.h"
#include "server_fixture.h"

namespace sealcache::server {
namespace {

using testing::ServerTest;
using Code = Status::Code;

class ConnectionLimits : public ServerTest {
 protected:
  static constexpr uint32_t kMaxConnections = 16;
  static constexpr uint32_t kMaxUnauthenticated = 4;
  static constexpr int64_t kHelloTimeoutMs = 400;

  void SetUp() override {
    ServerTest::SetUp();
    auto o = Options();
    o.max_connections = kMaxConnections;
    o.max_unauthenticated_connections = kMaxUnauthenticated;
    o.hello_timeout_ms = kHelloTimeoutMs;
    StartServer(o);
    org_ = NewOrg("acme");
  }
  std::unique_ptr<client::Client> org_;
};

TEST_F(ConnectionLimits, AConnectionWithoutHelloIsClosedAtTheDeadline) {
  auto silent = Connect();
  std::this_thread::sleep_for(std::chrono::milliseconds(3 * kHelloTimeoutMs));
  auto r = silent->Receive();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->id(), 0u);
  EXPECT_EQ(r->status().code(), Code::kUnauthenticated);
  EXPECT_NE(r->status().message().find("no Hello within"), std::string::npos)
      << r->status().ToString();
  EXPECT_FALSE(silent->Receive().ok()) << "the connection stayed open";
  // A connection that said Hello in time is not subject to the deadline.
  std::this_thread::sleep_for(std::chrono::milliseconds(2 * kHelloTimeoutMs));
  EXPECT_TRUE(org_->Ping().ok());
}

TEST_F(ConnectionLimits, ALargeFrameBeforeHelloIsRefusedAndClosed) {
  auto c = Connect();
  uint8_t header[4];
  EncodeFixed32(header, 64u << 10);  // far below max_frame_bytes, far above a Hello
  ASSERT_TRUE(c->SendRaw(header).ok());
  auto r = c->Receive();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status().code(), Code::kResourceExhausted);
  EXPECT_NE(r->status().message().find("before Hello"), std::string::npos)
      << r->status().ToString();
  EXPECT_FALSE(c->Receive().ok()) << "the connection stayed open";

  // After a Hello the same size is an ordinary request.
  const std::string payload(60u << 10, 'x');
  auto put = Put(*org_, 1, payload);
  EXPECT_TRUE(put.ok()) << put.status().ToString();
}

TEST_F(ConnectionLimits, SilentConnectionsCannotKeepAnAuthenticatingClientOut) {
  // Clients that never say Hello, twice the cap: the oldest are evicted as new ones come.
  std::vector<std::unique_ptr<client::Client>> silent;
  for (uint32_t i = 0; i < 2 * kMaxUnauthenticated; ++i) silent.push_back(Connect());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // A client that authenticates still gets in, and is served.
  auto late = ConnectAs(tokens_["acme"]);
  ASSERT_NE(late, nullptr);
  EXPECT_TRUE(late->Ping().ok());
  // The first silent connections were closed with the reason; at most the cap are left.
  int evicted = 0;
  for (uint32_t i = 0; i < kMaxUnauthenticated; ++i) {
    auto r = silent[i]->Receive();
    ASSERT_TRUE(r.ok()) << "silent connection " << i << ": " << r.status().ToString();
    EXPECT_EQ(r->status().code(), Code::kResourceExhausted);
    EXPECT_NE(r->status().message().find("without a Hello"), std::string::npos)
        << r->status().ToString();
    ++evicted;
  }
  EXPECT_EQ(evicted, static_cast<int>(kMaxUnauthenticated));
  std::printf(
      "[ security ] %u silent connections against a cap of %u: %d evicted, the "
      "authenticating client served\n",
      2 * kMaxUnauthenticated, kMaxUnauthenticated, evicted);
}

}  // namespace
}  // namespace sealcache::server
