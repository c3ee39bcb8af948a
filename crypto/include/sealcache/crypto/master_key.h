// Master key providers. The master key (32 bytes) wraps every node and org key version in
// the keystore; it never touches a data file.
//
// Specs:
//   file:PATH   a file holding 32 raw bytes or 64 hex characters (an optional trailing
//               newline is allowed). The file must be a regular file that neither group nor
//               others can read or write (chmod 600); otherwise loading is refused.
//   env:VAR     64 hex characters in environment variable VAR. For development only: the
//               key is visible in /proc/<pid>/environ; loading reports a warning.
//   pkcs11:token=LABEL;object=LABEL?module-path=MODULE.so&pin-source=file:PATH|env:VAR
//               an RFC 7512 URI naming an AES-256 key in a PKCS#11 token (an HSM): the
//               master key is kept sealed by that key (AES-GCM, in the token) in
//               <data>/keys/master-key-<fingerprint>.pkcs11, created at the first start.
//               The token's key never leaves it; the PIN never appears on the command line.
//   kmip://HOST:PORT/KEY_ID[?client-cert=PATH&client-key=PATH&ca=PATH&server-name=NAME]
//               an AES-256 key in a KMIP 1.4 server (a KMS), reached over mutual TLS: the
//               master key is kept sealed by that key (AES-GCM, by the server) in
//               <data>/keys/master-key-<fingerprint>.kmip. The TLS files default to
//               MasterKeyOptions' kmip_* (sealcached's --kmip-client-cert and friends).
// A key server that cannot be reached is Unavailable; a refused credential PermissionDenied.
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
  // The master key the keystore is under (or, with no keystore yet, a new one).
  virtual Result<LoadedMasterKey> Load() const = 0;
  // A master key to rotate to: the key in a file or variable as it is; a new random key
  // sealed by an HSM (its envelope written beside the old one, which stays until the
  // rotation commits and RemoveMasterKeyEnvelopesExcept runs).
  virtual Result<LoadedMasterKey> Create() const { return Load(); }
  // The spec with nothing secret in it, for logs ("file:/etc/sealcache/master.key").
  virtual std::string Describe() const = 0;
};

struct MasterKeyOptions {
  // Where providers that keep the master key sealed by an HSM (pkcs11:) keep that envelope:
  // the data directory's keys/. Empty: such providers are refused.
  std::string envelope_dir;
  // The keystore: its (plaintext) master key fingerprint names the envelope to open.
  std::string keystore_path;
  // False for read-only tools: a missing envelope is an error, not created.
  bool create_envelope = true;
  // Mutual TLS to a KMIP server: this client's certificate and key (PEM), and the CA that
  // signed the server's certificate. A kmip: spec's own query parameters override them.
  std::string kmip_client_cert;
  std::string kmip_client_key;
  std::string kmip_ca;
};

// Parses a spec as documented above.
Result<std::unique_ptr<MasterKeyProvider>> MasterKeyProviderFromSpec(
    std::string_view spec, const MasterKeyOptions& options = {});

// After a master-key rotation committed: removes every envelope in `envelope_dir` but the
// one of the master key with this keystore fingerprint (none, if the new key is not sealed).
Status RemoveMasterKeyEnvelopesExcept(const std::string& envelope_dir,
                                      std::string_view fingerprint);

// Creates a new random master key file at `path` with mode 0600, as 64 hex characters and a
// newline. Fails with AlreadyExists rather than overwrite an existing key.
Status CreateMasterKeyFile(const std::string& path);

// Hex helpers (lower case). ParseHex rejects odd lengths and non-hex characters.
std::string ToHex(std::span<const uint8_t> bytes);
Result<std::vector<uint8_t>> ParseHex(std::string_view hex);

}  // namespace sealcache::crypto
