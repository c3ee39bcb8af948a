// Where everything lives under a data directory, and which files must be encrypted under
// which key ring. The routing file system and the dump tool share these rules.
//
//   <data>/keys/keystore          key records (crypto/FORMAT.md)
//   <data>/catalog                orgs and tokens, sealed under the node key (FORMAT.md)
//   <data>/orgs/<org>/            the org's own RocksDB instance:
//                                   *.log (its WAL)                      -> node key
//                                   MANIFEST-*, CURRENT, IDENTITY, OPTIONS-*, LOCK, LOG*
//                                     -> plaintext (no payloads, no vectors)
//   <data>/orgs/<org>/meta/       SSTs of its family "meta"            -> plaintext
//   <data>/orgs/<org>/data/       SSTs of its family "data"            -> org key
//   <data>/orgs/<org>/index/      index snapshots                      -> org key
//   <data>/audit.log              JSON lines, no secrets
//   <data>/incoming/<org>/        an org's files while it is moved here (copied bytes)
//
// Stores written before the per-org layout (one shared RocksDB instance) keep their files
// in <data>/db/ (WAL: node key; db/meta/: plaintext; db/orgs/<org>/: org key) and
// <data>/index/<org>/ (org key) until Store::Open migrates them.
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
  std::string org;      // the org whose directory holds the path; empty outside them
};

class DataLayout {
 public:
  // `data_dir` should be absolute (Store::Open makes it so); no trailing slash needed.
  explicit DataLayout(std::string data_dir);

  const std::string& data_dir() const { return data_dir_; }
  std::string keys_dir() const { return data_dir_ + "/keys"; }
  std::string keystore_path() const { return keys_dir() + "/keystore"; }
  std::string catalog_path() const { return data_dir_ + "/catalog"; }
  std::string plaintext_marker_path() const { return data_dir_ + "/PLAINTEXT-BENCHMARK-ONLY"; }
  std::string orgs_dir() const { return data_dir_ + "/orgs"; }
  // The org's RocksDB instance (its WAL, MANIFEST and info LOG are directly in it).
  std::string org_dir(const std::string& org) const { return orgs_dir() + "/" + org; }
  std::string org_meta_dir(const std::string& org) const { return org_dir(org) + "/meta"; }
  std::string org_data_dir(const std::string& org) const { return org_dir(org) + "/data"; }
  std::string org_index_dir(const std::string& org) const { return org_dir(org) + "/index"; }
  std::string audit_log_path() const { return data_dir_ + "/audit.log"; }
  // Files of orgs being moved here, until the import commits (removed at open).
  std::string incoming_dir() const { return data_dir_ + "/incoming"; }

  // The shared instance of stores written before the per-org layout.
  std::string legacy_db_dir() const { return data_dir_ + "/db"; }
  std::string legacy_meta_dir() const { return legacy_db_dir() + "/meta"; }
  std::string legacy_org_dir(const std::string& org) const {
    return legacy_db_dir() + "/orgs/" + org;
  }
  std::string legacy_index_dir() const { return data_dir_ + "/index"; }

  // Classifies a path by where it is. Paths outside the data directory are plaintext.
  FileClass Classify(const std::string& path) const;

 private:
  std::string data_dir_;
};

}  // namespace sealcache::storage
