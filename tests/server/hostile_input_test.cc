// Malformed frames and bad arguments get an error response or a clean close; the server
// keeps serving every other connection, and nothing is stored.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <thread>

#include "sealcache/encoding.h"
#include "sealcache/server/frame.h"
#include "sealcached_process.h"
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

// The server reads whatever the socket holds and handles every whole frame in it: frames
// however they are cut into writes, of every length and alignment in its buffer, larger than
// the buffer, with garbage among them, are each answered once, right, and every byte they
// charged to the in-flight budget is given back.
class NativeFramesTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    options_ = Options();
    options_.metrics_port = test::FreePort();
    StartServer(options_);
    NewOrg("acme");
  }
  ServerOptions options_;
};

TEST_F(NativeFramesTest, FramesCutAnywhereAreEachAnsweredOnceAndReleaseTheirBudget) {
  // A stream of Puts (payloads of 1 to 40,000 bytes: some frames larger than the read
  // buffer), Gets of what they put, Pings, and a garbage body now and then.
  enum class Kind { kPut, kGet, kPing, kGarbage };
  std::map<uint64_t, std::pair<Kind, std::string>> expected;  // id -> kind, payload
  std::vector<uint8_t> stream;
  std::mt19937 rng(7);
  std::vector<std::string> stored;
  uint64_t garbage = 0;
  for (uint64_t id = 1; id <= 400; ++id) {
    flatbuffers::FlatBufferBuilder fbb;
    const uint32_t roll = rng() % 10;
    if (roll < 4 || stored.empty()) {
      const size_t size = rng() % 50 == 0 ? 20'000 + rng() % 20'000 : 1 + rng() % 3000;
      std::string payload(size, static_cast<char>('a' + id % 26));
      const auto vector = MakeVector(kDim, id);
      auto put =
          client::BuildPut(fbb, {MakeDigest(stored.size()), vector, Bytes(payload), 60'000, ""});
      protocol::FinishRequestBuffer(
          fbb, protocol::CreateRequest(fbb, id, protocol::RequestBody::PutRequest, put.Union()));
      expected[id] = {Kind::kPut, ""};
      stored.push_back(payload);
    } else if (roll < 8) {
      // Of an entry whose Put came earlier in the stream: Puts run on the pool, so only
      // entries put by the previous round below are sure to be there.
      const size_t i = rng() % stored.size();
      auto d = fbb.CreateVector(MakeDigest(i).data(), 32);
      auto get = protocol::CreateGetEntryRequest(fbb, d, true);
      protocol::FinishRequestBuffer(
          fbb,
          protocol::CreateRequest(fbb, id, protocol::RequestBody::GetEntryRequest, get.Union()));
      expected[id] = {Kind::kGet, std::to_string(i)};
    } else if (roll < 9) {
      auto ping = protocol::CreatePingRequest(fbb);
      protocol::FinishRequestBuffer(
          fbb, protocol::CreateRequest(fbb, id, protocol::RequestBody::PingRequest, ping.Union()));
      expected[id] = {Kind::kPing, ""};
    } else {
      std::vector<uint8_t> body(1 + rng() % 99);
      for (auto& byte : body) byte = static_cast<uint8_t>(rng());
      AppendFrame(body, &stream);
      ++garbage;
      continue;
    }
    AppendFrame({fbb.GetBufferPointer(), fbb.GetSize()}, &stream);
  }
  // Round 1 puts every entry (its Gets may miss); round 2 sends the same stream again, cut
  // differently, and every Get finds its entry.
  for (int round = 1; round <= 2; ++round) {
    auto c = ConnectAs(tokens_["acme"]);
    for (size_t at = 0; at < stream.size();) {
      const size_t n = std::min(stream.size() - at, size_t{1} + rng() % (round == 1 ? 700 : 9000));
      ASSERT_TRUE(c->SendRaw({stream.data() + at, n}).ok());
      at += n;
      if (rng() % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    std::set<uint64_t> answered;
    uint64_t garbage_answered = 0;
    while (answered.size() + garbage_answered < expected.size() + garbage) {
      auto r = c->Receive();
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      if (r->id() == 0) {
        EXPECT_EQ(r->status().code(), Status::Code::kInvalidArgument);
        ++garbage_answered;
        continue;
      }
      ASSERT_TRUE(expected.count(r->id())) << "unknown id " << r->id();
      EXPECT_TRUE(answered.insert(r->id()).second) << "answered twice: " << r->id();
      const auto& [kind, what] = expected[r->id()];
      if (kind == Kind::kGet) {
        if (round == 1 && r->status().code() == Status::Code::kNotFound) continue;
        ASSERT_TRUE(r->status().ok()) << r->status().ToString();
        const auto* p = (*r)->body_as_GetEntryResponse()->payload();
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(std::string(p->begin(), p->end()), stored[std::stoul(what)]);
      } else {
        EXPECT_TRUE(r->status().ok()) << r->status().ToString();
      }
    }
    EXPECT_TRUE(c->Ping().ok());
  }
  EXPECT_EQ(test::MetricValue(test::ScrapeMetrics(options_.metrics_port),
                              "sealcache_inflight_request_bytes"),
            0.0);
}

// Gets pipelined in one write are read together (CacheService::HandleFrames): each is still
// answered with its own entry, miss or error, and counted as one Get.
TEST_F(NativeFramesTest, PipelinedGetsAreEachAnsweredWithTheirOwnEntry) {
  auto c = ConnectAs(tokens_["acme"]);
  constexpr size_t kStored = 100, kGets = 150;
  for (size_t i = 0; i < kStored; ++i) {
    ASSERT_TRUE(c->Put({MakeDigest(i), MakeVector(kDim, i), Bytes("entry " + std::to_string(i)),
                        60'000, ""})
                    .ok());
  }
  auto before = c->Stats();
  ASSERT_TRUE(before.ok());
  std::vector<uint8_t> stream;
  for (uint64_t id = 1; id <= kGets; ++id) {
    flatbuffers::FlatBufferBuilder fbb;
    const size_t digest_bytes = id == 70 ? 31 : 32;  // one malformed digest among them
    auto d = fbb.CreateVector(MakeDigest(id - 1).data(), digest_bytes);
    auto get = protocol::CreateGetEntryRequest(fbb, d, true);
    protocol::FinishRequestBuffer(
        fbb, protocol::CreateRequest(fbb, id, protocol::RequestBody::GetEntryRequest, get.Union()));
    AppendFrame({fbb.GetBufferPointer(), fbb.GetSize()}, &stream);
  }
  ASSERT_TRUE(c->SendRaw(stream).ok());
  for (uint64_t answered = 0; answered < kGets; ++answered) {
    auto r = c->Receive();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const uint64_t i = r->id() - 1;
    ASSERT_LT(i, kGets);
    if (r->id() == 70) {
      EXPECT_EQ(r->status().code(), Status::Code::kInvalidArgument) << r->status().ToString();
    } else if (i >= kStored) {
      EXPECT_EQ(r->status().code(), Status::Code::kNotFound) << i;
    } else {
      ASSERT_TRUE(r->status().ok()) << i << ": " << r->status().ToString();
      const auto* p = (*r)->body_as_GetEntryResponse()->payload();
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(std::string(p->begin(), p->end()), "entry " + std::to_string(i));
    }
  }
  auto after = c->Stats();
  ASSERT_TRUE(after.ok());
  const auto* b = (*before)->body_as_StatsResponse();
  const auto* a = (*after)->body_as_StatsResponse();
  EXPECT_EQ(a->gets() - b->gets(), kGets - 1);  // (the malformed one is refused first)
  EXPECT_EQ(a->hits() - b->hits(), kStored - 1);
  EXPECT_EQ(a->misses() - b->misses(), kGets - kStored);
}

// A frame as large as allowed fits the in-flight budget even when the budget is exactly
// that large: it is read whole and answered, not waited on forever.
TEST_F(ServerTest, AFrameOfMaxFrameBytesIsReadWhenTheBudgetIsNoLarger) {
  ServerOptions o = Options();
  o.max_frame_bytes = 64u << 10;
  o.max_inflight_request_bytes = o.max_frame_bytes;
  StartServer(o);
  NewOrg("acme");
  client::ClientOptions co;
  co.timeout_ms = 20'000;
  auto c = Connect(co);
  ASSERT_TRUE(c->Hello(tokens_["acme"]).ok());
  ASSERT_TRUE(c->SendRaw(EncodeFrame(std::vector<uint8_t>(o.max_frame_bytes, 0x5a))).ok());
  auto r = c->Receive();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->id(), 0u);
  EXPECT_EQ(r->status().code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(c->Ping().ok());
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
