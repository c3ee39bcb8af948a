// The put-batch input format: JSON lines, one entry per line. Blank lines and lines whose
// first non-space character is '#' are skipped. Each line is an object with:
//   "digest": 64 hex chars        | "digest_of": text (its SHA-256 is the digest)
//   "vector": [numbers]           (or a string in the --vector file syntax)
//   "payload_text": UTF-8 text    | "payload_hex": hex bytes
//   "ttl": "90s"|"15m"|"2h"|"7d"  | "ttl": ms as a number | "ttl_ms": ms
//   "namespace": text             (optional)
// e.g. {"digest_of":"what is a cache?","vector":[0.1,0.2],"payload_text":"...","ttl":"1h"}
// Unknown fields are an error, so a typo does not silently drop a field.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sealcache/client/client.h"
#include "sealcache/status.h"

namespace sealcache::cli {

struct BatchItem {
  size_t line = 0;  // 1-based line number in the file, for error messages
  client::Digest digest{};
  std::vector<float> vector;
  std::string payload;
  int64_t ttl_ms = 0;
  std::string name_space;
};

// Every item of the file, or the first bad line's error ("line 3: ...").
Result<std::vector<BatchItem>> ParseBatchFile(std::string_view text);

}  // namespace sealcache::cli
