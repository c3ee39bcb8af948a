// RocksDB's info LOG (db/LOG), written by sealcache instead of RocksDB's own EnvLogger.
//
// Why not RocksDB's: its EnvLogger writes through a WritableFileWriter, and once one append
// has failed (the disk is full: the LOG shares the data disk) the next append trips an
// assertion in the Debian build of RocksDB 7.8 and aborts the server. This logger ignores
// write errors (a log line lost on a full disk is fine; a crash is not).
//
// It also keeps what WAL recovery reports while the database opens (records dropped from a
// damaged or torn WAL tail, the point recovery stopped at), so the server can say what was
// lost in its own log instead of leaving it in db/LOG.
#pragma once

#include <rocksdb/env.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sealcache/status.h"

namespace sealcache::storage::internal {

class InfoLog final : public rocksdb::Logger {
 public:
  // Opens `dir`/LOG for appending, first renaming an existing LOG to LOG.old.<micros> (the
  // names RocksDB purges beyond keep_log_file_num).
  static Result<std::shared_ptr<InfoLog>> Open(const std::string& dir);
  ~InfoLog() override;

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override;
  void Logv(rocksdb::InfoLogLevel level, const char* format, va_list ap) override;
  void Flush() override;

  // Between these calls, WAL recovery messages are kept for RecoveryReport().
  void BeginRecovery();
  void EndRecovery();
  // What WAL recovery reported: one line per dropped stretch of a WAL, and the point
  // recovery stopped at. Empty when every WAL replayed cleanly.
  std::vector<std::string> RecoveryReport() const;

 private:
  explicit InfoLog(std::FILE* file) : file_(file) {}
  rocksdb::Status CloseImpl() override;

  mutable std::mutex mu_;
  std::FILE* file_;
  bool recovering_ = false;
  std::vector<std::string> recovery_report_;
};

}  // namespace sealcache::storage::internal
