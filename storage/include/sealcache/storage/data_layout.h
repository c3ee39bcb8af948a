// Where everything lives under a data directory, and which files must be encrypted under
// which key ring. The routing file system and the dump tool share these rules.
//
//   <data>/keys/keystore          key records (crypto/FORMAT.md)
//   <data>/db/                    RocksDB: *.log (WAL)                 -> node key
//                                 MANIFEST-*, CURRENT, IDENTITY, OPTIONS-*, LOCK, LOG
//                                   -> plaintext (no payloads, no vectors)
//   <data>/db/meta/               SSTs of column family "meta"         -> plaintext
//   <data>/db/orgs/<org>/         SSTs of column family "org.<org>"    -> org key
//   <data>/index/<org>/           index snapshots                      -> org key
//   <data>/audit.log              JSON lines, no secrets
#pragma once

#include <optional>
#include <string>

#include "sealcache/crypto/key_ring.h"
#include "sealcache/storage/file_header.h"

namespace sealcache::storage {

// What a path must hold.
struct FileClass {
  bool encrypted = false;
  FileKind kind = FileKind::kOther;
  crypto::RingId ring;  // meaningful when encrypted
};

class DataLayout {
 public:
  // `data_dir` should be absolute (Store::Open makes it so); no trailing slash needed.
  explicit DataLayout(std::string data_dir);

  const std::string& data_dir() const { return data_dir_; }
  std::string keys_dir() const { return data_dir_ + "/keys"; }
  std::string keystore_path() const { return keys_dir() + "/keystore"; }
  std::string db_dir() const { return data_dir_ + "/db"; }
  std::string meta_dir() const { return db_dir() + "/meta"; }
  std::string orgs_dir() const { return db_dir() + "/orgs"; }
  std::string org_dir(const std::string& org) const { return orgs_dir() + "/" + org; }
  std::string index_dir() const { return data_dir_ + "/index"; }
  std::string org_index_dir(const std::string& org) const { return index_dir() + "/" + org; }
  std::string audit_log_path() const { return data_dir_ + "/audit.log"; }

  // Classifies a path by where it is. Paths outside the data directory are plaintext.
  FileClass Classify(const std::string& path) const;

 private:
  std::string data_dir_;
};

}  // namespace sealcache::storage
