#include "sealcache/status.h"

namespace sealcache {

std::string_view Status::CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kInvalidArgument:
      return "Invalid argument";
    case Code::kNotFound:
      return "Not found";
    case Code::kAlreadyExists:
      return "Already exists";
    case Code::kCorruption:
      return "Corruption";
    case Code::kPermissionDenied:
      return "Permission denied";
    case Code::kFailedPrecondition:
      return "Failed precondition";
    case Code::kIOError:
      return "IO error";
    case Code::kNotSupported:
      return "Not supported";
    case Code::kResourceExhausted:
      return "Resource exhausted";
    case Code::kUnauthenticated:
      return "Unauthenticated";
    case Code::kInternal:
      return "Internal";
    case Code::kUnavailable:
      return "Unavailable";
    case Code::kMoved:
      return "Moved";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s(CodeName(code_));
  s += ": ";
  s += message_;
  return s;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string m(context);
  m += ": ";
  m += message_;
  return Status(code_, m);
}

}  // namespace sealcache
