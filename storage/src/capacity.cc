#include "capacity.h"

#include <algorithm>
#include <utility>

namespace sealcache::storage::internal {

CapacityTracker::OrderKey CapacityTracker::KeyOf(const Digest& d, const Item& item) const {
  switch (policy_) {
    case EvictionPolicy::kLfu:
      return {static_cast<int64_t>(std::min<uint64_t>(item.hits, INT64_MAX)), item.last_access_ms,
              item.sequence, d};
    case EvictionPolicy::kTtl:
      return {item.expires_ms, 0, item.sequence, d};
    case EvictionPolicy::kLru:
    case EvictionPolicy::kNoEviction:
      break;
  }
  return {item.last_access_ms, 0, item.sequence, d};
}

void CapacityTracker::Configure(EvictionPolicy policy, bool ordered) {
  std::lock_guard<std::mutex> l(mu_);
  if (policy == policy_ && ordered == ordered_) return;
  policy_ = policy;
  ordered_ = ordered;
  order_.clear();
  if (!ordered_) return;
  items_.ForEach([&](const Digest& d, Item& item) {
    if (!item.pending) item.order_at = order_.insert(KeyOf(d, item)).first;
  });
}

// A key is most often the largest of its order (a write expires after the ones before it,
// and an access is the latest), so each is inserted with the end as its hint: amortized
// constant time then, and a search otherwise.
void CapacityTracker::Link(const Digest& d, Item& item) {
  if (!item.filed || item.expiry_at->first > item.expires_ms) {
    if (item.filed) by_expiry_.erase(item.expiry_at);
    item.expiry_at = by_expiry_.emplace_hint(by_expiry_.end(), item.expires_ms, d);
    item.filed = true;
  }
  if (ordered_ && !item.pending) item.order_at = order_.emplace_hint(order_.end(), KeyOf(d, item));
}

void CapacityTracker::Unlink(const Item& item) {
  if (ordered_ && !item.pending) order_.erase(item.order_at);
}

void CapacityTracker::Leave(const Item& item) {
  Unlink(item);
  if (item.pending) {
    pending_bytes_ -= item.bytes;
    pending_entries_--;
  }
  bytes_.fetch_sub(item.bytes, std::memory_order_relaxed);
}

void CapacityTracker::Erase(Digest digest, const Item& item) {
  Leave(item);
  by_expiry_.erase(item.expiry_at);
  entries_.fetch_sub(1, std::memory_order_relaxed);
  items_.Erase(digest);  // (item goes with it)
}

void CapacityTracker::Upsert(const EntryMeta& meta, uint64_t bytes) {
  std::lock_guard<std::mutex> l(mu_);
  auto [found, added] = items_.TryEmplace(meta.digest);
  Item& item = *found;
  if (added) {
    entries_.fetch_add(1, std::memory_order_relaxed);
  } else {
    Leave(item);  // replaced
  }
  item.bytes = bytes;
  item.expires_ms = meta.expires_ms;
  item.last_access_ms = std::max(meta.created_ms, meta.last_hit_ms);
  item.hits = meta.hits;
  item.vector_slot = meta.vector_slot;
  item.sequence = next_sequence_++;
  item.incarnation = item.sequence;
  item.pending = false;
  Link(meta.digest, item);
  bytes_.fetch_add(bytes, std::memory_order_relaxed);
}

void CapacityTracker::Remove(const Digest& digest) {
  std::lock_guard<std::mutex> l(mu_);
  if (const Item* item = items_.Find(digest)) Erase(digest, *item);
}

void CapacityTracker::Touch(const Digest& digest, int64_t now_ms) {
  std::lock_guard<std::mutex> l(mu_);
  Item* found = items_.Find(digest);
  if (found == nullptr) return;
  Item& item = *found;
  const bool reorder = ordered_ && !item.pending;
  if (reorder) order_.erase(item.order_at);
  item.hits++;
  item.last_access_ms = std::max(item.last_access_ms, now_ms);
  item.sequence = next_sequence_++;
  if (reorder) item.order_at = order_.emplace_hint(order_.end(), KeyOf(digest, item));
}

void CapacityTracker::SetExpiry(const Digest& digest, int64_t expires_ms) {
  std::lock_guard<std::mutex> l(mu_);
  Item* found = items_.Find(digest);
  if (found == nullptr) return;
  Item& item = *found;
  Unlink(item);
  item.expires_ms = expires_ms;
  Link(digest, item);
}

void CapacityTracker::ForgetExpired(int64_t now_ms) {
  std::lock_guard<std::mutex> l(mu_);
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now_ms) {
    const Digest due = by_expiry_.begin()->second;  // (a copy: Erase drops the filing)
    Item* found = items_.Find(due);
    if (found == nullptr) {  // not reached: every filing has its item
      by_expiry_.erase(by_expiry_.begin());
      continue;
    }
    Item& item = *found;
    if (item.expires_ms <= now_ms) {
      Erase(due, item);
      continue;
    }
    // Filed early (its expiry moved later since): filed again at its expiry.
    auto node = by_expiry_.extract(item.expiry_at);
    node.value().first = item.expires_ms;
    item.expiry_at = by_expiry_.insert(std::move(node)).position;
  }
}

std::vector<CapacityTracker::Victim> CapacityTracker::ChooseVictims(uint64_t bytes,
                                                                    uint64_t entries,
                                                                    const Digest& keep) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<Victim> out;
  if (!ordered_) return out;
  uint64_t freed_bytes = 0, freed_entries = 0;
  auto it = order_.begin();
  while (it != order_.end() && (freed_bytes < bytes || freed_entries < entries)) {
    const Digest d = std::get<3>(*it);
    Item* found = d == keep ? nullptr : items_.Find(d);
    if (found == nullptr) {  // (the entry being written; no other order key lacks its item)
      ++it;
      continue;
    }
    Item& item = *found;
    item.pending = true;
    pending_bytes_ += item.bytes;
    pending_entries_++;
    freed_bytes += item.bytes;
    freed_entries++;
    out.push_back({d, item.bytes, item.incarnation, item.vector_slot});
    it = order_.erase(it);  // (item.order_at is not used while pending)
  }
  return out;
}

void CapacityTracker::Evicted(const Victim& v) {
  std::lock_guard<std::mutex> l(mu_);
  const Item* item = items_.Find(v.digest);
  if (item != nullptr && item->pending && item->incarnation == v.incarnation) {
    Erase(v.digest, *item);
  }
}

void CapacityTracker::Release(const Victim& v) {
  std::lock_guard<std::mutex> l(mu_);
  Item* item = items_.Find(v.digest);
  if (item == nullptr || !item->pending || item->incarnation != v.incarnation) return;
  item->pending = false;
  pending_bytes_ -= item->bytes;
  pending_entries_--;
  if (ordered_) item->order_at = order_.insert(KeyOf(v.digest, *item)).first;
}

bool CapacityTracker::StillChosen(const Victim& v) const {
  std::lock_guard<std::mutex> l(mu_);
  const Item* item = items_.Find(v.digest);
  return item != nullptr && item->pending && item->incarnation == v.incarnation;
}

std::optional<CapacityTracker::Live> CapacityTracker::FindLive(const Digest& digest,
                                                               int64_t now_ms) const {
  std::lock_guard<std::mutex> l(mu_);
  const Item* item = items_.Find(digest);
  if (item == nullptr || item->expires_ms <= now_ms) return std::nullopt;
  return Live{item->expires_ms, item->vector_slot, item->bytes};
}

namespace {
uint64_t Settled(uint64_t live, uint64_t pending, int64_t reserved) {
  const int64_t v = static_cast<int64_t>(live - pending) + reserved;
  return v > 0 ? static_cast<uint64_t>(v) : 0;
}
}  // namespace

CapacityTracker::Need CapacityTracker::Reserve(int64_t bytes, int64_t entries, uint64_t max_bytes,
                                               uint64_t max_entries) {
  std::lock_guard<std::mutex> l(mu_);
  reserved_bytes_ += bytes;
  reserved_entries_ += entries;
  const uint64_t b =
      Settled(bytes_.load(std::memory_order_relaxed), pending_bytes_, reserved_bytes_);
  const uint64_t e =
      Settled(entries_.load(std::memory_order_relaxed), pending_entries_, reserved_entries_);
  Need need;
  if (max_bytes > 0 && b > max_bytes) need.bytes = b - max_bytes;
  if (max_entries > 0 && e > max_entries) need.entries = e - max_entries;
  return need;
}

void CapacityTracker::Unreserve(int64_t bytes, int64_t entries) {
  std::lock_guard<std::mutex> l(mu_);
  reserved_bytes_ -= bytes;
  reserved_entries_ -= entries;
}

uint64_t CapacityTracker::bytes_after_pending() const {
  std::lock_guard<std::mutex> l(mu_);
  return Settled(bytes_.load(std::memory_order_relaxed), pending_bytes_, reserved_bytes_);
}

uint64_t CapacityTracker::entries_after_pending() const {
  std::lock_guard<std::mutex> l(mu_);
  return Settled(entries_.load(std::memory_order_relaxed), pending_entries_, reserved_entries_);
}

}  // namespace sealcache::storage::internal
