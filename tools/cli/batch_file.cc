#include "batch_file.h"

#include <set>

#include "input.h"
#include "json.h"
#include "sealcache/crypto/master_key.h"

namespace sealcache::cli {
namespace {

Status CheckFieldNames(const Json& obj) {
  static const std::set<std::string, std::less<>> kKnown = {
      "digest", "digest_of", "vector", "payload_text", "payload_hex", "ttl", "ttl_ms", "namespace"};
  for (const auto& [k, v] : obj.object()) {
    if (!kKnown.contains(k)) return Status::InvalidArgument("unknown field \"" + k + "\"");
  }
  return Status::Ok();
}

Result<client::Digest> DigestField(const Json& obj) {
  const Json& hex = obj["digest"];
  const Json& text = obj["digest_of"];
  if (hex.is_string() == text.is_string()) {
    return Status::InvalidArgument("needs exactly one of \"digest\" and \"digest_of\" (strings)");
  }
  if (text.is_string()) return DigestOf(text.string());
  return ParseDigestHex(hex.string());
}

Result<std::vector<float>> VectorField(const Json& obj) {
  const Json& v = obj["vector"];
  if (v.is_string()) return ParseVector(v.string());
  if (!v.is_array() || v.array().empty()) {
    return Status::InvalidArgument("\"vector\" must be a non-empty array of numbers");
  }
  std::vector<float> out;
  for (const Json& x : v.array()) {
    if (!x.is_number()) return Status::InvalidArgument("\"vector\" holds a non-number");
    out.push_back(static_cast<float>(x.number()));
  }
  return out;
}

Result<std::string> PayloadField(const Json& obj) {
  const Json& text = obj["payload_text"];
  const Json& hex = obj["payload_hex"];
  if (text.is_string() == hex.is_string()) {
    return Status::InvalidArgument(
        "needs exactly one of \"payload_text\" and \"payload_hex\" (strings)");
  }
  if (text.is_string()) return text.string();
  auto bytes = crypto::ParseHex(hex.string());
  if (!bytes.ok()) return Status::InvalidArgument("\"payload_hex\" is not hex");
  return std::string(bytes->begin(), bytes->end());
}

Result<int64_t> TtlField(const Json& obj) {
  const Json& ttl = obj["ttl"].is_null() ? obj["ttl_ms"] : obj["ttl"];
  if (!obj["ttl"].is_null() && !obj["ttl_ms"].is_null()) {
    return Status::InvalidArgument("give \"ttl\" or \"ttl_ms\", not both");
  }
  if (ttl.is_string()) return ParseDuration(ttl.string());
  if (ttl.is_number() && ttl.number() >= 1 && ttl.number() < 9.2e18) {
    return static_cast<int64_t>(ttl.number());
  }
  return Status::InvalidArgument("needs \"ttl\" (\"2h\" or ms) or \"ttl_ms\" (ms > 0)");
}

Result<BatchItem> ParseLine(std::string_view line) {
  SC_ASSIGN_OR_RETURN(Json obj, Json::Parse(line));
  if (!obj.is_object()) return Status::InvalidArgument("a line must be a JSON object");
  SC_RETURN_IF_ERROR(CheckFieldNames(obj));
  BatchItem item;
  SC_ASSIGN_OR_RETURN(item.digest, DigestField(obj));
  SC_ASSIGN_OR_RETURN(item.vector, VectorField(obj));
  SC_ASSIGN_OR_RETURN(item.payload, PayloadField(obj));
  SC_ASSIGN_OR_RETURN(item.ttl_ms, TtlField(obj));
  const Json& ns = obj["namespace"];
  if (!ns.is_null() && !ns.is_string()) {
    return Status::InvalidArgument("\"namespace\" must be a string");
  }
  if (ns.is_string()) item.name_space = ns.string();
  return item;
}

bool IsSkipped(std::string_view line) {
  const size_t first = line.find_first_not_of(" \t\r");
  return first == std::string_view::npos || line[first] == '#';
}

}  // namespace

Result<std::vector<BatchItem>> ParseBatchFile(std::string_view text) {
  std::vector<BatchItem> items;
  size_t number = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++number;
    if (IsSkipped(line)) continue;
    auto item = ParseLine(line);
    if (!item.ok()) {
      return Status::InvalidArgument("line " + std::to_string(number) + ": " +
                                     item.status().message());
    }
    item->line = number;
    items.push_back(std::move(item).value());
  }
  if (items.empty()) return Status::InvalidArgument("the batch file holds no entries");
  return items;
}

}  // namespace sealcache::cli
