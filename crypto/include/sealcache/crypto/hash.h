// SHA-256, HMAC-SHA256 and HKDF-SHA256 (RFC 5869) over OpenSSL.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "sealcache/crypto/secret_bytes.h"
#include "sealcache/status.h"

namespace sealcache::crypto {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest Sha256(std::span<const uint8_t> data);
// SHA-256 of data given in pieces (a file streamed in chunks).
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;
  void Update(std::span<const uint8_t> data);
  // The digest of everything given; the hasher starts over afterwards.
  Sha256Digest Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};
Result<Sha256Digest> HmacSha256(const SecretBytes& key, std::span<const uint8_t> data);
// An HMAC-SHA256 key prepared once, for keys that MAC many short inputs: the two hash states
// the key determines are computed when it is created, so each Mac hashes only its input and
// the inner digest. The states are as secret as the key; they are wiped when the last copy
// of this object goes, and each Mac wipes its working copies. Mac is safe to call from many
// threads at once.
class HmacSha256Key {
 public:
  static Result<HmacSha256Key> Create(const SecretBytes& key);
  Result<Sha256Digest> Mac(std::span<const uint8_t> data) const;

 private:
  struct Context;
  explicit HmacSha256Key(std::shared_ptr<const Context> ctx) : ctx_(std::move(ctx)) {}
  std::shared_ptr<const Context> ctx_;
};

// HKDF-SHA256 with an empty salt: a `size`-byte subkey of `ikm` for the purpose `info`.
// Distinct `info` strings give independent keys (key separation).
Result<SecretBytes> HkdfSha256(const SecretBytes& ikm, std::string_view info, size_t size);

// Constant-time equality for MACs and token hashes.
bool ConstantTimeEquals(std::span<const uint8_t> a, std::span<const uint8_t> b);

}  // namespace sealcache::crypto
