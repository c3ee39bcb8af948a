// A pool of EVP cipher contexts that already hold the key schedule, so each operation only
// re-initialises the IV (about 1.5x faster than a full init) and concurrent callers never
// share a context. Private to crypto/.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <mutex>
#include <vector>

#include "sealcache/crypto/secret_bytes.h"
#include "sealcache/status.h"

namespace sealcache::crypto::internal {

struct EvpCtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using EvpCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, EvpCtxDeleter>;

class EvpContextPool {
 public:
  // `encrypt` picks the direction every pooled context is initialised for.
  static Result<std::unique_ptr<EvpContextPool>> New(const EVP_CIPHER* cipher,
                                                     const SecretBytes& key, bool encrypt);

  // A context on loan; returned to the pool when the lease is destroyed.
  class Lease {
   public:
    Lease(EvpContextPool* pool, EvpCtxPtr ctx) : pool_(pool), ctx_(std::move(ctx)) {}
    ~Lease() {
      if (ctx_) pool_->Return(std::move(ctx_));
    }
    Lease(Lease&&) = default;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    EVP_CIPHER_CTX* get() const { return ctx_.get(); }

   private:
    EvpContextPool* pool_;
    EvpCtxPtr ctx_;
  };

  // REQUIRES: the pool outlives the lease.
  Result<Lease> Acquire();

 private:
  EvpContextPool(EvpCtxPtr keyed_template, bool encrypt)
      : template_(std::move(keyed_template)), encrypt_(encrypt) {}
  void Return(EvpCtxPtr ctx);

  static constexpr size_t kMaxIdle = 64;
  EvpCtxPtr template_;  // keyed, never used directly; copied for new contexts
  bool encrypt_;
  std::mutex mu_;
  std::vector<EvpCtxPtr> idle_;  // GUARDED_BY(mu_)
};

}  // namespace sealcache::crypto::internal
