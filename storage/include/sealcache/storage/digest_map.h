// DigestMap: a hash map from digests for tables written under a lock that a whole org's
// requests wait on (the capacity tracker's entries, the server's exact-only entries).
//
// A std::unordered_map that outgrows its buckets relinks every node in one insert: 69 ms at
// 712k digests and 111 ms at 1.45M on this machine kind, with the org's other requests
// waiting. A DigestMap splits its entries over kShards such maps by a seeded hash of the
// digest, so each rehash relinks a 64th of them. Callers find the map a digest belongs to
// (Of) and use it as a std::unordered_map; size and iteration cover every shard. Not
// synchronised.
#pragma once

#include <array>
#include <cstddef>
#include <unordered_map>

#include "sealcache/storage/store.h"

namespace sealcache::storage {

template <typename V>
class DigestMap {
 public:
  static constexpr size_t kShards = 64;
  using Map = std::unordered_map<Digest, V, DigestHash>;

  // The map that holds `d`, if anything does.
  Map& Of(const Digest& d) { return shards_[ShardOf(d)]; }
  const Map& Of(const Digest& d) const { return shards_[ShardOf(d)]; }

  size_t size() const {
    size_t n = 0;
    for (const Map& m : shards_) n += m.size();
    return n;
  }
  // Calls f(digest, value) for every entry, in no order. The map must not change meanwhile.
  template <typename F>
  void ForEach(F&& f) {
    for (Map& m : shards_) {
      for (auto& [d, v] : m) f(d, v);
    }
  }

 private:
  // The top 6 bits of a hash whose seed is not the shards' own (each map hashes with its own
  // DigestHash): a client cannot choose digests that all land in one shard.
  size_t ShardOf(const Digest& d) const { return static_cast<size_t>(uint64_t{hash_(d)} >> 58); }
  static_assert(kShards == 64, "ShardOf takes the top 6 bits");

  DigestHash hash_;
  std::array<Map, kShards> shards_;
};

}  // namespace sealcache::storage
