#include "read_only_file_system.h"

#include <rocksdb/env.h>

#include <algorithm>
#include <string_view>

namespace sealcache::storage::internal {
namespace {

using rocksdb::FileOptions;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;

bool IsWalName(std::string_view name) {
  constexpr std::string_view kWalSuffix = ".log";
  return name.size() > kWalSuffix.size() &&
         name.substr(name.size() - kWalSuffix.size()) == kWalSuffix;
}

IOStatus Refused(std::string_view what, const std::string& path) {
  return IOStatus::NotSupported("read-only view: refusing to " + std::string(what) + " " + path);
}

class ReadOnlyFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  ReadOnlyFileSystem(std::shared_ptr<rocksdb::FileSystem> base, bool hide_wal)
      : rocksdb::FileSystemWrapper(std::move(base)), hide_wal_(hide_wal) {}

  const char* Name() const override { return "SealcacheReadOnlyFileSystem"; }

  IOStatus NewSequentialFile(const std::string& f, const FileOptions& o,
                             std::unique_ptr<rocksdb::FSSequentialFile>* r,
                             IODebugContext* d) override {
    if (hide_wal_ && IsWalName(f)) return Refused("read the encrypted WAL", f);
    return target()->NewSequentialFile(f, o, r, d);
  }
  IOStatus NewWritableFile(const std::string& f, const FileOptions&,
                           std::unique_ptr<rocksdb::FSWritableFile>*, IODebugContext*) override {
    return Refused("create", f);
  }
  IOStatus ReopenWritableFile(const std::string& f, const FileOptions&,
                              std::unique_ptr<rocksdb::FSWritableFile>*, IODebugContext*) override {
    return Refused("reopen for writing", f);
  }
  IOStatus ReuseWritableFile(const std::string& f, const std::string&, const FileOptions&,
                             std::unique_ptr<rocksdb::FSWritableFile>*, IODebugContext*) override {
    return Refused("reuse", f);
  }
  IOStatus NewRandomRWFile(const std::string& f, const FileOptions&,
                           std::unique_ptr<rocksdb::FSRandomRWFile>*, IODebugContext*) override {
    return Refused("open for writing", f);
  }
  IOStatus DeleteFile(const std::string& f, const IOOptions&, IODebugContext*) override {
    return Refused("delete", f);
  }
  IOStatus Truncate(const std::string& f, size_t, const IOOptions&, IODebugContext*) override {
    return Refused("truncate", f);
  }
  IOStatus CreateDir(const std::string& dir, const IOOptions&, IODebugContext*) override {
    return Refused("create directory", dir);
  }
  IOStatus CreateDirIfMissing(const std::string& dir, const IOOptions& o,
                              IODebugContext* d) override {
    // RocksDB "ensures" directories it only reads; an existing one needs no change.
    bool is_dir = false;
    if (target()->IsDirectory(dir, o, &is_dir, d).ok() && is_dir) return IOStatus::OK();
    return Refused("create directory", dir);
  }
  IOStatus DeleteDir(const std::string& dir, const IOOptions&, IODebugContext*) override {
    return Refused("delete directory", dir);
  }
  IOStatus RenameFile(const std::string& src, const std::string&, const IOOptions&,
                      IODebugContext*) override {
    return Refused("rename", src);
  }
  IOStatus LinkFile(const std::string& src, const std::string&, const IOOptions&,
                    IODebugContext*) override {
    return Refused("link", src);
  }
  IOStatus LockFile(const std::string& f, const IOOptions&, rocksdb::FileLock**,
                    IODebugContext*) override {
    return Refused("lock", f);
  }
  IOStatus NewLogger(const std::string& f, const IOOptions&, std::shared_ptr<rocksdb::Logger>*,
                     IODebugContext*) override {
    return Refused("create info log", f);
  }

  IOStatus GetChildren(const std::string& dir, const IOOptions& o, std::vector<std::string>* r,
                       IODebugContext* d) override {
    IOStatus s = target()->GetChildren(dir, o, r, d);
    if (s.ok() && hide_wal_) r->erase(std::remove_if(r->begin(), r->end(), IsWalName), r->end());
    return s;
  }
  IOStatus GetChildrenFileAttributes(const std::string& dir, const IOOptions& o,
                                     std::vector<rocksdb::FileAttributes>* r,
                                     IODebugContext* d) override {
    IOStatus s = target()->GetChildrenFileAttributes(dir, o, r, d);
    if (s.ok() && hide_wal_) {
      r->erase(std::remove_if(r->begin(), r->end(),
                              [](const rocksdb::FileAttributes& a) { return IsWalName(a.name); }),
               r->end());
    }
    return s;
  }

 private:
  bool hide_wal_;
};

class DiscardingLogger final : public rocksdb::Logger {
 public:
  DiscardingLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::HEADER_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char*, va_list) override {}
};

}  // namespace

std::shared_ptr<rocksdb::FileSystem> NewReadOnlyFileSystem(
    std::shared_ptr<rocksdb::FileSystem> base, bool hide_wal) {
  return std::make_shared<ReadOnlyFileSystem>(std::move(base), hide_wal);
}

std::shared_ptr<rocksdb::Logger> NewDiscardingLogger() {
  return std::make_shared<DiscardingLogger>();
}

}  // namespace sealcache::storage::internal
