// Text helpers shared by the master key specs (hex keys, RFC 7512 pkcs11: and kmip:// URIs).
// Private to crypto/.
#pragma once

#include <string>
#include <string_view>

#include "sealcache/status.h"

namespace sealcache::crypto::internal {

// The value of one hex digit, or -1.
inline int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 percent-decoding; `scheme` names the URI kind in the error ("pkcs11 URI").
inline Result<std::string> PercentDecode(std::string_view in, std::string_view scheme) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size() || HexDigitValue(in[i + 1]) < 0 || HexDigitValue(in[i + 2]) < 0) {
      return Status::InvalidArgument(std::string(scheme) + ": bad percent-encoding");
    }
    out.push_back(static_cast<char>(HexDigitValue(in[i + 1]) * 16 + HexDigitValue(in[i + 2])));
    i += 2;
  }
  return out;
}

}  // namespace sealcache::crypto::internal
