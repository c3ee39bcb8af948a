// The Store implementation. Private to storage/.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/sst_file_manager.h>
#include <rocksdb/utilities/write_batch_with_index.h>
#include <rocksdb/write_buffer_manager.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "capacity.h"
#include "catalog.h"
#include "encrypted_file_system.h"
#include "expiry.h"
#include "info_log.h"
#include "sealcache/crypto/hash.h"
#include "sealcache/crypto/keystore.h"
#include "sealcache/storage/audit_log.h"
#include "sealcache/storage/data_layout.h"
#include "sealcache/storage/store.h"
#include "value_cache.h"

namespace sealcache::storage::internal {

// The families of an org's own RocksDB instance (and of the legacy shared one).
inline constexpr char kMetaFamily[] = "meta";
inline constexpr char kDataFamily[] = "data";
// Legacy shared instance: one family "org.<org>" per org.
inline constexpr char kOrgFamilyPrefix[] = "org.";
inline constexpr size_t kDigestLockStripes = 64;

// One org's RocksDB instance; closes it (every handle first) on destruction.
struct OrgDb {
  OrgDb() = default;
  OrgDb(const OrgDb&) = delete;
  OrgDb& operator=(const OrgDb&) = delete;
  ~OrgDb();

  rocksdb::DB* db = nullptr;
  std::string org;  // the org's id
  // Distinct for every instance a store opens (a drop and create, or a reopen, makes another).
  uint64_t incarnation = 0;
  // The store's table of hot values, which forgets this instance's when it closes.
  ValueCache* values = nullptr;
  // default, meta, data, as DB::Open returned them.
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::shared_ptr<InfoLog> info_log;
  // After a write failed for lack of space: DB::Resume attempts (StoreImpl::Write).
  std::mutex resume_mu;
  std::chrono::steady_clock::time_point last_resume_attempt{};

  rocksdb::ColumnFamilyHandle* meta() const { return handles[1]; }
  rocksdb::ColumnFamilyHandle* data() const { return handles[2]; }
};

struct OrgCounters {
  std::atomic<uint64_t> puts{0}, gets{0}, hits{0}, misses{0}, deletes{0};
  std::atomic<uint64_t> evictions_org_limit{0}, evictions_server_limit{0};
};

struct OrgState {
  std::string id;
  OrgConfig config;
  // Null when the org's database could not be opened; then `unavailable` says why and every
  // request but DropOrg answers it.
  std::unique_ptr<OrgDb> db;
  Status unavailable;
  std::atomic<uint64_t> next_slot{0};
  OrgCounters counters;
  // Live entries for the capacity limits (null while the org is unavailable). The limits
  // in effect are copied out of `config` into atomics, as SetOrgLimits changes them while
  // puts read them.
  std::unique_ptr<CapacityTracker> capacity;
  std::atomic<uint64_t> max_bytes{0}, max_entries{0};
  std::atomic<EvictionPolicy> policy{EvictionPolicy::kLru};
  std::atomic<bool> ordered{false};  // an eviction order is kept (a limit applies)
  std::mutex config_mu;              // guards config.limits against SetOrgLimits
  // Serialises read-modify-write of one digest (replacing puts, deletes, hit updates).
  std::array<std::mutex, kDigestLockStripes> digest_locks;
  // Serialises writes of the org's encrypted side files (index snapshots): the service's
  // snapshot writes and the reaper's re-encryption under the active key.
  std::mutex side_files_mu;
  // The org's name key from the catalog, once used (NameDigest).
  std::mutex name_key_mu;                                 // guards name_mac
  std::shared_ptr<const crypto::HmacSha256Key> name_mac;  // prepared from the catalog's key

  static size_t StripeOf(const Digest& d) {
    // Digests are hashes, so their first bytes are uniform.
    return (d[0] | d[1] << 8) % kDigestLockStripes;
  }
  std::mutex& LockFor(const Digest& d) { return digest_locks[StripeOf(d)]; }
  crypto::RingId ring() const { return {crypto::KeyScope::kOrg, id}; }
};

// One encrypted side file of an org (an index snapshot) with the key version of its header.
struct SideFile {
  std::string path;
  uint32_t key_version = 0;
  uint64_t size = 0;
};

// One live SST of an org with the key version from its header.
struct OrgFile {
  std::string path;
  uint32_t key_version = 0;
  uint64_t size = 0;
  int64_t max_expiry_ms = 0;
  int level = 0;
  std::string smallest_key, largest_key;
};

class LogFlushGroupImpl;

class StoreImpl final : public Store {
 public:
  static Result<std::unique_ptr<Store>> Open(StoreOptions options,
                                             const crypto::SecretBytes& master_key);
  ~StoreImpl() override;

  Status CreateOrg(std::string_view org, OrgConfig config) override;
  Status DropOrg(std::string_view org) override;
  Result<OrgConfig> GetOrg(std::string_view org) const override;
  Result<RemovedEntries> SetOrgLimits(std::string_view org, const OrgLimits& limits) override;
  uint64_t TotalLogicalBytes() const override;
  std::vector<std::string> ListOrgs() const override;

  Result<PutResult> Put(std::string_view org, const PutRequest& request) override;
  Result<Entry> Get(std::string_view org, const Digest& digest, bool with_payload) override;
  std::vector<Result<Entry>> MultiGet(std::string_view org, std::span<const Digest> digests,
                                      bool with_payload) override;
  Result<Entry> GetBySlot(std::string_view org, uint64_t slot, bool with_payload) override;
  Result<StoredValue> GetValue(std::string_view org, const Digest& digest) override;
  void Prefetch(std::string_view org, std::span<const Digest> digests) override;
  void GetValueEach(std::string_view org, std::span<const Digest> digests,
                    const TakeValue& take) override;
  std::vector<Result<StoredValue>> GetValues(std::string_view org,
                                             std::span<const Digest> digests) override;
  Result<RemovedEntries> Delete(std::string_view org, const Digest& digest) override;
  Result<RemovedEntries> Invalidate(std::string_view org, const InvalidateFilter& filter) override;
  Status RecordHits(std::string_view org, std::span<const HitUpdate> hits) override;
  // RecordHits of hits whose digests are all in lock stripe `stripe`, one per digest.
  Status RecordStripeHits(OrgState& org, size_t stripe, std::span<const HitUpdate> hits);
  Result<EntryMeta> SetExpiry(std::string_view org, const Digest& digest,
                              int64_t expires_ms) override;
  Result<std::unique_ptr<OrgTransaction>> BeginTransaction(std::string_view org) override;
  Result<std::unique_ptr<LogFlushGroup>> OpenLogFlushGroup() override;
  Result<Digest> NameDigest(std::string_view org, std::string_view name) override;
  Status ScanMeta(std::string_view org, const std::function<bool(const EntryMeta&)>& fn,
                  const Digest& from) override;
  Status ScanVectors(std::string_view org, uint64_t from_slot,
                     const std::function<bool(uint64_t, const Digest&, int64_t,
                                              std::span<const float>)>& fn) override;

  Status AddToken(std::span<const uint8_t> token_hash, const TokenRecord& record) override;
  Result<TokenRecord> FindToken(std::span<const uint8_t> token_hash) override;
  Result<uint64_t> RevokeTokens(std::string_view org, std::string_view token_id) override;

  Result<uint32_t> RotateKey(std::string_view org) override;
  Result<uint32_t> RotateOrgKey(OrgState& org, std::string_view reason);
  bool RotationDue(const OrgState& org) const;
  Result<std::string> RotateMasterKey(const crypto::SecretBytes& new_master_key,
                                      std::string_view provider) override;
  Status AuditEvent(std::string_view event, const AuditLog::Fields& fields) override {
    return RecordAudit(event, fields);
  }
  Result<std::vector<KeyVersionStatus>> KeyStatus(std::string_view org) override;
  Result<ReaperReport> RunKeyReaper() override;

  Status WriteOrgFile(std::string_view org, std::string_view name,
                      std::span<const uint8_t> bytes) override;
  Result<std::vector<uint8_t>> ReadOrgFile(std::string_view org, std::string_view name) override;

  Result<OrgStats> Stats(std::string_view org) override;
  uint64_t DecryptOperations() const override { return decrypt_operations_.load(); }
  Result<OrgExport> ExportOrg(std::string_view org) override;
  Status ReopenOrg(std::string_view org) override;
  Result<std::vector<uint8_t>> ReadExportedFile(std::string_view org, std::string_view file,
                                                uint64_t offset, size_t max) override;
  Status StageImport(std::string_view org) override;
  Status WriteStaged(std::string_view org, std::string_view file, uint64_t offset,
                     std::span<const uint8_t> bytes) override;
  Status ImportOrg(std::string_view org, const OrgExport& from) override;
  Status AbandonImport(std::string_view org) override;
  Status Flush() override;
  Status CompactOrg(std::string_view org) override;
  const std::string& data_dir() const override { return layout_.data_dir(); }
  int64_t max_ttl_ms() const override { return options_.max_ttl_ms; }
  std::vector<std::string> RecoveryReport() const override { return recovery_report_; }

 private:
  friend class OrgTransactionImpl;
  friend class LogFlushGroupImpl;
  StoreImpl(StoreOptions options, DataLayout layout);

  Status OpenKeystoreAndAudit(const crypto::SecretBytes& master_key);
  Status CheckEncryptionMode();
  Status OpenEngine();
  Status LoadOrgs();
  // Opens (creating it if `create`) the org's RocksDB instance.
  Result<std::unique_ptr<OrgDb>> OpenOrgDb(const std::string& org, bool create);
  // Removes every trace of an org that is gone from the catalog (a drop, or a create that
  // never committed): its directory and its key ring.
  Status FinishDropOrg(const std::string& org);
  // Moves a store written before the per-org layout (one shared instance in db/) into it.
  Status MigrateLegacyLayout();
  rocksdb::DBOptions OrgDbOptions() const;
  rocksdb::ColumnFamilyOptions BaseFamilyOptions() const;
  rocksdb::ColumnFamilyOptions MetaFamilyOptions(const std::string& meta_dir) const;
  rocksdb::ColumnFamilyOptions DataFamilyOptions(const std::string& data_dir) const;
  Result<uint64_t> RecoverNextSlot(const OrgState& org);
  // db->Write, and after a NoSpace failure, once space is back, DB::Resume and one retry;
  // then the log flush (FlushLog). Then forgets in value_cache_ what the batch wrote
  // (ForgetWrittenValues); a write of hit counts (meta records only, `forget_meta` false)
  // refreshes the cached meta records instead, itself.
  rocksdb::Status Write(OrgDb& db, const rocksdb::WriteOptions& options, rocksdb::WriteBatch* batch,
                        bool forget_meta = true);
  // After a write (not synced) of `db`: writes its log buffer to the file system, or
  // leaves that to the LogFlushGroup open on this thread for this store.
  rocksdb::Status FlushLog(OrgDb& db);
  // DB::FlushWAL, and after a NoSpace failure, once space is back, DB::Resume and one retry.
  rocksdb::Status FlushWal(OrgDb& db);
  // FlushWal of the org's database if it is still the instance `incarnation`.
  Status FlushLogOf(const std::string& org, uint64_t incarnation);
  // Clears a NoSpace background error if the disk has room again; true if it did.
  bool ResumeAfterNoSpace(OrgDb& db);
  Status FlushOrg(OrgDb& db, const std::string& what);

  // REQUIRES: orgs_mu_ held (shared or exclusive).
  Result<OrgState*> FindOrg(std::string_view org) const;
  // FindOrg, and the reason it cannot serve if its database did not open.
  Result<OrgState*> FindOpenOrg(std::string_view org) const;
  struct PendingWrites;
  // The reads below see a transaction's writes when given its `pending` (null: the store's
  // alone).
  // A live entry's meta (and payload), consistent with each other: both from value_cache_
  // when it holds them (and the read is not a transaction's), else from the database (and
  // then cached if admitted). NotFound if none.
  Result<Entry> ReadEntry(const OrgState& org, const Digest& digest, bool with_payload,
                          PendingWrites* pending = nullptr);
  Result<EntryMeta> ReadMeta(const OrgState& org, const Digest& digest,
                             const rocksdb::ReadOptions& ro = {}, PendingWrites* pending = nullptr);
  // ReadMeta for a writer of `digest`. REQUIRES: the caller holds the digest's lock. Outside
  // a transaction, value_cache_'s copy of a live entry's meta record answers when it holds
  // one: under the lock it is the database's (every write of the digest forgets or refreshes
  // it).
  Result<EntryMeta> ReadMetaToWrite(const OrgState& org, const Digest& digest,
                                    PendingWrites* pending);
  // The entry a put of `digest` replaces, as far as the put needs it (none: NotFound); its
  // expiry may have passed. REQUIRES: the caller holds the digest's lock. Outside a
  // transaction the capacity tracker answers for a live entry (under the lock it knows the
  // entry as the database has it), so a put over a live key reads nothing; else
  // ReadMetaToWrite (an expired entry's records may still be there, and its vector record is
  // deleted with them).
  Result<CapacityTracker::Live> EntryToReplace(const OrgState& org, const Digest& digest,
                                               int64_t now, PendingWrites* pending);
  // Corruption if missing; `expires_ms` (if given) receives the record's expiry prefix.
  Result<std::vector<uint8_t>> ReadPayload(const OrgState& org, const Digest& digest,
                                           const rocksdb::ReadOptions& ro = {},
                                           int64_t* expires_ms = nullptr,
                                           PendingWrites* pending = nullptr);
  // A record of `family`: through a transaction's batch (its writes first) when `pending`
  // is given, else from the database. `Value`: std::string or rocksdb::PinnableSlice.
  // REQUIRES: orgs_mu_ held.
  template <typename Value>
  static rocksdb::Status ReadRecord(const OrgState& org, rocksdb::ColumnFamilyHandle* family,
                                    const std::string& key, Value* value, PendingWrites* pending,
                                    const rocksdb::ReadOptions& ro = {}) {
    return pending != nullptr ? pending->batch.GetFromBatchAndDB(org.db->db, ro, family, key, value)
                              : org.db->db->Get(ro, family, key, value);
  }
  // A live entry's payload and expiry (GetValue). REQUIRES: orgs_mu_ held.
  Result<StoredValue> ReadValue(OrgState& org, const Digest& digest, PendingWrites* pending);
  // ReadValue of the latest value (not a transaction's), given once to
  // take(const Result<ValueView>&) instead of copied: from the table of hot values, under
  // its lock, or read from the database (and offered to the table). REQUIRES: orgs_mu_ held.
  template <typename Take>
  void TakeLatestValue(OrgState& org, const Digest& digest, Take&& take);
  // What GetValue answers for a payload record read with status `s`: a view of `value`, or
  // a copy.
  Result<ValueView> ViewOf(OrgState& org, const Digest& digest, const rocksdb::Status& s,
                           const rocksdb::Slice& value);
  Result<StoredValue> ValueOf(OrgState& org, const Digest& digest, const rocksdb::Status& s,
                              const rocksdb::Slice& value);
  // Counts a GetValue that found `digest`'s payload record expiring at `expires_ms` at
  // `now_ms`: NotFound if the entry has expired.
  Status CountValueRead(OrgState& org, const Digest& digest, int64_t expires_ms, int64_t now_ms);
  // Forgets in value_cache_ the entries a write to `db` wrote or deleted (their payload
  // records, and with `forget_meta` their meta records). REQUIRES: called once the write is
  // applied, before it is acknowledged.
  void ForgetWrittenValues(OrgDb& db, rocksdb::WriteBatch& batch, bool forget_meta);
  Status ValidatePut(const OrgState& org, const PutRequest& request) const;

  // Capacity (capacity.h). Builds the org's tracker from its metadata and applies its limits.
  Status LoadCapacity(OrgState& org);
  void ApplyLimits(OrgState& org, const OrgLimits& limits);
  // A put's growth, reserved in its org's tracker until the put is counted (or failed).
  class Reservation {
   public:
    Reservation() = default;
    Reservation(const Reservation&) = delete;
    Reservation& operator=(const Reservation&) = delete;
    ~Reservation() {
      if (tracker_ != nullptr) tracker_->Unreserve(bytes_, entries_);
    }
    void Set(CapacityTracker* tracker, int64_t bytes, int64_t entries) {
      tracker_ = tracker;
      bytes_ = bytes;
      entries_ = entries;
    }
    // The tracker is gone (its org was dropped): nothing to give back.
    void Forget() { tracker_ = nullptr; }

   private:
    CapacityTracker* tracker_ = nullptr;
    int64_t bytes_ = 0, entries_ = 0;
  };
  // What a put must evict to fit: its own org's victims (evicted in the put's write) and
  // how much another org gives for the server-wide limit (its own write, after the put).
  struct RoomPlan {
    uint64_t need_bytes = 0, need_entries = 0;  // to evict if the put adds a new entry
    std::vector<CapacityTracker::Victim> victims;
    bool server_limit = false;  // the victims count as evictions for the server-wide limit
    OrgState* elsewhere = nullptr;
    uint64_t elsewhere_bytes = 0;
  };
  // Reserves the put's growth in `*room` and chooses what must go for `r` to fit the org's
  // limits and the server-wide one. ResourceExhausted under noeviction or when the entry
  // cannot fit. REQUIRES: orgs_mu_ shared; no digest lock held.
  Status PlanRoom(OrgState& org, const PutRequest& r, int64_t now, Reservation* room,
                  RoomPlan* plan);
  // Whether a put that `need` says is over a noeviction limit replaces an entry that frees
  // as much (read before the put's lock).
  bool FitsByReplacing(OrgState& org, const Digest& digest, int64_t now,
                       const CapacityTracker::Need& need);
  // Put under the digest's lock and the victims' (REQUIRES: held): the put and the
  // evictions that are still valid in one write.
  Status PutLocked(OrgState& org, const PutRequest& r, int64_t now, const RoomPlan& plan,
                   PutResult* result, PendingWrites* pending);
  // Writes held back by an OrgTransaction: one indexed batch (so its reads see it), and what
  // the tracker and the counters learn once it is written.
  struct PendingWrites {
    PendingWrites() : batch(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true) {}
    rocksdb::WriteBatchWithIndex batch;
    std::vector<Digest> digests;                      // every entry written: locked for the commit
    std::vector<std::function<void()>> counted;       // in the order of the writes, after them
    std::vector<CapacityTracker::Victim> victims;     // evicted or given back at the end
    std::vector<std::unique_ptr<Reservation>> rooms;  // the puts' growth, until the end
    std::vector<std::pair<OrgState*, uint64_t>> elsewhere;  // server-wide evictions after
  };
  // The put, delete and expiry change of one entry: written at once (pending null), or
  // held in a transaction's batch. REQUIRES: orgs_mu_ shared.
  Result<PutResult> PutEntry(OrgState& org, const PutRequest& r, PendingWrites* pending);
  Result<RemovedEntries> DeleteOne(OrgState& org, const Digest& digest, PendingWrites* pending);
  Result<EntryMeta> SetEntryExpiry(OrgState& org, const Digest& digest, int64_t expires_ms,
                                   PendingWrites* pending);
  // Writes `own` now and runs `counted`, or, in a transaction (where the writes went into
  // its batch), notes `digests` and keeps `counted` for its commit.
  Status WriteOrHold(OrgState& org, rocksdb::WriteBatch* own, PendingWrites* pending,
                     std::vector<Digest> digests, std::function<void()> counted,
                     std::string_view what);
  // Evicts `victims` of `org` in one write: locks their digests in stripe order (waiting;
  // REQUIRES: the caller holds no digest lock), skips those replaced or removed since they
  // were chosen, and tells the tracker. Returns what left; adds its bytes to `*freed_bytes`.
  Result<RemovedEntries> EvictVictims(OrgState& org, std::vector<CapacityTracker::Victim> victims,
                                      bool server_limit, uint64_t* freed_bytes);
  // Evicts at least `bytes` and `entries` from `org` (the server-wide limit, or a lower limit
  // set at run time), choosing again for victims that changed. REQUIRES: orgs_mu_ shared, no
  // digest lock held.
  Result<RemovedEntries> EvictFrom(OrgState& org, uint64_t bytes, uint64_t entries,
                                   bool server_limit, const Digest& keep = Digest{});
  void DeleteEntry(OrgState& org, const EntryMeta& meta, rocksdb::WriteBatchBase* batch);
  // Live SSTs of an org's data family with their key versions. REQUIRES: orgs_mu_ held.
  Result<std::vector<OrgFile>> OrgFiles(const OrgState& org);
  Result<uint32_t> FileKeyVersion(const std::string& path);
  bool TableOnDiskUses(const OrgState& org, uint32_t version);
  bool TableOnDiskStillUses(const OrgState& org, uint32_t version);
  Result<ReaperReport> ReapOrg(OrgState& org);
  // The org's side files with their key versions (unreadable headers are Corruption).
  Result<std::vector<SideFile>> SideFiles(const OrgState& org);
  // Rewrites every side file under `version` under the org's active version, so that no
  // file but SSTs (whose records expire) keeps a retiring version alive; removes leftover
  // temporary files of interrupted writes. REQUIRES: orgs_mu_ held.
  Status ReencryptSideFiles(OrgState& org, uint32_t version);
  // REQUIRES: orgs_mu_ held; for the write, org.side_files_mu held too.
  Status WriteOrgFileLocked(const std::string& path, std::span<const uint8_t> bytes);
  Result<std::vector<uint8_t>> ReadOrgFileLocked(const std::string& path);
  void ReaperLoop();
  void OnDecryptFailure(const std::string& path, const Status& status);
  void CountDecryptFailure(const std::string& org);
  Status RecordAudit(std::string_view event, const AuditLog::Fields& fields, bool durable = true);
  // One of the points in fault_points.h (a no-op without StoreOptions::fault_hook).
  Status ReachFaultPoint(std::string_view point) const;
  Result<std::string> OrgFilePath(std::string_view org, std::string_view name) const;

  StoreOptions options_;
  SystemClock system_clock_;
  const Clock* clock_;
  DataLayout layout_;
  std::unique_ptr<crypto::Keystore> keystore_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<Catalog> catalog_;
  // Shared by every org's instance: file system, thread pools, block cache, memtable budget,
  // SST file manager and the background error policy.
  std::shared_ptr<rocksdb::FileSystem> fs_;
  std::unique_ptr<rocksdb::Env> env_;
  std::shared_ptr<rocksdb::EventListener> event_listener_;
  std::shared_ptr<rocksdb::Cache> block_cache_;
  // Before orgs_: every OrgDb forgets its values in it when it closes.
  std::unique_ptr<ValueCache> value_cache_;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffer_manager_;
  std::shared_ptr<rocksdb::SstFileManager> sst_file_manager_;
  std::unique_ptr<ExpiryCompactionFilter> expiry_filter_;
  std::shared_ptr<rocksdb::TablePropertiesCollectorFactory> expiry_collector_;
  std::shared_ptr<rocksdb::MergeOperator> slot_merge_;
  rocksdb::WriteOptions write_options_;
  rocksdb::WriteOptions admin_write_options_;  // always synced
  // What WAL recovery reported for each org at open ("org <id>: ..." lines).
  std::vector<std::string> recovery_report_;
  // Log tails dropped while an org's database opened (reported with its recovery).
  struct LogTail {
    std::string org;
    std::string what;
  };
  std::mutex log_tails_mu_;
  std::vector<LogTail> log_tails_;  // GUARDED_BY(log_tails_mu_)

  std::atomic<uint64_t> next_db_incarnation_{0};
  // Serialises CreateOrg and DropOrg. Taken before orgs_mu_.
  std::mutex org_admin_mu_;
  // Guards the org map; every operation on an org holds it shared for its duration, so an
  // org's database is never closed under a running operation.
  mutable std::shared_mutex orgs_mu_;
  std::map<std::string, std::unique_ptr<OrgState>, std::less<>> orgs_;

  std::mutex file_versions_mu_;
  std::unordered_map<std::string, uint32_t> file_versions_;  // SST path -> key version

  std::atomic<uint64_t> decrypt_operations_{0};
  std::mutex decrypt_failures_mu_;
  std::map<std::string, uint64_t, std::less<>> decrypt_failures_;  // by org ("" = node)

  std::mutex reaper_mu_;  // serialises reaper passes; guards the stop flag
  std::condition_variable reaper_cv_;
  bool stopping_ = false;
  std::thread reaper_thread_;
};

bool IsValidUtf8(std::string_view s);

}  // namespace sealcache::storage::internal
