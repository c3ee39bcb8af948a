#include "info_log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <ctime>
#include <filesystem>

namespace sealcache::storage::internal {
namespace {

constexpr size_t kMaxLineBytes = 4096;
// RocksDB's wording for WAL recovery events (db/db_impl/db_impl_open.cc, 7.8): a reader
// reporting a damaged stretch ("<file>: dropping N bytes; Corruption: ...") and the point
// where point-in-time recovery stopped.
constexpr const char* kRecoveryMarkers[] = {"dropping", "Point in time recovered"};

std::string Format(const char* format, va_list ap) {
  char buf[kMaxLineBytes];
  int n = std::vsnprintf(buf, sizeof(buf), format, ap);
  if (n < 0) return {};
  return std::string(buf, std::min(static_cast<size_t>(n), sizeof(buf) - 1));
}

uint64_t NowMicros() {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  return static_cast<uint64_t>(tv.tv_sec) * 1000000u + static_cast<uint64_t>(tv.tv_usec);
}

}  // namespace

Result<std::shared_ptr<InfoLog>> InfoLog::Open(const std::string& dir) {
  const std::string path = dir + "/LOG";
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    std::filesystem::rename(path, path + ".old." + std::to_string(NowMicros()), ec);
    // A LOG that cannot be moved aside is appended to: losing history is not worth a refusal.
  }
  // 0600 like every file of the store: the LOG names files, orgs and key versions.
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  std::FILE* f = fd < 0 ? nullptr : fdopen(fd, "a");
  if (f == nullptr) {
    const int err = errno;
    if (fd >= 0) close(fd);
    return Status::IOError("cannot open " + path + ": " + std::strerror(err));
  }
  return std::shared_ptr<InfoLog>(new InfoLog(f));
}

InfoLog::~InfoLog() {
  // Logger's destructor does not close; CloseImpl may have run already.
  (void)CloseImpl();
}

rocksdb::Status InfoLog::CloseImpl() {
  std::lock_guard<std::mutex> lock(mu_);
  if (file_ != nullptr) {
    std::fclose(file_);
    file_ = nullptr;
  }
  return rocksdb::Status::OK();
}

void InfoLog::Logv(const char* format, va_list ap) {
  const std::string message = Format(format, ap);
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm t;
  localtime_r(&tv.tv_sec, &t);
  char stamp[64];
  std::snprintf(stamp, sizeof(stamp), "%04d/%02d/%02d-%02d:%02d:%02d.%06ld %lx ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                static_cast<long>(tv.tv_usec), static_cast<unsigned long>(gettid()));
  std::lock_guard<std::mutex> lock(mu_);
  if (file_ == nullptr) return;
  // Errors (a full disk) are ignored on purpose; clearerr lets later lines try again.
  std::fputs(stamp, file_);
  std::fputs(message.c_str(), file_);
  if (message.empty() || message.back() != '\n') std::fputc('\n', file_);
  std::fflush(file_);
  std::clearerr(file_);
}

void InfoLog::Logv(rocksdb::InfoLogLevel level, const char* format, va_list ap) {
  bool capture;
  {
    std::lock_guard<std::mutex> lock(mu_);
    capture = recovering_;
  }
  if (capture) {
    va_list copy;
    va_copy(copy, ap);
    std::string message = Format(format, copy);
    va_end(copy);
    for (const char* marker : kRecoveryMarkers) {
      if (message.find(marker) != std::string::npos) {
        std::lock_guard<std::mutex> lock(mu_);
        recovery_report_.push_back(std::move(message));
        break;
      }
    }
  }
  rocksdb::Logger::Logv(level, format, ap);
}

void InfoLog::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  if (file_ != nullptr) {
    std::fflush(file_);
    std::clearerr(file_);
  }
}

void InfoLog::BeginRecovery() {
  std::lock_guard<std::mutex> lock(mu_);
  recovering_ = true;
  recovery_report_.clear();
}

void InfoLog::EndRecovery() {
  std::lock_guard<std::mutex> lock(mu_);
  recovering_ = false;
}

std::vector<std::string> InfoLog::RecoveryReport() const {
  std::lock_guard<std::mutex> lock(mu_);
  return recovery_report_;
}

}  // namespace sealcache::storage::internal
