#include "sealcache/crypto/secret_bytes.h"

#include <gtest/gtest.h>

#include <type_traits>

#include "sealcache/crypto/random.h"

namespace sealcache::crypto {
namespace {

static_assert(!std::is_copy_constructible_v<SecretBytes>, "secrets are never copied implicitly");
static_assert(!std::is_copy_assignable_v<SecretBytes>, "secrets are never copied implicitly");
static_assert(std::is_nothrow_move_constructible_v<SecretBytes>);

TEST(SecretBytes, CloneIsAnExplicitEqualCopy) {
  auto a = RandomSecret(32);
  ASSERT_TRUE(a.ok());
  SecretBytes b = a->Clone();
  EXPECT_TRUE(a->Equals(b));
  EXPECT_NE(a->data(), b.data());
}

TEST(SecretBytes, MoveLeavesTheSourceEmptyAndKeepsTheBuffer) {
  SecretBytes a(32);
  a.data()[0] = 0xab;
  const uint8_t* buffer = a.data();
  SecretBytes b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): the contract under test
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(b.data(), buffer);
  EXPECT_EQ(b.data()[0], 0xab);
}

TEST(SecretBytes, EqualsComparesContentAndSize) {
  SecretBytes a(4), b(4), c(5);
  EXPECT_TRUE(a.Equals(b));
  b.data()[3] = 1;
  EXPECT_FALSE(a.Equals(b));
  EXPECT_FALSE(a.Equals(c));
}

TEST(SecretBytes, RandomSecretsDiffer) {
  auto a = RandomSecret(32);
  auto b = RandomSecret(32);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(a->Equals(*b));
}

}  // namespace
}  // namespace sealcache::crypto
