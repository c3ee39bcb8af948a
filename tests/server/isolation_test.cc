// Org B's token against org A's data: refused or empty, never A's data.
#include <gtest/gtest.h>

#include "server_fixture.h"

namespace sealcache::server {
namespace {

using testing::Bytes;
using testing::MakeDigest;
using testing::MakeVector;
using testing::ServerTest;

class IsolationTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    StartServer();
    a_ = NewOrg("acme");
    b_ = NewOrg("bravo");
    for (int i = 0; i < 20; ++i)
      ASSERT_TRUE(Put(*a_, i, "acme secret " + std::to_string(i), "shared").ok());
  }
  void ExpectAcmeIntact() {
    for (int i = 0; i < 20; ++i) {
      auto e = a_->Get(MakeDigest(i));
      ASSERT_TRUE(e.ok()) << i << ": " << e.status().ToString();
      EXPECT_EQ(std::string(e->payload.begin(), e->payload.end()),
                "acme secret " + std::to_string(i));
    }
  }
  std::unique_ptr<client::Client> a_, b_;
};

TEST_F(IsolationTest, GetOfAnotherOrgsDigestIsAMiss) {
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(b_->Get(MakeDigest(i)).status().IsNotFound());
}

TEST_F(IsolationTest, LookupNeverReturnsAnotherOrgsEntries) {
  // B stores its own entries of the same dimension so its index is not empty.
  ASSERT_TRUE(Put(*b_, 1000, "bravo data").ok());
  for (int i = 0; i < 20; ++i) {
    auto q = MakeVector(kDim, i);
    auto hits = b_->Lookup({.vector = q, .k = 10, .min_score = -1.0f, .name_space = std::nullopt});
    ASSERT_TRUE(hits.ok());
    for (const auto& h : *hits) {
      EXPECT_EQ(std::string(h.entry.payload.begin(), h.entry.payload.end()), "bravo data");
    }
  }
}

TEST_F(IsolationTest, DeleteAndInvalidateCannotTouchAnotherOrg) {
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(b_->Delete(MakeDigest(i)).status().IsNotFound());
  EXPECT_EQ(*b_->Invalidate(std::string("shared"), std::nullopt), 0u);
  EXPECT_EQ(*b_->Invalidate(std::nullopt, int64_t{1} << 62), 0u);
  ExpectAcmeIntact();
}

TEST_F(IsolationTest, PutOfTheSameDigestStaysInTheWritersOrg) {
  ASSERT_TRUE(Put(*b_, 3, "bravo's own").ok());
  ExpectAcmeIntact();
  auto mine = b_->Get(MakeDigest(3));
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(std::string(mine->payload.begin(), mine->payload.end()), "bravo's own");
}

TEST_F(IsolationTest, StatsCountOnlyTheCallersOrg) {
  auto st = b_->Stats();
  ASSERT_TRUE(st.ok());
  const auto* s = (*st)->body_as_StatsResponse();
  EXPECT_EQ(s->org()->str(), "bravo");
  EXPECT_EQ(s->entries(), 0u);
  EXPECT_EQ(s->puts(), 0u);
}

TEST_F(IsolationTest, OrgTokensCannotRunAdminOperations) {
  EXPECT_EQ(b_->CreateOrg("evil", 8).status().code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(b_->DropOrg("acme").code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(b_->RotateKey("acme").status().code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(b_->KeyStatus("acme").status().code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(b_->ListOrgs().status().code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(b_->IssueToken("acme").status().code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(b_->RevokeToken("acme", "").status().code(), Status::Code::kPermissionDenied);
  ExpectAcmeIntact();
}

TEST_F(IsolationTest, NothingButHelloWorksBeforeHello) {
  auto c = Connect();
  EXPECT_EQ(c->Get(MakeDigest(1)).status().code(), Status::Code::kUnauthenticated);
  EXPECT_EQ(c->Ping().status().code(), Status::Code::kUnauthenticated);
  auto q = MakeVector(kDim, 1);
  EXPECT_EQ(c->Lookup({.vector = q}).status().code(), Status::Code::kUnauthenticated);
  EXPECT_EQ(c->ListOrgs().status().code(), Status::Code::kUnauthenticated);
  EXPECT_EQ(c->Hello("sc_0000").status().code(), Status::Code::kUnauthenticated);
  EXPECT_EQ(c->Get(MakeDigest(1)).status().code(), Status::Code::kUnauthenticated);
}

TEST_F(IsolationTest, TheAdminTokenCannotReadOrWriteOrgData) {
  auto admin = ConnectAs(AdminToken());
  EXPECT_EQ(admin->Get(MakeDigest(1)).status().code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(Put(*admin, 1, "x").status().code(), Status::Code::kPermissionDenied);
}

}  // namespace
}  // namespace sealcache::server
