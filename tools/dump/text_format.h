// Text rendering helpers of sealcache-dump: times, durations and aligned tables.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace sealcache::dump {

// "2023-11-14T22:13:20.000Z"; "-" for 0 (unset).
std::string FormatTime(int64_t ms);
// "3d 4h", "5m 2s", "120ms".
std::string FormatDuration(int64_t ms);
std::string Hex(std::span<const uint8_t> bytes);

// Columns padded to their widest cell, two spaces apart.
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace sealcache::dump
