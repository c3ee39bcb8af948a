#include "sealcache/crypto/aead.h"

#include <openssl/evp.h>

#include <climits>
#include <cstring>

#include "evp_context_pool.h"
#include "fast_gcm.h"
#include "sealcache/crypto/random.h"

namespace sealcache::crypto {

using internal::EvpContextPool;
using internal::FastGcm;

// One of the two engines: ipsec-mb's AVX-512 GCM where this CPU runs it (fast_gcm.h), else
// OpenSSL's EVP with pooled contexts.
struct Aead::Impl {
  std::unique_ptr<FastGcm> fast;
  std::unique_ptr<EvpContextPool> seal_pool;
  std::unique_ptr<EvpContextPool> open_pool;
};

namespace {

constexpr size_t kHeaderSize = 1 + Aead::kNonceSize;

Status AuthenticationFailed() {
  return Status::Corruption(
      "authentication failed: wrong key, wrong associated data, or tampered ciphertext");
}

Status CheckLength(size_t n) {
  // EVP update lengths are ints.
  if (n > static_cast<size_t>(INT_MAX) - Aead::kOverhead) {
    return Status::InvalidArgument("AEAD input larger than 2 GiB");
  }
  return Status::Ok();
}

// Seals into out = nonce | ciphertext | tag (kRawOverhead + plaintext.size() bytes).
// With `fast` if there is one, else with a context of `pool`.
Status SealRawInto(const FastGcm* fast, EvpContextPool* pool, std::span<const uint8_t> nonce,
                   std::span<const uint8_t> plaintext, std::span<const uint8_t> aad, uint8_t* out) {
  SC_RETURN_IF_ERROR(CheckLength(plaintext.size()));
  SC_RETURN_IF_ERROR(CheckLength(aad.size()));
  std::memcpy(out, nonce.data(), Aead::kNonceSize);
  uint8_t* body = out + Aead::kNonceSize;
  if (fast != nullptr) {
    fast->Seal(out, plaintext, aad, body, body + plaintext.size());
    return Status::Ok();
  }
  SC_ASSIGN_OR_RETURN(auto lease, pool->Acquire());
  EVP_CIPHER_CTX* ctx = lease.get();
  // The AAD's update reports the AAD's length: kept apart from the body's, so that Final's
  // output pointer is the end of the body (an empty body: `body` itself).
  int aad_len = 0, body_len = 0, final_len = 0;
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data()) != 1 ||
      (!aad.empty() &&
       EVP_EncryptUpdate(ctx, nullptr, &aad_len, aad.data(), static_cast<int>(aad.size())) != 1) ||
      (!plaintext.empty() && EVP_EncryptUpdate(ctx, body, &body_len, plaintext.data(),
                                               static_cast<int>(plaintext.size())) != 1) ||
      EVP_EncryptFinal_ex(ctx, body + body_len, &final_len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, Aead::kTagSize, body + plaintext.size()) !=
          1) {
    return Status::Internal("AES-256-GCM encryption failed");
  }
  return Status::Ok();
}

// Seals into out[0 .. kOverhead + plaintext.size()): the version byte, then SealRawInto.
Status SealInto(const FastGcm* fast, EvpContextPool* pool, std::span<const uint8_t> nonce,
                std::span<const uint8_t> plaintext, std::span<const uint8_t> aad, uint8_t* out) {
  out[0] = Aead::kFormatVersion;
  return SealRawInto(fast, pool, nonce, plaintext, aad, out + 1);
}

}  // namespace

Aead::Aead(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Aead::~Aead() = default;

Result<std::unique_ptr<Aead>> Aead::New(const SecretBytes& key) {
  if (key.size() != kKeySize) {
    return Status::InvalidArgument("AES-256-GCM needs a 32-byte key");
  }
  auto impl = std::make_unique<Impl>();
  impl->fast = FastGcm::New(key);
  if (impl->fast == nullptr) {
    SC_ASSIGN_OR_RETURN(impl->seal_pool, EvpContextPool::New(EVP_aes_256_gcm(), key, true));
    SC_ASSIGN_OR_RETURN(impl->open_pool, EvpContextPool::New(EVP_aes_256_gcm(), key, false));
  }
  return std::unique_ptr<Aead>(new Aead(std::move(impl)));
}

Result<std::vector<uint8_t>> Aead::Seal(std::span<const uint8_t> plaintext,
                                        std::span<const uint8_t> aad) const {
  uint8_t nonce[kNonceSize];
  SC_RETURN_IF_ERROR(RandomFill(nonce));
  return SealWithNonceForTesting(nonce, plaintext, aad);
}

Result<std::vector<uint8_t>> Aead::SealWithNonceForTesting(std::span<const uint8_t> nonce,
                                                           std::span<const uint8_t> plaintext,
                                                           std::span<const uint8_t> aad) const {
  if (nonce.size() != kNonceSize) return Status::InvalidArgument("nonce must be 12 bytes");
  SC_RETURN_IF_ERROR(CheckLength(plaintext.size()));
  SC_RETURN_IF_ERROR(CheckLength(aad.size()));
  std::vector<uint8_t> out(kOverhead + plaintext.size());
  SC_RETURN_IF_ERROR(
      SealInto(impl_->fast.get(), impl_->seal_pool.get(), nonce, plaintext, aad, out.data()));
  return out;
}

Status Aead::OpenInto(std::span<const uint8_t> ciphertext, std::span<const uint8_t> aad,
                      uint8_t* out) const {
  if (ciphertext.size() < kOverhead) {
    return Status::Corruption("AEAD ciphertext is shorter than its fixed overhead (truncated)");
  }
  if (ciphertext[0] != kFormatVersion) {
    return Status::Corruption("AEAD ciphertext has unknown format version " +
                              std::to_string(ciphertext[0]));
  }
  const size_t n = ciphertext.size() - kOverhead;
  const uint8_t* body = ciphertext.data() + kHeaderSize;
  return OpenBody(ciphertext.data() + 1, {body, n}, body + n, aad, out);
}

Status Aead::OpenBody(const uint8_t* nonce, std::span<const uint8_t> body_span,
                      const uint8_t* tag_in, std::span<const uint8_t> aad, uint8_t* out) const {
  SC_RETURN_IF_ERROR(CheckLength(body_span.size()));
  SC_RETURN_IF_ERROR(CheckLength(aad.size()));
  const size_t n = body_span.size();
  const uint8_t* body = body_span.data();
  uint8_t tag[kTagSize];
  std::memcpy(tag, tag_in, kTagSize);
  if (impl_->fast != nullptr) {
    if (!impl_->fast->Open(nonce, body_span, tag, aad, out)) return AuthenticationFailed();
    return Status::Ok();
  }

  SC_ASSIGN_OR_RETURN(auto lease, impl_->open_pool->Acquire());
  EVP_CIPHER_CTX* ctx = lease.get();
  // As in SealRawInto: the AAD's reported length never moves Final's output pointer (an
  // empty plaintext may come with a null `out`).
  int aad_len = 0, body_len = 0, final_len = 0;
  if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce) != 1 ||
      (!aad.empty() &&
       EVP_DecryptUpdate(ctx, nullptr, &aad_len, aad.data(), static_cast<int>(aad.size())) != 1) ||
      (n > 0 && EVP_DecryptUpdate(ctx, out, &body_len, body, static_cast<int>(n)) != 1) ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kTagSize, tag) != 1) {
    return Status::Internal("AES-256-GCM decryption failed");
  }
  if (EVP_DecryptFinal_ex(ctx, out + body_len, &final_len) != 1) {
    OPENSSL_cleanse(out, n);
    return AuthenticationFailed();
  }
  return Status::Ok();
}

Status Aead::SealRaw(std::span<const uint8_t> plaintext, std::span<const uint8_t> aad,
                     uint8_t* out) const {
  uint8_t nonce[kNonceSize];
  SC_RETURN_IF_ERROR(RandomFill(nonce));
  return SealRawInto(impl_->fast.get(), impl_->seal_pool.get(), nonce, plaintext, aad, out);
}

Status NonceSequence::Next(uint8_t* nonce) {
  if (!seeded_ || counter_ == UINT32_MAX) {
    SC_RETURN_IF_ERROR(RandomFill(prefix_));
    counter_ = 0;
    seeded_ = true;
  }
  std::memcpy(nonce, prefix_, sizeof(prefix_));
  const uint32_t c = counter_++;
  for (int i = 0; i < 4; ++i) nonce[8 + i] = static_cast<uint8_t>(c >> (8 * i));
  return Status::Ok();
}

Status Aead::SealRaw(std::span<const uint8_t> plaintext, std::span<const uint8_t> aad,
                     NonceSequence& nonces, uint8_t* out) const {
  uint8_t nonce[kNonceSize];
  SC_RETURN_IF_ERROR(nonces.Next(nonce));
  return SealRawInto(impl_->fast.get(), impl_->seal_pool.get(), nonce, plaintext, aad, out);
}

Status Aead::SealRawWithNonceForTesting(std::span<const uint8_t> nonce,
                                        std::span<const uint8_t> plaintext,
                                        std::span<const uint8_t> aad, uint8_t* out) const {
  if (nonce.size() != kNonceSize) return Status::InvalidArgument("nonce must be 12 bytes");
  return SealRawInto(impl_->fast.get(), impl_->seal_pool.get(), nonce, plaintext, aad, out);
}

Status Aead::OpenRaw(std::span<const uint8_t> sealed, std::span<const uint8_t> aad,
                     uint8_t* out) const {
  if (sealed.size() < kRawOverhead) {
    return Status::Corruption("AEAD ciphertext is shorter than its fixed overhead (truncated)");
  }
  const size_t n = sealed.size() - kRawOverhead;
  const uint8_t* body = sealed.data() + kNonceSize;
  return OpenBody(sealed.data(), {body, n}, body + n, aad, out);
}

Result<std::vector<uint8_t>> Aead::Open(std::span<const uint8_t> ciphertext,
                                        std::span<const uint8_t> aad) const {
  std::vector<uint8_t> out(ciphertext.size() > kOverhead ? ciphertext.size() - kOverhead : 0);
  SC_RETURN_IF_ERROR(OpenInto(ciphertext, aad, out.data()));
  return out;
}

Result<SecretBytes> Aead::OpenSecret(std::span<const uint8_t> ciphertext,
                                     std::span<const uint8_t> aad) const {
  SecretBytes out(ciphertext.size() > kOverhead ? ciphertext.size() - kOverhead : 0);
  SC_RETURN_IF_ERROR(OpenInto(ciphertext, aad, out.data()));
  return out;
}

}  // namespace sealcache::crypto
