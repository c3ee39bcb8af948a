// The live entries of one org as its capacity limits see them: logical bytes and count, and,
// while the org (or the server) has a limit, the order in which its eviction policy gives
// entries up. Private to storage/.
//
// Built from the org's metadata when the store opens (so the counts are right after any
// restart or crash) and kept in step by the store under each entry's digest lock: Upsert
// after a put commits, Remove after a delete, ForgetExpired for entries whose TTL ran out
// (compactions drop their records later; the counts do not wait for that).
//
// Choosing victims is O(victims · log n): the policy's order is an ordered set, never a
// scan. A chosen victim is marked pending until its eviction commits or is given up, so
// two puts never evict the same entry twice.
//
// Thread-safe (one mutex per org; no other org's work waits on it).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <tuple>
#include <vector>

#include "sealcache/storage/digest_map.h"
#include "sealcache/storage/store.h"

namespace sealcache::storage::internal {

class CapacityTracker {
 public:
  struct Victim {
    Digest digest{};
    uint64_t bytes = 0;
    uint64_t incarnation = 0;  // identifies the entry: a replaced one has another
    uint64_t vector_slot = kNoVectorSlot;
  };

  explicit CapacityTracker(EvictionPolicy policy) : policy_(policy) {}

  // Keeps the eviction order only while `ordered` (a limit applies): without limits the
  // tracker holds counts and expiries alone. Changing the policy or turning the order on
  // rebuilds it (O(n log n); an admin operation).
  void Configure(EvictionPolicy policy, bool ordered);

  // `meta` is live now (a new entry, or one that replaced the same digest).
  void Upsert(const EntryMeta& meta, uint64_t bytes);
  void Remove(const Digest& digest);
  // A read of the entry: for lru and lfu.
  void Touch(const Digest& digest, int64_t now_ms);
  void SetExpiry(const Digest& digest, int64_t expires_ms);
  // Entries whose expiry is at or before `now_ms` leave the counts. O(expired · log n), and
  // O(log n) for each entry whose expiry moved later since it was filed (below).
  void ForgetExpired(int64_t now_ms);

  // Entries to evict, in the policy's order, until at least `bytes` bytes and `entries`
  // entries are covered (fewer if the org has no more); never `keep`, never an entry
  // another put is evicting. Marked pending: each must be given to Evicted or Release.
  std::vector<Victim> ChooseVictims(uint64_t bytes, uint64_t entries, const Digest& keep);
  void Evicted(const Victim& v);  // the eviction committed
  void Release(const Victim& v);  // it did not: the entry is a candidate again
  // True while `v` is still the live entry chosen (not replaced, removed or expired since).
  // REQUIRES: the caller holds the entry's digest lock, under which every change of the
  // entry in the store and here happens, so the answer is the store's too.
  bool StillChosen(const Victim& v) const;
  // The entry of `digest` if it is live at `now_ms` (its expiry later): what a put that
  // replaces it needs, without reading the store. Absent also for an entry that expired and
  // whose records may still be there. REQUIRES: the caller holds the entry's digest lock, as
  // for StillChosen.
  struct Live {
    int64_t expires_ms = 0;
    uint64_t vector_slot = kNoVectorSlot;
    uint64_t bytes = 0;
  };
  std::optional<Live> FindLive(const Digest& digest, int64_t now_ms) const;

  // A put's growth (bytes and entries it adds; a replacement adds its size difference and
  // no entry), counted at once for every other put's arithmetic until Unreserve (after the
  // put's Upsert, or its failure). Returns what must be evicted for it to fit `max_bytes` and
  // `max_entries` (0 = no limit), evictions in flight and other reservations included.
  struct Need {
    uint64_t bytes = 0, entries = 0;
  };
  Need Reserve(int64_t bytes, int64_t entries, uint64_t max_bytes, uint64_t max_entries);
  void Unreserve(int64_t bytes, int64_t entries);

  // Live bytes and entries (those being evicted included).
  uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  uint64_t entries() const { return entries_.load(std::memory_order_relaxed); }
  // What there will be once the evictions and the puts in flight commit: what a put measures
  // its room against.
  uint64_t bytes_after_pending() const;
  uint64_t entries_after_pending() const;

 private:
  // (primary, secondary, sequence, digest): lru (last access, 0), lfu (hits, last access),
  // ttl (expiry, 0); the smallest goes first. The sequence (of writes and reads, in this
  // process) orders what happened within one millisecond; entries loaded at open get theirs
  // in metadata order.
  using OrderKey = std::tuple<int64_t, int64_t, uint64_t, Digest>;
  using ExpiryOrder = std::set<std::pair<int64_t, Digest>>;
  using PolicyOrder = std::set<OrderKey>;

  struct Item {
    uint64_t bytes = 0;
    int64_t expires_ms = 0;
    int64_t last_access_ms = 0;
    uint64_t hits = 0;
    uint64_t sequence = 0;
    uint64_t incarnation = 0;
    uint64_t vector_slot = kNoVectorSlot;
    bool pending = false;
    bool filed = false;  // expiry_at is set
    // Where the item is in by_expiry_, and in order_ while ordered_ and not pending: taken
    // out without a search (each search of a tree of n items is log n cache misses). Its
    // filing in by_expiry_ is at its expiry or earlier: an expiry that moves later (every
    // rewrite of a key moves it so) leaves the filing where it is, and ForgetExpired files
    // the item again when the filing comes due; so a rewrite changes no tree.
    ExpiryOrder::iterator expiry_at;
    PolicyOrder::iterator order_at;
  };

  OrderKey KeyOf(const Digest& d, const Item& item) const;
  // Puts `item` into the orders (files it by its expiry unless filed early enough, sets
  // order_at) / takes it out of the policy order (its filing stays until Erase).
  void Link(const Digest& d, Item& item);
  void Unlink(const Item& item);
  // The entry `item` was leaves the policy order, the evictions in flight and the byte sum
  // (not the entry count, nor its expiry filing, which Link keeps or moves and Erase
  // removes): a replace, and half of Erase.
  void Leave(const Item& item);
  void Erase(Digest digest, const Item& item);

  mutable std::mutex mu_;
  EvictionPolicy policy_;
  bool ordered_ = false;
  DigestMap<Item> items_;  // (resized a few cells per write: no write holds mu_ for a rehash)
  ExpiryOrder by_expiry_;
  PolicyOrder order_;  // only while ordered_
  uint64_t next_sequence_ = 0;
  std::atomic<uint64_t> bytes_{0}, entries_{0};
  uint64_t pending_bytes_ = 0, pending_entries_ = 0;   // guarded by mu_
  int64_t reserved_bytes_ = 0, reserved_entries_ = 0;  // guarded by mu_
};

}  // namespace sealcache::storage::internal
