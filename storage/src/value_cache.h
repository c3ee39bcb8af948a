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
// passed is spared once). A value just written is cached too while its shard has room for
// it without evicting anything (Offer): reads often follow writes, and a write never
// displaces a value being read.
//
// A value may carry its entry's meta record too (a native Get reads both: one probe instead
// of a memtable search for the meta), cached by a read of both (a Get, or a lookup's batch
// read of its answers, StoreImpl::MultiGet); RESP reads of the payload alone use the same
// slot. A writer of a live entry (a put that replaces it, a delete, an
// expiry change, the hit counts' writes) reads the meta record here too, under the digest's
// lock (CachedMeta).
//
// Coherence: every write of an org's entries forgets the keys it wrote once RocksDB has
// applied it and before it is acknowledged (StoreImpl::Write; a put then offers its own value
// under its digest's lock, so no later write of the digest comes first), and a read that missed
// fills the table only if no write of its stripe was forgotten since the miss (the ticket): a value
// read before a write cannot come back after that write. The one write that keeps a value, the hit
// counts' (meta records only), replaces the cached meta record instead (RefreshMeta), which also
// counts as a write for the tickets. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sealcache/storage/store.h"

namespace sealcache::storage::internal {

class ValueCache {
 public:
  // What an entry costs beyond its payload and meta record, at most: its share of the slots
  // (64 bytes each, a quarter to half of them used), the allocation's header and the meta
  // record's length.
  static constexpr size_t kEntryOverhead = 4 * 64 + 16 + 2;
  // Meta records longer than this are not cached (a namespace of at most 128 bytes and the
  // fixed fields are far below it).
  static constexpr size_t kMaxMetaBytes = 1024;
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
  // counts as just read); else false and the ticket for Fill. With `meta`, true only if the
  // meta record is cached too, and *meta is set to it.
  bool Lookup(uint64_t db, const Digest& digest, int64_t* expires_ms, std::vector<uint8_t>* payload,
              Ticket* ticket, std::string* meta = nullptr);
  // Lookup of the payload without copying it out: if `digest` of database `db` is cached,
  // calls read(expires_ms, payload) with the cached bytes, under the shard's lock (`read`
  // must not call this table; the bytes are valid during the call only), and returns true
  // (it counts as just read); else false and the ticket for Fill.
  template <typename Reader>  // void(int64_t expires_ms, std::span<const uint8_t> payload)
  bool Read(uint64_t db, const Digest& digest, Reader&& read, Ticket* ticket);
  // Asks the CPU for the slots that Lookups of `digests` probe first and then for the values
  // in them, so that the cache misses of a batch of reads (a client's pipelined GETs) are in
  // flight together instead of one after another. A hint: changes nothing.
  void Prefetch(uint64_t db, std::span<const Digest> digests) const;
  // Caches what a read that missed with `ticket` found (the meta record, if it read it), if
  // the ticket admits it and no write of the digest's stripe was forgotten since.
  void Fill(uint64_t db, const Digest& digest, const Ticket& ticket, int64_t expires_ms,
            std::span<const uint8_t> payload, std::string_view meta = {});
  // Caches the entry just written (its payload and meta record) if the digest's shard has
  // room for it without evicting anything: a cache's reads often follow its writes, and a
  // write never displaces a value being read. REQUIRES: called after the write was applied
  // and forgotten, under the digest's write lock (no later write of it can come first).
  void Offer(uint64_t db, const Digest& digest, int64_t expires_ms,
             std::span<const uint8_t> payload, std::string_view meta);
  // True and *meta set to the digest's cached meta record, if it is cached with one; not a
  // read (the value's place in the eviction order is unchanged). Under the digest's write
  // lock the record is the one in the database (every write forgets or refreshes it).
  bool CachedMeta(uint64_t db, const Digest& digest, std::string* meta) const;
  // The digest's meta record was rewritten as `meta` with its payload unchanged (hit
  // counts): a cached meta record becomes `meta`, and reads under way do not fill.
  // REQUIRES: called after the write was applied, under the digest's write lock.
  void RefreshMeta(uint64_t db, const Digest& digest, std::string_view meta);
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
    // Owned: the meta record's length M (2 bytes, little-endian; 0: not cached), the meta
    // record, then the payload.
    uint8_t* data = nullptr;
    uint32_t size = 0;  // the payload's | kReferenced
    uint32_t home = 0;  // the key's hash bits that choose its slot
  };
  static constexpr size_t kMetaLengthBytes = 2;
  // Digests a Prefetch round asks for at once; bytes of a value it asks for (the meta
  // record's length, the record and the payload's start: the rest streams behind them).
  static constexpr size_t kPrefetchBatch = 32;
  static constexpr size_t kPrefetchValueBytes = 256;
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
  // A read of key `h` missed: counts the miss and sets the ticket. REQUIRES: shard.mu held.
  static void Missed(Shard& shard, const Hashed& h, Ticket* ticket);
  static size_t Charge(size_t payload_bytes, size_t meta_bytes) {
    return payload_bytes + meta_bytes + kEntryOverhead;
  }
  static size_t MetaSize(const Slot& slot);
  static size_t PayloadSize(const Slot& slot) { return slot.size & ~kReferenced; }
  static size_t ChargeOf(const Slot& slot) { return Charge(PayloadSize(slot), MetaSize(slot)); }
  // Whether a value is too large to cache: past the slot's size field, or more than its
  // share of a shard.
  bool TooLarge(size_t payload_bytes, size_t charge) const;
  // Puts the key in its slot with `data` (Pack's). REQUIRES: shard.mu held, the key absent.
  static void Insert(Shard& shard, uint64_t db, const Digest& digest, uint32_t home,
                     int64_t expires_ms, std::unique_ptr<uint8_t[]> data, size_t payload_bytes,
                     size_t charge);
  // A slot's allocation holding `meta` and `payload`.
  static std::unique_ptr<uint8_t[]> Pack(std::string_view meta, std::span<const uint8_t> payload);
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

template <typename Reader>
bool ValueCache::Read(uint64_t db, const Digest& digest, Reader&& read, Ticket* ticket) {
  if (shard_capacity_ == 0) return false;
  const Hashed h = HashOf(db, digest);
  Shard& shard = shards_[h.shard];
  std::lock_guard<std::mutex> lock(shard.mu);
  Slot& slot = shard.slots[Find(shard, db, digest, h.home)];
  if (slot.db == 0) {
    Missed(shard, h, ticket);
    return false;
  }
  slot.size |= kReferenced;
  read(slot.expires_ms,
       std::span<const uint8_t>(slot.data + kMetaLengthBytes + MetaSize(slot), PayloadSize(slot)));
  return true;
}

}  // namespace sealcache::storage::internal
