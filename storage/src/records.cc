#include "records.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "records_generated.h"
#include "sealcache/encoding.h"
#include "sealcache/half.h"

namespace sealcache::storage::internal {
namespace {

void AppendFixed64(std::string& s, uint64_t v) {
  char buf[8];
  EncodeFixed64(reinterpret_cast<uint8_t*>(buf), v);
  s.append(buf, 8);
}

void AppendBigEndian64(std::string& s, uint64_t v) {
  for (int i = 7; i >= 0; --i) s.push_back(static_cast<char>(v >> (8 * i)));
}

std::string WithExpiry(int64_t expires_ms, size_t reserve) {
  std::string s;
  s.reserve(kExpirySize + reserve);
  AppendFixed64(s, static_cast<uint64_t>(expires_ms));
  return s;
}

// A flatbuffer record as flatbuffers must read it: its scalars and offsets are loaded as
// aligned words, but a RocksDB value may start at any address (a slice inside a block, or
// after the 8-byte expiry prefix), so an unaligned record is read from an aligned copy.
class AlignedRecord {
 public:
  AlignedRecord(const char* data, size_t size)
      : data_(reinterpret_cast<const uint8_t*>(data)), size_(size) {
    if (reinterpret_cast<uintptr_t>(data_) % alignof(uint64_t) == 0) return;
    copy_.resize((size + sizeof(uint64_t) - 1) / sizeof(uint64_t));
    if (size > 0) std::memcpy(copy_.data(), data, size);
    data_ = reinterpret_cast<const uint8_t*>(copy_.data());
  }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  std::vector<uint64_t> copy_;
  const uint8_t* data_;
  size_t size_;
};

}  // namespace

std::string EntryKeyPrefix(std::string_view org) {
  std::string k(1, kEntryPrefix);
  k.append(org);
  k.push_back('\0');
  return k;
}

std::string EntryKey(std::string_view org, const Digest& digest) {
  std::string k = EntryKeyPrefix(org);
  k.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  return k;
}

std::string OrgInfoKey(std::string_view org) {
  return std::string(1, kOrgInfoPrefix) + std::string(org);
}
std::string SlotKey(std::string_view org) { return std::string(1, kSlotPrefix) + std::string(org); }

std::string PayloadKey(const Digest& digest) {
  std::string k(1, kPayloadPrefix);
  k.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  return k;
}

std::string VectorKey(uint64_t slot) {
  std::string k(1, kVectorPrefix);
  AppendBigEndian64(k, slot);
  return k;
}

Result<uint64_t> DecodeVectorKey(std::string_view key) {
  if (key.size() != 9 || key[0] != kVectorPrefix) return Status::Corruption("bad vector key");
  uint64_t slot = 0;
  for (size_t i = 1; i < 9; ++i) slot = (slot << 8) | static_cast<uint8_t>(key[i]);
  return slot;
}

bool HasExpiryPrefix(std::string_view key) {
  return !key.empty() &&
         (key[0] == kEntryPrefix || key[0] == kPayloadPrefix || key[0] == kVectorPrefix);
}

std::optional<int64_t> ValueExpiry(std::string_view value) {
  if (value.size() < kExpirySize) return std::nullopt;
  return static_cast<int64_t>(DecodeFixed64(reinterpret_cast<const uint8_t*>(value.data())));
}

void ReplaceValueExpiry(std::string* value, int64_t expires_ms) {
  EncodeFixed64(reinterpret_cast<uint8_t*>(value->data()), static_cast<uint64_t>(expires_ms));
}

std::string EncodeEntryMeta(const EntryMeta& m) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto ns = fbb.CreateString(m.name_space);
  fb::EntryMetaRecordBuilder b(fbb);
  b.add_format_version(1);
  b.add_created_ms(m.created_ms);
  b.add_expires_ms(m.expires_ms);
  b.add_ttl_ms(m.ttl_ms);
  b.add_name_space(ns);
  b.add_payload_size(m.payload_size);
  b.add_vector_slot(m.vector_slot);
  // Written even while 0: a record's first hit counts then leave its size unchanged, so the
  // table of hot values rewrites its cached copy in place (ValueCache::RefreshMeta).
  fbb.ForceDefaults(true);
  b.add_hits(m.hits);
  b.add_last_hit_ms(m.last_hit_ms);
  fbb.ForceDefaults(false);
  fbb.Finish(b.Finish());
  std::string s = WithExpiry(m.expires_ms, fbb.GetSize());
  s.append(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
  return s;
}

Result<EntryMeta> DecodeEntryMeta(std::string_view value, const Digest& digest) {
  if (value.size() < kExpirySize) return Status::Corruption("entry meta record is truncated");
  const AlignedRecord record(value.data() + kExpirySize, value.size() - kExpirySize);
  flatbuffers::Verifier verifier(record.data(), record.size());
  if (!verifier.VerifyBuffer<fb::EntryMetaRecord>(nullptr)) {
    return Status::Corruption("entry meta record fails verification");
  }
  auto* r = flatbuffers::GetRoot<fb::EntryMetaRecord>(record.data());
  if (r->format_version() != 1) {
    return Status::Corruption("entry meta record has unknown version " +
                              std::to_string(r->format_version()));
  }
  EntryMeta m;
  m.digest = digest;
  m.created_ms = r->created_ms();
  m.expires_ms = r->expires_ms();
  m.ttl_ms = r->ttl_ms();
  if (r->name_space() != nullptr) m.name_space = r->name_space()->str();
  m.payload_size = r->payload_size();
  m.vector_slot = r->vector_slot();
  m.hits = r->hits();
  m.last_hit_ms = r->last_hit_ms();
  return m;
}

std::string EncodeOrgInfo(const OrgConfig& c) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto metric = fbb.CreateString(c.metric);
  auto kind = fbb.CreateString(c.index_kind);
  auto policy = fbb.CreateString(c.limits.eviction_policy);
  fb::OrgInfoRecordBuilder b(fbb);
  b.add_format_version(1);
  b.add_dimension(c.dimension);
  b.add_metric(metric);
  b.add_index_kind(kind);
  b.add_created_ms(c.created_ms);
  b.add_hnsw_m(c.hnsw_m);
  b.add_ef_construction(c.ef_construction);
  b.add_ef_search(c.ef_search);
  b.add_seal_threshold(c.seal_threshold);
  b.add_max_bytes(c.limits.max_bytes);
  b.add_max_entries(c.limits.max_entries);
  b.add_eviction_policy(policy);
  fbb.Finish(b.Finish());
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

Result<OrgConfig> DecodeOrgInfo(std::string_view value) {
  const AlignedRecord record(value.data(), value.size());
  flatbuffers::Verifier verifier(record.data(), record.size());
  if (!verifier.VerifyBuffer<fb::OrgInfoRecord>(nullptr)) {
    return Status::Corruption("org info record fails verification");
  }
  auto* r = flatbuffers::GetRoot<fb::OrgInfoRecord>(record.data());
  if (r->format_version() != 1) return Status::Corruption("org info record has unknown version");
  OrgConfig c;
  c.dimension = r->dimension();
  if (r->metric() != nullptr) c.metric = r->metric()->str();
  if (r->index_kind() != nullptr) c.index_kind = r->index_kind()->str();
  c.created_ms = r->created_ms();
  c.hnsw_m = r->hnsw_m();
  c.ef_construction = r->ef_construction();
  c.ef_search = r->ef_search();
  c.seal_threshold = r->seal_threshold();
  c.limits.max_bytes = r->max_bytes();
  c.limits.max_entries = r->max_entries();
  if (r->eviction_policy() != nullptr) c.limits.eviction_policy = r->eviction_policy()->str();
  if (!c.limits.eviction_policy.empty() && !ParseEvictionPolicy(c.limits.eviction_policy).ok()) {
    return Status::Corruption("org info record has an unknown eviction policy");
  }
  if (c.dimension == 0 || c.dimension > kMaxDimension) {
    return Status::Corruption("org info record has an invalid dimension");
  }
  return c;
}

std::string EncodePayloadValue(int64_t expires_ms, std::span<const uint8_t> payload) {
  std::string s = WithExpiry(expires_ms, payload.size());
  s.append(reinterpret_cast<const char*>(payload.data()), payload.size());
  return s;
}

std::string EncodeVectorValue(int64_t expires_ms, const Digest& digest,
                              std::span<const float> vector) {
  const size_t bytes = vector.size() * sizeof(uint16_t);
  std::string s = WithExpiry(expires_ms, kDigestSize + bytes);
  s.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  const size_t start = s.size();
  s.resize(start + bytes);
  std::vector<uint16_t> halves(vector.size());
  EncodeHalf(vector.data(), vector.size(), halves.data());
  std::memcpy(s.data() + start, halves.data(), bytes);  // little-endian binary16
  return s;
}

Result<VectorValue> DecodeVectorValue(std::string_view value, uint32_t dimension,
                                      std::vector<float>* buffer) {
  const size_t head = kExpirySize + kDigestSize;
  const size_t halves = head + size_t{dimension} * sizeof(uint16_t);
  const size_t floats = head + size_t{dimension} * sizeof(float);  // records before halves
  if (value.size() != halves && value.size() != floats) {
    return Status::Corruption("vector record has " + std::to_string(value.size()) +
                              " bytes, expected " + std::to_string(halves) + " (or " +
                              std::to_string(floats) + " in float32)");
  }
  VectorValue v;
  v.expires_ms = *ValueExpiry(value);
  std::memcpy(v.digest.data(), value.data() + kExpirySize, kDigestSize);
  buffer->resize(dimension);
  if (value.size() == floats) {
    std::memcpy(buffer->data(), value.data() + head, size_t{dimension} * sizeof(float));
  } else {
    std::vector<uint16_t> raw(dimension);
    std::memcpy(raw.data(), value.data() + head, size_t{dimension} * sizeof(uint16_t));
    DecodeHalf(raw.data(), dimension, buffer->data());
  }
  v.vector = *buffer;
  return v;
}

std::string TokenKey(std::span<const uint8_t> token_hash) {
  std::string k(1, kTokenPrefix);
  k.append(reinterpret_cast<const char*>(token_hash.data()), token_hash.size());
  return k;
}

std::string EncodeToken(const TokenRecord& t) {
  flatbuffers::FlatBufferBuilder fbb(96);
  auto org = fbb.CreateString(t.org);
  auto id = fbb.CreateString(t.token_id);
  fb::TokenRecordBuilder b(fbb);
  b.add_format_version(1);
  b.add_org(org);
  b.add_token_id(id);
  b.add_created_ms(t.created_ms);
  fbb.Finish(b.Finish());
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

Result<TokenRecord> DecodeToken(std::string_view value) {
  const AlignedRecord record(value.data(), value.size());
  flatbuffers::Verifier verifier(record.data(), record.size());
  if (!verifier.VerifyBuffer<fb::TokenRecord>(nullptr)) {
    return Status::Corruption("token record fails verification");
  }
  auto* r = flatbuffers::GetRoot<fb::TokenRecord>(record.data());
  if (r->format_version() != 1) return Status::Corruption("token record has unknown version");
  TokenRecord t;
  if (r->org() != nullptr) t.org = r->org()->str();
  if (r->token_id() != nullptr) t.token_id = r->token_id()->str();
  t.created_ms = r->created_ms();
  return t;
}

std::string EncodeSlot(uint64_t next_slot) {
  std::string s;
  AppendFixed64(s, next_slot);
  return s;
}

std::optional<uint64_t> DecodeSlot(std::string_view value) {
  if (value.size() != 8) return std::nullopt;
  return DecodeFixed64(reinterpret_cast<const uint8_t*>(value.data()));
}

}  // namespace sealcache::storage::internal

namespace sealcache::storage {

std::string_view EvictionPolicyName(EvictionPolicy policy) {
  switch (policy) {
    case EvictionPolicy::kLru:
      return "lru";
    case EvictionPolicy::kLfu:
      return "lfu";
    case EvictionPolicy::kTtl:
      return "ttl";
    case EvictionPolicy::kNoEviction:
      return "noeviction";
  }
  return "lru";
}

Result<EvictionPolicy> ParseEvictionPolicy(std::string_view name) {
  for (EvictionPolicy p : {EvictionPolicy::kLru, EvictionPolicy::kLfu, EvictionPolicy::kTtl,
                           EvictionPolicy::kNoEviction}) {
    if (name == EvictionPolicyName(p)) return p;
  }
  return Status::InvalidArgument("unknown eviction policy '" + std::string(name) +
                                 "' (use lru, lfu, ttl or noeviction)");
}

uint64_t EntryLogicalBytes(const EntryMeta& meta, uint32_t dimension) {
  const uint64_t vector =
      meta.vector_slot == kNoVectorSlot ? 0 : uint64_t{dimension} * sizeof(float);
  return kEntryOverheadBytes + meta.name_space.size() + meta.payload_size + vector;
}

}  // namespace sealcache::storage
