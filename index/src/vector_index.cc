#include "sealcache/index/vector_index.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "flat_segment.h"
#include "hnsw_segment.h"
#include "simd_hnsw.h"
#include "snapshot_format.h"

namespace sealcache::index {
namespace {

using SegmentPtr = std::shared_ptr<const Segment>;

// How long the background worker keeps the construction's memo of the graph it built last
// (LinkMemo, ~170 bytes a vector) once it has nothing to do: long enough to span the seals
// of a slow stream of puts, short enough that an idle org does not hold it.
constexpr auto kLinkMemoIdle = std::chrono::seconds(30);

// The unit vector of `v`, or InvalidArgument naming what is wrong with it.
Result<std::vector<float>> Normalized(std::span<const float> v, size_t dimension,
                                      const char* what) {
  if (v.size() != dimension) {
    return Status::InvalidArgument(std::string(what) + " has dimension " +
                                   std::to_string(v.size()) + ", the index expects " +
                                   std::to_string(dimension));
  }
  double norm2 = 0.0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return Status::InvalidArgument(std::string(what) + " element " + std::to_string(i) + " is " +
                                     (std::isnan(v[i]) ? "NaN" : "infinite"));
    }
    norm2 += static_cast<double>(v[i]) * v[i];
  }
  if (norm2 == 0.0) {
    return Status::InvalidArgument(std::string(what) +
                                   " is the zero vector (no direction for cosine similarity)");
  }
  double inv = 1.0 / std::sqrt(norm2);
  std::vector<float> unit(v.size());
  for (size_t i = 0; i < v.size(); ++i) unit[i] = static_cast<float>(v[i] * inv);
  return unit;
}

}  // namespace

Status ValidateIndexParams(const IndexParams& p) {
  if (p.dimension == 0 || p.dimension > kMaxSnapshotDimension) {
    return Status::InvalidArgument("dimension must be in [1, 65536]");
  }
  if (p.hnsw_m < 2 || p.hnsw_m > 256) return Status::InvalidArgument("hnsw_m must be in [2, 256]");
  if (p.ef_construction < 1 || p.ef_search < 1 || p.ef_construction > kMaxEf ||
      p.ef_search > kMaxEf) {
    return Status::InvalidArgument("ef_construction and ef_search must be in [1, " +
                                   std::to_string(kMaxEf) + "]");
  }
  if (p.seal_threshold == 0 || p.seal_threshold > (size_t{1} << 30)) {
    return Status::InvalidArgument("seal_threshold must be in [1, 2^30]");
  }
  if (p.max_segment_size < p.seal_threshold || p.max_segment_size >= (size_t{1} << 31)) {
    return Status::InvalidArgument("max_segment_size must be in [seal_threshold, 2^31)");
  }
  if (!(p.rebuild_tombstone_ratio > 0.0 && p.rebuild_tombstone_ratio <= 1.0)) {
    return Status::InvalidArgument("rebuild_tombstone_ratio must be in (0, 1]");
  }
  return Status::Ok();
}

class VectorIndex::Impl {
 public:
  explicit Impl(const IndexParams& params) : params_(params) {
    mutable_ = NewFlatSegmentLocked(params_.seal_threshold);
    segments_.push_back(mutable_);
    PublishLocked();
  }

  ~Impl() {
    {
      std::lock_guard lock(bg_mu_);
      stop_.store(true);
    }
    bg_cv_.notify_all();
    if (worker_.joinable()) worker_.join();
  }

  Status Add(uint64_t slot, const float* unit) {
    std::lock_guard lock(write_mu_);
    if (locations_.contains(slot)) {
      return Status::AlreadyExists("slot " + std::to_string(slot) + " is already in the index");
    }
    AppendLocked(slot, unit);
    return Status::Ok();
  }

  Status Remove(uint64_t slot) {
    std::lock_guard lock(write_mu_);
    auto it = locations_.find(slot);
    if (it == locations_.end()) {
      return Status::NotFound("slot " + std::to_string(slot) + " is not in the index");
    }
    Location where = it->second;
    locations_.erase(it);
    SegmentPtr segment = FindLocked(where.segment_id);
    segment->tombstones()->Set(where.local);
    MaybeScheduleRebuildLocked(*segment);
    return Status::Ok();
  }

  std::vector<Hit> Search(const float* unit, size_t k, float min_score,
                          const Filter* filter) const {
    std::shared_ptr<const SegmentList> snapshot = Snapshot();
    TopK top(k, min_score);
    const Int8Query code = Int8Query::Of(unit, params_.dimension);
    for (const SegmentPtr& segment : snapshot->segments) {
      segment->Search(unit, code, filter, top);
    }
    return std::move(top).Take();
  }

  Result<std::vector<uint8_t>> Serialize() const {
    std::vector<SegmentCapture> captures;
    std::optional<uint64_t> highest;
    {
      std::lock_guard lock(write_mu_);
      highest = highest_slot_;
      for (const SegmentPtr& segment : segments_) {
        size_t size = segment->size();
        if (size == 0) continue;
        captures.push_back({segment, size, segment->tombstones()->CopyWords(size)});
      }
    }
    return EncodeSnapshot(params_.dimension, highest, captures);
  }

  // Loads a decoded snapshot into this fresh index. HNSW segments are kept as they are
  // (unless in exact mode); the live entries of flat segments are appended again, so they
  // seal as usual.
  Status Load(DecodedSnapshot snapshot) {
    std::lock_guard lock(write_mu_);
    highest_slot_ = snapshot.highest_slot;
    for (DecodedSegment& decoded : snapshot.segments) {
      for (uint64_t slot : decoded.slots) {
        if (!highest_slot_.has_value() || slot > *highest_slot_) {
          return Status::Corruption("snapshot: slot " + std::to_string(slot) +
                                    " is above the highest slot in the header");
        }
      }
      if (decoded.kind == Segment::Kind::kHnsw && !params_.exact) {
        SC_RETURN_IF_ERROR(LoadHnswLocked(decoded));
        continue;
      }
      std::vector<float> vector(params_.dimension);
      for (size_t local = 0; local < decoded.slots.size(); ++local) {
        if (decoded.removed(local)) continue;
        SC_RETURN_IF_ERROR(CheckNotLiveLocked(decoded.slots[local]));
        decoded.CopyVector(local, params_.dimension, vector.data());
        AppendLocked(decoded.slots[local], vector.data());
      }
    }
    PublishLocked();
    return Status::Ok();
  }

  std::optional<uint64_t> HighestSlot() const {
    std::lock_guard lock(write_mu_);
    return highest_slot_;
  }

  size_t Size() const {
    std::lock_guard lock(write_mu_);
    return locations_.size();
  }

  bool Contains(uint64_t slot) const {
    std::lock_guard lock(write_mu_);
    return locations_.contains(slot);
  }

  void WaitForBackgroundWork() const {
    std::unique_lock lock(bg_mu_);
    idle_cv_.wait(lock, [&] { return (jobs_.empty() && !busy_) || stop_.load(); });
  }

  bool SealMutable(size_t min_vectors) {
    std::lock_guard lock(write_mu_);
    if (params_.exact || mutable_->size() < std::max<size_t>(min_vectors, 1)) return false;
    FreezeMutableLocked();
    return true;
  }

  SegmentStats Stats() const {
    std::shared_ptr<const SegmentList> snapshot = Snapshot();
    SegmentStats stats;
    for (const SegmentPtr& segment : snapshot->segments) {
      if (segment->kind() == Segment::Kind::kFlat) {
        ++stats.flat_segments;
      } else {
        ++stats.hnsw_segments;
      }
      stats.tombstoned += segment->tombstones()->count();
    }
    std::lock_guard lock(bg_mu_);
    stats.background_failures = background_failures_;
    return stats;
  }

 private:
  struct SegmentList {
    std::vector<SegmentPtr> segments;
  };
  struct Location {
    uint64_t segment_id;
    size_t local;
  };
  struct Job {
    enum class Kind { kSeal, kRebuild } kind;
    uint64_t segment_id;
  };

  std::shared_ptr<const SegmentList> Snapshot() const {
    std::lock_guard lock(snapshot_mu_);
    return snapshot_;
  }

  // Makes the writer's segment list the one new searches see.
  // REQUIRES: write_mu_
  void PublishLocked() {
    auto list = std::make_shared<const SegmentList>(SegmentList{segments_});
    std::lock_guard lock(snapshot_mu_);
    snapshot_ = std::move(list);
  }

  // REQUIRES: write_mu_
  std::shared_ptr<FlatSegment> NewFlatSegmentLocked(size_t capacity) {
    return std::make_shared<FlatSegment>(next_segment_id_++, params_.dimension, capacity);
  }

  // REQUIRES: write_mu_; the segment is in segments_ (every Location points into it).
  SegmentPtr FindLocked(uint64_t id) const {
    for (const SegmentPtr& segment : segments_) {
      if (segment->id() == id) return segment;
    }
    return nullptr;
  }

  // Replaces (or, given null, drops) segment `id` in the writer's list; readers see the
  // change at the next PublishLocked, so several changes become visible at once.
  // REQUIRES: write_mu_
  void ReplaceLocked(uint64_t id, SegmentPtr replacement) {
    for (auto it = segments_.begin(); it != segments_.end(); ++it) {
      if ((*it)->id() != id) continue;
      if (replacement) {
        *it = std::move(replacement);
      } else {
        segments_.erase(it);
      }
      return;
    }
  }

  // REQUIRES: write_mu_
  Status CheckNotLiveLocked(uint64_t slot) const {
    if (locations_.contains(slot)) {
      return Status::Corruption("snapshot: slot " + std::to_string(slot) + " is live twice");
    }
    return Status::Ok();
  }

  // REQUIRES: write_mu_; `unit` has unit length; `slot` is not live.
  void AppendLocked(uint64_t slot, const float* unit) {
    size_t local = mutable_->Append(slot, unit);
    locations_[slot] = {mutable_->id(), local};
    if (!highest_slot_.has_value() || slot > *highest_slot_) highest_slot_ = slot;
    if (mutable_->full()) FreezeMutableLocked();
  }

  // The full mutable segment stays searchable (exactly) while a new one takes the inserts;
  // in HNSW mode the frozen one is queued for sealing.
  // REQUIRES: write_mu_
  void FreezeMutableLocked() {
    uint64_t frozen = mutable_->id();
    mutable_ = NewFlatSegmentLocked(params_.seal_threshold);
    segments_.push_back(mutable_);
    PublishLocked();
    if (!params_.exact) Enqueue({Job::Kind::kSeal, frozen});
  }

  // REQUIRES: write_mu_
  Status LoadHnswLocked(DecodedSegment& decoded) {
    size_t n = decoded.slots.size();
    auto tombstones = std::make_shared<Tombstones>(n);
    uint64_t id = next_segment_id_++;
    for (size_t local = 0; local < n; ++local) {
      if (decoded.removed(local)) {
        tombstones->Set(local);
        continue;
      }
      SC_RETURN_IF_ERROR(CheckNotLiveLocked(decoded.slots[local]));
      locations_[decoded.slots[local]] = {id, local};
    }
    auto segment = std::make_shared<HnswSegment>(id, std::move(tombstones), std::move(decoded.hnsw),
                                                 std::move(decoded.slots), params_.ef_search);
    segments_.insert(segments_.end() - 1, segment);
    MaybeScheduleRebuildLocked(*segment);
    return Status::Ok();
  }

  // Sealed segments (and frozen flat ones in exact mode) are rebuilt once their removed
  // fraction passes the ratio. A frozen segment still waiting to seal is checked after.
  // REQUIRES: write_mu_
  void MaybeScheduleRebuildLocked(const Segment& segment) {
    if (segment.id() == mutable_->id()) return;
    if (segment.kind() == Segment::Kind::kFlat && !params_.exact) return;
    if (static_cast<double>(segment.tombstones()->count()) <=
        params_.rebuild_tombstone_ratio * static_cast<double>(segment.size())) {
      return;
    }
    if (!rebuilds_queued_.insert(segment.id()).second) return;
    Enqueue({Job::Kind::kRebuild, segment.id()});
  }

  void Enqueue(Job job) {
    std::lock_guard lock(bg_mu_);
    if (stop_.load()) return;
    jobs_.push_back(job);
    if (!worker_.joinable()) worker_ = std::thread([this] { WorkerLoop(); });
    bg_cv_.notify_one();
  }

  void WorkerLoop() {
    // Builds run at the requests' priority. Every lookup scans the vectors still waiting for
    // their graph exactly, so a build put off is paid for again by each lookup until it is
    // done: a build thread at nice 10 got too little of 2 cores busy with lookups to keep up
    // with 2,500 puts/s, and the exact scans took 20-26% of the server (bench/README.md,
    // session 19).
    std::unique_lock lock(bg_mu_);
    while (true) {
      const auto ready = [&] { return stop_.load() || !jobs_.empty(); };
      if (!bg_cv_.wait_for(lock, kLinkMemoIdle, ready)) {
        ForgetLinkMemo();
        bg_cv_.wait(lock, ready);
      }
      if (stop_.load()) break;
      Job job = jobs_.front();
      jobs_.pop_front();
      busy_ = true;
      lock.unlock();
      Status s = job.kind == Job::Kind::kSeal ? Seal(job.segment_id) : Rebuild(job.segment_id);
      lock.lock();
      if (!s.ok() && !stop_.load()) ++background_failures_;
      busy_ = false;
      idle_cv_.notify_all();
    }
    idle_cv_.notify_all();
  }

  // The memo for a build that extends `graph` (null: a new graph): the worker's if it
  // describes that graph, else emptied. It describes no graph until the build succeeds
  // (a failed or abandoned build leaves it half updated). Worker thread only.
  LinkMemo* LinkMemoFor(const HnswGraph* graph) {
    if (graph == nullptr || graph != link_memo_graph_) link_memo_ = {};
    link_memo_graph_ = nullptr;
    return &link_memo_;
  }

  // Every graph the worker builds or extends: the memo now describes it, and its neighbour
  // array becomes the spare when it is dropped. Worker thread only.
  void AdoptBuilt(HnswGraph& graph) {
    link_memo_graph_ = &graph;
    graph.spare_links = spare_links_;
  }

  // Frees the memo and the spare neighbour array while the worker idles. Worker thread only.
  void ForgetLinkMemo() {
    link_memo_ = {};
    link_memo_graph_ = nullptr;
    spare_links_->Clear();
  }

  // Only the worker replaces or drops segments, so the one a job names is still there.
  SegmentPtr FindForJob(uint64_t id) const {
    std::lock_guard lock(write_mu_);
    return FindLocked(id);
  }

  // Seals a frozen flat segment: extends the first HNSW segment with room for it, or builds
  // a new one (which keeps the flat segment's id and shares its tombstones).
  Status Seal(uint64_t id) {
    SegmentPtr flat = FindForJob(id);
    size_t n = flat->size();
    size_t d = params_.dimension;
    std::vector<float> vectors(n * d);
    std::vector<uint64_t> slots(n);
    for (size_t local = 0; local < n; ++local) {
      flat->CopyVector(local, vectors.data() + local * d);
      slots[local] = flat->slot(local);
    }
    HnswBuildOptions options{.m = params_.hnsw_m, .ef_construction = params_.ef_construction};
    if (SegmentPtr base = HnswWithRoomFor(n)) {
      return Extend(static_cast<const HnswSegment&>(*base), *flat, vectors, std::move(slots),
                    options);
    }
    SC_ASSIGN_OR_RETURN(auto index,
                        BuildHnsw(vectors.data(), n, d, options, &stop_, LinkMemoFor(nullptr)));
    AdoptBuilt(*index);
    auto sealed = std::make_shared<HnswSegment>(id, flat->tombstones(), std::move(index),
                                                std::move(slots), params_.ef_search);
    std::lock_guard lock(write_mu_);
    ReplaceLocked(id, sealed);
    PublishLocked();
    MaybeScheduleRebuildLocked(*sealed);
    return Status::Ok();
  }

  SegmentPtr HnswWithRoomFor(size_t n) const {
    std::lock_guard lock(write_mu_);
    for (const SegmentPtr& segment : segments_) {
      if (segment->kind() == Segment::Kind::kHnsw &&
          segment->size() + n <= params_.max_segment_size) {
        return segment;
      }
    }
    return nullptr;
  }

  // Replaces `base` by a copy with the flat segment's entries added as local ids
  // base.size().. onwards, under base's id, and drops the flat segment. Removes that hit
  // either input while the graph was built are carried over before the swap.
  Status Extend(const HnswSegment& base, const Segment& flat, const std::vector<float>& vectors,
                std::vector<uint64_t> flat_slots, const HnswBuildOptions& options) {
    size_t old_n = base.size(), n = flat_slots.size();
    SC_ASSIGN_OR_RETURN(auto index, ExtendHnsw(base.graph(), vectors.data(), n, options, &stop_,
                                               LinkMemoFor(&base.graph()), spare_links_.get()));
    AdoptBuilt(*index);
    std::vector<uint64_t> slots(old_n + n);
    for (size_t local = 0; local < old_n; ++local) slots[local] = base.slot(local);
    std::copy(flat_slots.begin(), flat_slots.end(), slots.begin() + old_n);
    auto tombstones = std::make_shared<Tombstones>(old_n + n);
    auto extended = std::make_shared<HnswSegment>(base.id(), tombstones, std::move(index),
                                                  std::move(slots), params_.ef_search);

    std::lock_guard lock(write_mu_);
    for (size_t local = 0; local < old_n; ++local) {
      if (base.tombstones()->Test(local)) tombstones->Set(local);
    }
    for (size_t j = 0; j < n; ++j) {
      if (flat.tombstones()->Test(j)) {
        tombstones->Set(old_n + j);
      } else {
        locations_.at(flat_slots[j]) = {base.id(), old_n + j};
      }
    }
    ReplaceLocked(flat.id(), nullptr);
    ReplaceLocked(base.id(), extended);
    PublishLocked();
    MaybeScheduleRebuildLocked(*extended);
    return Status::Ok();
  }

  // Rebuilds a segment without its removed entries, under a new id. Entries removed while
  // the rebuild ran are tombstoned in the new segment before it is published.
  Status Rebuild(uint64_t id) {
    SegmentPtr old = FindForJob(id);
    size_t d = params_.dimension;
    std::vector<size_t> old_locals;
    std::vector<uint64_t> slots;
    std::vector<float> vectors;
    for (size_t local = 0; local < old->size(); ++local) {
      if (old->tombstones()->Test(local)) continue;
      old_locals.push_back(local);
      slots.push_back(old->slot(local));
      vectors.resize(vectors.size() + d);
      old->CopyVector(local, vectors.data() + vectors.size() - d);
    }
    size_t n = old_locals.size();
    uint64_t new_id;
    {
      std::lock_guard lock(write_mu_);
      new_id = next_segment_id_++;
    }
    std::shared_ptr<Segment> rebuilt;
    if (n > 0 && old->kind() == Segment::Kind::kHnsw) {
      HnswBuildOptions options{.m = params_.hnsw_m, .ef_construction = params_.ef_construction};
      SC_ASSIGN_OR_RETURN(auto index,
                          BuildHnsw(vectors.data(), n, d, options, &stop_, LinkMemoFor(nullptr)));
      AdoptBuilt(*index);
      rebuilt = std::make_shared<HnswSegment>(new_id, std::make_shared<Tombstones>(n),
                                              std::move(index), slots, params_.ef_search);
    } else if (n > 0) {
      auto flat = std::make_shared<FlatSegment>(new_id, d, n);
      for (size_t j = 0; j < n; ++j) flat->Append(slots[j], vectors.data() + j * d);
      rebuilt = std::move(flat);
    }

    std::lock_guard lock(write_mu_);
    rebuilds_queued_.erase(id);
    for (size_t j = 0; j < n; ++j) {
      if (old->tombstones()->Test(old_locals[j])) {
        rebuilt->tombstones()->Set(j);
        continue;
      }
      Location& where = locations_.at(slots[j]);
      where = {new_id, j};
    }
    ReplaceLocked(id, rebuilt);
    PublishLocked();
    if (rebuilt) MaybeScheduleRebuildLocked(*rebuilt);
    return Status::Ok();
  }

  const IndexParams params_;

  mutable std::mutex snapshot_mu_;
  std::shared_ptr<const SegmentList> snapshot_;  // GUARDED_BY(snapshot_mu_)

  // Writers (Add, Remove, segment swaps) serialise here; searches never take it.
  mutable std::mutex write_mu_;
  std::vector<SegmentPtr> segments_;                  // GUARDED_BY(write_mu_)
  std::shared_ptr<FlatSegment> mutable_;              // GUARDED_BY(write_mu_)
  std::unordered_map<uint64_t, Location> locations_;  // live slots, GUARDED_BY(write_mu_)
  std::optional<uint64_t> highest_slot_;              // GUARDED_BY(write_mu_)
  uint64_t next_segment_id_ = 1;                      // GUARDED_BY(write_mu_)
  std::unordered_set<uint64_t> rebuilds_queued_;      // GUARDED_BY(write_mu_)

  mutable std::mutex bg_mu_;
  mutable std::condition_variable bg_cv_;
  mutable std::condition_variable idle_cv_;
  std::deque<Job> jobs_;            // GUARDED_BY(bg_mu_)
  bool busy_ = false;               // GUARDED_BY(bg_mu_)
  size_t background_failures_ = 0;  // GUARDED_BY(bg_mu_)
  std::atomic<bool> stop_{false};   // also polled by HNSW builds to abandon them
  std::thread worker_;              // started by the first job
  // The construction's memo of the graph the worker built last (LinkMemoFor), so that the
  // next seal extending that graph re-selects its old nodes' lists with few products. Every
  // graph of the index but those of a snapshot is built by the worker, which points this at
  // each one it builds: a graph it does not point at is never taken for another at the same
  // address. Worker thread only.
  LinkMemo link_memo_;
  const HnswGraph* link_memo_graph_ = nullptr;
  // The neighbour array of the graph version the worker's last extension replaced, once no
  // search reads it, for the next extension to copy into (SpareLinks); freed with the memo
  // when the worker idles.
  const std::shared_ptr<SpareLinks> spare_links_ = std::make_shared<SpareLinks>();
};

VectorIndex::VectorIndex(const IndexParams& params, std::unique_ptr<Impl> impl)
    : params_(params), impl_(std::move(impl)) {}

VectorIndex::~VectorIndex() = default;

Result<std::unique_ptr<VectorIndex>> VectorIndex::Create(const IndexParams& params) {
  SC_RETURN_IF_ERROR(ValidateIndexParams(params));
  return std::unique_ptr<VectorIndex>(new VectorIndex(params, std::make_unique<Impl>(params)));
}

Result<std::unique_ptr<VectorIndex>> VectorIndex::Deserialize(std::span<const uint8_t> bytes,
                                                              const IndexParams& params) {
  SC_RETURN_IF_ERROR(ValidateIndexParams(params));
  SC_ASSIGN_OR_RETURN(DecodedSnapshot snapshot, DecodeSnapshot(bytes));
  if (snapshot.dimension != params.dimension) {
    return Status::InvalidArgument("snapshot has dimension " + std::to_string(snapshot.dimension) +
                                   ", params say " + std::to_string(params.dimension));
  }
  auto impl = std::make_unique<Impl>(params);
  SC_RETURN_IF_ERROR(impl->Load(std::move(snapshot)));
  return std::unique_ptr<VectorIndex>(new VectorIndex(params, std::move(impl)));
}

Status VectorIndex::Add(uint64_t slot, std::span<const float> vec) {
  SC_ASSIGN_OR_RETURN(std::vector<float> unit, Normalized(vec, params_.dimension, "vector"));
  return impl_->Add(slot, unit.data());
}

Status VectorIndex::Remove(uint64_t slot) { return impl_->Remove(slot); }

Result<std::vector<Hit>> VectorIndex::Search(std::span<const float> query, size_t k,
                                             float min_score, const Filter* filter) const {
  SC_ASSIGN_OR_RETURN(std::vector<float> unit, Normalized(query, params_.dimension, "query"));
  if (k == 0) return std::vector<Hit>{};
  return impl_->Search(unit.data(), k, min_score, filter);
}

Result<std::vector<uint8_t>> VectorIndex::Serialize() const { return impl_->Serialize(); }
std::optional<uint64_t> VectorIndex::HighestSlot() const { return impl_->HighestSlot(); }
size_t VectorIndex::Size() const { return impl_->Size(); }
bool VectorIndex::Contains(uint64_t slot) const { return impl_->Contains(slot); }
bool VectorIndex::SealMutable(size_t min_vectors) { return impl_->SealMutable(min_vectors); }
void VectorIndex::WaitForBackgroundWork() const { impl_->WaitForBackgroundWork(); }
VectorIndex::SegmentStats VectorIndex::Stats() const { return impl_->Stats(); }

}  // namespace sealcache::index
