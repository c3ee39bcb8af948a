// Malformed frames and bad arguments get an error response or a clean close; the server
// keeps serving every other connection, and nothing is stored.
#include <gtest/gtest.h>

#include <cmath>

#include "sealcache/encoding.h"
#include "sealcache/server/frame.h"
#include "server_fixture.h"

namespace sealcache::server {
namespace {

using testing::Bytes;
using testing::MakeDigest;
using testing::MakeVector;
using testing::ServerTest;

class HostileInputTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    auto o = Options();
    o.max_frame_bytes = 1 << 20;
    StartServer(o);
    org_ = NewOrg("acme");
  }
  void ExpectStillServing() {
    auto c = ConnectAs(tokens_["acme"]);
    EXPECT_TRUE(c->Ping().ok());
    EXPECT_TRUE(org_->Ping().ok());
  }
  uint64_t Entries() {
    auto st = org_->Stats();
    return st.ok() ? (*st)->body_as_StatsResponse()->entries() : ~0ull;
  }
  std::unique_ptr<client::Client> org_;
};

TEST_F(HostileInputTest, OversizeLengthGetsAnErrorAndTheConnectionCloses) {
  auto c = ConnectAs(tokens_["acme"]);
  uint8_t header[4];
  EncodeFixed32(header, 64u << 20);
  ASSERT_TRUE(c->SendRaw(header).ok());
  auto r = c->Receive();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->id(), 0u);
  EXPECT_EQ(r->status().code(), Status::Code::kResourceExhausted);
  EXPECT_NE(r->status().message().find("max_frame_bytes"), std::string::npos);
  EXPECT_FALSE(c->Receive().ok());  // closed
  ExpectStillServing();
}

TEST_F(HostileInputTest, GarbageBodiesGetAnErrorAndTheConnectionStaysUsable) {
  auto c = ConnectAs(tokens_["acme"]);
  std::mt19937 rng(1);
  for (int i = 0; i < 200; ++i) {
    std::vector<uint8_t> body(1 + rng() % 300);
    for (auto& b : body) b = static_cast<uint8_t>(rng());
    if (i % 2 == 0 && body.size() >= 8) std::memcpy(body.data() + 4, "SCP1", 4);
    ASSERT_TRUE(c->SendRaw(EncodeFrame(body)).ok());
    auto r = c->Receive();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->id(), 0u);
    EXPECT_EQ(r->status().code(), Status::Code::kInvalidArgument) << r->status().ToString();
  }
  EXPECT_TRUE(c->Ping().ok());
  EXPECT_EQ(Entries(), 0u);
}

TEST_F(HostileInputTest, TruncatedFramesAndAbruptClosesDoNotDisturbOthers) {
  for (int i = 0; i < 20; ++i) {
    auto c = Connect();
    uint8_t header[4];
    EncodeFixed32(header, 1000);
    ASSERT_TRUE(c->SendRaw(header).ok());
    std::vector<uint8_t> part(i * 10, 0x41);
    ASSERT_TRUE(c->SendRaw(part).ok());
  }  // each client disconnects mid-frame
  ExpectStillServing();
}

TEST_F(HostileInputTest, BadArgumentsAreRefusedAndStoreNothing) {
  auto v = MakeVector(kDim, 1);
  auto wrong_dim = MakeVector(kDim + 1, 1);
  auto nan = v;
  nan[0] = std::nanf("");
  std::string payload = "x";
  auto put = [&](client::PutArgs a) { return org_->Put(a).status(); };
  EXPECT_EQ(put({MakeDigest(1), wrong_dim, Bytes(payload), 1000, ""}).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(put({MakeDigest(1), nan, Bytes(payload), 1000, ""}).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(put({MakeDigest(1), v, Bytes(payload), 0, ""}).code(), Status::Code::kInvalidArgument);
  // A digest that is not 32 bytes.
  auto r = org_->Call([&](flatbuffers::FlatBufferBuilder& fbb) {
    auto d = fbb.CreateVector(std::vector<uint8_t>(5, 1));
    auto vec = fbb.CreateVector(v);
    protocol::PutRequestBuilder b(fbb);
    b.add_digest(d);
    b.add_vector(vec);
    b.add_ttl_ms(1000);
    return std::make_pair(protocol::RequestBody::PutRequest, b.Finish().Union());
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r->status().message().find("32 bytes"), std::string::npos);
  EXPECT_EQ(org_->Lookup({.vector = wrong_dim}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(org_->Lookup({.vector = v, .k = 0}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(org_->Lookup({.vector = v, .k = 100000}).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(org_->Lookup({.vector = v, .k = 1, .min_score = NAN}).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(org_->Invalidate(std::nullopt, std::nullopt).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(Entries(), 0u);
  ExpectStillServing();
}

}  // namespace
}  // namespace sealcache::server
