// The payload records of recently read entries, in front of RocksDB: a Get of a hot key is
// one probe of an open-addressed table instead of a memtable search, a block cache probe, an
// index seek and a data block's binary search (bench/README.md, "A table of hot values and
// fewer copies per GET, session 20"). Shared by every org of a store, keyed by the org
// database's incarnation (OrgDb) and the digest, bounded in bytes. Holds what the block
// cache holds (decrypted bytes of the org's records), in process memory only, never on disk.
//
// Admission and eviction: a value is cached at its third miss within a window of recent
// misses (keys read once or twice never displace hot ones, and a working set far larger
// than the table does not churn it), and evicted by CLOCK (a value read since the hand last
// passed is spared once).
//
// Coherence: every write of an org's data family forgets the payload keys it wrote once
// RocksDB has applied it and before it is acknowledged (StoreImpl::Write), and a read that
// missed fills the table only if no write of its stripe was forgotten since the miss (the
// ticket): a value read before a write cannot come back after that write. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "sealcache/storage/store.h"

namespace sealcache::storage::internal {

class ValueCache {
 public:
  // What an entry costs beyond its payload, at most: its share of the slots (64 bytes each,
  // a quarter to half of them used) and the payload's allocation header.
  static constexpr size_t kEntryOverhead = 4 * 64 + 16;
  // Misses of a key, within the admission window, before a read caches it.
  static constexpr uint32_t kMissesBeforeAdmission = 2;
  // A payload larger than a shard's capacity divided by this is not cached: one large value
  // read three times does not evict a shard's worth of small hot ones.
  static constexpr size_t kMaxShareOfShard = 8;
  // Nor one this large (the slot keeps sizes in 31 bits).
  static constexpr size_t kMaxPayloadBytes = size_t{1} << 30;

  // A read's view of its stripe, taken when it missed: whether to fill, and the count of
  // writes forgotten that Fill compares.
  struct Ticket {
    bool admit = false;
    uint64_t forgotten = 0;
  };

  // capacity_bytes 0: nothing is cached.
  explicit ValueCache(size_t capacity_bytes);
  ~ValueCache();
  ValueCache(const ValueCache&) = delete;
  ValueCache& operator=(const ValueCache&) = delete;

  // True and the cached expiry and payload if `digest` of database `db` is cached (then it
  // counts as just read); else false and the ticket for Fill.
  bool Lookup(uint64_t db, const Digest& digest, int64_t* expires_ms, std::vector<uint8_t>* payload,
              Ticket* ticket);
  // Caches what a read that missed with `ticket` found, if the ticket admits it and no write
  // of the digest's stripe was forgotten since.
  void Fill(uint64_t db, const Digest& digest, const Ticket& ticket, int64_t expires_ms,
            std::span<const uint8_t> payload);
  // Forgets `digest`'s value. REQUIRES: called after each write of it has been applied.
  void Forget(uint64_t db, const Digest& digest);
  // Forgets every value of database `db`: it closes, or a key of its org is destroyed.
  void ForgetDb(uint64_t db);

  size_t bytes() const { return Sum(&Shard::bytes); }
  size_t entries() const { return Sum(&Shard::used); }

 private:
  static constexpr size_t kShards = 16;
  static constexpr size_t kStripesPerShard = 64;
  static constexpr size_t kFirstSlots = 64;
  static constexpr uint32_t kReferenced = 1u << 31;  // in Slot::size: read since the hand passed

  struct Slot {
    uint64_t db = 0;  // 0: empty (incarnations start at 1)
    Digest digest{};
    int64_t expires_ms = 0;
    uint8_t* payload = nullptr;  // owned, `size` bytes
    uint32_t size = 0;           // | kReferenced
    uint32_t home = 0;           // the key's hash bits that choose its slot
  };
  struct Shard {
    mutable std::mutex mu;
    std::vector<Slot> slots;  // a power of two, at most half used; linear probing
    size_t used = 0, bytes = 0, hand = 0;
    std::array<uint64_t, kStripesPerShard> forgotten{};  // writes forgotten, per stripe
    // Recent misses, direct-mapped: a key's tag with its count of misses in the low bits.
    std::vector<uint32_t> missed;
  };
  static constexpr uint32_t kCountMask = 3;  // the low bits of a `missed` cell
  struct Hashed {
    size_t shard, stripe;
    uint32_t home, tag;  // (tag: the low kCountMask are zero)
  };

  Hashed HashOf(uint64_t db, const Digest& digest) const;
  static size_t Charge(size_t payload_bytes) { return payload_bytes + kEntryOverhead; }
  // The slot of the key, or the empty slot where its probe ended.
  static size_t Find(const Shard& shard, uint64_t db, const Digest& digest, uint32_t home);
  static void Release(Slot& slot);
  // Empties slot i and shifts the probe sequence after it back (no tombstones).
  static void EraseAt(Shard& shard, size_t i);
  static void Grow(Shard& shard);
  // A count of every shard, added up.
  size_t Sum(size_t Shard::*count) const;

  const size_t shard_capacity_;
  DigestHash digest_hash_;
  std::array<Shard, kShards> shards_;
};

}  // namespace sealcache::storage::internal
