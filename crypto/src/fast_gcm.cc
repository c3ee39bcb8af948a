#include "fast_gcm.h"

#include <intel-ipsec-mb.h>
#include <openssl/crypto.h>

#include <cstdlib>
#include <cstring>
#include <string_view>

namespace sealcache::crypto::internal {

namespace {

constexpr uint64_t kAvx512Gcm = IMB_FEATURE_VAES | IMB_FEATURE_VPCLMULQDQ;

// The library's dispatch table for this CPU, made once and only read after: the GCM calls
// below take their function pointers from it and touch no other part of it. Null where the
// library has no AVX-512 GCM here, or the environment keeps OpenSSL.
const IMB_MGR* Manager() {
  static const IMB_MGR* const manager = []() -> const IMB_MGR* {
    const char* backend = std::getenv(FastGcm::kBackendEnv);
    if (backend != nullptr && std::string_view(backend) == "openssl") return nullptr;
    IMB_MGR* m = alloc_mb_mgr(0);
    if (m == nullptr) return nullptr;
    IMB_ARCH arch = IMB_ARCH_NONE;
    init_mb_mgr_auto(m, &arch);
    if (arch != IMB_ARCH_AVX512 || (m->features & kAvx512Gcm) != kAvx512Gcm ||
        imb_get_errno(m) != 0) {
      free_mb_mgr(m);
      return nullptr;
    }
    return m;  // kept for the process's life, as the library's own tables are
  }();
  return manager;
}

// The library's GCM structures want 64-byte alignment, which its header declares only when
// LINUX is defined: wrapped so that they get it whatever the compiler flags.
struct alignas(64) Context {
  gcm_context_data data;
  ~Context() { OPENSSL_cleanse(&data, sizeof(data)); }  // (partial blocks of plaintext)
};

// The library refuses null pointers even with a zero length (and then computes no tag):
// empty inputs and outputs point here instead.
const uint8_t* NonNull(const uint8_t* p) {
  static const uint8_t kNothing = 0;
  return p != nullptr ? p : &kNothing;
}

}  // namespace

struct FastGcm::Key {
  alignas(64) gcm_key_data data;
  ~Key() { OPENSSL_cleanse(&data, sizeof(data)); }
};

bool FastGcm::Available() { return Manager() != nullptr; }

std::unique_ptr<FastGcm> FastGcm::New(const SecretBytes& key) {
  const IMB_MGR* m = Manager();
  if (m == nullptr || key.size() != kKeySize) return nullptr;
  auto expanded = std::make_unique<Key>();
  m->gcm256_pre(key.data(), &expanded->data);
  return std::unique_ptr<FastGcm>(new FastGcm(std::move(expanded)));
}

FastGcm::FastGcm(std::unique_ptr<Key> key) : key_(std::move(key)) {}
FastGcm::~FastGcm() = default;

void FastGcm::Seal(const uint8_t* nonce, std::span<const uint8_t> plaintext,
                   std::span<const uint8_t> aad, uint8_t* ciphertext, uint8_t* tag) const {
  Context ctx;
  uint8_t unused;
  Manager()->gcm256_enc(&key_->data, &ctx.data, ciphertext != nullptr ? ciphertext : &unused,
                        NonNull(plaintext.data()), plaintext.size(), nonce, NonNull(aad.data()),
                        aad.size(), tag, kTagSize);
}

bool FastGcm::Open(const uint8_t* nonce, std::span<const uint8_t> body, const uint8_t* tag,
                   std::span<const uint8_t> aad, uint8_t* out) const {
  uint8_t expected[kTagSize];
  std::memcpy(expected, tag, kTagSize);  // (`out` may overwrite the bytes after the body)
  uint8_t computed[kTagSize];
  Context ctx;
  uint8_t unused;
  Manager()->gcm256_dec(&key_->data, &ctx.data, out != nullptr ? out : &unused,
                        NonNull(body.data()), body.size(), nonce, NonNull(aad.data()), aad.size(),
                        computed, kTagSize);
  if (CRYPTO_memcmp(computed, expected, kTagSize) != 0) {
    if (out != nullptr) OPENSSL_cleanse(out, body.size());
    return false;
  }
  return true;
}

}  // namespace sealcache::crypto::internal
