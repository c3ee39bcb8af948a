// ReadOnlyFileSystem: the file system under the dump tool's read-only RocksDB views. Every
// call that could create, change or remove a file (or take a lock) is refused, so a bug in
// an open path can never modify a data directory that a server may be using. Private to
// storage/.
//
// With `hide_wal`, directory listings omit `*.log` files: a keyless view cannot decrypt the
// WAL (node key), so it opens the state as of the last flush instead of failing.
#pragma once

#include <rocksdb/file_system.h>

#include <memory>

namespace sealcache::storage::internal {

std::shared_ptr<rocksdb::FileSystem> NewReadOnlyFileSystem(
    std::shared_ptr<rocksdb::FileSystem> base, bool hide_wal);

// A RocksDB info logger that drops everything, so a read-only open writes no LOG file.
std::shared_ptr<rocksdb::Logger> NewDiscardingLogger();

}  // namespace sealcache::storage::internal
