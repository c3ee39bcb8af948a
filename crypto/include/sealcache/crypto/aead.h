// Aead: AES-256-GCM with the Tink shape. Nonces are generated inside from RAND_bytes, so a
// caller cannot reuse one.
//
// Ciphertext layout (format version 1):
//   offset  size  field
//   0       1     version byte = 0x01
//   1       12    nonce (random)
//   13      n     ciphertext (same length as the plaintext)
//   13+n    16    GCM tag over aad and ciphertext
//
// Random 96-bit nonces keep the collision probability below 2^-32 for up to 2^32 messages
// per key (NIST SP 800-38D 8.3); keys here wrap a few keys or one file's data key each.
//
// Thread-safe: Seal and Open may be called concurrently on one Aead.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "sealcache/crypto/secret_bytes.h"
#include "sealcache/status.h"

namespace sealcache::crypto {

// Nonces for one sealer of many chunks under one key (a file writer): a random 8-byte prefix
// drawn once, then a 4-byte counter, so a seal costs no RAND_bytes call (about 1.1 us, half
// the cost of sealing 4 KiB on this machine). Two sequences under one key collide only if
// their random prefixes do (2^-64 per pair); a sequence draws a new prefix before its
// counter would wrap. Not thread-safe: one per writer.
class NonceSequence {
 public:
  static constexpr size_t kSize = 12;
  // Fills `nonce` (kSize bytes) with the next nonce.
  Status Next(uint8_t* nonce);

 private:
  uint8_t prefix_[8] = {};
  uint32_t counter_ = 0;
  bool seeded_ = false;
};

class Aead {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr uint8_t kFormatVersion = 1;
  static constexpr size_t kNonceSize = 12;
  static constexpr size_t kTagSize = 16;
  static constexpr size_t kOverhead = 1 + kNonceSize + kTagSize;

  // `key` must be kKeySize bytes; Aead keeps its own copy (and wipes it).
  static Result<std::unique_ptr<Aead>> New(const SecretBytes& key);
  ~Aead();
  Aead(const Aead&) = delete;
  Aead& operator=(const Aead&) = delete;

  // Returns version | nonce | ciphertext | tag. `aad` is authenticated, not stored.
  Result<std::vector<uint8_t>> Seal(std::span<const uint8_t> plaintext,
                                    std::span<const uint8_t> aad) const;
  // Decrypts a Seal() output under the same `aad`. Any change to the ciphertext, the aad
  // or the key gives Corruption("authentication failed"), never partial plaintext.
  Result<std::vector<uint8_t>> Open(std::span<const uint8_t> ciphertext,
                                    std::span<const uint8_t> aad) const;
  // Same as Open, for secret plaintexts (wrapped keys): the result wipes itself.
  Result<SecretBytes> OpenSecret(std::span<const uint8_t> ciphertext,
                                 std::span<const uint8_t> aad) const;

  // Sealing into caller buffers without the version byte, for the chunks and frames of
  // encrypted files (storage/FORMAT.md, format v2): out = nonce(12) | ciphertext | tag(16),
  // kRawOverhead bytes longer than the plaintext. The nonce is random, as in Seal.
  static constexpr size_t kRawOverhead = kNonceSize + kTagSize;
  Status SealRaw(std::span<const uint8_t> plaintext, std::span<const uint8_t> aad,
                 uint8_t* out) const;
  // The same, with the nonce from `nonces` (which must be used under this key only).
  Status SealRaw(std::span<const uint8_t> plaintext, std::span<const uint8_t> aad,
                 NonceSequence& nonces, uint8_t* out) const;
  // Opens a SealRaw output into out[0 .. sealed.size() - kRawOverhead); `out` may be the
  // ciphertext's own bytes (sealed.data() + kNonceSize). On failure `out` is wiped and the
  // status is Corruption("authentication failed ...").
  Status OpenRaw(std::span<const uint8_t> sealed, std::span<const uint8_t> aad, uint8_t* out) const;

  // Known-answer interface for tests: seal with a caller-chosen nonce. Never use it outside
  // tests; nonce reuse under one key destroys GCM's security.
  Result<std::vector<uint8_t>> SealWithNonceForTesting(std::span<const uint8_t> nonce,
                                                       std::span<const uint8_t> plaintext,
                                                       std::span<const uint8_t> aad) const;
  Status SealRawWithNonceForTesting(std::span<const uint8_t> nonce,
                                    std::span<const uint8_t> plaintext,
                                    std::span<const uint8_t> aad, uint8_t* out) const;

 private:
  struct Impl;
  explicit Aead(std::unique_ptr<Impl> impl);
  Status OpenInto(std::span<const uint8_t> ciphertext, std::span<const uint8_t> aad,
                  uint8_t* out) const;
  Status OpenBody(const uint8_t* nonce, std::span<const uint8_t> body, const uint8_t* tag,
                  std::span<const uint8_t> aad, uint8_t* out) const;
  std::unique_ptr<Impl> impl_;
};

// Convenience for text AAD / plaintext.
inline std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace sealcache::crypto
