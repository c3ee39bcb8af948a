#include "sealcache/crypto/hash.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/sha.h>

#include <memory>

#include "evp_context_pool.h"

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

// The keyed context every Mac starts from, and idle copies of it: a copy is re-initialised
// (OpenSSL resets an HMAC context to its keyed start when init gets no key) instead of
// duplicated and freed for each Mac, whose allocations, reference counts and wipes were
// most of the 5% OpenSSL took of the server serving Redis GETs (the key names' MACs).
struct HmacSha256Key::Context {
  using Idle = internal::IdleContexts<EVP_MAC_CTX, EVP_MAC_CTX_free>;
  Idle::Ptr keyed;  // never used directly; duplicated when no copy is idle
  mutable Idle idle;
};

Result<HmacSha256Key> HmacSha256Key::Create(const SecretBytes& key) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) return Status::Internal("HMAC is not available in this OpenSSL");
  auto c = std::make_shared<Context>();
  c->keyed.reset(EVP_MAC_CTX_new(mac));
  EVP_MAC_free(mac);
  if (c->keyed == nullptr) return Status::ResourceExhausted("EVP_MAC_CTX_new failed");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(c->keyed.get(), key.data(), key.size(), params) != 1) {
    return Status::Internal("HMAC-SHA256 key setup failed");
  }
  return HmacSha256Key(std::move(c));
}

Result<Sha256Digest> HmacSha256Key::Mac(std::span<const uint8_t> data) const {
  Context::Idle::Ptr ctx = ctx_->idle.Take();
  if (ctx == nullptr) ctx.reset(EVP_MAC_CTX_dup(ctx_->keyed.get()));
  Sha256Digest d;
  size_t len = 0;
  if (ctx == nullptr || EVP_MAC_init(ctx.get(), nullptr, 0, nullptr) != 1 ||
      EVP_MAC_update(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_MAC_final(ctx.get(), d.data(), &len, d.size()) != 1 || len != d.size()) {
    return Status::Internal("HMAC-SHA256 failed");  // (a failed context is freed, not kept)
  }
  ctx_->idle.Put(std::move(ctx));
  return d;
}

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
