// The KMIP master key provider (a KMS speaking KMIP 1.4 over mutual TLS; PyKMIP's server in
// tests). Private to crypto/.
//
// The AES-256 key in the KMS never leaves it: sealcache's master key is kept sealed by that
// key (Encrypt/Decrypt with AES-GCM and authenticated additional data, done by the KMS) in an
// envelope (envelope_provider.h). The client is small and speaks only the operations it
// needs (Get Attributes, Encrypt, Decrypt) in TTLV (kmip_ttlv.h).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "sealcache/crypto/master_key.h"

namespace sealcache::crypto::internal {

//   kmip://<host>:<port>/<key unique identifier>
//          [?client-cert=PATH&client-key=PATH&ca=PATH&server-name=NAME]
// The TLS files default to MasterKeyOptions' (sealcached's --kmip-* options). The client key
// must be a file that neither group nor others can read (chmod 600). The server's
// certificate is checked against `ca` and against `server-name` (default: the host).
struct KmipUri {
  std::string host;
  uint16_t port = 0;
  std::string key_id;
  std::string client_cert;
  std::string client_key;
  std::string ca;
  std::string server_name;
  std::string ToString() const;  // host, port and key id: nothing secret
};
Result<KmipUri> ParseKmipUri(std::string_view uri, const MasterKeyOptions& options);

Result<std::unique_ptr<MasterKeyProvider>> NewKmipProvider(const KmipUri& uri,
                                                           const MasterKeyOptions& options);

}  // namespace sealcache::crypto::internal
