#include "text_format.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace sealcache::dump {

std::string FormatTime(int64_t ms) {
  if (ms == 0) return "-";
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[80];  // wide enough for any int fields, so nothing is truncated
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

std::string FormatDuration(int64_t ms) {
  constexpr int64_t kSecond = 1000, kMinute = 60 * kSecond, kHour = 60 * kMinute, kDay = 24 * kHour;
  const std::string sign = ms < 0 ? "-" : "";
  ms = ms < 0 ? -ms : ms;
  auto two = [&](int64_t big, const char* bn, int64_t small, const char* sn) {
    return sign + std::to_string(ms / big) + bn + " " + std::to_string(ms % big / small) + sn;
  };
  if (ms >= kDay) return two(kDay, "d", kHour, "h");
  if (ms >= kHour) return two(kHour, "h", kMinute, "m");
  if (ms >= kMinute) return two(kMinute, "m", kSecond, "s");
  if (ms >= kSecond) return sign + std::to_string(ms / kSecond) + "s";
  return sign + std::to_string(ms) + "ms";
}

std::string Hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

std::string TextTable::Render() const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(widths[c] - row[c].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace sealcache::dump
