#include "org_runtime.h"

#include <algorithm>
#include <chrono>
#include <unordered_set>

namespace sealcache::server::internal {
namespace {

// Fewest vectors an idle org's mutable segment must hold to be sealed: below this an exact
// scan costs a lookup ~10 us, less than extending (copying) the org's graph is worth.
constexpr size_t kIdleSealMinVectors = 256;

// Width of the expiry buckets the sweep reads (OrgRuntime::expiring_): a sweep reads the
// buckets up to now's, each slot in them once.
constexpr int64_t kExpiryBucketMs = 1000;

// Takes the buckets of `filed` (expiry bucket -> keys filed under it) that came due by
// `now_ms` and returns their keys that expired, each once. `expiry_of(key)` is the key's
// expiry now, nullopt if it is gone (removed since it was filed: its filing is dropped). A key
// whose expiry moved later is filed again under the bucket it falls in now, once.
template <typename Key, typename ExpiryOf>
std::vector<Key> TakeExpired(std::map<int64_t, std::vector<Key>>& filed, int64_t now_ms,
                             const ExpiryOf& expiry_of) {
  std::vector<Key> expired;
  std::vector<std::pair<int64_t, Key>> later;  // (the bucket it falls in now, key)
  const int64_t due = now_ms / kExpiryBucketMs;
  while (!filed.empty() && filed.begin()->first <= due) {
    auto bucket = filed.extract(filed.begin());
    for (const Key& key : bucket.mapped()) {
      const std::optional<int64_t> expires_ms = expiry_of(key);
      if (!expires_ms) continue;
      if (*expires_ms <= now_ms) {
        expired.push_back(key);
      } else {
        later.emplace_back(*expires_ms / kExpiryBucketMs, key);
      }
    }
  }
  // A key filed twice (its expiry moved earlier) is taken or filed again once.
  std::sort(expired.begin(), expired.end());
  expired.erase(std::unique(expired.begin(), expired.end()), expired.end());
  std::sort(later.begin(), later.end());
  later.erase(std::unique(later.begin(), later.end()), later.end());
  for (const auto& [b, key] : later) filed[b].push_back(key);
  return expired;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Admits live, unexpired slots of the wanted namespace. Reads the slot table without
// locking: the caller holds its lock (shared) for the whole search.
class SlotFilter final : public index::Filter {
 public:
  SlotFilter(const SlotTable& slots, int64_t now_ms, std::optional<uint32_t> ns_id,
             const std::function<bool(const storage::Digest&)>* admit)
      : slots_(slots), now_ms_(now_ms), ns_id_(ns_id), admit_(admit) {}
  bool Admits(uint64_t slot) const override {
    const SlotInfo* info = slots_.Find(slot);
    if (info == nullptr || info->expires_ms <= now_ms_) return false;
    if (ns_id_ && info->ns_id != *ns_id_) return false;
    return admit_ == nullptr || (*admit_)(info->digest);
  }

 private:
  const SlotTable& slots_;
  int64_t now_ms_;
  std::optional<uint32_t> ns_id_;
  const std::function<bool(const storage::Digest&)>* admit_;
};

}  // namespace

index::IndexParams OrgIndexParams(const storage::OrgConfig& c, const index::IndexParams& base) {
  index::IndexParams p = base;
  p.dimension = c.dimension;
  p.exact = c.index_kind == "flat";
  if (c.hnsw_m) p.hnsw_m = static_cast<int>(c.hnsw_m);
  if (c.ef_construction) p.ef_construction = static_cast<int>(c.ef_construction);
  if (c.ef_search) p.ef_search = static_cast<int>(c.ef_search);
  if (c.seal_threshold) {
    p.seal_threshold = c.seal_threshold;
    p.max_segment_size = std::max(p.max_segment_size, p.seal_threshold);
  }
  return p;
}

Status ValidateOrgIndexParams(const storage::OrgConfig& c, const index::IndexParams& base) {
  if (c.dimension == 0) return Status::InvalidArgument("dimension must be between 1 and 4096");
  return index::ValidateIndexParams(OrgIndexParams(c, base));
}

Result<std::unique_ptr<OrgRuntime>> OrgRuntime::Load(storage::Store& store, const std::string& org,
                                                     const index::IndexParams& base_params,
                                                     std::string* log) {
  std::unique_ptr<OrgRuntime> rt(new OrgRuntime());
  rt->id_ = org;
  SC_ASSIGN_OR_RETURN(rt->config_, store.GetOrg(org));
  rt->namespaces_.emplace("", 0);
  const index::IndexParams params = OrgIndexParams(rt->config_, base_params);

  // 1. The live entries, from plaintext metadata.
  SC_RETURN_IF_ERROR(store.ScanMeta(org, [&](const storage::EntryMeta& m) {
    if (m.vector_slot == storage::kNoVectorSlot) {  // exact-only: counted, not indexed
      rt->SetExactOnly(m.digest, m.expires_ms);
      return true;
    }
    rt->slots_.Set(m.vector_slot, SlotInfo{m.digest, m.expires_ms, rt->NamespaceId(m.name_space)});
    rt->FileExpiry(m.vector_slot, m.expires_ms);
    return true;
  }));

  // 2. The latest snapshot, if there is a usable one.
  std::string how;
  auto bytes = store.ReadOrgFile(org, kSnapshotFile);
  if (bytes.ok()) {
    auto loaded = index::VectorIndex::Deserialize(*bytes, params);
    if (loaded.ok()) {
      rt->index_ = std::move(loaded).value();
      how = "loaded snapshot";
    } else {
      how = "snapshot unusable (" + loaded.status().ToString() + "), rebuilt from the store";
    }
  } else if (bytes.status().IsNotFound()) {
    how = "no snapshot, rebuilt from the store";
  } else {
    how = "snapshot unreadable (" + bytes.status().ToString() + "), rebuilt from the store";
  }
  if (rt->index_ == nullptr) {
    SC_ASSIGN_OR_RETURN(rt->index_, index::VectorIndex::Create(params));
  }

  // 3. Add live vectors the snapshot lacks (normally only slots newer than it).
  std::unordered_set<uint64_t> missing;
  uint64_t from = UINT64_MAX;
  rt->slots_.ForEach([&](uint64_t slot, const SlotInfo&) {
    if (!rt->index_->Contains(slot)) {
      missing.insert(slot);
      from = std::min(from, slot);
    }
  });
  size_t replayed = 0;
  if (!missing.empty()) {
    Status add_status;
    SC_RETURN_IF_ERROR(store.ScanVectors(
        org, from, [&](uint64_t slot, const storage::Digest&, int64_t, std::span<const float> v) {
          if (!missing.count(slot)) return true;
          add_status = rt->index_->Add(slot, v);
          ++replayed;
          return add_status.ok();
        }));
    SC_RETURN_IF_ERROR(add_status);
  }
  // 4. Drop slots the store no longer has (deleted or expired since the snapshot).
  size_t dropped = 0;
  if (auto highest = rt->index_->HighestSlot()) {
    for (uint64_t s = 0; s <= *highest; ++s) {
      if (rt->index_->Contains(s) && !rt->slots_.Contains(s)) {
        (void)rt->index_->Remove(s);
        ++dropped;
      }
    }
  }
  rt->last_snapshot_ms_ = NowMs();
  if (how == "loaded snapshot" && replayed == 0 && dropped == 0) {
    const auto segments = rt->index_->Stats();
    rt->snapshot_hnsw_segments_ = segments.hnsw_segments;
    rt->snapshot_flat_segments_ = segments.flat_segments;
  } else {
    rt->inserts_since_snapshot_ = replayed + dropped + 1;  // the file on disk is behind
  }
  if (log != nullptr) {
    *log = "org " + org + ": " + how + "; replayed " + std::to_string(replayed) +
           " vectors, dropped " + std::to_string(dropped) + ", " +
           std::to_string(rt->slots_.size()) + " live entries";
  }
  return rt;
}

uint32_t OrgRuntime::NamespaceId(std::string_view ns) {
  auto it = namespaces_.find(ns);
  if (it != namespaces_.end()) return it->second;
  uint32_t id = static_cast<uint32_t>(namespaces_.size());
  namespaces_.emplace(std::string(ns), id);
  return id;
}

void OrgRuntime::OnPut(const storage::Digest& digest, const storage::PutResult& put,
                       std::span<const float> vector, std::string_view name_space) {
  const bool with_vector = put.slot != storage::kNoVectorSlot;  // else exact-only
  if (with_vector) {
    (void)index_->Add(put.slot, vector);  // validated by the store
    vector_inserts_.fetch_add(1, std::memory_order_relaxed);
  }
  if (put.replaced_slot) (void)index_->Remove(*put.replaced_slot);
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    if (put.replaced_slot) slots_.Erase(*put.replaced_slot);
    if (with_vector) {
      slots_.Set(put.slot, SlotInfo{digest, put.expires_ms, NamespaceId(name_space)});
      FileExpiry(put.slot, put.expires_ms);
      exact_only_.Erase(digest);
    } else {
      SetExactOnly(digest, put.expires_ms);
    }
  }
  if (with_vector || put.replaced_slot) {
    inserts_since_snapshot_.fetch_add(1, std::memory_order_relaxed);
  }
  // What the put evicted from this org went in its write: out of the index too.
  if (put.evicted.count > 0) OnRemoved(put.evicted);
}

void OrgRuntime::OnExpiryChanged(const storage::Digest& digest, uint64_t slot, int64_t expires_ms) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (slot == storage::kNoVectorSlot) {
    SetExactOnly(digest, expires_ms);
    return;
  }
  SlotInfo* info = slots_.Find(slot);
  if (info == nullptr) return;
  // A later expiry is re-filed when the bucket the entry is filed under comes due.
  if (expires_ms < info->expires_ms) FileExpiry(slot, expires_ms);
  info->expires_ms = expires_ms;
}

void OrgRuntime::FileExpiry(uint64_t slot, int64_t expires_ms) {
  expiring_[expires_ms / kExpiryBucketMs].push_back(slot);
}

void OrgRuntime::SetExactOnly(const storage::Digest& digest, int64_t expires_ms) {
  auto [filed_expiry, added] = exact_only_.TryEmplace(digest);
  // Filed again only where the filing it has would come due too late: a new entry, or an
  // expiry moved to an earlier bucket. One moved later is re-filed when its bucket comes
  // due, so rewriting a key never piles up filings.
  const bool file = added || expires_ms / kExpiryBucketMs < *filed_expiry / kExpiryBucketMs;
  *filed_expiry = expires_ms;
  if (file) expiring_exact_[expires_ms / kExpiryBucketMs].push_back(digest);
}

void OrgRuntime::OnRemoved(const storage::RemovedEntries& removed) {
  OnRemoved(removed.slots);
  if (removed.exact_only.empty()) return;
  std::unique_lock<std::shared_mutex> lock(mu_);
  for (const auto& d : removed.exact_only) exact_only_.Erase(d);
}

void OrgRuntime::OnRemoved(std::span<const uint64_t> slots) {
  for (uint64_t s : slots) (void)index_->Remove(s);
  std::unique_lock<std::shared_mutex> lock(mu_);
  for (uint64_t s : slots) slots_.Erase(s);
}

Result<std::vector<OrgRuntime::Candidate>> OrgRuntime::Search(
    std::span<const float> query, size_t k, float min_score, const std::string* name_space,
    int64_t now_ms, const std::function<bool(const storage::Digest&)>* admit) {
  std::shared_lock<std::shared_mutex> lock(mu_);
  std::optional<uint32_t> ns_id;
  if (name_space != nullptr) {
    auto it = namespaces_.find(*name_space);
    if (it == namespaces_.end()) return std::vector<Candidate>{};  // nothing stored there
    ns_id = it->second;
  }
  SlotFilter filter(slots_, now_ms, ns_id, admit != nullptr && *admit ? admit : nullptr);
  SC_ASSIGN_OR_RETURN(auto hits, index_->Search(query, k, min_score, &filter));
  std::vector<Candidate> out;
  out.reserve(hits.size());
  for (const auto& h : hits) {
    const SlotInfo* info = slots_.Find(h.slot);
    if (info != nullptr) out.push_back({h.slot, h.score, info->digest});
  }
  return out;
}

std::shared_ptr<OrgAttachment> OrgRuntime::Attachment(
    const std::function<std::shared_ptr<OrgAttachment>()>& make) {
  std::lock_guard<std::mutex> lock(attachment_mu_);
  if (!attachment_) attachment_ = make();
  return attachment_;
}

uint64_t OrgRuntime::CountHit(const storage::Digest& digest, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(hits_mu_);
  return pending_hits_.Add(digest, now_ms);
}

void OrgRuntime::PrefetchHits(std::span<const storage::Digest> digests) {
  std::lock_guard<std::mutex> lock(hits_mu_);
  for (const storage::Digest& digest : digests) pending_hits_.Prefetch(digest);
}

void OrgRuntime::CountHits(std::span<const storage::Digest> digests, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(hits_mu_);
  for (const storage::Digest& digest : digests) pending_hits_.Prefetch(digest);
  for (const storage::Digest& digest : digests) pending_hits_.Add(digest, now_ms);
}

Status OrgRuntime::FlushHits(storage::Store& store) {
  std::vector<storage::HitUpdate> batch;
  {
    std::lock_guard<std::mutex> lock(hits_mu_);
    batch = pending_hits_.Take();
  }
  if (batch.empty()) return Status::Ok();
  return store.RecordHits(id_, batch);
}

Status OrgRuntime::MaybeSnapshot(storage::Store& store, uint64_t every_inserts, int64_t period_ms,
                                 int64_t now_ms, bool force) {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  const uint64_t changed = inserts_since_snapshot_.load();
  if (!SnapshotStale(changed)) return Status::Ok();
  if (!force && changed < every_inserts && now_ms - last_snapshot_ms_ < period_ms) {
    return Status::Ok();
  }
  return WriteSnapshotLocked(store, now_ms);
}

bool OrgRuntime::SnapshotStale(uint64_t changed) const {
  if (changed > 0) return true;
  const auto segments = index_->Stats();
  return segments.hnsw_segments != snapshot_hnsw_segments_ ||
         segments.flat_segments != snapshot_flat_segments_;
}

Status OrgRuntime::WriteSnapshot(storage::Store& store, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  return WriteSnapshotLocked(store, now_ms);
}

Status OrgRuntime::WriteSnapshotLocked(storage::Store& store, int64_t now_ms) {
  // Read before serialising: inserts or seals that happen meanwhile leave it stale.
  const uint64_t changed = inserts_since_snapshot_.load();
  const auto segments = index_->Stats();
  SC_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, index_->Serialize());
  SC_RETURN_IF_ERROR(store.WriteOrgFile(id_, kSnapshotFile, bytes));
  last_snapshot_ms_ = now_ms;
  snapshot_hnsw_segments_ = segments.hnsw_segments;
  snapshot_flat_segments_ = segments.flat_segments;
  inserts_since_snapshot_.fetch_sub(changed);
  return Status::Ok();
}

bool OrgRuntime::MaybeSealIdle(int64_t now_ms, int64_t idle_after_ms) {
  const uint64_t inserts = vector_inserts_.load(std::memory_order_relaxed);
  if (inserts != idle_seen_inserts_) {
    idle_seen_inserts_ = inserts;
    idle_since_ms_ = now_ms;
    return false;
  }
  if (idle_after_ms <= 0 || now_ms - idle_since_ms_ < idle_after_ms) return false;
  return index_->SealMutable(kIdleSealMinVectors);
}

size_t OrgRuntime::SweepExpired(int64_t now_ms) {
  std::vector<uint64_t> expired;
  size_t exact = 0;
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    expired = TakeExpired(expiring_, now_ms, [&](uint64_t slot) -> std::optional<int64_t> {
      const SlotInfo* info = slots_.Find(slot);
      return info != nullptr ? std::optional(info->expires_ms) : std::nullopt;
    });
    for (const storage::Digest& digest :
         TakeExpired(expiring_exact_, now_ms, [&](const storage::Digest& d) {
           const int64_t* expires_ms = exact_only_.Find(d);
           return expires_ms != nullptr ? std::optional(*expires_ms) : std::nullopt;
         })) {
      exact += exact_only_.Erase(digest) ? 1 : 0;
    }
  }
  OnRemoved(expired);
  return expired.size() + exact;
}

size_t OrgRuntime::live_slots() {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return slots_.size();
}

size_t OrgRuntime::exact_only_entries() {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return exact_only_.size();
}

}  // namespace sealcache::server::internal
