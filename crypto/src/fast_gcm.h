// AES-256-GCM through Intel's Multi-Buffer Crypto library (Debian's libipsec-mb) where it
// runs its VAES and VPCLMULQDQ AVX-512 code on this CPU: opening a 4 KiB chunk of an
// encrypted file takes ~0.42 us there against ~1.1 us through OpenSSL 3.0, whose GCM has no
// such path before 3.2 (bench/README.md, "AES-GCM through ipsec-mb"). The same algorithm and
// bytes as OpenSSL's: tests seal with each and open with the other. Aead uses it when New
// gives one, OpenSSL's EVP otherwise.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "sealcache/crypto/secret_bytes.h"

namespace sealcache::crypto::internal {

class FastGcm {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kNonceSize = 12;
  static constexpr size_t kTagSize = 16;
  // The environment variable that, set to "openssl", keeps every Aead on OpenSSL (the tests
  // of that path run so on CPUs that have the fast one).
  static constexpr char kBackendEnv[] = "SEALCACHE_AES_GCM";

  // Whether this CPU has the library's AVX-512 GCM (and the environment does not refuse it).
  static bool Available();
  // The expanded form of a kKeySize `key`, or null where Available() is false.
  static std::unique_ptr<FastGcm> New(const SecretBytes& key);
  ~FastGcm();  // wipes the expanded key
  FastGcm(const FastGcm&) = delete;
  FastGcm& operator=(const FastGcm&) = delete;

  // ciphertext[0 .. plaintext.size()) and tag[0 .. kTagSize). `ciphertext` may be
  // `plaintext`'s own bytes.
  void Seal(const uint8_t* nonce, std::span<const uint8_t> plaintext, std::span<const uint8_t> aad,
            uint8_t* ciphertext, uint8_t* tag) const;
  // out[0 .. body.size()) if `tag` authenticates nonce, aad and body; else false with `out`
  // wiped. `out` may be `body`'s own bytes.
  bool Open(const uint8_t* nonce, std::span<const uint8_t> body, const uint8_t* tag,
            std::span<const uint8_t> aad, uint8_t* out) const;

 private:
  struct Key;
  explicit FastGcm(std::unique_ptr<Key> key);
  std::unique_ptr<Key> key_;
};

}  // namespace sealcache::crypto::internal
