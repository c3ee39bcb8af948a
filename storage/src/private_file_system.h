// PrivateFileSystem: the file system under the store's RocksDB. Every file it creates is made
// mode 0600 and every directory 0700, whatever the process umask, so SSTs, the WAL, the
// MANIFEST and OPTIONS are readable by the server's user only. Private to storage/.
#pragma once

#include <rocksdb/file_system.h>

#include <memory>
#include <string>

#include "sealcache/status.h"

namespace sealcache::storage::internal {

inline constexpr mode_t kPrivateFileMode = 0600;
inline constexpr mode_t kPrivateDirMode = 0700;

// Creates `path` and any missing parents, each mode 0700 (an existing `path` is made 0700
// where the file system allows it).
Status MakePrivateDir(const std::string& path);

std::shared_ptr<rocksdb::FileSystem> NewPrivateFileSystem(
    std::shared_ptr<rocksdb::FileSystem> base);

}  // namespace sealcache::storage::internal
