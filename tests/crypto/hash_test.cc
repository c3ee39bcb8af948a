#include "sealcache/crypto/hash.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace sealcache::crypto {
namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string Hex(const Sha256Digest& d) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : d) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

// FIPS 180-2 example "abc", and the same digest from any split of the input.
TEST(Sha256Hasher, PiecesGiveTheDigestOfTheWholeAndItStartsOverAfterFinish) {
  const std::string abc_digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  EXPECT_EQ(Hex(Sha256(Bytes("abc"))), abc_digest);
  Sha256Hasher h;
  h.Update(Bytes("a"));
  h.Update(Bytes(""));
  h.Update(Bytes("bc"));
  EXPECT_EQ(Hex(h.Finish()), abc_digest);
  const std::string long_text(100'000, 'x');
  for (size_t piece : {1u, 7u, 4096u, 99'999u}) {
    for (size_t at = 0; at < long_text.size(); at += piece) {
      h.Update(Bytes(long_text.substr(at, piece)));
    }
    EXPECT_EQ(h.Finish(), Sha256(Bytes(long_text))) << piece;
  }
}

// RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
TEST(HmacSha256Key, MatchesRfc4231AndTheOneShotHmac) {
  const std::string key_text = "Jefe";
  SecretBytes key(key_text.size());
  std::copy(key_text.begin(), key_text.end(), key.data());
  auto prepared = HmacSha256Key::Create(key);
  ASSERT_TRUE(prepared.ok()) << prepared.status().ToString();
  const std::string data = "what do ya want for nothing?";
  auto mac = prepared->Mac(Bytes(data));
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(Hex(*mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(*mac, *HmacSha256(key, Bytes(data)));
  // The prepared key is not consumed: the next input gets its own MAC.
  EXPECT_EQ(*prepared->Mac(Bytes("other")), *HmacSha256(key, Bytes("other")));
  // Nothing of one input stays for the next (contexts are reused).
  EXPECT_EQ(Hex(*prepared->Mac(Bytes(data))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// RFC 4231, test cases 6 and 7: a 131-byte key (longer than a SHA-256 block, so hashed
// first) with data shorter and longer than a block; and keys of every length around the
// block size, an empty one included, against the one-shot HMAC.
TEST(HmacSha256Key, KeysLongerThanABlockAreHashedFirst) {
  SecretBytes key(131);
  std::fill(key.data(), key.data() + key.size(), 0xaa);
  auto prepared = HmacSha256Key::Create(key);
  ASSERT_TRUE(prepared.ok()) << prepared.status().ToString();
  EXPECT_EQ(Hex(*prepared->Mac(Bytes("Test Using Larger Than Block-Size Key - Hash Key First"))),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_EQ(Hex(*prepared->Mac(Bytes(
                "This is a test using a larger than block-size key and a larger than block-size "
                "data. The key needs to be hashed before being used by the HMAC algorithm."))),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
  for (size_t size : {0, 1, 32, 63, 64, 65, 200}) {
    SecretBytes k(size);
    for (size_t i = 0; i < size; ++i) k.data()[i] = static_cast<uint8_t>(i * 13 + 1);
    auto p = HmacSha256Key::Create(k);
    ASSERT_TRUE(p.ok()) << size;
    const std::string data(size * 3 + 1, 'x');
    EXPECT_EQ(*p->Mac(Bytes(data)), *HmacSha256(k, Bytes(data))) << size;
  }
}

TEST(HmacSha256Key, ManyThreadsMacWithOnePreparedKey) {
  SecretBytes key(32);
  for (size_t i = 0; i < key.size(); ++i) key.data()[i] = static_cast<uint8_t>(i * 7);
  auto prepared = HmacSha256Key::Create(key);
  ASSERT_TRUE(prepared.ok());
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const std::string data = "name " + std::to_string(t * 1000 + i);
        if (*prepared->Mac(Bytes(data)) != *HmacSha256(key, Bytes(data))) ++wrong[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace sealcache::crypto
