// AuditLog: key lifecycle and admin events as JSON lines in <data>/audit.log.
//
//   {"ts_ms":1700000000000,"event":"key_rotated","org":"acme","key_version":2}
//
// Never key material, payloads or tokens: callers pass only identifiers, versions, counts
// and error messages (which never contain secrets by the project's rules). Key events are
// fsynced before Record returns; high-rate events (decrypt failures) are not.
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "sealcache/clock.h"
#include "sealcache/status.h"

namespace sealcache::storage {

class AuditLog {
 public:
  using Value = std::variant<std::string, int64_t>;
  using Fields = std::vector<std::pair<std::string, Value>>;

  static Result<std::unique_ptr<AuditLog>> Open(const std::string& path, const Clock* clock);
  ~AuditLog();

  Status Record(std::string_view event, const Fields& fields, bool durable = true);

  // JSON string escaping (exposed for tests and tools).
  static std::string Escape(std::string_view s);

 private:
  AuditLog(int fd, const Clock* clock) : fd_(fd), clock_(clock) {}
  int fd_;
  const Clock* clock_;
  std::mutex mu_;
};

}  // namespace sealcache::storage
