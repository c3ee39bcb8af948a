// Master key providers whose key lives in a key server (an HSM through PKCS#11, a KMS through
// KMIP) and never leaves it. Private to crypto/.
//
// sealcache's own 32-byte master key is kept sealed by the server's key (AES-256-GCM, done by
// the server) in an envelope file next to the keystore, named by the master key's keystore
// fingerprint: <envelope_dir>/master-key-<fingerprint>.<kind>. The envelope is made at the
// first start (or at a rotation to the provider) and opened by the server at every start.
// Vault's PKCS#11 and KMIP seals work the same way. See crypto/FORMAT.md.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sealcache/crypto/master_key.h"
#include "sealcache/crypto/secret_bytes.h"
#include "sealcache/status.h"

namespace sealcache::crypto::internal {

inline constexpr size_t kEnvelopeIvSize = 12;
inline constexpr size_t kEnvelopeTagSize = 16;

// A connection to a key server, holding the key the URI named, found and checked.
class KeyServerSession {
 public:
  virtual ~KeyServerSession() = default;
  // AES-256-GCM by the server under its key: iv (12 bytes, random) | ciphertext | tag (16).
  virtual Result<std::vector<uint8_t>> Seal(std::span<const uint8_t> plain,
                                            std::span<const uint8_t> aad) = 0;
  // The inverse; a wrong key, AAD or any damage is Corruption.
  virtual Result<SecretBytes> Open(std::span<const uint8_t> sealed,
                                   std::span<const uint8_t> aad) = 0;
  // Names the key and the server for messages ("KMIP key '7' at 10.0.0.5:5696"). No secret.
  virtual std::string Name() const = 0;
};

struct EnvelopeProviderSpec {
  std::string describe;     // the spec without anything secret, for logs and the audit log
  std::string kind;         // the envelope's file extension: "pkcs11", "kmip"
  std::string aad_binding;  // what names the server's key: token|object, host|key id
  std::function<Result<std::unique_ptr<KeyServerSession>>()> connect;
};

std::unique_ptr<MasterKeyProvider> NewEnvelopeProvider(EnvelopeProviderSpec spec,
                                                       MasterKeyOptions options);

// Removes the envelopes (of any kind) in `dir` but those of the master key with this
// fingerprint; syncs the directory.
Status RemoveEnvelopesExcept(const std::string& dir, std::string_view fingerprint);

}  // namespace sealcache::crypto::internal
