// The file system under RocksDB: routes every path by DataLayout::Classify to the plain file
// system or to the encrypted format v1 (storage/FORMAT.md), whose 4096-byte header names the
// key ring and version that protect the file. Private to storage/.
//
// - New encrypted files get a random data key, wrapped under the ACTIVE version of the ring
//   their path belongs to; every open takes the key from the header, never from the path,
//   and refuses a header whose ring differs from the path's (one org's file in another's
//   directory).
// - Fail closed: an encrypted path without a valid header is an error, never plaintext.
// - ReopenWritableFile continues the existing cipher stream (RocksDB's own encrypted file
//   system appends a second prefix instead).
// - Links and renames between a plaintext and an encrypted location, or between orgs, are
//   refused (RocksDB then falls back to copying through this file system).
#pragma once

#include <rocksdb/file_system.h>

#include <functional>
#include <memory>

#include "sealcache/crypto/keystore.h"
#include "sealcache/storage/data_layout.h"

namespace sealcache::storage::internal {

struct EncryptionEvents {
  // Called when a file's header cannot be parsed, authenticated or keyed. Must be cheap and
  // thread-safe; `status` never contains key material.
  std::function<void(const std::string& path, const Status& status)> on_decrypt_failure;
  // Called for every cipher stream created (one per file open), for metrics.
  std::function<void()> on_file_key_unwrapped;
};

// `keystore` must outlive the file system.
std::shared_ptr<rocksdb::FileSystem> NewRoutingFileSystem(const DataLayout& layout,
                                                          const crypto::Keystore* keystore,
                                                          std::shared_ptr<rocksdb::FileSystem> base,
                                                          EncryptionEvents events);

}  // namespace sealcache::storage::internal
