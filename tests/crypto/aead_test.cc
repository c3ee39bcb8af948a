#include "sealcache/crypto/aead.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstring>
#include <random>
#include <set>
#include <thread>

#include "../../crypto/src/fast_gcm.h"
#include "sealcache/crypto/random.h"
#include "test_util.h"

namespace sealcache::crypto {
namespace {

using testing::FilledKey;
using testing::Hex;
using testing::SecretHex;

std::unique_ptr<Aead> MakeAead(const SecretBytes& key) {
  auto a = Aead::New(key);
  EXPECT_TRUE(a.ok()) << a.status().ToString();
  return std::move(a).value();
}

// Known answers from the GCM specification (McGrew & Viega), AES-256 test cases 13, 14, 16.
struct GcmVector {
  const char* key;
  const char* nonce;
  const char* plaintext;
  const char* aad;
  const char* ciphertext;
  const char* tag;
};

constexpr GcmVector kGcmVectors[] = {
    {"0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "00000000000000000000000000000000", "", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449"
     "a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056"
     "828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

TEST(Aead, MatchesGcmSpecificationKnownAnswers) {
  for (const GcmVector& v : kGcmVectors) {
    auto aead = MakeAead(SecretHex(v.key));
    auto sealed = aead->SealWithNonceForTesting(Hex(v.nonce), Hex(v.plaintext), Hex(v.aad));
    ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
    std::vector<uint8_t> expected = {Aead::kFormatVersion};
    for (auto part : {Hex(v.nonce), Hex(v.ciphertext), Hex(v.tag)}) {
      expected.insert(expected.end(), part.begin(), part.end());
    }
    EXPECT_EQ(*sealed, expected);
    auto opened = aead->Open(*sealed, Hex(v.aad));
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    EXPECT_EQ(*opened, Hex(v.plaintext));
  }
}

TEST(Aead, OutputIsVersionNonceCiphertextTag) {
  auto aead = MakeAead(FilledKey(1));
  std::vector<uint8_t> pt(100, 0x42);
  auto sealed = aead->Seal(pt, AsBytes("aad"));
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->size(), pt.size() + Aead::kOverhead);
  EXPECT_EQ((*sealed)[0], Aead::kFormatVersion);
}

TEST(Aead, EverySealUsesAFreshNonce) {
  auto aead = MakeAead(FilledKey(1));
  std::set<std::vector<uint8_t>> nonces;
  for (int i = 0; i < 1000; ++i) {
    auto sealed = aead->Seal(AsBytes("same plaintext"), {});
    ASSERT_TRUE(sealed.ok());
    nonces.emplace(sealed->begin() + 1, sealed->begin() + 1 + Aead::kNonceSize);
  }
  EXPECT_EQ(nonces.size(), 1000u);
}

TEST(Aead, AnyFlippedBitFailsAuthentication) {
  auto aead = MakeAead(FilledKey(7));
  auto sealed = aead->Seal(AsBytes("attack at dawn"), AsBytes("header"));
  ASSERT_TRUE(sealed.ok());
  for (size_t i = 0; i < sealed->size(); ++i) {
    std::vector<uint8_t> bad = *sealed;
    bad[i] ^= 0x01;
    auto opened = aead->Open(bad, AsBytes("header"));
    ASSERT_FALSE(opened.ok()) << "byte " << i;
    EXPECT_TRUE(opened.status().IsCorruption()) << opened.status().ToString();
  }
}

TEST(Aead, WrongAadOrWrongKeyFailsAuthentication) {
  auto aead = MakeAead(FilledKey(7));
  auto other = MakeAead(FilledKey(8));
  auto sealed = aead->Seal(AsBytes("secret"), AsBytes("org=a;v=1"));
  ASSERT_TRUE(sealed.ok());
  auto wrong_aad = aead->Open(*sealed, AsBytes("org=b;v=1"));
  EXPECT_TRUE(wrong_aad.status().IsCorruption());
  EXPECT_NE(wrong_aad.status().message().find("authentication failed"), std::string::npos);
  EXPECT_TRUE(other->Open(*sealed, AsBytes("org=a;v=1")).status().IsCorruption());
}

// An empty plaintext under a long AAD (an empty catalog is sealed so): the tag alone
// authenticates it. The undefined-behaviour sanitizer once caught the AAD's length used as
// an offset into the (empty) output here.
TEST(Aead, AnEmptyPlaintextUnderALongAadRoundTripsAndIsAuthenticated) {
  auto aead = MakeAead(FilledKey(7));
  const std::string aad(34, 'a');
  auto sealed = aead->Seal({}, AsBytes(aad));
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->size(), Aead::kOverhead);
  auto opened = aead->Open(*sealed, AsBytes(aad));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_TRUE(opened->empty());
  EXPECT_TRUE(aead->Open(*sealed, AsBytes(aad + "b")).status().IsCorruption());
}

TEST(Aead, TruncatedCiphertextIsRejected) {
  auto aead = MakeAead(FilledKey(7));
  auto sealed = aead->Seal(AsBytes("secret"), {});
  ASSERT_TRUE(sealed.ok());
  for (size_t n = 0; n < sealed->size(); ++n) {
    std::span<const uint8_t> cut(sealed->data(), n);
    EXPECT_TRUE(aead->Open(cut, {}).status().IsCorruption()) << n;
  }
}

TEST(Aead, RejectsKeysThatAreNot32Bytes) {
  EXPECT_FALSE(Aead::New(SecretBytes(16)).ok());
  EXPECT_FALSE(Aead::New(SecretBytes(0)).ok());
}

TEST(Aead, ConcurrentSealAndOpenOnOneInstance) {
  auto aead = MakeAead(FilledKey(3));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        std::string msg = "thread " + std::to_string(t) + " message " + std::to_string(i);
        auto sealed = aead->Seal(AsBytes(msg), AsBytes("aad"));
        auto opened = sealed.ok() ? aead->Open(*sealed, AsBytes("aad"))
                                  : Result<std::vector<uint8_t>>(sealed.status());
        if (!opened.ok() || std::string(opened->begin(), opened->end()) != msg) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace sealcache::crypto

namespace sealcache::crypto {
namespace {

// OpenSSL's AES-256-GCM, one call, as the reference the fast engine is held to.
void OpenSslSeal(const SecretBytes& key, const uint8_t* nonce,
                 const std::vector<uint8_t>& plaintext, const std::vector<uint8_t>& aad,
                 std::vector<uint8_t>* ciphertext, uint8_t* tag) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ciphertext->assign(plaintext.size(), 0);
  int len = 0;
  ASSERT_EQ(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.data(), nonce), 1);
  ASSERT_EQ(EVP_EncryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())), 1);
  ASSERT_EQ(EVP_EncryptUpdate(ctx, ciphertext->data(), &len, plaintext.data(),
                              static_cast<int>(plaintext.size())),
            1);
  ASSERT_EQ(EVP_EncryptFinal_ex(ctx, ciphertext->data() + len, &len), 1);
  ASSERT_EQ(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag), 1);
  EVP_CIPHER_CTX_free(ctx);
}

// ipsec-mb's AVX-512 GCM (what Aead uses where this CPU runs it) gives OpenSSL's bytes for
// every length around its block and vector widths, opens OpenSSL's output (in place too), and
// refuses a flipped bit anywhere, wiping what it decrypted.
TEST(FastGcm, SealsAndOpensByteForByteAsOpenSsl) {
  if (!internal::FastGcm::Available()) {
    GTEST_SKIP() << "this CPU has no AVX-512 VAES (or SEALCACHE_AES_GCM=openssl): Aead uses "
                    "OpenSSL, which the other tests check";
  }
  std::mt19937 rng(11);
  auto random_bytes = [&](size_t n) {
    std::vector<uint8_t> v(n);
    for (auto& b : v) b = static_cast<uint8_t>(rng());
    return v;
  };
  for (size_t size :
       {0, 1, 15, 16, 17, 63, 64, 65, 255, 256, 257, 1000, 4095, 4096, 4097, 8197, 65539}) {
    for (size_t aad_size : {0, 1, 12, 40, 129}) {
      SCOPED_TRACE(std::to_string(size) + " bytes, aad " + std::to_string(aad_size));
      const std::vector<uint8_t> key_bytes = random_bytes(32);
      const SecretBytes key = SecretBytes::CopyFrom(key_bytes);
      const std::vector<uint8_t> nonce = random_bytes(12), plaintext = random_bytes(size),
                                 aad = random_bytes(aad_size);
      auto fast = internal::FastGcm::New(key);
      ASSERT_NE(fast, nullptr);
      std::vector<uint8_t> ours(size), theirs;
      uint8_t our_tag[16], their_tag[16];
      fast->Seal(nonce.data(), plaintext, aad, ours.data(), our_tag);
      OpenSslSeal(key, nonce.data(), plaintext, aad, &theirs, their_tag);
      ASSERT_EQ(ours, theirs);
      ASSERT_EQ(std::memcmp(our_tag, their_tag, 16), 0);

      std::vector<uint8_t> in_place = theirs;
      ASSERT_TRUE(fast->Open(nonce.data(), in_place, their_tag, aad, in_place.data()));
      EXPECT_EQ(in_place, plaintext);
      if (size > 0) {
        std::vector<uint8_t> flipped = theirs;
        flipped[rng() % size] ^= static_cast<uint8_t>(1u << (rng() % 8));
        std::vector<uint8_t> out(size, 0xee);
        EXPECT_FALSE(fast->Open(nonce.data(), flipped, their_tag, aad, out.data()));
        EXPECT_EQ(out, std::vector<uint8_t>(size, 0)) << "wiped";
      }
      uint8_t bad_tag[16];
      std::memcpy(bad_tag, their_tag, 16);
      bad_tag[rng() % 16] ^= 0x01;
      std::vector<uint8_t> out(size);
      EXPECT_FALSE(fast->Open(nonce.data(), theirs, bad_tag, aad, out.data()));
      if (!aad.empty()) {
        std::vector<uint8_t> other_aad = aad;
        other_aad.back() ^= 0x80;
        EXPECT_FALSE(fast->Open(nonce.data(), theirs, their_tag, other_aad, out.data()));
      }
    }
  }
}

TEST(NonceSequenceTest, NoncesNeverRepeatWithinOrAcrossSequences) {
  std::set<std::vector<uint8_t>> seen;
  for (int sequence = 0; sequence < 4; ++sequence) {
    NonceSequence nonces;
    for (int i = 0; i < 1000; ++i) {
      std::vector<uint8_t> n(NonceSequence::kSize);
      ASSERT_TRUE(nonces.Next(n.data()).ok());
      EXPECT_TRUE(seen.insert(n).second) << "sequence " << sequence << " nonce " << i;
    }
  }
}

TEST(NonceSequenceTest, SealedWithASequenceOpensLikeAnyRawSeal) {
  auto aead = Aead::New(std::move(RandomSecret(32)).value());
  ASSERT_TRUE(aead.ok());
  NonceSequence nonces;
  const std::vector<uint8_t> plain = {1, 2, 3, 4, 5};
  const std::vector<uint8_t> aad = {9};
  std::vector<uint8_t> a(plain.size() + Aead::kRawOverhead), b(a.size()), out(plain.size());
  ASSERT_TRUE((*aead)->SealRaw(plain, aad, nonces, a.data()).ok());
  ASSERT_TRUE((*aead)->SealRaw(plain, aad, nonces, b.data()).ok());
  EXPECT_NE(a, b);  // another nonce
  ASSERT_TRUE((*aead)->OpenRaw(a, aad, out.data()).ok());
  EXPECT_EQ(out, plain);
  a.back() ^= 1;
  EXPECT_TRUE((*aead)->OpenRaw(a, aad, out.data()).IsCorruption());
}

}  // namespace
}  // namespace sealcache::crypto
