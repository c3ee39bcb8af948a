#include "value_cache.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace sealcache::storage::internal {
namespace {

constexpr uint64_t kMix = 0x94D049BB133111EBull;  // odd; a splitmix64 finaliser constant
// Misses remembered for admission, per shard: one per 1 KiB of the shard's capacity (about
// one per entry the shard holds at 1-2 KiB values), at least this many.
constexpr size_t kMinMissedTags = 1024;
constexpr size_t kMaxMissedTags = size_t{1} << 18;  // 1 MiB a shard, however large the table
constexpr size_t kBytesPerMissedTag = 1024;

}  // namespace

ValueCache::ValueCache(size_t capacity_bytes) : shard_capacity_(capacity_bytes / kShards) {
  if (shard_capacity_ == 0) return;
  const size_t tags = std::bit_ceil(
      std::clamp(shard_capacity_ / kBytesPerMissedTag, kMinMissedTags, kMaxMissedTags));
  for (Shard& shard : shards_) {
    shard.slots.resize(kFirstSlots);
    shard.missed.assign(tags, 0);
  }
}

ValueCache::~ValueCache() {
  for (Shard& shard : shards_) {
    for (Slot& slot : shard.slots) Release(slot);
  }
}

ValueCache::Hashed ValueCache::HashOf(uint64_t db, const Digest& digest) const {
  // The store's seeded hash of every byte (a tenant choosing digests cannot choose their
  // slots: digests of the native protocol are the client's), mixed with the database.
  uint64_t h = (uint64_t{digest_hash_(digest)} ^ db) * kMix;
  h ^= h >> 29;
  const auto low = static_cast<uint32_t>(h);
  return {.shard = low % kShards,
          .stripe = (low / kShards) % kStripesPerShard,
          .home = static_cast<uint32_t>(h >> 32),
          .tag = low & ~kCountMask};
}

size_t ValueCache::Find(const Shard& shard, uint64_t db, const Digest& digest, uint32_t home) {
  const size_t mask = shard.slots.size() - 1;
  for (size_t i = home & mask;; i = (i + 1) & mask) {
    const Slot& slot = shard.slots[i];
    if (slot.db == 0 || (slot.db == db && slot.digest == digest)) return i;
  }
}

size_t ValueCache::MetaSize(const Slot& slot) {
  return size_t{slot.data[0]} | size_t{slot.data[1]} << 8;
}

std::unique_ptr<uint8_t[]> ValueCache::Pack(std::string_view meta,
                                            std::span<const uint8_t> payload) {
  auto data =
      std::make_unique_for_overwrite<uint8_t[]>(kMetaLengthBytes + meta.size() + payload.size());
  data[0] = static_cast<uint8_t>(meta.size());
  data[1] = static_cast<uint8_t>(meta.size() >> 8);
  // (memcpy's pointers must not be null, even to copy nothing.)
  if (!meta.empty()) std::memcpy(data.get() + kMetaLengthBytes, meta.data(), meta.size());
  if (!payload.empty()) {
    std::memcpy(data.get() + kMetaLengthBytes + meta.size(), payload.data(), payload.size());
  }
  return data;
}

bool ValueCache::Lookup(uint64_t db, const Digest& digest, int64_t* expires_ms,
                        std::vector<uint8_t>* payload, Ticket* ticket, std::string* meta) {
  if (shard_capacity_ == 0) return false;
  const Hashed h = HashOf(db, digest);
  Shard& shard = shards_[h.shard];
  std::lock_guard<std::mutex> lock(shard.mu);
  Slot& slot = shard.slots[Find(shard, db, digest, h.home)];
  if (slot.db != 0 && (meta == nullptr || MetaSize(slot) > 0)) {
    slot.size |= kReferenced;
    *expires_ms = slot.expires_ms;
    const uint8_t* record = slot.data + kMetaLengthBytes;
    const size_t meta_size = MetaSize(slot);
    if (meta != nullptr) meta->assign(reinterpret_cast<const char*>(record), meta_size);
    payload->assign(record + meta_size, record + meta_size + PayloadSize(slot));
    return true;
  }
  if (slot.db != 0) {  // cached without its meta record: this read adds it
    ticket->admit = true;
    ticket->forgotten = shard.forgotten[h.stripe];
    return false;
  }
  Missed(shard, h, ticket);
  return false;
}

void ValueCache::Missed(Shard& shard, const Hashed& h, Ticket* ticket) {
  uint32_t& missed = shard.missed[(h.home >> 7) & (shard.missed.size() - 1)];
  const uint32_t misses = (missed & ~kCountMask) == h.tag ? missed & kCountMask : 0;
  ticket->admit = misses >= kMissesBeforeAdmission;
  missed = h.tag | std::min(misses + 1, kCountMask);
  ticket->forgotten = shard.forgotten[h.stripe];
}

void ValueCache::Prefetch(uint64_t db, std::span<const Digest> digests) const {
  if (shard_capacity_ == 0) return;
  std::array<Hashed, kPrefetchBatch> hashed;
  for (size_t first = 0; first < digests.size(); first += kPrefetchBatch) {
    const size_t n = std::min(kPrefetchBatch, digests.size() - first);
    // The probes' first slots (a slot may straddle two cache lines).
    for (size_t i = 0; i < n; ++i) {
      hashed[i] = HashOf(db, digests[first + i]);
      const Shard& shard = shards_[hashed[i].shard];
      std::lock_guard<std::mutex> lock(shard.mu);
      const Slot* slot = &shard.slots[hashed[i].home & (shard.slots.size() - 1)];
      __builtin_prefetch(slot);
      __builtin_prefetch(reinterpret_cast<const char*>(slot + 1) - 1);
    }
    // Then, with the slots arriving, the values the keys have.
    for (size_t i = 0; i < n; ++i) {
      const Shard& shard = shards_[hashed[i].shard];
      std::lock_guard<std::mutex> lock(shard.mu);
      const Slot& slot = shard.slots[Find(shard, db, digests[first + i], hashed[i].home)];
      if (slot.db == 0) continue;
      const size_t bytes = std::min(kPrefetchValueBytes, kMetaLengthBytes + PayloadSize(slot));
      for (size_t offset = 0; offset < bytes; offset += 64) {
        __builtin_prefetch(slot.data + offset);
      }
    }
  }
}

void ValueCache::Fill(uint64_t db, const Digest& digest, const Ticket& ticket, int64_t expires_ms,
                      std::span<const uint8_t> payload, std::string_view meta) {
  if (meta.size() > kMaxMetaBytes) meta = {};
  const size_t charge = Charge(payload.size(), meta.size());
  if (!ticket.admit || TooLarge(payload.size(), charge)) return;
  const Hashed h = HashOf(db, digest);
  Shard& shard = shards_[h.shard];
  // Copied before the lock: the shard's readers wait for as little as possible.
  std::unique_ptr<uint8_t[]> copy = Pack(meta, payload);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.forgotten[h.stripe] != ticket.forgotten) return;  // written since the read
  if (size_t i = Find(shard, db, digest, h.home); shard.slots[i].db != 0) EraseAt(shard, i);
  // CLOCK: the hand spares a value read since it last passed, once.
  const size_t mask = shard.slots.size() - 1;
  while (shard.used > 0 && shard.bytes + charge > shard_capacity_) {
    Slot& slot = shard.slots[shard.hand];
    if (slot.db != 0 && (slot.size & kReferenced) == 0) {
      EraseAt(shard, shard.hand);  // (the hand stays: a later slot may have moved here)
      continue;
    }
    slot.size &= ~kReferenced;
    shard.hand = (shard.hand + 1) & mask;
  }
  Insert(shard, db, digest, h.home, expires_ms, std::move(copy), payload.size(), charge);
}

bool ValueCache::TooLarge(size_t payload_bytes, size_t charge) const {
  return payload_bytes >= kMaxPayloadBytes || charge > shard_capacity_ / kMaxShareOfShard;
}

void ValueCache::Insert(Shard& shard, uint64_t db, const Digest& digest, uint32_t home,
                        int64_t expires_ms, std::unique_ptr<uint8_t[]> data, size_t payload_bytes,
                        size_t charge) {
  if ((shard.used + 1) * 2 > shard.slots.size()) Grow(shard);
  Slot& slot = shard.slots[Find(shard, db, digest, home)];
  slot = Slot{.db = db,
              .digest = digest,
              .expires_ms = expires_ms,
              .data = data.release(),
              .size = static_cast<uint32_t>(payload_bytes),
              .home = home};
  shard.used++;
  shard.bytes += charge;
}

void ValueCache::Offer(uint64_t db, const Digest& digest, int64_t expires_ms,
                       std::span<const uint8_t> payload, std::string_view meta) {
  if (shard_capacity_ == 0) return;
  if (meta.size() > kMaxMetaBytes) meta = {};
  const size_t charge = Charge(payload.size(), meta.size());
  if (TooLarge(payload.size(), charge)) return;
  const Hashed h = HashOf(db, digest);
  Shard& shard = shards_[h.shard];
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    if (shard.bytes + charge > shard_capacity_) return;  // full: no copy made
  }
  std::unique_ptr<uint8_t[]> copy = Pack(meta, payload);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (size_t i = Find(shard, db, digest, h.home); shard.slots[i].db != 0) EraseAt(shard, i);
  if (shard.bytes + charge > shard_capacity_) return;
  Insert(shard, db, digest, h.home, expires_ms, std::move(copy), payload.size(), charge);
}

void ValueCache::RefreshMeta(uint64_t db, const Digest& digest, std::string_view meta) {
  if (shard_capacity_ == 0) return;
  const Hashed h = HashOf(db, digest);
  Shard& shard = shards_[h.shard];
  std::lock_guard<std::mutex> lock(shard.mu);
  ++shard.forgotten[h.stripe];  // a read under way read the meta record before this write
  const size_t i = Find(shard, db, digest, h.home);
  Slot& slot = shard.slots[i];
  if (slot.db == 0 || MetaSize(slot) == 0) return;
  if (meta.empty() || meta.size() > kMaxMetaBytes) {
    EraseAt(shard, i);
    return;
  }
  if (meta.size() == MetaSize(slot)) {  // (the usual case: hit counts of the same width)
    std::memcpy(slot.data + kMetaLengthBytes, meta.data(), meta.size());
    return;
  }
  const size_t old_charge = ChargeOf(slot);
  const uint8_t* payload = slot.data + kMetaLengthBytes + MetaSize(slot);
  std::unique_ptr<uint8_t[]> data = Pack(meta, {payload, PayloadSize(slot)});
  delete[] std::exchange(slot.data, data.release());
  shard.bytes = shard.bytes - old_charge + ChargeOf(slot);
}

bool ValueCache::CachedMeta(uint64_t db, const Digest& digest, std::string* meta) const {
  if (shard_capacity_ == 0) return false;
  const Hashed h = HashOf(db, digest);
  const Shard& shard = shards_[h.shard];
  std::lock_guard<std::mutex> lock(shard.mu);
  const Slot& slot = shard.slots[Find(shard, db, digest, h.home)];
  if (slot.db == 0 || MetaSize(slot) == 0) return false;
  meta->assign(reinterpret_cast<const char*>(slot.data + kMetaLengthBytes), MetaSize(slot));
  return true;
}

void ValueCache::Forget(uint64_t db, const Digest& digest) {
  if (shard_capacity_ == 0) return;
  const Hashed h = HashOf(db, digest);
  Shard& shard = shards_[h.shard];
  std::lock_guard<std::mutex> lock(shard.mu);
  ++shard.forgotten[h.stripe];
  if (size_t i = Find(shard, db, digest, h.home); shard.slots[i].db != 0) EraseAt(shard, i);
}

void ValueCache::ForgetDb(uint64_t db) {
  if (shard_capacity_ == 0) return;
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (uint64_t& forgotten : shard.forgotten) ++forgotten;  // no read under way fills it
    // Erasing shifts later slots back into i: look at i again until it holds another db.
    for (size_t i = 0; i < shard.slots.size();) {
      if (shard.slots[i].db == db) {
        EraseAt(shard, i);
      } else {
        ++i;
      }
    }
  }
}

void ValueCache::Release(Slot& slot) {
  delete[] slot.data;
  slot = Slot{};
}

void ValueCache::EraseAt(Shard& shard, size_t i) {
  shard.bytes -= ChargeOf(shard.slots[i]);
  shard.used--;
  Release(shard.slots[i]);
  // Backward shift: each later slot of the probe run moves into the hole unless its home
  // lies cyclically in (hole, slot], where a lookup starting at home would not pass the hole.
  const size_t mask = shard.slots.size() - 1;
  for (size_t j = (i + 1) & mask; shard.slots[j].db != 0; j = (j + 1) & mask) {
    const size_t home = shard.slots[j].home & mask;
    if (((j - home) & mask) >= ((j - i) & mask)) {
      shard.slots[i] = shard.slots[j];
      shard.slots[j] = Slot{};  // (ownership moved to i)
      i = j;
    }
  }
}

void ValueCache::Grow(Shard& shard) {
  std::vector<Slot> old = std::exchange(shard.slots, std::vector<Slot>(shard.slots.size() * 2));
  for (const Slot& slot : old) {
    if (slot.db != 0) shard.slots[Find(shard, slot.db, slot.digest, slot.home)] = slot;
  }
  shard.hand = 0;
}

size_t ValueCache::Sum(size_t Shard::*count) const {
  size_t total = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    total += shard.*count;
  }
  return total;
}

}  // namespace sealcache::storage::internal
