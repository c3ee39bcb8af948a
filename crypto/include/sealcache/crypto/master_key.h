// Master key providers. The master key (32 bytes) wraps every node and org key version in
// the keystore; it never touches a data file.
//
// Specs:
//   file:PATH   a file holding 32 raw bytes or 64 hex characters (an optional trailing
//               newline is allowed). The file must be a regular file that neither group nor
//               others can read or write (chmod 600); otherwise loading is refused.
//   env:VAR     64 hex characters in environment variable VAR. For development only: the
//               key is visible in /proc/<pid>/environ; loading reports a warning.
//   pkcs11:...  reserved for an HSM provider; refused as not supported in this build.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sealcache/crypto/secret_bytes.h"
#include "sealcache/status.h"

namespace sealcache::crypto {

inline constexpr size_t kMasterKeySize = 32;

struct LoadedMasterKey {
  SecretBytes key;
  // Things the operator must hear about (e.g. a development-only source); the caller logs
  // them. They never contain key material.
  std::vector<std::string> warnings;
};

class MasterKeyProvider {
 public:
  virtual ~MasterKeyProvider() = default;
  virtual Result<LoadedMasterKey> Load() const = 0;
  // The spec with nothing secret in it, for logs ("file:/etc/sealcache/master.key").
  virtual std::string Describe() const = 0;
};

// Parses a spec as documented above.
Result<std::unique_ptr<MasterKeyProvider>> MasterKeyProviderFromSpec(std::string_view spec);

// Creates a new random master key file at `path` with mode 0600, as 64 hex characters and a
// newline. Fails with AlreadyExists rather than overwrite an existing key.
Status CreateMasterKeyFile(const std::string& path);

// Hex helpers (lower case). ParseHex rejects odd lengths and non-hex characters.
std::string ToHex(std::span<const uint8_t> bytes);
Result<std::vector<uint8_t>> ParseHex(std::string_view hex);

}  // namespace sealcache::crypto
