// OrgTransaction: the writes of one org held back in an indexed batch and made as one
// atomic RocksDB write at the commit (the Redis front's MULTI/EXEC).
#include <algorithm>

#include "rocksdb_status.h"
#include "store_impl.h"

namespace sealcache::storage::internal {

class OrgTransactionImpl final : public OrgTransaction {
 public:
  OrgTransactionImpl(StoreImpl* store, OrgState* org)
      : store_(store), org_id_(org->id), incarnation_(org->db->incarnation) {}

  ~OrgTransactionImpl() override {
    if (finished_) return;
    // Never committed: nothing was written; what it reserved goes back, if its org is still
    // the one it began on (a dropped org's tracker is gone with it).
    std::shared_lock<std::shared_mutex> lock(store_->orgs_mu_);
    if (auto org = Org(); org.ok()) {
      for (const auto& v : pending_.victims) (*org)->capacity->Release(v);
    } else {
      for (auto& room : pending_.rooms) room->Forget();
    }
  }

  Result<PutResult> Put(const PutRequest& request) override {
    std::shared_lock<std::shared_mutex> lock(store_->orgs_mu_);
    SC_ASSIGN_OR_RETURN(OrgState * org, Org());
    return store_->PutEntry(*org, request, &pending_);
  }

  Result<RemovedEntries> Delete(const Digest& digest) override {
    std::shared_lock<std::shared_mutex> lock(store_->orgs_mu_);
    SC_ASSIGN_OR_RETURN(OrgState * org, Org());
    return store_->DeleteOne(*org, digest, &pending_);
  }

  Result<EntryMeta> SetExpiry(const Digest& digest, int64_t expires_ms) override {
    std::shared_lock<std::shared_mutex> lock(store_->orgs_mu_);
    SC_ASSIGN_OR_RETURN(OrgState * org, Org());
    return store_->SetEntryExpiry(*org, digest, expires_ms, &pending_);
  }

  Result<Entry> Get(const Digest& digest, bool with_payload) override {
    std::shared_lock<std::shared_mutex> lock(store_->orgs_mu_);
    SC_ASSIGN_OR_RETURN(OrgState * org, Org());
    org->counters.gets++;
    auto entry = store_->ReadEntry(*org, digest, with_payload, &pending_);
    (entry.ok() ? org->counters.hits : org->counters.misses)++;
    return entry;
  }

  Result<StoredValue> GetValue(const Digest& digest) override {
    std::shared_lock<std::shared_mutex> lock(store_->orgs_mu_);
    SC_ASSIGN_OR_RETURN(OrgState * org, Org());
    return store_->ReadValue(*org, digest, &pending_);
  }

  Result<std::vector<std::pair<std::string, RemovedEntries>>> Commit() override {
    std::vector<std::pair<std::string, RemovedEntries>> evicted_elsewhere;
    std::shared_lock<std::shared_mutex> lock(store_->orgs_mu_);
    SC_ASSIGN_OR_RETURN(OrgState * org, Org());
    {
      // Every entry written, locked in stripe order as a put locks its victims: the tracker
      // learns the writes under the same locks as the store's other writers do.
      std::vector<size_t> stripes;
      for (const Digest& d : pending_.digests) stripes.push_back(OrgState::StripeOf(d));
      std::sort(stripes.begin(), stripes.end());
      stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
      std::vector<std::unique_lock<std::mutex>> locks;
      locks.reserve(stripes.size());
      for (size_t stripe : stripes) locks.emplace_back(org->digest_locks[stripe]);
      rocksdb::WriteBatch* batch = pending_.batch.GetWriteBatch();
      if (batch->Count() > 0) {
        rocksdb::Status s = store_->Write(*org->db, store_->write_options_, batch);
        if (!s.ok()) return FromRocks(s, "transaction not written");
      }
      for (const auto& counted : pending_.counted) counted();
      for (const auto& v : pending_.victims) org->capacity->Release(v);  // those not evicted
    }
    finished_ = true;
    pending_.rooms.clear();
    // As after a put: another org's eviction for the server-wide limit is its own write.
    for (const auto& [other, bytes] : pending_.elsewhere) {
      auto evicted = store_->EvictFrom(*other, bytes, 0, /*server_limit=*/true);
      if (evicted.ok() && evicted->count > 0) {
        evicted_elsewhere.emplace_back(other->id, std::move(evicted).value());
      }
    }
    return evicted_elsewhere;
  }

 private:
  // The org as the transaction began on it, open. REQUIRES: orgs_mu_ held.
  Result<OrgState*> Org() const {
    if (finished_) return Status::FailedPrecondition("the transaction is committed");
    SC_ASSIGN_OR_RETURN(OrgState * org, store_->FindOpenOrg(org_id_));
    if (org->db->incarnation != incarnation_) {
      return Status::Unavailable("org " + org_id_ +
                                 " was dropped, moved or reopened during the "
                                 "transaction: nothing of it was written");
    }
    return org;
  }

  StoreImpl* store_;
  const std::string org_id_;
  const uint64_t incarnation_;  // of the org's database when the transaction began
  StoreImpl::PendingWrites pending_;
  bool finished_ = false;
};

Result<std::unique_ptr<OrgTransaction>> StoreImpl::BeginTransaction(std::string_view org_id) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
  return std::unique_ptr<OrgTransaction>(std::make_unique<OrgTransactionImpl>(this, org));
}

}  // namespace sealcache::storage::internal
