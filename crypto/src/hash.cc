#include "sealcache/crypto/hash.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/sha.h>

#include <cstring>
#include <memory>

namespace sealcache::crypto {

Sha256Digest Sha256(std::span<const uint8_t> data) {
  Sha256Digest d;
  SHA256(data.data(), data.size(), d.data());
  return d;
}

struct Sha256Hasher::State {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~State() { EVP_MD_CTX_free(ctx); }
};

Sha256Hasher::Sha256Hasher() : state_(std::make_unique<State>()) {
  EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr);
}
Sha256Hasher::~Sha256Hasher() = default;

void Sha256Hasher::Update(std::span<const uint8_t> data) {
  EVP_DigestUpdate(state_->ctx, data.data(), data.size());
}

Sha256Digest Sha256Hasher::Finish() {
  Sha256Digest d;
  unsigned int len = 0;
  EVP_DigestFinal_ex(state_->ctx, d.data(), &len);
  EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr);
  return d;
}

Result<Sha256Digest> HmacSha256(const SecretBytes& key, std::span<const uint8_t> data) {
  Sha256Digest d;
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(), data.size(),
           d.data(), &len) == nullptr ||
      len != d.size()) {
    return Status::Internal("HMAC-SHA256 failed");
  }
  return d;
}

// HMAC-SHA256 (RFC 2104) is H((K ^ opad) || H((K ^ ipad) || m)): the key fixes the hash states
// after its two padded blocks, so they are computed once and every Mac copies them (plain
// structs) and hashes only the input and the inner digest. OpenSSL's MAC context restarted
// each Mac by duplicating its digest context instead (an allocation, a copy and a free),
// about half of a name's MAC in the server answering Redis GETs one at a time. OpenSSL 3
// marks these SHA-256 calls deprecated but ships them, running the same SHA extensions
// and vector code as EVP.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
struct HmacSha256Key::Context {
  SHA256_CTX inner;  // after K ^ ipad: as secret as the key
  SHA256_CTX outer;  // after K ^ opad
  ~Context() { OPENSSL_cleanse(this, sizeof(*this)); }
};

namespace {
constexpr size_t kSha256BlockSize = 64;
constexpr uint8_t kInnerPad = 0x36;
constexpr uint8_t kOuterPad = 0x5c;

// A hash state after one block of the key XOR `pad`.
bool StartKeyed(SHA256_CTX& ctx, const uint8_t* block, uint8_t pad) {
  uint8_t padded[kSha256BlockSize];
  for (size_t i = 0; i < kSha256BlockSize; ++i) padded[i] = block[i] ^ pad;
  const bool ok = SHA256_Init(&ctx) == 1 && SHA256_Update(&ctx, padded, sizeof(padded)) == 1;
  OPENSSL_cleanse(padded, sizeof(padded));
  return ok;
}
}  // namespace

Result<HmacSha256Key> HmacSha256Key::Create(const SecretBytes& key) {
  // The key as one block: hashed first if longer than a block, zero-padded.
  uint8_t block[kSha256BlockSize] = {};
  if (key.size() > kSha256BlockSize) {
    SHA256(key.data(), key.size(), block);
  } else if (key.size() > 0) {
    std::memcpy(block, key.data(), key.size());
  }
  auto c = std::make_shared<Context>();
  const bool ok = StartKeyed(c->inner, block, kInnerPad) && StartKeyed(c->outer, block, kOuterPad);
  OPENSSL_cleanse(block, sizeof(block));
  if (!ok) return Status::Internal("HMAC-SHA256 key setup failed");
  return HmacSha256Key(std::move(c));
}

Result<Sha256Digest> HmacSha256Key::Mac(std::span<const uint8_t> data) const {
  SHA256_CTX inner = ctx_->inner;
  SHA256_CTX outer = ctx_->outer;
  uint8_t inner_digest[SHA256_DIGEST_LENGTH];
  Sha256Digest d;
  const bool ok = SHA256_Update(&inner, data.data(), data.size()) == 1 &&
                  SHA256_Final(inner_digest, &inner) == 1 &&
                  SHA256_Update(&outer, inner_digest, sizeof(inner_digest)) == 1 &&
                  SHA256_Final(d.data(), &outer) == 1;
  OPENSSL_cleanse(&inner, sizeof(inner));
  OPENSSL_cleanse(&outer, sizeof(outer));
  if (!ok) return Status::Internal("HMAC-SHA256 failed");
  return d;
}
#pragma GCC diagnostic pop

Result<SecretBytes> HkdfSha256(const SecretBytes& ikm, std::string_view info, size_t size) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return Status::Internal("HKDF is not available in this OpenSSL");
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (ctx == nullptr) return Status::ResourceExhausted("EVP_KDF_CTX_new failed");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_octet_string(
                             OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(ikm.data()), ikm.size()),
                         OSSL_PARAM_construct_octet_string(
                             OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size()),
                         OSSL_PARAM_construct_end()};
  SecretBytes out(size);
  int rc = EVP_KDF_derive(ctx, out.data(), out.size(), params);
  EVP_KDF_CTX_free(ctx);
  if (rc != 1) return Status::Internal("HKDF-SHA256 derivation failed");
  return out;
}

bool ConstantTimeEquals(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (a.size() != b.size()) return false;
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace sealcache::crypto
