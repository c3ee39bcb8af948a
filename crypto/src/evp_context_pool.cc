#include "evp_context_pool.h"

namespace sealcache::crypto::internal {

Result<std::unique_ptr<EvpContextPool>> EvpContextPool::New(const EVP_CIPHER* cipher,
                                                            const SecretBytes& key, bool encrypt) {
  if (static_cast<int>(key.size()) != EVP_CIPHER_get_key_length(cipher)) {
    return Status::InvalidArgument("key has the wrong length for the cipher");
  }
  EvpCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return Status::ResourceExhausted("EVP_CIPHER_CTX_new failed");
  if (EVP_CipherInit_ex(ctx.get(), cipher, nullptr, key.data(), nullptr, encrypt ? 1 : 0) != 1) {
    return Status::Internal("EVP_CipherInit_ex failed");
  }
  return std::unique_ptr<EvpContextPool>(new EvpContextPool(std::move(ctx), encrypt));
}

Result<EvpContextPool::Lease> EvpContextPool::Acquire() {
  if (EvpCtxPtr idle = idle_.Take()) return Lease(this, std::move(idle));
  EvpCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return Status::ResourceExhausted("EVP_CIPHER_CTX_new failed");
  if (EVP_CIPHER_CTX_copy(ctx.get(), template_.get()) != 1) {
    return Status::Internal("EVP_CIPHER_CTX_copy failed");
  }
  return Lease(this, std::move(ctx));
}

}  // namespace sealcache::crypto::internal
