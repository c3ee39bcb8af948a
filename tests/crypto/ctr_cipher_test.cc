#include "sealcache/crypto/ctr_cipher.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "test_util.h"

namespace sealcache::crypto {
namespace {

using testing::FilledKey;
using testing::Hex;
using testing::SecretHex;

CtrCipher::Iv IvFromHex(std::string_view hex) {
  CtrCipher::Iv iv{};
  auto bytes = Hex(hex);
  std::copy(bytes.begin(), bytes.end(), iv.begin());
  return iv;
}

std::unique_ptr<CtrCipher> MakeCtr(const SecretBytes& key, const CtrCipher::Iv& iv) {
  auto c = CtrCipher::New(key, iv);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return std::move(c).value();
}

// NIST SP 800-38A, F.5.5 CTR-AES256.Encrypt.
TEST(CtrCipher, MatchesNistSp80038aKnownAnswer) {
  auto ctr = MakeCtr(SecretHex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"),
                     IvFromHex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"));
  auto pt =
      Hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
          "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710");
  auto expected =
      Hex("601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
          "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6");
  std::vector<uint8_t> out(pt.size());
  ASSERT_TRUE(ctr->Apply(0, pt.data(), out.data(), pt.size()).ok());
  EXPECT_EQ(out, expected);
  // Decryption is the same operation.
  std::vector<uint8_t> back(out.size());
  ASSERT_TRUE(ctr->Apply(0, out.data(), back.data(), out.size()).ok());
  EXPECT_EQ(back, pt);
}

TEST(CtrCipher, ApplyAtUnalignedOffsetsEqualsOneShotEncryption) {
  auto ctr = MakeCtr(FilledKey(9), IvFromHex("000102030405060708090a0b0c0d0e0f"));
  std::mt19937 rng(42);
  std::vector<uint8_t> pt(10000);
  for (auto& b : pt) b = static_cast<uint8_t>(rng());
  std::vector<uint8_t> whole(pt.size());
  ASSERT_TRUE(ctr->Apply(0, pt.data(), whole.data(), pt.size()).ok());

  for (int trial = 0; trial < 500; ++trial) {
    size_t off = rng() % pt.size();
    size_t len = rng() % (pt.size() - off + 1);
    std::vector<uint8_t> piece(len);
    ASSERT_TRUE(ctr->Apply(off, pt.data() + off, piece.data(), len).ok());
    ASSERT_TRUE(std::equal(piece.begin(), piece.end(), whole.begin() + off))
        << "offset " << off << " length " << len;
  }
}

TEST(CtrCipher, InPlaceApplyRoundTrips) {
  auto ctr = MakeCtr(FilledKey(9), IvFromHex("ffffffffffffffffffffffffffffff00"));
  std::vector<uint8_t> data(777, 0x5a), original = data;
  ASSERT_TRUE(ctr->Apply(13, data.data(), data.data(), data.size()).ok());
  EXPECT_NE(data, original);
  ASSERT_TRUE(ctr->Apply(13, data.data(), data.data(), data.size()).ok());
  EXPECT_EQ(data, original);
}

TEST(CtrCipher, CounterWrapsModulo2To128LikeOpenSsl) {
  auto iv = IvFromHex("fffffffffffffffffffffffffffffffe");
  EXPECT_EQ(CtrCipher::CounterBlockAt(iv, 32), IvFromHex("00000000000000000000000000000000"));
  EXPECT_EQ(CtrCipher::CounterBlockAt(iv, 17), IvFromHex("ffffffffffffffffffffffffffffffff"));
  auto ctr = MakeCtr(FilledKey(2), iv);
  std::vector<uint8_t> pt(96, 0), whole(96), tail(96 - 40);
  ASSERT_TRUE(ctr->Apply(0, pt.data(), whole.data(), pt.size()).ok());
  ASSERT_TRUE(ctr->Apply(40, pt.data() + 40, tail.data(), tail.size()).ok());
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), whole.begin() + 40));
}

TEST(CtrCipher, ConcurrentDecryptionOfOneStreamIsConsistent) {
  auto ctr = MakeCtr(FilledKey(4), IvFromHex("0f0e0d0c0b0a09080706050403020100"));
  std::vector<uint8_t> pt(1 << 16);
  for (size_t i = 0; i < pt.size(); ++i) pt[i] = static_cast<uint8_t>(i * 31);
  std::vector<uint8_t> ct(pt.size());
  ASSERT_TRUE(ctr->Apply(0, pt.data(), ct.data(), pt.size()).ok());
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 2000; ++i) {
        size_t off = rng() % pt.size();
        size_t len = std::min<size_t>(rng() % 5000, pt.size() - off);
        std::vector<uint8_t> out(len);
        if (!ctr->Apply(off, ct.data() + off, out.data(), len).ok() ||
            !std::equal(out.begin(), out.end(), pt.begin() + off)) {
          ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(CtrCipher, RejectsShortKeys) { EXPECT_FALSE(CtrCipher::New(SecretBytes(16), {}).ok()); }

}  // namespace
}  // namespace sealcache::crypto
