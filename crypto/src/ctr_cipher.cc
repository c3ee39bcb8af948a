#include "sealcache/crypto/ctr_cipher.h"

#include <openssl/evp.h>

#include <climits>

#include "evp_context_pool.h"

namespace sealcache::crypto {

using internal::EvpContextPool;

namespace {
constexpr size_t kBlockSize = 16;
// EVP update lengths are ints; larger buffers are split at a block-aligned size.
constexpr size_t kMaxChunk = (static_cast<size_t>(INT_MAX) / kBlockSize) * kBlockSize;
}  // namespace

struct CtrCipher::Impl {
  Iv iv;
  std::unique_ptr<EvpContextPool> pool;
};

CtrCipher::CtrCipher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CtrCipher::~CtrCipher() = default;

Result<std::unique_ptr<CtrCipher>> CtrCipher::New(const SecretBytes& key, const Iv& iv) {
  if (key.size() != kKeySize) return Status::InvalidArgument("AES-256-CTR needs a 32-byte key");
  auto impl = std::make_unique<Impl>();
  impl->iv = iv;
  SC_ASSIGN_OR_RETURN(impl->pool, EvpContextPool::New(EVP_aes_256_ctr(), key, true));
  return std::unique_ptr<CtrCipher>(new CtrCipher(std::move(impl)));
}

CtrCipher::Iv CtrCipher::CounterBlockAt(const Iv& iv, uint64_t offset) {
  Iv counter = iv;
  uint64_t add = offset / kBlockSize;
  unsigned carry = 0;
  for (int i = kIvSize - 1; i >= 0; --i) {
    unsigned sum = counter[i] + static_cast<unsigned>(add & 0xff) + carry;
    counter[i] = static_cast<uint8_t>(sum);
    carry = sum >> 8;
    add >>= 8;
    if (add == 0 && carry == 0) break;
  }
  return counter;
}

Status CtrCipher::Apply(uint64_t offset, const uint8_t* in, uint8_t* out, size_t size) const {
  if (size == 0) return Status::Ok();
  SC_ASSIGN_OR_RETURN(auto lease, impl_->pool->Acquire());
  EVP_CIPHER_CTX* ctx = lease.get();
  Iv counter = CounterBlockAt(impl_->iv, offset);
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, counter.data()) != 1) {
    return Status::Internal("AES-256-CTR init failed");
  }
  int len = 0;
  const size_t skip = offset % kBlockSize;
  if (skip != 0) {
    uint8_t scratch[kBlockSize] = {};
    if (EVP_EncryptUpdate(ctx, scratch, &len, scratch, static_cast<int>(skip)) != 1) {
      return Status::Internal("AES-256-CTR failed");
    }
  }
  while (size > 0) {
    const size_t n = std::min(size, kMaxChunk);
    if (EVP_EncryptUpdate(ctx, out, &len, in, static_cast<int>(n)) != 1) {
      return Status::Internal("AES-256-CTR failed");
    }
    in += n;
    out += n;
    size -= n;
  }
  return Status::Ok();
}

}  // namespace sealcache::crypto
