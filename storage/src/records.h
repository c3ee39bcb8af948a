// Keys and values of an org instance's column families (storage/FORMAT.md), and the records
// of the catalog. Private to storage/.
//
// meta:       'e' org 0x00 digest(32)  -> expiry(8) | EntryMetaRecord (flatbuffers)
//             'o' org                  -> OrgInfoRecord (flatbuffers)
//             's' org                  -> next free vector slot (u64, merged with max)
// data:       'P' digest(32)           -> expiry(8) | payload
//             'V' slot(8, big-endian)  -> expiry(8) | digest(32) | float32 x dimension
// (The shared-instance layout also kept 't' sha256(token) -> TokenRecord in meta; tokens
// are in the catalog now.)
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "sealcache/storage/store.h"

namespace sealcache::storage::internal {

inline constexpr char kEntryPrefix = 'e';
inline constexpr char kOrgInfoPrefix = 'o';
inline constexpr char kSlotPrefix = 's';
inline constexpr char kPayloadPrefix = 'P';
inline constexpr char kVectorPrefix = 'V';
inline constexpr char kTokenPrefix = 't';
inline constexpr size_t kExpirySize = 8;

std::string EntryKey(std::string_view org, const Digest& digest);
std::string EntryKeyPrefix(std::string_view org);  // every entry key of the org
std::string OrgInfoKey(std::string_view org);
std::string SlotKey(std::string_view org);
std::string PayloadKey(const Digest& digest);
std::string VectorKey(uint64_t slot);

// True for keys whose value starts with an 8-byte expiry (the TTL filter's domain).
bool HasExpiryPrefix(std::string_view key);
// The expiry of a value of such a key; nullopt if the value is too short.
std::optional<int64_t> ValueExpiry(std::string_view value);
// Replaces the expiry prefix of such a value. REQUIRES: value->size() >= kExpirySize.
void ReplaceValueExpiry(std::string* value, int64_t expires_ms);

std::string EncodeEntryMeta(const EntryMeta& meta);
// `digest` is taken from the key. Corruption on a malformed value.
Result<EntryMeta> DecodeEntryMeta(std::string_view value, const Digest& digest);

std::string EncodeOrgInfo(const OrgConfig& config);
Result<OrgConfig> DecodeOrgInfo(std::string_view value);

std::string EncodePayloadValue(int64_t expires_ms, std::span<const uint8_t> payload);
// The vector is kept in half precision (sealcache/half.h), as the index scores it.
std::string EncodeVectorValue(int64_t expires_ms, const Digest& digest,
                              std::span<const float> vector);
struct VectorValue {
  int64_t expires_ms = 0;
  Digest digest{};
  std::span<const float> vector;  // points into a copy held by the caller's buffer
};
// `buffer` receives the vector as floats: widened from halves, or copied from a record
// written before vectors were kept in half precision (float32).
Result<VectorValue> DecodeVectorValue(std::string_view value, uint32_t dimension,
                                      std::vector<float>* buffer);
Result<uint64_t> DecodeVectorKey(std::string_view key);

std::string TokenKey(std::span<const uint8_t> token_hash);
std::string EncodeToken(const TokenRecord& record);
Result<TokenRecord> DecodeToken(std::string_view value);

std::string EncodeSlot(uint64_t next_slot);
std::optional<uint64_t> DecodeSlot(std::string_view value);

}  // namespace sealcache::storage::internal
