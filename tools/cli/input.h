// Parsing of what the user hands sealcache-cli: vectors, durations, digests, files and stdin.
// Every failure is InvalidArgument with a message naming the bad input (exit code 2).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sealcache/client/client.h"
#include "sealcache/status.h"

namespace sealcache::cli {

// The bytes of `path`, or of stdin when `path` is "-".
Result<std::string> ReadSource(const std::string& path);

// Floats separated by whitespace and/or commas ("0.1 0.2", "0.1,0.2"), or a JSON array
// ("[0.1, 0.2]"). Rejects an empty vector and non-finite values.
Result<std::vector<float>> ParseVector(std::string_view text);

// A duration in ms: plain digits are ms; otherwise a number with a unit ms, s, m, h or d
// ("90s", "15m", "2h", "7d", "1.5h"). Must be > 0.
Result<int64_t> ParseDuration(std::string_view text);

// A digest given as 64 hex characters.
Result<client::Digest> ParseDigestHex(std::string_view hex);
// The SHA-256 of `text`: the digest a shell user gets from a prompt without hashing it.
client::Digest DigestOf(std::string_view text);

// True when `bytes` are valid UTF-8 with no control characters other than tab, CR and LF:
// such payloads print as text, others as hex.
bool IsPrintableText(std::string_view bytes);

}  // namespace sealcache::cli
