// The hits an org's entries received since they were last written to the store, by digest.
// Every exact Get and every lookup that answers counts one (CountHit), so an add has to cost
// one cache miss and no allocation: an open-addressing table with linear probing and entries
// stored inline, emptied as a whole when the hits are written (Take). Digests come from
// clients, so the table hashes them with a seeded storage::DigestHash: digests chosen to
// share a prefix do not pile into one probe run. Not synchronised: the owner's lock guards it.
// Private to server/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "sealcache/storage/store.h"

namespace sealcache::server::internal {

class HitTable {
 public:
  HitTable();
  HitTable(const HitTable&) = delete;
  HitTable& operator=(const HitTable&) = delete;

  // Counts a hit of `digest` at `now_ms`; returns its hits since the last Take, this one
  // included.
  uint64_t Add(const storage::Digest& digest, int64_t now_ms);
  // Asks the CPU for the cell Add of `digest` starts at: a batch of Adds prefetches them
  // all first, so their cache misses overlap. A hint: changes nothing.
  void Prefetch(const storage::Digest& digest) const { __builtin_prefetch(&cells_[Home(digest)]); }
  // Every digest's hits since the last Take, in no order; empties the table, which keeps
  // room for as many as it gave (the next period is likely to see as many).
  std::vector<storage::HitUpdate> Take();

  size_t size() const { return size_; }
  size_t capacity() const { return mask_ + 1; }

 private:
  size_t Home(const storage::Digest& digest) const;
  void Place(const storage::HitUpdate& hit);  // into the first free cell from its home
  void Resize(size_t capacity);               // a power of two; re-places the present entries

  // A cell is free while its hits are 0: a present entry has at least one.
  std::unique_ptr<storage::HitUpdate[]> cells_;
  size_t mask_ = 0;  // capacity - 1
  int shift_ = 0;    // 64 - log2(capacity)
  size_t size_ = 0;
  storage::DigestHash hash_;
};

}  // namespace sealcache::server::internal
