#include "private_file_system.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace sealcache::storage::internal {
namespace {

// chmod after a successful create; a failure fails the create (and closes what it opened),
// so no file of looser mode is ever handed to RocksDB.
template <typename File>
rocksdb::IOStatus MakePrivate(const std::string& path, mode_t mode, rocksdb::IOStatus s,
                              std::unique_ptr<File>* file) {
  if (!s.ok()) return s;
  if (chmod(path.c_str(), mode) != 0) {
    const int err = errno;
    if (file != nullptr) file->reset();
    return rocksdb::IOStatus::IOError("cannot make " + path + " private: " + std::strerror(err));
  }
  return s;
}

class PrivateFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  explicit PrivateFileSystem(std::shared_ptr<rocksdb::FileSystem> base)
      : rocksdb::FileSystemWrapper(std::move(base)) {}
  const char* Name() const override { return "SealcachePrivateFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* d) override {
    return MakePrivate(f, kPrivateFileMode, target()->NewWritableFile(f, o, r, d), r);
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* d) override {
    return MakePrivate(f, kPrivateFileMode, target()->ReopenWritableFile(f, o, r, d), r);
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* d) override {
    return MakePrivate(f, kPrivateFileMode, target()->ReuseWritableFile(f, old, o, r, d), r);
  }
  rocksdb::IOStatus NewRandomRWFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* r,
                                    rocksdb::IODebugContext* d) override {
    return MakePrivate(f, kPrivateFileMode, target()->NewRandomRWFile(f, o, r, d), r);
  }
  rocksdb::IOStatus LockFile(const std::string& f, const rocksdb::IOOptions& o,
                             rocksdb::FileLock** lock, rocksdb::IODebugContext* d) override {
    rocksdb::IOStatus s = target()->LockFile(f, o, lock, d);
    if (s.ok() && chmod(f.c_str(), kPrivateFileMode) != 0) {
      const int err = errno;
      (void)target()->UnlockFile(*lock, o, d);
      *lock = nullptr;
      return rocksdb::IOStatus::IOError("cannot make " + f + " private: " + std::strerror(err));
    }
    return s;
  }
  rocksdb::IOStatus CreateDir(const std::string& dir, const rocksdb::IOOptions& o,
                              rocksdb::IODebugContext* d) override {
    return MakePrivate<rocksdb::FSDirectory>(dir, kPrivateDirMode, target()->CreateDir(dir, o, d),
                                             nullptr);
  }
  rocksdb::IOStatus CreateDirIfMissing(const std::string& dir, const rocksdb::IOOptions& o,
                                       rocksdb::IODebugContext* d) override {
    return MakePrivate<rocksdb::FSDirectory>(dir, kPrivateDirMode,
                                             target()->CreateDirIfMissing(dir, o, d), nullptr);
  }
};

}  // namespace

Status MakePrivateDir(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path target(path);
  // Parents first, so that none is ever left with the umask's mode.
  std::filesystem::path partial;
  for (const auto& part : target) {
    partial /= part;
    if (partial == partial.root_path() || std::filesystem::exists(partial, ec)) continue;
    if (!std::filesystem::create_directory(partial, ec) && ec) {
      return Status::IOError("cannot create directory " + partial.string() + ": " + ec.message());
    }
    if (chmod(partial.c_str(), kPrivateDirMode) != 0) {
      return Status::IOError("cannot make " + partial.string() +
                             " private: " + std::strerror(errno));
    }
  }
  // An existing directory (the data directory an operator made) is tightened if possible;
  // when it cannot be (a read-only mount), the store's writability check says why.
  (void)chmod(path.c_str(), kPrivateDirMode);
  return Status::Ok();
}

std::shared_ptr<rocksdb::FileSystem> NewPrivateFileSystem(
    std::shared_ptr<rocksdb::FileSystem> base) {
  return std::make_shared<PrivateFileSystem>(std::move(base));
}

}  // namespace sealcache::storage::internal
