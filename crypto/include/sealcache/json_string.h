// JSON string escaping, shared by every component that writes JSON (the audit log, the
// tools' --json output): quotes, backslashes and control characters (and DEL) escaped,
// everything else passed through as UTF-8.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace sealcache {

inline void AppendJsonEscaped(std::string* out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned char>(c));
          *out += buf;
        } else {
          out->push_back(c);
        }
    }
  }
}

}  // namespace sealcache
