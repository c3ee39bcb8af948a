#include "input.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "sealcache/crypto/hash.h"
#include "sealcache/crypto/master_key.h"

namespace sealcache::cli {
namespace {

bool IsSeparator(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ','; }

// Strips one pair of enclosing brackets if the text is a JSON array.
Result<std::string_view> StripBrackets(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || text[first] != '[') return text;
  const size_t last = text.find_last_not_of(" \t\r\n");
  if (text[last] != ']') return Status::InvalidArgument("vector: '[' without a closing ']'");
  return text.substr(first + 1, last - first - 1);
}

Result<float> ParseFloat(std::string_view token, size_t index) {
  float v = 0;
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
  if (ec != std::errc() || end != token.data() + token.size()) {
    return Status::InvalidArgument("vector: element " + std::to_string(index) + " '" +
                                   std::string(token) + "' is not a number");
  }
  if (!std::isfinite(v)) {
    return Status::InvalidArgument("vector: element " + std::to_string(index) + " is not finite");
  }
  return v;
}

// Unit multiplier in ms, or 0 when the unit is unknown.
int64_t UnitMs(std::string_view unit) {
  if (unit == "ms" || unit.empty()) return 1;
  if (unit == "s") return 1000;
  if (unit == "m") return 60'000;
  if (unit == "h") return 3'600'000;
  if (unit == "d") return 86'400'000;
  return 0;
}

// Length of the UTF-8 sequence led by `lead`, 0 when `lead` cannot start one.
int SequenceLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// Decodes the sequence at s[i..i+len) and checks it is the shortest form of a scalar value.
bool ValidSequence(std::string_view s, size_t i, int len) {
  if (i + len > s.size()) return false;
  uint32_t cp = static_cast<unsigned char>(s[i]) & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) return false;
    cp = (cp << 6) | (c & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  return cp >= kMin[len] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
}

}  // namespace

Result<std::string> ReadSource(const std::string& path) {
  if (path == "-") {
    std::ostringstream all;
    all << std::cin.rdbuf();
    return all.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("cannot read " + path);
  std::ostringstream all;
  all << in.rdbuf();
  if (in.bad()) return Status::InvalidArgument("error reading " + path);
  return all.str();
}

Result<std::vector<float>> ParseVector(std::string_view text) {
  SC_ASSIGN_OR_RETURN(std::string_view body, StripBrackets(text));
  std::vector<float> v;
  size_t i = 0;
  while (i < body.size()) {
    if (IsSeparator(body[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < body.size() && !IsSeparator(body[j])) ++j;
    SC_ASSIGN_OR_RETURN(float x, ParseFloat(body.substr(i, j - i), v.size()));
    v.push_back(x);
    i = j;
  }
  if (v.empty()) return Status::InvalidArgument("vector: no numbers found");
  return v;
}

Result<int64_t> ParseDuration(std::string_view text) {
  double amount = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), amount);
  const int64_t unit = ec == std::errc() ? UnitMs(std::string_view(end, text.end())) : 0;
  if (unit == 0 || !(amount > 0) || amount * unit > 9.2e18) {
    return Status::InvalidArgument("bad duration '" + std::string(text) +
                                   "': use a positive number of ms or a number with unit "
                                   "ms, s, m, h or d (90s, 15m, 2h, 7d)");
  }
  const auto ms = static_cast<int64_t>(std::llround(amount * unit));
  if (ms <= 0) return Status::InvalidArgument("duration '" + std::string(text) + "' is under 1 ms");
  return ms;
}

Result<client::Digest> ParseDigestHex(std::string_view hex) {
  client::Digest d{};
  auto bytes = crypto::ParseHex(hex);
  if (!bytes.ok() || bytes->size() != d.size()) {
    return Status::InvalidArgument("--digest needs 64 hex characters (32 bytes), got '" +
                                   std::string(hex) + "'");
  }
  std::copy(bytes->begin(), bytes->end(), d.begin());
  return d;
}

client::Digest DigestOf(std::string_view text) {
  return crypto::Sha256({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

bool IsPrintableText(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
    if (c == 0x7F) return false;
    const int len = SequenceLength(c);
    if (len == 0 || (len > 1 && !ValidSequence(s, i, len))) return false;
    i += len;
  }
  return true;
}

}  // namespace sealcache::cli
