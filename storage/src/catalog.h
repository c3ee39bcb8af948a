// The catalog: which orgs exist (each org's commit record, with its config) and every access
// token record, in one small file (`<data>/catalog`) sealed with AES-256-GCM under the node
// key and replaced atomically on every change (format in storage/FORMAT.md). Private to
// storage/.
//
// Why a file and not a RocksDB family: it is tiny and changes only on admin operations, and
// a replaced file leaves nothing behind, where a dropped org's name and token hashes would
// stay in an LSM's MANIFEST, WAL and LOG until they happen to be rewritten. Sealing it means
// nobody who can write the disk can add a token or an org without the master key.
//
// Thread-safe. Every change is durable before it returns; if the write fails the in-memory
// state is unchanged.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sealcache/crypto/keystore.h"
#include "sealcache/storage/store.h"

namespace sealcache::storage::internal {

class Catalog {
 public:
  // Reads and authenticates the catalog at `path`; with `create_if_missing` a missing file
  // is an empty catalog (written at the first change). `keystore` must outlive the catalog.
  static Result<std::unique_ptr<Catalog>> Open(const std::string& path,
                                               const crypto::Keystore* keystore,
                                               bool create_if_missing);
  // Only reads (tools); every change is refused.
  static Result<std::unique_ptr<Catalog>> OpenReadOnly(const std::string& path,
                                                       const crypto::Keystore* keystore);

  std::map<std::string, OrgConfig> Orgs() const;
  std::optional<OrgConfig> FindOrg(std::string_view org) const;
  // The org's commit record (with its name key, for an org moved here). AlreadyExists if it
  // has one.
  Status AddOrg(const std::string& org, const OrgConfig& config,
                std::shared_ptr<const crypto::SecretBytes> name_key = nullptr);
  // Replaces the config of an existing org (its limits). NotFound for an unknown org.
  Status UpdateOrg(const std::string& org, const OrgConfig& config);
  // Removes the org's record and every token of it, in one write (DropOrg's commit point).
  Status RemoveOrg(const std::string& org);
  // Several records at once (a migration): orgs and tokens, in one write.
  Status AddAll(const std::map<std::string, OrgConfig>& orgs,
                const std::map<std::string, TokenRecord>& tokens);

  Status AddToken(const std::string& token_hash, const TokenRecord& record);
  Result<TokenRecord> FindToken(const std::string& token_hash) const;
  // Removes the org's tokens with `token_id` (every token of the org if empty).
  Result<uint64_t> RemoveTokens(std::string_view org, std::string_view token_id);

  // The org's name key (32 random bytes, made and committed at its first use): keys named by
  // clients map to digests under it (Store::NameDigest). It goes with the org's record, so
  // a later org of the same name gets another. NotFound for an unknown org.
  Result<std::shared_ptr<const crypto::SecretBytes>> NameKey(const std::string& org);

 private:
  struct State {
    std::map<std::string, OrgConfig> orgs;
    std::map<std::string, TokenRecord> tokens;                                    // by token hash
    std::map<std::string, std::shared_ptr<const crypto::SecretBytes>> name_keys;  // by org
  };
  Catalog(std::string path, const crypto::Keystore* keystore, bool read_only)
      : path_(std::move(path)), keystore_(keystore), read_only_(read_only) {}
  Status Load(bool create_if_missing);
  // Persists `next` and only then publishes it. REQUIRES: mu_ held.
  Status Commit(State next);

  const std::string path_;
  const crypto::Keystore* keystore_;
  const bool read_only_;
  mutable std::mutex mu_;
  State state_;
};

}  // namespace sealcache::storage::internal
