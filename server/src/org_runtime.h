// The in-memory side of one org: its vector index, the slot table that maps index labels
// to digests (with namespace and expiry, so filters run inside the search), pending hit
// counts, and snapshot bookkeeping. Private to server/.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "hit_table.h"
#include "metrics.h"
#include "sealcache/index/vector_index.h"
#include "sealcache/server/service.h"
#include "sealcache/storage/digest_map.h"
#include "sealcache/storage/store.h"
#include "slot_table.h"

namespace sealcache::server::internal {

// The index parameters of an org: the server's `base`, overridden by the org's own
// (non-zero) values.
index::IndexParams OrgIndexParams(const storage::OrgConfig& config, const index::IndexParams& base);
Status ValidateOrgIndexParams(const storage::OrgConfig& config, const index::IndexParams& base);

class OrgRuntime {
 public:
  static constexpr char kSnapshotFile[] = "index.snapshot";

  // Loads the org's latest snapshot (if any and intact), then replays vectors with newer
  // slots from the store and drops slots the store no longer has. Without a usable
  // snapshot, rebuilds from the store. `log` receives one line about what happened.
  static Result<std::unique_ptr<OrgRuntime>> Load(storage::Store& store, const std::string& org,
                                                  const index::IndexParams& params,
                                                  std::string* log);

  const std::string& id() const { return id_; }
  const storage::OrgConfig& config() const { return config_; }
  index::VectorIndex& index() { return *index_; }
  OrgMetrics& metrics() { return metrics_; }

  // Keeps index and slot table in step with the store (REQUIRES: the caller holds the
  // digest's stripe lock, so store change and index change are not interleaved).
  void OnPut(const storage::Digest& digest, const storage::PutResult& put,
             std::span<const float> vector, std::string_view name_space);
  void OnRemoved(std::span<const uint64_t> slots);
  void OnRemoved(const storage::RemovedEntries& removed);
  // The entry of `digest` at `slot` (kNoVectorSlot: an exact-only entry) now expires at
  // `expires_ms`.
  void OnExpiryChanged(const storage::Digest& digest, uint64_t slot, int64_t expires_ms);
  std::mutex& StripeFor(const storage::Digest& d) { return stripes_[d[2] % stripes_.size()]; }
  // Held shared by every write of the org for its duration, and exclusively by a
  // transaction (CacheService::Transact) from its start to its commit.
  std::shared_mutex& writes_gate() { return writes_gate_; }

  // Searches inside the filter "live, not expired, in namespace (if given)".
  struct Candidate {
    uint64_t slot;
    float score;
    storage::Digest digest;
  };
  // `admit`, if given, also has to admit the candidate's digest.
  Result<std::vector<Candidate>> Search(
      std::span<const float> query, size_t k, float min_score, const std::string* name_space,
      int64_t now_ms, const std::function<bool(const storage::Digest&)>* admit = nullptr);

  // A front's state for this org (CacheService::Attachment): made by `make` on first use.
  std::shared_ptr<OrgAttachment> Attachment(
      const std::function<std::shared_ptr<OrgAttachment>()>& make);

  // Counts a hit; returns the hits of `digest` not yet written to the store, this one included.
  uint64_t CountHit(const storage::Digest& digest, int64_t now_ms);
  // Asks the CPU for the cells CountHit of `digests` starts at (a hint).
  void PrefetchHits(std::span<const storage::Digest> digests);
  // Counts a hit of each digest, under one lock, their cells asked for together first.
  void CountHits(std::span<const storage::Digest> digests, int64_t now_ms);
  // Moves pending hits to the store.
  Status FlushHits(storage::Store& store);
  // Writes a snapshot of the index now.
  Status WriteSnapshot(storage::Store& store, int64_t now_ms);
  // Writes a snapshot if enough changed (or `force` and anything changed).
  Status MaybeSnapshot(storage::Store& store, uint64_t every_inserts, int64_t period_ms,
                       int64_t now_ms, bool force);
  size_t live_slots();
  // Entries without a vector (not swept yet if expired since the last sweep).
  size_t exact_only_entries();
  // Removes expired entries from the index and the slot table; returns how many.
  size_t SweepExpired(int64_t now_ms);
  // Called by the background loop on every pass: once no vector was inserted for
  // `idle_after_ms`, seals the index's mutable segment if it holds kIdleSealMinVectors or
  // more (VectorIndex::SealMutable). True if a seal was queued.
  bool MaybeSealIdle(int64_t now_ms, int64_t idle_after_ms);

  // Requests under way on this runtime (each holds an OrgLease). DropOrg revokes every
  // session of the org first and then waits for this to reach 0, so no request that passed
  // its session check before the drop can act on a later org of the same name.
  uint64_t requests_in_flight() const { return requests_in_flight_.load(); }

 private:
  friend class OrgLease;
  OrgRuntime() = default;
  uint32_t NamespaceId(std::string_view ns);           // REQUIRES: mu_ held exclusively
  void FileExpiry(uint64_t slot, int64_t expires_ms);  // REQUIRES: mu_ held exclusively
  // Records an exact-only entry's expiry and files it under its bucket when needed.
  void SetExactOnly(const storage::Digest& digest, int64_t expires_ms);  // REQUIRES: mu_ excl.
  Status WriteSnapshotLocked(storage::Store& store, int64_t now_ms);     // REQUIRES: snapshot_mu_

  std::string id_;
  storage::OrgConfig config_;
  std::unique_ptr<index::VectorIndex> index_;
  OrgMetrics metrics_;
  std::array<std::mutex, 64> stripes_;
  std::shared_mutex writes_gate_;

  std::shared_mutex mu_;  // guards slots_, namespaces_, exact_only_, expiring_, expiring_exact_
  SlotTable slots_;
  std::map<std::string, uint32_t, std::less<>> namespaces_;  // "" is id 0
  // Entries without a vector, by digest, with their expiry (for DBSIZE and the sweep). A
  // DigestMap, resized a few cells per write: an exact cache of a million keys rehashed a
  // std::unordered_map under mu_ for ~100 ms, every lookup and write of the org waiting.
  storage::DigestMap<int64_t> exact_only_;
  // The slots filed by the bucket (kExpiryBucketMs) their entry expires in, so a sweep reads
  // the buckets that came due rather than every slot. Filed lazily: an entry whose expiry
  // moved later stays filed under its earlier bucket and is re-filed when that comes due; one
  // whose expiry moved earlier is filed again under the earlier bucket; the filings of
  // removed slots are dropped when their bucket comes due.
  std::map<int64_t, std::vector<uint64_t>> expiring_;
  // The same for exact-only entries, by digest (filed again only when their expiry moves to
  // an earlier bucket, see SetExactOnly): a sweep once read all of exact_only_, holding mu_
  // exclusively (1.4% of the server's CPU serving GETs of 100k keys).
  std::map<int64_t, std::vector<storage::Digest>> expiring_exact_;

  std::mutex hits_mu_;
  HitTable pending_hits_;

  // True if the index changed since the last snapshot: inserts, or background seals that
  // turned flat segments into graphs (a snapshot taken before them would make a restart
  // build those graphs again).
  bool SnapshotStale(uint64_t changed) const;

  std::atomic<uint64_t> requests_in_flight_{0};

  std::mutex attachment_mu_;
  std::shared_ptr<OrgAttachment> attachment_;  // GUARDED_BY(attachment_mu_)

  // Vector inserts ever, and what the background loop last saw of it (its thread only).
  std::atomic<uint64_t> vector_inserts_{0};
  uint64_t idle_seen_inserts_ = 0;
  int64_t idle_since_ms_ = 0;

  std::mutex snapshot_mu_;
  std::atomic<uint64_t> inserts_since_snapshot_{0};
  int64_t last_snapshot_ms_ = 0;       // GUARDED_BY(snapshot_mu_)
  size_t snapshot_hnsw_segments_ = 0;  // GUARDED_BY(snapshot_mu_)
  size_t snapshot_flat_segments_ = 0;  // GUARDED_BY(snapshot_mu_)
};

// One request's hold on an org runtime: counted in requests_in_flight() for its lifetime.
// Seq-cst on both sides (the count here, the session's revoked flag in DropOrg), so that
// either the request sees the revocation or the drop sees the request.
class OrgLease {
 public:
  explicit OrgLease(std::shared_ptr<OrgRuntime> rt) : rt_(std::move(rt)) {
    rt_->requests_in_flight_.fetch_add(1);
  }
  OrgLease(OrgLease&& other) noexcept = default;
  OrgLease& operator=(OrgLease&&) = delete;
  OrgLease(const OrgLease&) = delete;
  ~OrgLease() {
    if (rt_) rt_->requests_in_flight_.fetch_sub(1);
  }
  OrgRuntime& operator*() const { return *rt_; }
  OrgRuntime* operator->() const { return rt_.get(); }

 private:
  std::shared_ptr<OrgRuntime> rt_;
};

}  // namespace sealcache::server::internal
