// Cryptographically secure random bytes (OpenSSL RAND_bytes, seeded by the OS).
// Never a clock-seeded generator: every key, nonce, IV and file id comes from here.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sealcache/crypto/secret_bytes.h"
#include "sealcache/status.h"

namespace sealcache::crypto {

// Fills `out` with random bytes.
Status RandomFill(std::span<uint8_t> out);
// A fresh random secret of `size` bytes (e.g. a 32-byte key).
Result<SecretBytes> RandomSecret(size_t size);
// Random non-secret bytes (file ids, nonces).
Result<std::vector<uint8_t>> RandomBytes(size_t size);

}  // namespace sealcache::crypto
