#include "sealcache/storage/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "sealcache/json_string.h"

namespace sealcache::storage {

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path, const Clock* clock) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::IOError("cannot open audit log " + path + ": " + std::strerror(errno));
  }
  return std::unique_ptr<AuditLog>(new AuditLog(fd, clock));
}

AuditLog::~AuditLog() { close(fd_); }

std::string AuditLog::Escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  AppendJsonEscaped(&out, s);
  return out;
}

Status AuditLog::Record(std::string_view event, const Fields& fields, bool durable) {
  std::string line =
      "{\"ts_ms\":" + std::to_string(clock_->NowMillis()) + ",\"event\":\"" + Escape(event) + "\"";
  for (const auto& [name, value] : fields) {
    line += ",\"" + Escape(name) + "\":";
    if (const auto* s = std::get_if<std::string>(&value)) {
      line += "\"" + Escape(*s) + "\"";
    } else {
      line += std::to_string(std::get<int64_t>(value));
    }
  }
  line += "}\n";
  std::lock_guard<std::mutex> lock(mu_);
  // O_APPEND makes each line one atomic append for lines under PIPE_BUF and in practice
  // for any single write() to a regular file.
  if (write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    return Status::IOError(std::string("cannot append to audit log: ") + std::strerror(errno));
  }
  if (durable && fdatasync(fd_) != 0) {
    return Status::IOError(std::string("cannot sync audit log: ") + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace sealcache::storage
