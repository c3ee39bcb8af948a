// The PKCS#11 master key provider (an HSM, or SoftHSM2 for tests). Private to crypto/.
//
// The AES-256 key in the token never leaves it: sealcache's 32-byte master key is kept
// sealed by that key (CKM_AES_GCM, in the token) in an envelope (envelope_provider.h).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sealcache/crypto/master_key.h"

namespace sealcache::crypto::internal {

// The parts of an RFC 7512 URI the provider uses:
//   pkcs11:token=<label>;object=<label>[;id=%01][;type=secret-key]
//          ?module-path=<path.so>&pin-source=<file:PATH | PATH | env:VAR>
// A PIN in the URI (pin-value) is refused: a command line is visible to every user.
struct Pkcs11Uri {
  std::string token;
  std::string object;
  std::vector<uint8_t> id;
  std::string module_path;
  std::string pin_source;
  std::string ToString() const;  // without anything secret (there is nothing secret in it)
};
Result<Pkcs11Uri> ParsePkcs11Uri(std::string_view uri);

Result<std::unique_ptr<MasterKeyProvider>> NewPkcs11Provider(const Pkcs11Uri& uri,
                                                             const MasterKeyOptions& options);

}  // namespace sealcache::crypto::internal
