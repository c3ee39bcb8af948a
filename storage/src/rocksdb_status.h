// Conversions between sealcache::Status and rocksdb::Status / IOStatus. Private to storage/.
#pragma once

#include <rocksdb/io_status.h>
#include <rocksdb/status.h>

#include "sealcache/status.h"

namespace sealcache::storage::internal {

inline Status FromRocks(const rocksdb::Status& s, std::string_view context = {}) {
  if (s.ok()) return Status::Ok();
  std::string msg = context.empty() ? s.ToString() : std::string(context) + ": " + s.ToString();
  switch (s.code()) {
    case rocksdb::Status::kNotFound:
      return Status::NotFound(msg);
    case rocksdb::Status::kCorruption:
      return Status::Corruption(msg);
    case rocksdb::Status::kInvalidArgument:
      return Status::InvalidArgument(msg);
    case rocksdb::Status::kNotSupported:
      return Status::NotSupported(msg);
    case rocksdb::Status::kIOError:
      if (s.subcode() == rocksdb::Status::kNoSpace) return Status::ResourceExhausted(msg);
      return Status::IOError(msg);
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTryAgain:
      return Status::ResourceExhausted(msg);
    default:
      return Status::IOError(msg);
  }
}

// Errors handed to RocksDB from the file system. Corruption stays Corruption so RocksDB
// reports it as such; everything else is an I/O error (never NotFound, which RocksDB would
// take as "file missing").
inline rocksdb::IOStatus ToRocksIO(const Status& s) {
  if (s.ok()) return rocksdb::IOStatus::OK();
  if (s.IsCorruption()) return rocksdb::IOStatus::Corruption(s.message());
  if (s.code() == Status::Code::kNotSupported) return rocksdb::IOStatus::NotSupported(s.message());
  return rocksdb::IOStatus::IOError(s.message());
}

inline rocksdb::Status ToRocks(const Status& s) {
  if (s.ok()) return rocksdb::Status::OK();
  if (s.IsCorruption()) return rocksdb::Status::Corruption(s.message());
  if (s.code() == Status::Code::kNotSupported) return rocksdb::Status::NotSupported(s.message());
  return rocksdb::Status::IOError(s.message());
}

}  // namespace sealcache::storage::internal
