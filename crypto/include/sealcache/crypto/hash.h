// SHA-256, HMAC-SHA256 and HKDF-SHA256 (RFC 5869) over OpenSSL.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "sealcache/crypto/secret_bytes.h"
#include "sealcache/status.h"

namespace sealcache::crypto {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest Sha256(std::span<const uint8_t> data);
Result<Sha256Digest> HmacSha256(const SecretBytes& key, std::span<const uint8_t> data);
// HKDF-SHA256 with an empty salt: a `size`-byte subkey of `ikm` for the purpose `info`.
// Distinct `info` strings give independent keys (key separation).
Result<SecretBytes> HkdfSha256(const SecretBytes& ikm, std::string_view info, size_t size);

// Constant-time equality for MACs and token hashes.
bool ConstantTimeEquals(std::span<const uint8_t> a, std::span<const uint8_t> b);

}  // namespace sealcache::crypto
