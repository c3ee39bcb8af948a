// How sealcache-cli shows server answers: human text lines and --json objects.
// Times are ms since the Unix epoch in JSON, ISO-8601 UTC in text. Payloads are shown as
// text when they are printable UTF-8 (`payload_text`), else as hex (`payload_hex`).
#pragma once

#include <cstdint>
#include <string>

#include "json.h"
#include "sealcache/client/client.h"

namespace sealcache::cli {

// "2024-05-01T10:00:00.123Z"; "never" for 0.
std::string FormatTime(int64_t ms_since_epoch);
// "1h", "90s", "1500ms": the largest unit that divides the duration exactly.
std::string FormatDuration(int64_t ms);
// "4.8s", "12.0m", "3.5d": an age rounded to one decimal of its largest unit.
std::string FormatAge(int64_t ms);
std::string DigestHex(const client::Digest& digest);

// Entry metadata, plus the payload when `with_payload`.
Json EntryJson(const client::EntryInfo& entry, bool with_payload);
// "name: value" lines, one per field (then `extra` rows), each ending in a newline.
std::string EntryText(const client::EntryInfo& entry, bool with_payload,
                      std::vector<std::pair<std::string, std::string>> extra = {});

// `{"count": n, "hits": [{"score": ..., <entry fields>}, ...]}` and its text form.
Json HitsJson(const std::vector<client::LookupHit>& hits, bool with_payload);
std::string HitsText(const std::vector<client::LookupHit>& hits, bool with_payload);

// Aligned "name  value" lines.
std::string KeyValueText(const std::vector<std::pair<std::string, std::string>>& rows);

}  // namespace sealcache::cli
