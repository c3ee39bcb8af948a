#include "sealcache/crypto/key_ring.h"

#include <gtest/gtest.h>

#include "sealcache/crypto/random.h"

namespace sealcache::crypto {
namespace {

SecretBytes NewKey() { return std::move(RandomSecret(kDataKeySize)).value(); }

int CountActive(const KeyRing& ring) {
  int n = 0;
  for (const KeyInfo& info : ring.Versions()) n += info.state == KeyState::kActive;
  return n;
}

TEST(KeyRing, ExactlyOneVersionIsActiveAcrossRotations) {
  KeyRing ring({KeyScope::kOrg, "acme"});
  for (int i = 1; i <= 5; ++i) {
    auto v = ring.Rotate(NewKey(), 1000 * i);
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(*v, static_cast<uint32_t>(i));
    EXPECT_EQ(CountActive(ring), 1);
    EXPECT_EQ(*ring.ActiveVersion(), static_cast<uint32_t>(i));
  }
  auto versions = ring.Versions();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(versions[i].state, KeyState::kRetiring);
    EXPECT_EQ(versions[i].rotated_ms, 1000 * (i + 2));
  }
}

TEST(KeyRing, RetiringVersionsStillDecrypt) {
  KeyRing ring({KeyScope::kOrg, "acme"});
  ASSERT_TRUE(ring.Rotate(NewKey(), 1).ok());
  auto v1 = ring.Key(1);
  ASSERT_TRUE(ring.Rotate(NewKey(), 2).ok());
  auto again = ring.Key(1);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE((*again)->Equals(**v1));
}

TEST(KeyRing, ActiveVersionCannotBeDestroyed) {
  KeyRing ring({KeyScope::kOrg, "acme"});
  ASSERT_TRUE(ring.Rotate(NewKey(), 1).ok());
  Status s = ring.Destroy(1, 2);
  EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("ACTIVE"), std::string::npos);
  EXPECT_EQ(CountActive(ring), 1);
}

TEST(KeyRing, DestroyedVersionCannotBeUsedAndSaysSo) {
  KeyRing ring({KeyScope::kOrg, "acme"});
  ASSERT_TRUE(ring.Rotate(NewKey(), 1).ok());
  ASSERT_TRUE(ring.Rotate(NewKey(), 2).ok());
  ASSERT_TRUE(ring.Destroy(1, 3).ok());
  auto key = ring.Key(1);
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(key.status().message().find("destroyed"), std::string::npos);
  EXPECT_EQ(ring.Destroy(1, 4).code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(ring.Info(1)->destroyed_ms, 3);
}

TEST(KeyRing, UnknownVersionIsNotFound) {
  KeyRing ring({KeyScope::kOrg, "acme"});
  ASSERT_TRUE(ring.Rotate(NewKey(), 1).ok());
  EXPECT_TRUE(ring.Key(9).status().IsNotFound());
  EXPECT_TRUE(ring.Destroy(9, 1).IsNotFound());
}

TEST(KeyRing, DestroyAllLeavesNoActiveUntilRotatedAgain) {
  KeyRing ring({KeyScope::kOrg, "acme"});
  ASSERT_TRUE(ring.Rotate(NewKey(), 1).ok());
  ASSERT_TRUE(ring.Rotate(NewKey(), 2).ok());
  ring.DestroyAll(3);
  EXPECT_EQ(CountActive(ring), 0);
  EXPECT_FALSE(ring.ActiveVersion().ok());
  for (const KeyInfo& info : ring.Versions()) EXPECT_EQ(info.state, KeyState::kDestroyed);
  auto v = ring.Rotate(NewKey(), 4);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 3u);  // versions are never reused
  EXPECT_EQ(CountActive(ring), 1);
}

TEST(KeyRing, RestoreRejectsASecondActiveVersion) {
  KeyRing ring({KeyScope::kOrg, "acme"});
  KeyInfo a{{KeyScope::kOrg, "acme"}, 1, KeyState::kActive, 1, 0, 0};
  KeyInfo b{{KeyScope::kOrg, "acme"}, 2, KeyState::kActive, 1, 0, 0};
  auto key = std::make_shared<const SecretBytes>(NewKey());
  ASSERT_TRUE(ring.Restore(a, key).ok());
  EXPECT_TRUE(ring.Restore(b, key).IsCorruption());
}

TEST(OrgId, AcceptsOnlyTheSafeAlphabet) {
  for (std::string ok :
       std::vector<std::string>{"a", "acme", "org-1", "o_2", "0", std::string(64, 'x')}) {
    EXPECT_TRUE(ValidateOrgId(ok).ok()) << ok;
  }
  for (std::string bad :
       std::vector<std::string>{"", "-a", "_a", "A", "acme/..", "..", "a b", "a.b", "ä",
                                std::string(65, 'x'), std::string("a\0b", 3)}) {
    EXPECT_EQ(ValidateOrgId(bad).code(), Status::Code::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace sealcache::crypto
