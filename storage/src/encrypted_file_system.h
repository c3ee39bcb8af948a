// The file system under RocksDB: routes every path by DataLayout::Classify to the plain file
// system or to the encrypted formats (storage/FORMAT.md), whose 4096-byte header names the
// key ring and version that protect the file. Private to storage/.
//
// - Every new encrypted file is format v2 (sealed_file.h): authenticated chunks, or
//   authenticated append-only frames for the WAL. Format v1 files (AES-256-CTR, through
//   RocksDB's EncryptedFileSystem) are read, and reopened, as long as they exist.
// - New encrypted files get a random data key, wrapped under the ACTIVE version of the ring
//   their path belongs to; every open takes the key from the header, never from the path,
//   and refuses a header whose ring differs from the path's (one org's file in another's
//   directory).
// - Fail closed: an encrypted path without a valid header is an error, never plaintext.
// - ReopenWritableFile continues the file in its own format (RocksDB's own encrypted file
//   system appends a second prefix instead).
// - Sizes RocksDB sees are logical: v1 and v2 chunked sizes follow from the physical size,
//   a v2 log's from walking its frame headers.
// - mmap and direct I/O are refused for encrypted files.
// - Links and renames between a plaintext and an encrypted location, or between orgs, are
//   refused (RocksDB then falls back to copying through this file system).
#pragma once

#include <rocksdb/file_system.h>

#include <functional>
#include <memory>

#include "sealcache/crypto/keystore.h"
#include "sealcache/storage/data_layout.h"
#include "sealcache/storage/file_header.h"

namespace sealcache::storage::internal {

struct EncryptionEvents {
  // Called when a file's header cannot be parsed, authenticated or keyed. Must be cheap and
  // thread-safe; `status` never contains key material.
  std::function<void(const std::string& path, const Status& status)> on_decrypt_failure;
  // Called for every cipher stream created (one per file open), for metrics.
  std::function<void()> on_file_key_unwrapped;
  // A v2 log's torn or unauthenticated tail read as its end: what was dropped.
  std::function<void(const std::string& path, const std::string& what)> on_log_tail_dropped;
};

struct RoutingOptions {
  EncryptionEvents events;
  // BENCHMARKS AND TESTS ONLY: write new files in format v1 (no authentication), to compare
  // v2 with v1 on one code path and to test that v1 files stay readable.
  bool write_v1 = false;
  uint32_t chunk_size = kDefaultChunkSize;
};

// `keystore` must outlive the file system.
std::shared_ptr<rocksdb::FileSystem> NewRoutingFileSystem(const DataLayout& layout,
                                                          const crypto::Keystore* keystore,
                                                          std::shared_ptr<rocksdb::FileSystem> base,
                                                          RoutingOptions options);

}  // namespace sealcache::storage::internal
