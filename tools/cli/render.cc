#include "render.h"

#include <ctime>

#include "input.h"
#include "sealcache/crypto/master_key.h"

namespace sealcache::cli {
namespace {

std::string_view AsText(const std::vector<uint8_t>& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

void AddPayload(const std::vector<uint8_t>& payload, Json* obj) {
  if (IsPrintableText(AsText(payload))) {
    obj->Set("payload_text", std::string(AsText(payload)));
  } else {
    obj->Set("payload_hex", crypto::ToHex(payload));
  }
}

// The payload as one "payload:" row (text) or "payload_hex:" row.
std::pair<std::string, std::string> PayloadRow(const std::vector<uint8_t>& payload) {
  if (IsPrintableText(AsText(payload))) return {"payload", std::string(AsText(payload))};
  return {"payload_hex", crypto::ToHex(payload)};
}

std::vector<std::pair<std::string, std::string>> EntryRows(const client::EntryInfo& e,
                                                           bool with_payload) {
  std::vector<std::pair<std::string, std::string>> rows = {
      {"digest", DigestHex(e.digest)},
      {"namespace", e.name_space.empty() ? "(none)" : e.name_space},
      {"created", FormatTime(e.created_ms)},
      {"expires", FormatTime(e.expires_ms)},
      {"ttl", FormatDuration(e.ttl_ms)},
      {"hits", std::to_string(e.hits)},
      {"last_hit", FormatTime(e.last_hit_ms)},
      {"payload_size", std::to_string(e.payload_size)},
  };
  if (with_payload) rows.push_back(PayloadRow(e.payload));
  return rows;
}

}  // namespace

std::string FormatTime(int64_t ms) {
  if (ms == 0) return "never";
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[48];
  const size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

std::string FormatDuration(int64_t ms) {
  static constexpr std::pair<int64_t, const char*> kUnits[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}};
  for (const auto& [unit, name] : kUnits) {
    if (ms > 0 && ms % unit == 0) return std::to_string(ms / unit) + name;
  }
  return std::to_string(ms) + "ms";
}

std::string FormatAge(int64_t ms) {
  static constexpr std::pair<int64_t, const char*> kUnits[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}};
  for (const auto& [unit, name] : kUnits) {
    if (ms >= unit) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.1f%s", static_cast<double>(ms) / unit, name);
      return buf;
    }
  }
  return std::to_string(ms) + "ms";
}

std::string DigestHex(const client::Digest& digest) { return crypto::ToHex(digest); }

Json EntryJson(const client::EntryInfo& e, bool with_payload) {
  Json obj = Json::MakeObject();
  obj.Set("digest", DigestHex(e.digest));
  obj.Set("namespace", e.name_space);
  obj.Set("created_ms", e.created_ms);
  obj.Set("expires_ms", e.expires_ms);
  obj.Set("ttl_ms", e.ttl_ms);
  obj.Set("hits", e.hits);
  obj.Set("last_hit_ms", e.last_hit_ms);
  obj.Set("payload_size", e.payload_size);
  if (with_payload) AddPayload(e.payload, &obj);
  return obj;
}

std::string EntryText(const client::EntryInfo& e, bool with_payload,
                      std::vector<std::pair<std::string, std::string>> extra) {
  auto rows = EntryRows(e, with_payload);
  rows.insert(rows.end(), extra.begin(), extra.end());
  return KeyValueText(rows);
}

Json HitsJson(const std::vector<client::LookupHit>& hits, bool with_payload) {
  Json list = Json::MakeArray();
  for (const auto& h : hits) {
    Json obj = Json::MakeObject();
    obj.Set("score", Json::FromFloat(h.score));
    const Json entry = EntryJson(h.entry, with_payload);
    for (const auto& [k, v] : entry.object()) obj.Set(k, v);
    list.Push(std::move(obj));
  }
  Json doc = Json::MakeObject();
  doc.Set("count", hits.size());
  doc.Set("hits", std::move(list));
  return doc;
}

std::string HitsText(const std::vector<client::LookupHit>& hits, bool with_payload) {
  std::string out = std::to_string(hits.size()) + (hits.size() == 1 ? " hit\n" : " hits\n");
  for (size_t i = 0; i < hits.size(); ++i) {
    char score[32];
    std::snprintf(score, sizeof(score), "%.6f", hits[i].score);
    out += "\n#" + std::to_string(i + 1) + " score " + score + "\n";
    out += EntryText(hits[i].entry, with_payload);
  }
  return out;
}

std::string KeyValueText(const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t width = 0;
  for (const auto& [k, v] : rows) width = std::max(width, k.size());
  std::string out;
  for (const auto& [k, v] : rows) {
    out += k + ":" + std::string(width - k.size() + 1, ' ') + v + "\n";
  }
  return out;
}

}  // namespace sealcache::cli
