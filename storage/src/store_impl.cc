#include "store_impl.h"

#include <fcntl.h>
#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/sst_file_manager.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/options_util.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>

#include "private_file_system.h"
#include "records.h"
#include "rocksdb_status.h"
#include "sealcache/crypto/atomic_file.h"
#include "sealcache/crypto/hash.h"
#include "sealcache/crypto/master_key.h"
#include "sealcache/storage/fault_points.h"

#if defined(__SANITIZE_THREAD__)
#define SEALCACHE_THREAD_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SEALCACHE_THREAD_SANITIZER 1
#endif
#endif
#ifndef SEALCACHE_THREAD_SANITIZER
#define SEALCACHE_THREAD_SANITIZER 0
#endif

namespace sealcache::storage {

Result<std::unique_ptr<Store>> Store::Open(StoreOptions options,
                                           const crypto::SecretBytes& master_key) {
  return internal::StoreImpl::Open(std::move(options), master_key);
}

namespace internal {
namespace {

// How often a read whose entry changed between its meta and payload reads is tried again.
constexpr int kChangedEntryRereads = 3;
// Where a store written before the per-org layout kept its benchmark-mode marker.
constexpr char kLegacyMarker[] = "PLAINTEXT-BENCHMARK-ONLY";
constexpr size_t kFamilyWriteBuffer = 32u << 20;
// An org's WAL files are kept until every family's memtable holding their writes is flushed;
// the meta family's memtable fills slowly, so without this bound it pinned every WAL of the
// data family (1,194 bytes of disk per entry at 4 x 100k entries, more than a third of the
// entry). Past it, RocksDB flushes the families holding the oldest WAL.
constexpr uint64_t kMaxTotalWalSize = kFamilyWriteBuffer;
constexpr size_t kBlockSize = 4u << 10;
constexpr int kBloomBitsPerKey = 10;
// Memtable Bloom filter size as a fraction of the write buffer (RocksDB's suggested range).
constexpr double kMemtableBloomRatio = 0.02;
// Compaction reads its inputs in runs this long: each format v2 chunk is then authenticated
// once, instead of twice for every block that straddles two chunks.
constexpr size_t kCompactionReadahead = 1u << 20;

// A directory on a read-only mount (or otherwise unwritable, even for root) fails here with
// one message naming it, instead of at whichever file the store happens to write first.
Status CheckWritable(const std::string& dir) {
  const std::string probe = dir + "/.sealcache-write-probe";
  int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::IOError("data directory " + dir + " is not writable: " + std::strerror(errno));
  }
  close(fd);
  unlink(probe.c_str());
  return Status::Ok();
}

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// The meta family's memtable keeps one insert position for all entry keys and starts the
// next insert's search from it (memtable_insert_with_hint_prefix_extractor): the hit counts'
// writes come in digest order (StoreImpl::RecordHits), each next to the one before, and
// each found its place with a full skiplist search (its comparisons a third of the samples
// of writing hit counts; with the hint, 10-15% less CPU per flush).
class EntryKeyInsertHint final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "sealcache.EntryKeyInsertHint"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override { return {key.data(), 1}; }
  bool InDomain(const rocksdb::Slice& key) const override {
    return !key.empty() && key[0] == kEntryPrefix;
  }
};

// The payload of a payload record (the bytes after its expiry), as bytes: a std::vector<uint8_t>
// filled from them copies with memcpy, from `const char*` one byte at a time (g++ 12: a 2 KiB
// payload's copy was 3.7% of the server's samples serving GETs).
// REQUIRES: value.size() >= kExpirySize.
std::span<const uint8_t> PayloadBytes(const rocksdb::Slice& value) {
  return {reinterpret_cast<const uint8_t*>(value.data()) + kExpirySize, value.size() - kExpirySize};
}

rocksdb::CompressionType PickCompression() {
  for (auto c : rocksdb::GetSupportedCompressions()) {
    if (c == rocksdb::kLZ4Compression) return c;
  }
  return rocksdb::kNoCompression;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

// After a write failed for lack of space: how often a write may try DB::Resume, and the free
// space the disk must have again before it does (Resume flushes every memtable).
constexpr auto kResumeRetryInterval = std::chrono::seconds(1);
constexpr uint64_t kResumeMinFreeBytes = 4u << 20;

// How often a compaction that keeps failing on the same damaged data is reported.
constexpr auto kCompactionCorruptionReportInterval = std::chrono::seconds(60);

// Decides what a RocksDB background error does to the store, and tells the operator
// (StoreOptions::on_event) when writes stop and resume.
//
// A compaction that reads a damaged block fails with Corruption; RocksDB would then stop
// every write of the instance, and all orgs share it: one org's damaged SST would make
// every org's puts fail (with that org's file name in the message). That error is
// cleared instead: the compaction's inputs stay as they were, reads of the damaged block
// keep failing with Corruption for that org's clients, and RocksDB retries the
// compaction about once a second (it fails the same way until the org's data is repaired
// or dropped; that org's L0 files accumulate meanwhile). Flush and WAL errors still stop
// writes: there, acknowledged data is at stake.
class StorageEventListener final : public rocksdb::EventListener {
 public:
  explicit StorageEventListener(std::function<void(const std::string&)> sink)
      : sink_(std::move(sink)) {}

  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status* error) override {
    if (error == nullptr || error->ok()) return;
    if (reason == rocksdb::BackgroundErrorReason::kCompaction && error->IsCorruption()) {
      ReportCompactionCorruption(*error);
      *error = rocksdb::Status::OK();
      return;
    }
    Report(
        "storage error, writes are refused until it clears: " + error->ToString() +
        (error->IsNoSpace() ? " (the disk is full: free space; writes resume by themselves)" : ""));
  }

  void OnErrorRecoveryEnd(const rocksdb::BackgroundErrorRecoveryInfo& info) override {
    if (info.new_bg_error.ok()) {
      Report("storage recovered from '" + info.old_bg_error.ToString() +
             "': writes are accepted again");
    } else {
      Report("storage recovery from '" + info.old_bg_error.ToString() +
             "' failed: " + info.new_bg_error.ToString());
    }
  }

 private:
  void Report(const std::string& line) {
    if (sink_) sink_(line);
  }

  void ReportCompactionCorruption(const rocksdb::Status& error) {
    uint64_t repeats = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const auto now = std::chrono::steady_clock::now();
      if (reported_once_ && now - last_report_ < kCompactionCorruptionReportInterval) {
        ++unreported_;
        return;
      }
      reported_once_ = true;
      last_report_ = now;
      repeats = std::exchange(unreported_, 0);
    }
    Report(
        "compaction stopped at corrupt data; writes continue, reads of the damaged "
        "entries fail until the org is repaired or dropped: " +
        error.ToString() +
        (repeats > 0 ? " (" + std::to_string(repeats) + " more since the last report)" : ""));
  }

  std::function<void(const std::string&)> sink_;
  std::mutex mu_;
  bool reported_once_ = false;
  std::chrono::steady_clock::time_point last_report_{};
  uint64_t unreported_ = 0;
};

}  // namespace

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : c & (0x7f >> n);
    for (size_t k = 1; k < n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return false;
    }
    i += n;
  }
  return true;
}

StoreImpl::StoreImpl(StoreOptions options, DataLayout layout)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &system_clock_),
      layout_(std::move(layout)) {}

Result<std::unique_ptr<Store>> StoreImpl::Open(StoreOptions options,
                                               const crypto::SecretBytes& master_key) {
  if (options.data_dir.empty()) return Status::InvalidArgument("StoreOptions.data_dir is empty");
  std::error_code ec;
  std::string dir = std::filesystem::absolute(options.data_dir, ec).lexically_normal().string();
  if (ec) return Status::InvalidArgument("bad data_dir " + options.data_dir + ": " + ec.message());
  if (!options.create_if_missing && !std::filesystem::exists(dir + "/keys/keystore")) {
    return Status::NotFound("no sealcache store in " + dir);
  }
  if (options.max_ttl_ms <= 0) return Status::InvalidArgument("max_ttl_ms must be positive");
  std::unique_ptr<StoreImpl> store(new StoreImpl(std::move(options), DataLayout(dir)));
  SC_RETURN_IF_ERROR(store->OpenKeystoreAndAudit(master_key));
  SC_RETURN_IF_ERROR(store->OpenEngine());
  if (store->options_.reaper_period_ms > 0) {
    store->reaper_thread_ = std::thread([s = store.get()] { s->ReaperLoop(); });
  }
  return std::unique_ptr<Store>(std::move(store));
}

Status StoreImpl::OpenKeystoreAndAudit(const crypto::SecretBytes& master_key) {
  const std::string& dir = layout_.data_dir();
  SC_RETURN_IF_ERROR(MakePrivateDir(dir));
  SC_RETURN_IF_ERROR(CheckWritable(dir));
  SC_RETURN_IF_ERROR(MakePrivateDir(layout_.keys_dir()));
  crypto::KeystoreOptions ks_options;
  ks_options.clock = clock_;
  ks_options.create_if_missing = options_.create_if_missing;
  ks_options.fault_hook = options_.fault_hook;
  auto keystore = crypto::Keystore::Open(layout_.keystore_path(), master_key, ks_options);
  if (!keystore.ok()) {
    // Every keystore failure names the file, whichever check found it.
    const Status& s = keystore.status();
    if (s.message().find(layout_.keystore_path()) != std::string::npos) return s;
    return s.WithContext("keystore " + layout_.keystore_path());
  }
  keystore_ = std::move(keystore).value();
  const crypto::RingId node{crypto::KeyScope::kNode, ""};
  if (!keystore_->IsLive(node)) SC_RETURN_IF_ERROR(keystore_->CreateRing(node).status());
  SC_ASSIGN_OR_RETURN(audit_, AuditLog::Open(layout_.audit_log_path(), clock_));
  SC_RETURN_IF_ERROR(MakePrivateDir(layout_.orgs_dir()));
  return RecordAudit("store_opened",
                     {{"master_key_fingerprint", keystore_->master_key_fingerprint()},
                      {"master_key_provider", options_.master_key_provider}});
}

rocksdb::ColumnFamilyOptions StoreImpl::BaseFamilyOptions() const {
  rocksdb::ColumnFamilyOptions cf;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = block_cache_;
  table.block_size = kBlockSize;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(kBloomBitsPerKey));
  table.checksum = rocksdb::kXXH3;
  table.format_version = 5;
  // Index and filter blocks stay with their table reader (decrypted once per open file)
  // instead of competing in the block cache: re-reading a 64 MB SST's index block after an
  // eviction means decrypting hundreds of KB for one point lookup.
  table.cache_index_and_filter_blocks = false;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf.compaction_filter = expiry_filter_.get();
  cf.table_properties_collector_factories.push_back(expiry_collector_);
  cf.compression = PickCompression();
  cf.write_buffer_size = kFamilyWriteBuffer;
  // A Bloom filter over each memtable's whole keys: a point read of a key that was flushed
  // (most reads once an org outgrows its memtable) skips the skiplist search, which took 10%
  // of the server's samples under exact Gets at 4 x 25k.
  cf.memtable_whole_key_filtering = true;
  cf.memtable_prefix_bloom_size_ratio = kMemtableBloomRatio;
  cf.level_compaction_dynamic_level_bytes = true;
  return cf;
}

rocksdb::ColumnFamilyOptions StoreImpl::MetaFamilyOptions(const std::string& meta_dir) const {
  rocksdb::ColumnFamilyOptions cf = BaseFamilyOptions();
  cf.merge_operator = slot_merge_;
  cf.memtable_insert_with_hint_prefix_extractor = std::make_shared<EntryKeyInsertHint>();
  cf.cf_paths = {{meta_dir, std::numeric_limits<uint64_t>::max()}};
  return cf;
}

rocksdb::ColumnFamilyOptions StoreImpl::DataFamilyOptions(const std::string& data_dir) const {
  rocksdb::ColumnFamilyOptions cf = BaseFamilyOptions();
  cf.cf_paths = {{data_dir, std::numeric_limits<uint64_t>::max()}};
  return cf;
}

Status StoreImpl::CheckEncryptionMode() {
  const std::string marker = layout_.plaintext_marker_path();
  const bool has_marker = std::filesystem::exists(marker) ||
                          std::filesystem::exists(layout_.legacy_db_dir() + "/" + kLegacyMarker);
  const bool has_data = std::filesystem::exists(layout_.catalog_path()) ||
                        std::filesystem::exists(layout_.legacy_db_dir() + "/CURRENT");
  if (!options_.insecure_plaintext_for_benchmarks) {
    if (has_marker) {
      return Status::FailedPrecondition(layout_.data_dir() +
                                        " holds a plaintext benchmark store; refusing to use it");
    }
    return Status::Ok();
  }
  if (has_data && !has_marker) {
    return Status::FailedPrecondition(layout_.data_dir() +
                                      " holds an encrypted store; refusing to open it in "
                                      "plaintext benchmark mode");
  }
  if (!std::filesystem::exists(marker)) {
    std::string text = "This store keeps payloads and vectors in plaintext (benchmarks only).\n";
    SC_RETURN_IF_ERROR(crypto::WriteFileAtomically(
        marker, {reinterpret_cast<const uint8_t*>(text.data()), text.size()}));
  }
  return RecordAudit("store_opened_without_encryption",
                     {{"warning", "benchmark mode: payloads and vectors are stored in plaintext"}});
}

Status StoreImpl::OpenEngine() {
  SC_RETURN_IF_ERROR(CheckEncryptionMode());
  EncryptionEvents events;
  events.on_decrypt_failure = [this](const std::string& path, const Status& s) {
    OnDecryptFailure(path, s);
  };
  events.on_file_key_unwrapped = [this] {
    decrypt_operations_.fetch_add(1, std::memory_order_relaxed);
  };
  events.on_log_tail_dropped = [this](const std::string& path, const std::string& what) {
    std::lock_guard<std::mutex> lock(log_tails_mu_);
    log_tails_.push_back({layout_.Classify(path).org, path + ": " + what});
  };
  RoutingOptions routing;
  routing.events = std::move(events);
  routing.write_v1 = options_.legacy_v1_files_for_benchmarks;
  fs_ = options_.insecure_plaintext_for_benchmarks
            ? rocksdb::FileSystem::Default()
            : NewRoutingFileSystem(layout_, keystore_.get(), rocksdb::FileSystem::Default(),
                                   std::move(routing));
  if (fs_ == nullptr) return Status::Internal("cannot create the encrypted file system");
  fs_ = NewPrivateFileSystem(std::move(fs_));
  env_ = rocksdb::NewCompositeEnv(fs_);
  block_cache_ = rocksdb::NewLRUCache(options_.block_cache_bytes);
  value_cache_ = std::make_unique<ValueCache>(options_.value_cache_bytes);
  // One memtable budget over every org: a flush of the largest memtable when it is spent.
  write_buffer_manager_ =
      std::make_shared<rocksdb::WriteBufferManager>(options_.memtable_budget_bytes);
  expiry_filter_ = std::make_unique<ExpiryCompactionFilter>(clock_);
  expiry_collector_ = NewExpiryPropertiesCollectorFactory();
  slot_merge_ = NewMaxSlotMergeOperator();
  event_listener_ = std::make_shared<StorageEventListener>(options_.on_event);
  // RocksDB recovers from a full disk through its SstFileManager (it polls for free space).
  // Write() adds DB::Resume for writes that hit the error.
  sst_file_manager_.reset(rocksdb::NewSstFileManager(env_.get(), fs_));
  write_options_.sync = options_.sync_writes;
  admin_write_options_.sync = true;

  SC_ASSIGN_OR_RETURN(catalog_, Catalog::Open(layout_.catalog_path(), keystore_.get(),
                                              /*create_if_missing=*/true));
  if (std::filesystem::exists(layout_.legacy_db_dir())) SC_RETURN_IF_ERROR(MigrateLegacyLayout());
  // Written at the first open (and only after a migration committed), so an existing catalog
  // always marks a store of this layout.
  if (!std::filesystem::exists(layout_.catalog_path()))
    SC_RETURN_IF_ERROR(catalog_->AddAll({}, {}));
  return LoadOrgs();
}

rocksdb::DBOptions StoreImpl::OrgDbOptions() const {
  rocksdb::DBOptions o;
  o.env = env_.get();
  o.create_missing_column_families = true;
  o.recycle_log_file_num = 0;  // recycling crashes with 2+ families in 7.8.3
  o.allow_mmap_reads = false;  // incompatible with the encrypted file system
  o.allow_mmap_writes = false;
  o.write_buffer_manager = write_buffer_manager_;
#if SEALCACHE_THREAD_SANITIZER
  // TSan cannot see RocksDB's write-group hand-off (the group's leader copies the followers'
  // batches after an atomic in uninstrumented code), so every grouped write reads as a race
  // on the batch. Under TSan each write is its own group; nowhere else.
  o.max_write_batch_group_size_bytes = 1;
#endif
  o.max_total_wal_size = kMaxTotalWalSize;
  // A write leaves its log record in the log writer's buffer; Write() writes the buffer to
  // the file system before it returns, or a LogFlushGroup does once for a batch of writes.
  o.manual_wal_flush = true;
  o.compaction_readahead_size = kCompactionReadahead;
  o.keep_log_file_num = 5;
  o.max_background_jobs = 2;
  // Every table file is opened (footer, index and filter read and checked) at DB::Open, so
  // damage there makes this org unavailable at start rather than failing at a random read.
  o.max_open_files = -1;
  o.paranoid_checks = true;
  o.sst_file_manager = sst_file_manager_;
  o.listeners.push_back(event_listener_);
  return o;
}

Result<std::unique_ptr<OrgDb>> StoreImpl::OpenOrgDb(const std::string& org, bool create) {
  const std::string dir = layout_.org_dir(org);
  if (create) {
    for (const std::string& d : {dir, layout_.org_meta_dir(org), layout_.org_data_dir(org)}) {
      SC_RETURN_IF_ERROR(MakePrivateDir(d));
    }
  } else if (!std::filesystem::exists(dir + "/CURRENT")) {
    return Status::Corruption("the database of org " + org + " is missing (no " + dir +
                              "/CURRENT)");
  }
  auto out = std::make_unique<OrgDb>();
  out->org = org;
  out->incarnation = next_db_incarnation_.fetch_add(1) + 1;
  out->values = value_cache_.get();
  SC_ASSIGN_OR_RETURN(out->info_log, InfoLog::Open(dir));
  rocksdb::DBOptions db_options = OrgDbOptions();
  db_options.create_if_missing = create;
  db_options.info_log = out->info_log;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, BaseFamilyOptions());
  descriptors.emplace_back(kMetaFamily, MetaFamilyOptions(layout_.org_meta_dir(org)));
  descriptors.emplace_back(kDataFamily, DataFamilyOptions(layout_.org_data_dir(org)));
  out->info_log->BeginRecovery();
  rocksdb::Status s = rocksdb::DB::Open(db_options, dir, descriptors, &out->handles, &out->db);
  out->info_log->EndRecovery();
  if (!s.ok()) return FromRocks(s, "cannot open the database of org " + org);
  for (const std::string& line : out->info_log->RecoveryReport()) {
    recovery_report_.push_back("org " + org + ": " + line);
  }
  {  // torn or unauthenticated log tails the file system read as the end of a log
    std::lock_guard<std::mutex> lock(log_tails_mu_);
    std::erase_if(log_tails_, [&](const LogTail& t) {
      if (t.org != org) return false;
      recovery_report_.push_back("org " + org + ": " + t.what);
      return true;
    });
  }
  return out;
}

OrgDb::~OrgDb() {
  if (values != nullptr) values->ForgetDb(incarnation);
  if (db == nullptr) return;
  // Close does not write a log buffer (manual_wal_flush) in RocksDB 7.8; an open group's
  // writes, not yet acknowledged, are kept where they can be.
  db->FlushWAL(false).PermitUncheckedError();
  // RocksDB asserts (aborts) at Close if any handle is left.
  for (rocksdb::ColumnFamilyHandle* cf : handles) db->DestroyColumnFamilyHandle(cf);
  db->Close();
  delete db;
}

rocksdb::Status StoreImpl::Write(OrgDb& db, const rocksdb::WriteOptions& options,
                                 rocksdb::WriteBatch* batch, bool forget_meta) {
  rocksdb::Status s = db.db->Write(options, batch);
  if (s.IsNoSpace() && ResumeAfterNoSpace(db)) s = db.db->Write(options, batch);
  // A synced write wrote and synced the log buffer (WritableFileWriter::Sync flushes first).
  if (s.ok() && !options.sync) s = FlushLog(db);
  // Also after a failure: whether a failed write reached the memtable is not known here.
  ForgetWrittenValues(db, *batch, forget_meta);
  return s;
}

// ---- log flush groups ----

namespace {
// The group open on this thread, if any (Store::OpenLogFlushGroup).
thread_local LogFlushGroupImpl* t_log_flush_group = nullptr;
}  // namespace

class LogFlushGroupImpl final : public LogFlushGroup {
 public:
  explicit LogFlushGroupImpl(StoreImpl& store) : store_(store) { t_log_flush_group = this; }
  ~LogFlushGroupImpl() override {
    Status s = Commit();
    if (!s.ok() && store_.options_.on_event) {
      store_.options_.on_event("writes of a closed log flush group: " + s.ToString());
    }
    t_log_flush_group = nullptr;
  }

  Status Commit() override {
    Status first;
    for (const auto& [org, incarnation] : written_) {
      Status s = store_.FlushLogOf(org, incarnation);
      if (first.ok() && !s.ok()) first = s;
    }
    written_.clear();
    return first;
  }

  StoreImpl& store() const { return store_; }
  // Remembers that `db` has writes in its log buffer.
  void Note(const OrgDb& db) {
    for (const auto& [org, incarnation] : written_) {
      if (incarnation == db.incarnation) return;
    }
    written_.emplace_back(db.org, db.incarnation);
  }

 private:
  StoreImpl& store_;
  std::vector<std::pair<std::string, uint64_t>> written_;  // org id, OrgDb incarnation
};

Result<std::unique_ptr<LogFlushGroup>> StoreImpl::OpenLogFlushGroup() {
  if (t_log_flush_group != nullptr) {
    return Status::FailedPrecondition("a log flush group is open on this thread already");
  }
  return std::unique_ptr<LogFlushGroup>(std::make_unique<LogFlushGroupImpl>(*this));
}

rocksdb::Status StoreImpl::FlushLog(OrgDb& db) {
  if (t_log_flush_group != nullptr && &t_log_flush_group->store() == this) {
    t_log_flush_group->Note(db);
    return rocksdb::Status::OK();
  }
  return FlushWal(db);
}

rocksdb::Status StoreImpl::FlushWal(OrgDb& db) {
  rocksdb::Status s = db.db->FlushWAL(/*sync=*/false);
  if (s.IsNoSpace() && ResumeAfterNoSpace(db)) s = db.db->FlushWAL(false);
  return s;
}

Status StoreImpl::FlushLogOf(const std::string& org, uint64_t incarnation) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  auto state = FindOrg(org);
  if (!state.ok() || (*state)->db == nullptr || (*state)->db->incarnation != incarnation) {
    // Closed meanwhile (its log buffer written at the close, if the close could).
    return Status::Unavailable("the database of org " + org +
                               " closed before its writes reached its log");
  }
  return FromRocks(FlushWal(*(*state)->db), "cannot write the log of org " + org);
}

void StoreImpl::ForgetWrittenValues(OrgDb& db, rocksdb::WriteBatch& batch, bool forget_meta) {
  // The payload keys of the data family and the entry keys of the meta family that the
  // batch puts, merges or deletes; a range deletion forgets the whole database's.
  class Forget final : public rocksdb::WriteBatch::Handler {
   public:
    Forget(OrgDb& db, ValueCache& values, bool forget_meta)
        : db_(db), values_(values), forget_meta_(forget_meta) {}
    rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& key, const rocksdb::Slice&) override {
      return Key(cf, key);
    }
    rocksdb::Status MergeCF(uint32_t cf, const rocksdb::Slice& key,
                            const rocksdb::Slice&) override {
      return Key(cf, key);
    }
    rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
      return Key(cf, key);
    }
    rocksdb::Status SingleDeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
      return Key(cf, key);
    }
    rocksdb::Status DeleteRangeCF(uint32_t cf, const rocksdb::Slice&,
                                  const rocksdb::Slice&) override {
      if (cf == db_.data()->GetID() || (forget_meta_ && cf == db_.meta()->GetID())) {
        values_.ForgetDb(db_.incarnation);
      }
      return rocksdb::Status::OK();
    }

   private:
    rocksdb::Status Key(uint32_t cf, const rocksdb::Slice& key) {
      // A payload key is the prefix and the digest; an entry key the prefix, the org's
      // name, a NUL and the digest.
      const bool payload =
          cf == db_.data()->GetID() && key.size() == 1 + kDigestSize && key[0] == kPayloadPrefix;
      const bool meta = forget_meta_ && cf == db_.meta()->GetID() &&
                        key.size() >= 2 + kDigestSize && key[0] == kEntryPrefix;
      if (!payload && !meta) return rocksdb::Status::OK();
      Digest digest;
      std::memcpy(digest.data(), key.data() + key.size() - kDigestSize, kDigestSize);
      values_.Forget(db_.incarnation, digest);
      return rocksdb::Status::OK();
    }
    OrgDb& db_;
    ValueCache& values_;
    const bool forget_meta_;
  };
  if (db.values == nullptr) return;
  Forget forget(db, *db.values, forget_meta);
  rocksdb::Status s = batch.Iterate(&forget);
  if (!s.ok()) db.values->ForgetDb(db.incarnation);  // (cannot happen: a batch just written)
}

bool StoreImpl::ResumeAfterNoSpace(OrgDb& db) {
  std::unique_lock<std::mutex> lock(db.resume_mu, std::try_to_lock);
  if (!lock.owns_lock()) return false;  // another write is resuming right now
  const auto now = std::chrono::steady_clock::now();
  if (now - db.last_resume_attempt < kResumeRetryInterval) return false;
  db.last_resume_attempt = now;
  struct statvfs fs_stats;
  if (statvfs(layout_.orgs_dir().c_str(), &fs_stats) != 0) return false;
  const uint64_t free_bytes = uint64_t{fs_stats.f_bavail} * fs_stats.f_frsize;
  if (free_bytes < kResumeMinFreeBytes) return false;
  rocksdb::Status s = db.db->Resume();
  if (options_.on_event) {
    options_.on_event(s.ok() ? "storage resumed after the disk had room again (" +
                                   std::to_string(free_bytes >> 20) + " MiB free)"
                             : "storage could not resume yet: " + s.ToString());
  }
  return s.ok();
}

Status StoreImpl::FlushOrg(OrgDb& db, const std::string& what) {
  return FromRocks(db.db->Flush(rocksdb::FlushOptions(), {db.meta(), db.data()}), what);
}

Status StoreImpl::LoadOrgs() {
  {
    // Files staged by imports that never committed (a move cut short): the source kept its
    // copy and the records name it.
    std::error_code ec;
    std::filesystem::remove_all(layout_.incoming_dir(), ec);
    if (ec) {
      return Status::IOError("cannot remove " + layout_.incoming_dir() + ": " + ec.message());
    }
  }
  for (auto& [org, config] : catalog_->Orgs()) {
    auto state = std::make_unique<OrgState>();
    state->id = org;
    state->config = config;
    auto db = OpenOrgDb(org, /*create=*/false);
    if (db.ok()) {
      state->db = std::move(db).value();
      SC_ASSIGN_OR_RETURN(uint64_t next, RecoverNextSlot(*state));
      state->next_slot = next;
      SC_RETURN_IF_ERROR(LoadCapacity(*state));
    } else {
      // One org's damage stays that org's: it answers why, every other org serves. An
      // instance that existed and does not open has damaged or missing files, whatever
      // error RocksDB found first.
      state->unavailable =
          db.status().IsCorruption() ? db.status() : Status::Corruption(db.status().message());
      CountDecryptFailure(org);
      if (options_.on_event) options_.on_event(db.status().ToString());
    }
    orgs_.emplace(org, std::move(state));
  }
  // Directories of orgs that no longer exist: a drop interrupted before it removed them, or
  // a create interrupted before its commit.
  std::error_code ec;
  for (const auto& dir : std::filesystem::directory_iterator(layout_.orgs_dir(), ec)) {
    const std::string org = dir.path().filename().string();
    if (orgs_.count(org)) continue;
    if (!crypto::ValidateOrgId(org).ok()) continue;  // not ours: left alone
    SC_RETURN_IF_ERROR(FinishDropOrg(org));
  }
  // Key rings of orgs that no longer exist (a drop interrupted before its last step).
  for (const crypto::KeyInfo& info : keystore_->List()) {
    if (info.ring.scope != crypto::KeyScope::kOrg || orgs_.count(info.ring.org)) continue;
    if (keystore_->IsLive(info.ring)) SC_RETURN_IF_ERROR(FinishDropOrg(info.ring.org));
  }
  return Status::Ok();
}

// REQUIRES: the org is not in the catalog and its database is closed.
Status StoreImpl::FinishDropOrg(const std::string& org) {
  std::error_code ec;
  std::filesystem::remove_all(layout_.org_dir(org), ec);
  if (ec) return Status::IOError("cannot remove " + layout_.org_dir(org) + ": " + ec.message());
  SC_RETURN_IF_ERROR(crypto::SyncDirectory(layout_.orgs_dir()));
  SC_RETURN_IF_ERROR(ReachFaultPoint(kFaultDropOrgAfterFamily));
  crypto::RingId ring{crypto::KeyScope::kOrg, org};
  if (keystore_->IsLive(ring)) SC_RETURN_IF_ERROR(keystore_->DestroyRing(ring));
  SC_RETURN_IF_ERROR(ReachFaultPoint(kFaultDropOrgAfterKeys));
  return RecordAudit("org_drop_completed", {{"org", org}});
}

Result<uint64_t> StoreImpl::RecoverNextSlot(const OrgState& org) {
  uint64_t next = 0;
  std::string value;
  rocksdb::Status s = org.db->db->Get({}, org.db->meta(), SlotKey(org.id), &value);
  if (s.ok()) {
    next = DecodeSlot(value).value_or(0);
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "cannot read the slot counter of " + org.id);
  }
  // The meta counter is written in the same batch as every vector, so it is enough; the
  // last vector key only confirms it. That read touches the org's own (encrypted) last data
  // block: when it is damaged, the org opens on the counter alone and the damage is
  // reported, instead of the org refusing to open.
  std::unique_ptr<rocksdb::Iterator> it(org.db->db->NewIterator({}, org.db->data()));
  it->SeekForPrev(VectorKey(std::numeric_limits<uint64_t>::max()));
  if (it->Valid() && !it->key().empty() && it->key()[0] == kVectorPrefix) {
    auto last = DecodeVectorKey(View(it->key()));
    if (last.ok()) next = std::max(next, *last + 1);
  }
  if (!it->status().ok()) {
    CountDecryptFailure(org.id);
    if (options_.on_event) {
      options_.on_event("org " + org.id + ": its last vector block cannot be read (" +
                        it->status().ToString() +
                        "); opened on its slot counter, reads of damaged entries fail");
    }
  }
  return next;
}

StoreImpl::~StoreImpl() {
  {
    std::lock_guard<std::mutex> lock(reaper_mu_);
    stopping_ = true;
  }
  reaper_cv_.notify_all();
  if (reaper_thread_.joinable()) reaper_thread_.join();
  orgs_.clear();  // closes every org's database before the shared resources go
}

Status StoreImpl::RecordAudit(std::string_view event, const AuditLog::Fields& fields,
                              bool durable) {
  return audit_->Record(event, fields, durable);
}

Status StoreImpl::ReachFaultPoint(std::string_view point) const {
  return crypto::ReachFaultPoint(options_.fault_hook, point);
}

void StoreImpl::CountDecryptFailure(const std::string& org) {
  std::lock_guard<std::mutex> lock(decrypt_failures_mu_);
  decrypt_failures_[org]++;
}

void StoreImpl::OnDecryptFailure(const std::string& path, const Status& status) {
  FileClass cls = layout_.Classify(path);
  CountDecryptFailure(cls.org);
  // Best effort: a failing audit write must not turn a read error into another error.
  (void)RecordAudit("decrypt_failure",
                    {{"org", cls.org}, {"file", path}, {"error", status.message()}},
                    /*durable=*/false);
}

// ---- Orgs ---------------------------------------------------------------------------------

Result<OrgState*> StoreImpl::FindOrg(std::string_view org) const {
  auto it = orgs_.find(org);
  if (it == orgs_.end()) {
    Status valid = crypto::ValidateOrgId(org);
    if (!valid.ok()) return valid;
    return Status::NotFound("unknown org " + std::string(org));
  }
  return it->second.get();
}

Result<OrgState*> StoreImpl::FindOpenOrg(std::string_view org) const {
  SC_ASSIGN_OR_RETURN(OrgState * state, FindOrg(org));
  if (state->db == nullptr) return state->unavailable;
  return state;
}

Status StoreImpl::CreateOrg(std::string_view org_view, OrgConfig config) {
  SC_RETURN_IF_ERROR(crypto::ValidateOrgId(org_view));
  if (config.dimension == 0 || config.dimension > kMaxDimension) {
    return Status::InvalidArgument("dimension must be between 1 and 4096");
  }
  if (config.metric != "cosine") {
    return Status::InvalidArgument("unsupported metric '" + config.metric + "' (use cosine)");
  }
  if (config.index_kind != "hnsw" && config.index_kind != "flat") {
    return Status::InvalidArgument("unsupported index kind '" + config.index_kind +
                                   "' (use hnsw or flat)");
  }
  if (!config.limits.eviction_policy.empty()) {
    SC_RETURN_IF_ERROR(ParseEvictionPolicy(config.limits.eviction_policy).status());
  }
  const std::string org(org_view);
  // Only admin operations wait for a create: the new instance is built without orgs_mu_.
  std::lock_guard<std::mutex> admin(org_admin_mu_);
  {
    std::shared_lock<std::shared_mutex> lock(orgs_mu_);
    if (orgs_.count(org)) return Status::AlreadyExists("org " + org + " already exists");
  }
  const crypto::RingId ring{crypto::KeyScope::kOrg, org};
  // The key version is durable before any file of the org can use it.
  if (!keystore_->IsLive(ring)) SC_RETURN_IF_ERROR(keystore_->CreateRing(ring).status());
  SC_RETURN_IF_ERROR(ReachFaultPoint(kFaultCreateOrgAfterKey));
  // Leftovers of a create that failed before its commit.
  std::error_code ec;
  std::filesystem::remove_all(layout_.org_dir(org), ec);
  SC_ASSIGN_OR_RETURN(std::unique_ptr<OrgDb> db, OpenOrgDb(org, /*create=*/true));
  SC_RETURN_IF_ERROR(ReachFaultPoint(kFaultCreateOrgAfterFamily));
  config.created_ms = clock_->NowMillis();
  // The org's own copy of its config, for keyless tools that read only its directory.
  rocksdb::Status s =
      db->db->Put(admin_write_options_, db->meta(), OrgInfoKey(org), EncodeOrgInfo(config));
  Status committed = s.ok() ? catalog_->AddOrg(org, config) : FromRocks(s, "org info of " + org);
  if (!committed.ok()) {
    db.reset();
    std::filesystem::remove_all(layout_.org_dir(org), ec);
    return committed.WithContext("cannot create org " + org);
  }
  auto state = std::make_unique<OrgState>();
  state->id = org;
  state->config = config;
  state->db = std::move(db);
  state->capacity = std::make_unique<CapacityTracker>(options_.default_eviction_policy);
  ApplyLimits(*state, config.limits);
  {
    std::unique_lock<std::shared_mutex> lock(orgs_mu_);
    orgs_.emplace(org, std::move(state));
  }
  auto version = keystore_->Active(ring);
  return RecordAudit("org_created",
                     {{"org", org},
                      {"dimension", int64_t{config.dimension}},
                      {"key_version", int64_t{version.ok() ? version->version : 0}}});
}

// Removing the org from the catalog (its record and every token of it, in one atomic file
// replacement) is the commit point; then its database is closed, its directory (database,
// WAL, info LOG, index snapshots) removed and its key ring destroyed, all before the drop is
// acknowledged. A crash after the commit finishes the drop at the next open.
Status StoreImpl::DropOrg(std::string_view org_view) {
  std::lock_guard<std::mutex> admin(org_admin_mu_);
  std::unique_ptr<OrgState> state;
  {
    // Exclusive: waits for the org's running operations, which hold it shared.
    std::unique_lock<std::shared_mutex> lock(orgs_mu_);
    SC_ASSIGN_OR_RETURN(OrgState * org, FindOrg(org_view));
    SC_RETURN_IF_ERROR(catalog_->RemoveOrg(org->id).WithContext("cannot drop org " + org->id));
    auto it = orgs_.find(org->id);
    state = std::move(it->second);
    orgs_.erase(it);
  }
  const std::string id = state->id;
  SC_RETURN_IF_ERROR(ReachFaultPoint(kFaultDropOrgAfterCommit));
  state.reset();  // closes its database
  SC_RETURN_IF_ERROR(FinishDropOrg(id));
  return RecordAudit("org_dropped", {{"org", id}});
}

Result<OrgConfig> StoreImpl::GetOrg(std::string_view org) const {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(OrgState * state, FindOrg(org));
  std::lock_guard<std::mutex> l(state->config_mu);
  return state->config;
}

std::vector<std::string> StoreImpl::ListOrgs() const {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  std::vector<std::string> out;
  for (const auto& [id, state] : orgs_) out.push_back(id);
  return out;
}

// ---- Tokens -------------------------------------------------------------------------------

namespace {

constexpr size_t kTokenHashSize = 32;

std::string HashKey(std::span<const uint8_t> hash) {
  return std::string(reinterpret_cast<const char*>(hash.data()), hash.size());
}

}  // namespace

Status StoreImpl::AddToken(std::span<const uint8_t> hash, const TokenRecord& record) {
  if (hash.size() != kTokenHashSize) return Status::InvalidArgument("token hash must be 32 bytes");
  {
    // Shared for the write: a drop of the org cannot interleave and leave its token behind.
    std::shared_lock<std::shared_mutex> lock(orgs_mu_);
    if (!record.org.empty()) SC_RETURN_IF_ERROR(FindOrg(record.org).status());
    SC_RETURN_IF_ERROR(catalog_->AddToken(HashKey(hash), record).WithContext("cannot store token"));
  }
  return RecordAudit("token_issued", {{"org", record.org}, {"token_id", record.token_id}});
}

Result<TokenRecord> StoreImpl::FindToken(std::span<const uint8_t> hash) {
  if (hash.size() != kTokenHashSize) return Status::InvalidArgument("token hash must be 32 bytes");
  return catalog_->FindToken(HashKey(hash));
}

Result<uint64_t> StoreImpl::RevokeTokens(std::string_view org, std::string_view token_id) {
  SC_ASSIGN_OR_RETURN(uint64_t n, catalog_->RemoveTokens(org, token_id));
  if (n == 0) return n;
  SC_RETURN_IF_ERROR(RecordAudit("tokens_revoked", {{"org", std::string(org)},
                                                    {"token_id", std::string(token_id)},
                                                    {"count", static_cast<int64_t>(n)}}));
  return n;
}

// ---- Entries ------------------------------------------------------------------------------

Status StoreImpl::ValidatePut(const OrgState& org, const PutRequest& r) const {
  // An empty payload would be a "hit" that answers nothing: a gateway would serve an empty
  // LLM answer from cache. Refused, so a client bug cannot poison its own cache.
  if (r.payload.empty()) return Status::InvalidArgument("payload is empty");
  if (r.payload.size() > options_.max_payload_bytes) {
    return Status::InvalidArgument("payload of " + std::to_string(r.payload.size()) +
                                   " bytes exceeds the limit of " +
                                   std::to_string(options_.max_payload_bytes));
  }
  if (!r.vector.empty()) {  // empty: an exact-only entry
    if (r.vector.size() != org.config.dimension) {
      return Status::InvalidArgument("vector has dimension " + std::to_string(r.vector.size()) +
                                     ", org " + org.id + " expects " +
                                     std::to_string(org.config.dimension));
    }
    bool nonzero = false;
    for (float v : r.vector) {
      if (!std::isfinite(v)) return Status::InvalidArgument("vector contains NaN or infinity");
      nonzero |= v != 0.0f;
    }
    if (!nonzero) return Status::InvalidArgument("vector is all zeros (no direction)");
  }
  if (r.ttl_ms <= 0 || r.ttl_ms > options_.max_ttl_ms) {
    return Status::InvalidArgument("ttl must be between 1 ms and " +
                                   std::to_string(options_.max_ttl_ms) + " ms");
  }
  if (r.name_space.size() > kMaxNamespaceBytes) {
    return Status::InvalidArgument("namespace is longer than 128 bytes");
  }
  if (!IsValidUtf8(r.name_space)) return Status::InvalidArgument("namespace is not valid UTF-8");
  return Status::Ok();
}

Result<EntryMeta> StoreImpl::ReadMeta(const OrgState& org, const Digest& digest,
                                      const rocksdb::ReadOptions& ro, PendingWrites* pending) {
  std::string value;
  rocksdb::Status s =
      ReadRecord(org, org.db->meta(), EntryKey(org.id, digest), &value, pending, ro);
  if (s.IsNotFound()) return Status::NotFound("no entry with this digest");
  if (!s.ok()) return FromRocks(s, "cannot read entry metadata");
  return DecodeEntryMeta(value, digest);
}

Result<EntryMeta> StoreImpl::ReadMetaToWrite(const OrgState& org, const Digest& digest,
                                             PendingWrites* pending) {
  // Not an expired entry's: compaction drops the records of expired entries without telling
  // the table, and whether they are still there decides what a delete answers.
  std::string cached;
  if (pending == nullptr && value_cache_->CachedMeta(org.db->incarnation, digest, &cached)) {
    SC_ASSIGN_OR_RETURN(EntryMeta meta, DecodeEntryMeta(cached, digest));
    if (meta.expires_ms > clock_->NowMillis()) return meta;
  }
  return ReadMeta(org, digest, {}, pending);
}

Result<CapacityTracker::Live> StoreImpl::EntryToReplace(const OrgState& org, const Digest& digest,
                                                        int64_t now, PendingWrites* pending) {
  if (pending == nullptr) {
    if (auto live = org.capacity->FindLive(digest, now)) return *live;
  }
  SC_ASSIGN_OR_RETURN(EntryMeta old, ReadMetaToWrite(org, digest, pending));
  return CapacityTracker::Live{old.expires_ms, old.vector_slot,
                               EntryLogicalBytes(old, org.config.dimension)};
}

Result<std::vector<uint8_t>> StoreImpl::ReadPayload(const OrgState& org, const Digest& digest,
                                                    const rocksdb::ReadOptions& ro,
                                                    int64_t* expires_ms, PendingWrites* pending) {
  // The table of hot values holds the latest writes: not for a transaction's reads or a
  // snapshot's.
  const bool latest = pending == nullptr && ro.snapshot == nullptr;
  ValueCache::Ticket ticket;
  if (latest) {
    std::vector<uint8_t> cached;
    int64_t cached_expiry = 0;
    if (value_cache_->Lookup(org.db->incarnation, digest, &cached_expiry, &cached, &ticket)) {
      if (expires_ms != nullptr) *expires_ms = cached_expiry;
      return cached;
    }
  }
  rocksdb::PinnableSlice value;
  rocksdb::Status s = ReadRecord(org, org.db->data(), PayloadKey(digest), &value, pending, ro);
  if (s.IsNotFound()) return Status::Corruption("entry metadata exists but its payload is missing");
  if (!s.ok()) return FromRocks(s, "cannot read payload of org " + org.id);
  if (value.size() < kExpirySize) return Status::Corruption("payload record is truncated");
  const int64_t expiry = *ValueExpiry(View(value));
  if (expires_ms != nullptr) *expires_ms = expiry;
  const std::span<const uint8_t> payload = PayloadBytes(value);
  if (latest && expiry > clock_->NowMillis()) {
    value_cache_->Fill(org.db->incarnation, digest, ticket, expiry, payload);
  }
  return std::vector<uint8_t>(payload.begin(), payload.end());
}

Result<PutResult> StoreImpl::Put(std::string_view org_id, const PutRequest& r) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
  return PutEntry(*org, r, nullptr);
}

Result<PutResult> StoreImpl::PutEntry(OrgState& org_ref, const PutRequest& r,
                                      PendingWrites* pending) {
  OrgState* org = &org_ref;
  SC_RETURN_IF_ERROR(ValidatePut(*org, r));
  const int64_t now = clock_->NowMillis();
  PutResult result;
  // The put's growth stays reserved until it is counted (capacity.h); the victims it needs
  // are chosen first and evicted in its own write (in a transaction: in its commit).
  auto room = std::make_unique<Reservation>();
  RoomPlan plan;
  SC_RETURN_IF_ERROR(PlanRoom(*org, r, now, room.get(), &plan));
  Status put;
  {
    // The put's digest and its victims' together, in stripe order: a put that waits for a
    // lock holds only locks it took in that order, so no two wait for each other.
    std::vector<size_t> stripes = {OrgState::StripeOf(r.digest)};
    for (const auto& v : plan.victims) stripes.push_back(OrgState::StripeOf(v.digest));
    std::sort(stripes.begin(), stripes.end());
    stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
    std::vector<std::unique_lock<std::mutex>> locks;
    locks.reserve(stripes.size());
    for (size_t stripe : stripes) locks.emplace_back(org->digest_locks[stripe]);
    put = PutLocked(*org, r, now, plan, &result, pending);
    if (pending == nullptr || !put.ok()) {
      for (const auto& v : plan.victims) org->capacity->Release(v);  // those not evicted
    }
  }
  if (!put.ok()) return put;
  if (pending != nullptr) {
    // Given back (those not evicted), counted and evicted elsewhere at the commit.
    pending->victims.insert(pending->victims.end(), plan.victims.begin(), plan.victims.end());
    pending->rooms.push_back(std::move(room));
    if (plan.elsewhere != nullptr)
      pending->elsewhere.emplace_back(plan.elsewhere, plan.elsewhere_bytes);
    return result;
  }
  if (plan.elsewhere != nullptr) {
    // The put is acknowledged whatever happens here: another org's eviction is its own write.
    auto evicted = EvictFrom(*plan.elsewhere, plan.elsewhere_bytes, 0, /*server_limit=*/true);
    if (evicted.ok() && evicted->count > 0) {
      result.evicted_elsewhere.emplace_back(plan.elsewhere->id, std::move(evicted).value());
    }
  }
  return result;
}

// The put itself. REQUIRES: the digest's lock and the victims' locks held.
Status StoreImpl::PutLocked(OrgState& org_ref, const PutRequest& r, int64_t now,
                            const RoomPlan& plan, PutResult* result, PendingWrites* pending) {
  OrgState* org = &org_ref;
  result->expires_ms = now + r.ttl_ms;
  auto old = EntryToReplace(*org, r.digest, now, pending);
  if (!old.ok() && !old.status().IsNotFound()) return old.status();
  const bool live = old.ok() && old->expires_ms > now;
  using Condition = PutRequest::Condition;
  if (r.condition == Condition::kIfAbsent && live) {
    return Status::AlreadyExists("an entry with this digest exists");
  }
  if (r.condition == Condition::kIfPresent && !live) {
    return Status::NotFound("no entry with this digest");
  }
  if (r.keep_expiry && live) result->expires_ms = old->expires_ms;
  if (r.return_previous && live) {
    SC_ASSIGN_OR_RETURN(result->previous, ReadPayload(*org, r.digest, {}, nullptr, pending));
  }

  EntryMeta meta;
  meta.digest = r.digest;
  meta.created_ms = now;
  meta.expires_ms = result->expires_ms;
  meta.ttl_ms = result->expires_ms - now;
  meta.name_space = std::string(r.name_space);
  meta.payload_size = static_cast<uint32_t>(r.payload.size());
  const bool with_vector = !r.vector.empty();
  meta.vector_slot = result->slot = with_vector ? org->next_slot.fetch_add(1) : kNoVectorSlot;

  rocksdb::WriteBatch own;
  rocksdb::WriteBatchBase& batch =
      pending != nullptr ? static_cast<rocksdb::WriteBatchBase&>(pending->batch) : own;
  const std::string meta_record = EncodeEntryMeta(meta);
  batch.Put(org->db->meta(), EntryKey(org->id, r.digest), meta_record);
  batch.Put(org->db->data(), PayloadKey(r.digest), EncodePayloadValue(meta.expires_ms, r.payload));
  if (with_vector) {
    batch.Merge(org->db->meta(), SlotKey(org->id), EncodeSlot(meta.vector_slot + 1));
    batch.Put(org->db->data(), VectorKey(meta.vector_slot),
              EncodeVectorValue(meta.expires_ms, r.digest, r.vector));
  }
  if (old.ok() && old->vector_slot != kNoVectorSlot) {
    batch.Delete(org->db->data(), VectorKey(old->vector_slot));
    result->replaced_slot = old->vector_slot;
  }
  // The victims, as many as the room needs now that it is known whether the put replaces an
  // entry, if still the entries chosen (under their locks the tracker knows them as the
  // store has them).
  const uint64_t old_bytes = live ? old->bytes : 0;
  const uint64_t want_bytes = plan.need_bytes - std::min(plan.need_bytes, old_bytes);
  const uint64_t want_entries = plan.need_entries - std::min<uint64_t>(plan.need_entries, live);
  uint64_t taken_bytes = 0;
  std::vector<CapacityTracker::Victim> taken;
  std::vector<Digest> written = {r.digest};
  for (const auto& v : plan.victims) {
    if (taken_bytes >= want_bytes && taken.size() >= want_entries) break;
    if (v.digest == r.digest || !org->capacity->StillChosen(v)) continue;
    taken_bytes += v.bytes;
    EntryMeta gone;
    gone.digest = v.digest;
    gone.vector_slot = v.vector_slot;
    DeleteEntry(*org, gone, &batch);
    taken.push_back(v);
    written.push_back(v.digest);
  }
  for (const CapacityTracker::Victim& v : taken) {
    result->evicted.count++;
    if (v.vector_slot != kNoVectorSlot) {
      result->evicted.slots.push_back(v.vector_slot);
    } else {
      result->evicted.exact_only.push_back(v.digest);
    }
  }
  const uint64_t bytes = EntryLogicalBytes(meta, org->config.dimension);
  auto counted = [org, meta = std::move(meta), bytes, taken = std::move(taken),
                  server_limit = plan.server_limit] {
    org->capacity->Upsert(meta, bytes);
    for (const CapacityTracker::Victim& v : taken) org->capacity->Evicted(v);
    (server_limit ? org->counters.evictions_server_limit : org->counters.evictions_org_limit) +=
        taken.size();
    org->counters.puts++;
  };
  SC_RETURN_IF_ERROR(
      WriteOrHold(*org, &own, pending, std::move(written), std::move(counted), "put failed"));
  // Written (not held for a transaction's commit) and forgotten, under the digest's lock:
  // the table may keep it, if it has room, for the reads that often follow a write.
  if (pending == nullptr) {
    value_cache_->Offer(org->db->incarnation, r.digest, result->expires_ms, r.payload, meta_record);
  }
  return Status::Ok();
}

Status StoreImpl::WriteOrHold(OrgState& org, rocksdb::WriteBatch* own, PendingWrites* pending,
                              std::vector<Digest> digests, std::function<void()> counted,
                              std::string_view what) {
  if (pending != nullptr) {
    pending->digests.insert(pending->digests.end(), digests.begin(), digests.end());
    pending->counted.push_back(std::move(counted));
    return Status::Ok();
  }
  rocksdb::Status s = Write(*org.db, write_options_, own);
  if (!s.ok()) return FromRocks(s, std::string(what));
  counted();
  return Status::Ok();
}

Status StoreImpl::LoadCapacity(OrgState& org) {
  org.capacity = std::make_unique<CapacityTracker>(options_.default_eviction_policy);
  const std::string prefix = EntryKeyPrefix(org.id);
  const int64_t now = clock_->NowMillis();
  std::unique_ptr<rocksdb::Iterator> it(org.db->db->NewIterator({}, org.db->meta()));
  for (it->Seek(prefix); it->Valid() && StartsWith(View(it->key()), prefix); it->Next()) {
    if (it->key().size() != prefix.size() + kDigestSize) continue;
    Digest d{};
    std::memcpy(d.data(), it->key().data() + prefix.size(), kDigestSize);
    SC_ASSIGN_OR_RETURN(EntryMeta m, DecodeEntryMeta(View(it->value()), d));
    if (m.expires_ms <= now) continue;
    org.capacity->Upsert(m, EntryLogicalBytes(m, org.config.dimension));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "cannot count the entries of " + org.id);
  ApplyLimits(org, org.config.limits);
  return Status::Ok();
}

void StoreImpl::ApplyLimits(OrgState& org, const OrgLimits& limits) {
  EvictionPolicy policy = options_.default_eviction_policy;
  if (!limits.eviction_policy.empty()) {
    auto parsed = ParseEvictionPolicy(limits.eviction_policy);  // checked when it was set
    if (parsed.ok()) policy = *parsed;
  }
  org.max_bytes = limits.max_bytes;
  org.max_entries = limits.max_entries;
  org.policy = policy;
  const bool ordered =
      limits.max_bytes > 0 || limits.max_entries > 0 || options_.max_data_bytes > 0;
  org.ordered = ordered;
  org.capacity->Configure(policy, ordered);
}

uint64_t StoreImpl::TotalLogicalBytes() const {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  uint64_t total = 0;
  for (const auto& [id, org] : orgs_) {
    if (org->capacity) total += org->capacity->bytes();
  }
  return total;
}

// How many times an eviction chooses victims again for those that changed under it.
constexpr int kVictimRounds = 4;

// Under noeviction a put at the limit is refused unless it replaces an entry at least as
// large (as far as can be told before its lock).
bool StoreImpl::FitsByReplacing(OrgState& org, const Digest& digest, int64_t now,
                                const CapacityTracker::Need& need) {
  auto old = ReadMeta(org, digest);
  if (!old.ok() || old->expires_ms <= now) return false;
  // The need assumed a new entry: replacing one frees its bytes and its place.
  return need.entries <= 1 && need.bytes <= EntryLogicalBytes(*old, org.config.dimension);
}

Status StoreImpl::PlanRoom(OrgState& org, const PutRequest& r, int64_t now, Reservation* room,
                           RoomPlan* plan) {
  CapacityTracker& cap = *org.capacity;
  cap.ForgetExpired(now);  // also without limits: the counts (and memory) follow expiry
  if (!org.ordered.load(std::memory_order_relaxed)) return Status::Ok();
  EntryMeta incoming;
  incoming.name_space = std::string(r.name_space);
  incoming.payload_size = static_cast<uint32_t>(r.payload.size());
  incoming.vector_slot = r.vector.empty() ? kNoVectorSlot : 0;
  const uint64_t new_bytes = EntryLogicalBytes(incoming, org.config.dimension);
  const uint64_t max_bytes = org.max_bytes.load(std::memory_order_relaxed);
  const uint64_t max_entries = org.max_entries.load(std::memory_order_relaxed);
  // As a new entry: whether it replaces one is known under its lock (PutLocked then evicts
  // that much less).
  const CapacityTracker::Need need =
      cap.Reserve(static_cast<int64_t>(new_bytes), 1, max_bytes, max_entries);
  room->Set(&cap, static_cast<int64_t>(new_bytes), 1);
  uint64_t need_bytes = need.bytes;
  const bool org_limit = need.bytes > 0 || need.entries > 0;
  if (org_limit && org.policy.load(std::memory_order_relaxed) == EvictionPolicy::kNoEviction &&
      !FitsByReplacing(org, r.digest, now, need)) {
    return Status::ResourceExhausted(
        "org " + org.id + " is at its capacity limit (" +
        (need.bytes > 0 ? "max_bytes " + std::to_string(max_bytes)
                        : "max_entries " + std::to_string(max_entries)) +
        ") and its eviction policy is noeviction: the write is refused");
  }
  if (max_bytes > 0 && new_bytes > max_bytes) {
    return Status::ResourceExhausted("the entry (" + std::to_string(new_bytes) +
                                     " bytes) does not fit in the capacity limit of org " + org.id +
                                     " (max_bytes " + std::to_string(max_bytes) + ")");
  }
  if (options_.max_data_bytes > 0) {
    // Every org's bytes once the evictions and puts in flight (this one's too) are done.
    uint64_t total = 0;
    size_t orgs = 0;
    for (const auto& [id, other] : orgs_) {
      if (!other->capacity) continue;
      total += other->capacity->bytes_after_pending();
      orgs++;
    }
    total -= std::min(total, need_bytes);  // what this org's own limit takes back
    if (total > options_.max_data_bytes) {
      const uint64_t excess = total - options_.max_data_bytes;
      const uint64_t share = options_.max_data_bytes / std::max<size_t>(orgs, 1);
      // The org furthest over its fair share that may evict gives the room.
      OrgState* furthest = nullptr;
      int64_t furthest_over = INT64_MIN;
      for (const auto& [id, other] : orgs_) {
        if (!other->capacity || other->policy.load() == EvictionPolicy::kNoEviction) continue;
        const int64_t over = static_cast<int64_t>(other->capacity->bytes_after_pending()) -
                             static_cast<int64_t>(share);
        if (furthest == nullptr || over > furthest_over) {
          furthest = other.get();
          furthest_over = over;
        }
      }
      if (furthest == nullptr) {
        return Status::ResourceExhausted(
            "the server is at its capacity limit (max_data_bytes " +
            std::to_string(options_.max_data_bytes) +
            ") and no org's eviction policy allows eviction: the write is refused");
      }
      if (furthest == &org) {
        need_bytes += excess;
        plan->server_limit = !org_limit;
      } else {
        plan->elsewhere = furthest;
        plan->elsewhere_bytes = excess;
      }
    }
  }
  if (need_bytes == 0 && need.entries == 0) return Status::Ok();
  plan->need_bytes = need_bytes;
  plan->need_entries = need.entries;
  plan->victims = cap.ChooseVictims(need_bytes, need.entries, r.digest);
  uint64_t freed = 0;
  for (const auto& v : plan->victims) freed += v.bytes;
  if (freed < need_bytes || plan->victims.size() < need.entries) {
    for (const auto& v : plan->victims) cap.Release(v);
    plan->victims.clear();
    return Status::ResourceExhausted("the entry (" + std::to_string(new_bytes) +
                                     " bytes) does not fit in the capacity limit of org " + org.id +
                                     " even with every other entry evicted");
  }
  return Status::Ok();
}

Result<RemovedEntries> StoreImpl::EvictVictims(OrgState& org,
                                               std::vector<CapacityTracker::Victim> victims,
                                               bool server_limit, uint64_t* freed_bytes) {
  RemovedEntries removed;
  if (victims.empty()) return removed;
  // Every lock at once, in stripe order: no two evictions wait for each other, and a put
  // waits for none while it holds its own.
  std::vector<size_t> stripes;
  for (const auto& v : victims) stripes.push_back(OrgState::StripeOf(v.digest));
  std::sort(stripes.begin(), stripes.end());
  stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
  std::vector<std::unique_lock<std::mutex>> locks;
  locks.reserve(stripes.size());
  for (size_t stripe : stripes) locks.emplace_back(org.digest_locks[stripe]);
  rocksdb::WriteBatch batch;
  std::vector<CapacityTracker::Victim> taken;
  for (const auto& v : victims) {
    // Under its lock the tracker knows the entry as the store has it: no read needed.
    if (!org.capacity->StillChosen(v)) {  // replaced, deleted or expired since it was chosen
      org.capacity->Release(v);
      continue;
    }
    EntryMeta meta;
    meta.digest = v.digest;
    meta.vector_slot = v.vector_slot;
    DeleteEntry(org, meta, &batch);
    taken.push_back(v);
  }
  if (taken.empty()) return removed;
  rocksdb::Status s = Write(*org.db, write_options_, &batch);
  if (!s.ok()) {
    for (const auto& v : taken) org.capacity->Release(v);
    return FromRocks(s, "eviction failed");
  }
  for (const auto& v : taken) {
    org.capacity->Evicted(v);
    *freed_bytes += v.bytes;
    removed.count++;
    if (v.vector_slot != kNoVectorSlot) {
      removed.slots.push_back(v.vector_slot);
    } else {
      removed.exact_only.push_back(v.digest);
    }
  }
  (server_limit ? org.counters.evictions_server_limit : org.counters.evictions_org_limit) +=
      removed.count;
  return removed;
}

Result<RemovedEntries> StoreImpl::EvictFrom(OrgState& org, uint64_t bytes, uint64_t entries,
                                            bool server_limit, const Digest& keep) {
  RemovedEntries all;
  if (!org.capacity) return all;
  org.capacity->ForgetExpired(clock_->NowMillis());
  uint64_t freed_bytes = 0;
  for (int round = 0; round < kVictimRounds && (freed_bytes < bytes || all.count < entries);
       ++round) {
    auto victims = org.capacity->ChooseVictims(bytes > freed_bytes ? bytes - freed_bytes : 0,
                                               entries > all.count ? entries - all.count : 0, keep);
    if (victims.empty()) break;
    SC_ASSIGN_OR_RETURN(RemovedEntries removed,
                        EvictVictims(org, std::move(victims), server_limit, &freed_bytes));
    all.count += removed.count;
    all.slots.insert(all.slots.end(), removed.slots.begin(), removed.slots.end());
    all.exact_only.insert(all.exact_only.end(), removed.exact_only.begin(),
                          removed.exact_only.end());
  }
  return all;
}

Result<RemovedEntries> StoreImpl::SetOrgLimits(std::string_view org_id, const OrgLimits& limits) {
  if (!limits.eviction_policy.empty()) {
    SC_RETURN_IF_ERROR(ParseEvictionPolicy(limits.eviction_policy).status());
  }
  std::lock_guard<std::mutex> admin(org_admin_mu_);
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
  OrgConfig config;
  {
    std::lock_guard<std::mutex> l(org->config_mu);
    config = org->config;
  }
  config.limits = limits;
  // The org's own copy first (keyless tools read it), then the catalog: the commit point.
  rocksdb::Status s = org->db->db->Put(admin_write_options_, org->db->meta(), OrgInfoKey(org->id),
                                       EncodeOrgInfo(config));
  if (!s.ok()) return FromRocks(s, "org info of " + org->id);
  SC_RETURN_IF_ERROR(catalog_->UpdateOrg(org->id, config));
  {
    std::lock_guard<std::mutex> l(org->config_mu);
    org->config.limits = limits;
  }
  ApplyLimits(*org, limits);
  SC_RETURN_IF_ERROR(
      RecordAudit("org_limits_changed",
                  {{"org", org->id},
                   {"max_bytes", static_cast<int64_t>(limits.max_bytes)},
                   {"max_entries", static_cast<int64_t>(limits.max_entries)},
                   {"eviction_policy", std::string(EvictionPolicyName(org->policy.load()))}}));
  if (org->policy.load() == EvictionPolicy::kNoEviction) return RemovedEntries{};
  org->capacity->ForgetExpired(clock_->NowMillis());
  const uint64_t bytes = org->capacity->bytes_after_pending();
  const uint64_t entries = org->capacity->entries_after_pending();
  return EvictFrom(
      *org, limits.max_bytes > 0 && bytes > limits.max_bytes ? bytes - limits.max_bytes : 0,
      limits.max_entries > 0 && entries > limits.max_entries ? entries - limits.max_entries : 0,
      /*server_limit=*/false);
}

// Meta and payload are two reads without the digest's lock: a delete or replace can land
// between them. The payload's expiry prefix must match the meta's; if it does not, or the
// payload is gone, the entry changed under the read, which is tried again (a snapshot would
// do it in one go, but releasing snapshots makes RocksDB rewrite every fresh bottommost file
// once more). Only a payload still missing under unchanged meta is corrupt.
Result<Entry> StoreImpl::ReadEntry(const OrgState& org, const Digest& digest, bool with_payload,
                                   PendingWrites* pending) {
  const int64_t now = clock_->NowMillis();
  // The table of hot values holds the latest writes, meta and payload records together: not
  // for a transaction's reads, nor for a read of the meta record alone.
  const bool cacheable = with_payload && pending == nullptr;
  ValueCache::Ticket ticket;
  if (cacheable) {
    Entry entry;
    int64_t expires_ms = 0;
    std::string record;
    if (value_cache_->Lookup(org.db->incarnation, digest, &expires_ms, &entry.payload, &ticket,
                             &record)) {
      SC_ASSIGN_OR_RETURN(entry.meta, DecodeEntryMeta(record, digest));
      if (entry.meta.expires_ms <= now) return Status::NotFound("entry expired");
      return entry;
    }
  }
  for (int attempt = 0;; ++attempt) {
    std::string record;
    rocksdb::Status s =
        ReadRecord(org, org.db->meta(), EntryKey(org.id, digest), &record, pending, {});
    if (s.IsNotFound()) return Status::NotFound("no entry with this digest");
    if (!s.ok()) return FromRocks(s, "cannot read entry metadata");
    Entry entry;
    SC_ASSIGN_OR_RETURN(entry.meta, DecodeEntryMeta(record, digest));
    if (entry.meta.expires_ms <= now) return Status::NotFound("entry expired");
    if (!with_payload) return entry;
    rocksdb::PinnableSlice value;
    s = ReadRecord(org, org.db->data(), PayloadKey(digest), &value, pending, {});
    if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "cannot read payload of org " + org.id);
    const bool missing = s.IsNotFound() || value.size() < kExpirySize;
    const bool changed = missing || *ValueExpiry(View(value)) != entry.meta.expires_ms;
    if (changed && attempt < kChangedEntryRereads) continue;
    if (s.IsNotFound()) {
      return Status::Corruption("entry metadata exists but its payload is missing");
    }
    if (missing) return Status::Corruption("payload record is truncated");
    const std::span<const uint8_t> payload = PayloadBytes(value);
    if (cacheable && !changed) {
      value_cache_->Fill(org.db->incarnation, digest, ticket, entry.meta.expires_ms, payload,
                         record);
    }
    entry.payload.assign(payload.begin(), payload.end());
    return entry;
  }
}

Result<Entry> StoreImpl::Get(std::string_view org_id, const Digest& digest, bool with_payload) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
  org->counters.gets++;
  auto entry = ReadEntry(*org, digest, with_payload);
  (entry.ok() ? org->counters.hits : org->counters.misses)++;
  if (entry.ok() && org->ordered.load(std::memory_order_relaxed)) {
    org->capacity->Touch(digest, clock_->NowMillis());
  }
  return entry;
}

Result<StoredValue> StoreImpl::GetValue(std::string_view org_id, const Digest& digest) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
  return ReadValue(*org, digest, nullptr);
}

template <typename Take>
void StoreImpl::TakeLatestValue(OrgState& org, const Digest& digest, Take&& take) {
  const int64_t now = clock_->NowMillis();
  ValueCache::Ticket ticket;
  int64_t cached_expiry = 0;
  const bool cached = value_cache_->Read(
      org.db->incarnation, digest,
      [&](int64_t expires_ms, std::span<const uint8_t> payload) {
        cached_expiry = expires_ms;
        if (expires_ms > now) take(Result<ValueView>(ValueView{expires_ms, payload}));
      },
      &ticket);
  if (cached) {
    org.counters.gets++;
    Status live = CountValueRead(org, digest, cached_expiry, now);
    if (!live.ok()) {  // expired (not given above)
      value_cache_->Forget(org.db->incarnation, digest);
      take(Result<ValueView>(std::move(live)));
    }
    return;
  }
  rocksdb::PinnableSlice value;
  rocksdb::Status s = org.db->db->Get({}, org.db->data(), PayloadKey(digest), &value);
  const Result<ValueView> out = ViewOf(org, digest, s, value);
  if (out.ok()) {
    value_cache_->Fill(org.db->incarnation, digest, ticket, out->expires_ms, out->payload);
  }
  take(out);
}

Result<StoredValue> StoreImpl::ReadValue(OrgState& org, const Digest& digest,
                                         PendingWrites* pending) {
  if (pending != nullptr) {  // (a transaction's own writes are not in the table)
    rocksdb::PinnableSlice value;
    rocksdb::Status s = ReadRecord(org, org.db->data(), PayloadKey(digest), &value, pending);
    return ValueOf(org, digest, s, value);
  }
  std::optional<Result<StoredValue>> out;
  TakeLatestValue(org, digest, [&](const Result<ValueView>& v) { out = CopyOfValue(v); });
  return std::move(*out);
}

Result<ValueView> StoreImpl::ViewOf(OrgState& org, const Digest& digest, const rocksdb::Status& s,
                                    const rocksdb::Slice& value) {
  org.counters.gets++;
  // Meta, payload and vector records of an entry are written and removed in one batch, and
  // the payload record's expiry is the entry's: it alone says whether the entry is live.
  if (s.IsNotFound()) {
    org.counters.misses++;
    return Status::NotFound("no entry with this digest");
  }
  if (!s.ok()) return FromRocks(s, "cannot read payload of org " + org.id);
  if (value.size() < kExpirySize) return Status::Corruption("payload record is truncated");
  const int64_t expires_ms = *ValueExpiry(View(value));
  SC_RETURN_IF_ERROR(CountValueRead(org, digest, expires_ms, clock_->NowMillis()));
  return ValueView{expires_ms, PayloadBytes(value)};
}

Result<StoredValue> StoreImpl::ValueOf(OrgState& org, const Digest& digest,
                                       const rocksdb::Status& s, const rocksdb::Slice& value) {
  return CopyOfValue(ViewOf(org, digest, s, value));
}

Status StoreImpl::CountValueRead(OrgState& org, const Digest& digest, int64_t expires_ms,
                                 int64_t now_ms) {
  if (expires_ms <= now_ms) {
    org.counters.misses++;
    return Status::NotFound("entry expired");
  }
  org.counters.hits++;
  if (org.ordered.load(std::memory_order_relaxed)) org.capacity->Touch(digest, now_ms);
  return Status::Ok();
}

void StoreImpl::Prefetch(std::string_view org_id, std::span<const Digest> digests) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  auto org = FindOpenOrg(org_id);
  if (org.ok()) value_cache_->Prefetch((*org)->db->incarnation, digests);
}

void StoreImpl::GetValueEach(std::string_view org_id, std::span<const Digest> digests,
                             const TakeValue& take) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  auto org = FindOpenOrg(org_id);
  if (!org.ok()) {
    const Result<ValueView> failed = org.status();
    for (size_t i = 0; i < digests.size(); ++i) take(i, failed);
    return;
  }
  value_cache_->Prefetch((*org)->db->incarnation, digests);
  for (size_t i = 0; i < digests.size(); ++i) {
    TakeLatestValue(**org, digests[i], [&](const Result<ValueView>& v) { take(i, v); });
  }
}

namespace {

// The values and statuses of one MultiGet, in its keys' order.
struct BatchRead {
  std::vector<rocksdb::PinnableSlice> values;
  std::vector<rocksdb::Status> statuses;
};

// One MultiGet of `keys` in `family` (none for no keys). It reads one view of the family: a
// batch is in it whole or not at all.
BatchRead ReadBatch(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family,
                    const std::vector<std::string>& keys) {
  BatchRead out{std::vector<rocksdb::PinnableSlice>(keys.size()),
                std::vector<rocksdb::Status>(keys.size())};
  if (keys.empty()) return out;
  const std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  db.MultiGet({}, family, keys.size(), slices.data(), out.values.data(), out.statuses.data());
  return out;
}

}  // namespace

std::vector<Result<StoredValue>> StoreImpl::GetValues(std::string_view org_id,
                                                      std::span<const Digest> digests) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  auto org = FindOpenOrg(org_id);
  if (!org.ok()) return std::vector<Result<StoredValue>>(digests.size(), org.status());
  const size_t n = digests.size();
  std::vector<std::string> keys(n);
  for (size_t i = 0; i < n; ++i) keys[i] = PayloadKey(digests[i]);
  const BatchRead read = ReadBatch(*(*org)->db->db, (*org)->db->data(), keys);
  std::vector<Result<StoredValue>> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(ValueOf(**org, digests[i], read.statuses[i], read.values[i]));
  }
  return out;
}

// A batch of reads (a lookup's answers): each entry from the table of hot values when it holds
// it, as a Get reads; the rest with one MultiGet of their meta records and one of their
// payloads, which then fill the table as a Get's misses do (its admission decides), so that an
// entry a lookup returns often is read there next time, and so is an expiry change's payload.
std::vector<Result<Entry>> StoreImpl::MultiGet(std::string_view org_id,
                                               std::span<const Digest> digests, bool with_payload) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  auto org_or = FindOpenOrg(org_id);
  if (!org_or.ok()) return std::vector<Result<Entry>>(digests.size(), org_or.status());
  OrgState* org = *org_or;
  const size_t n = digests.size();
  const int64_t now = clock_->NowMillis();
  const uint64_t db = org->db->incarnation;
  std::vector<std::optional<Result<Entry>>> found(n);
  std::vector<ValueCache::Ticket> tickets(n);
  std::vector<size_t> read;  // the positions the table did not answer
  read.reserve(n);
  if (n > 1) value_cache_->Prefetch(db, digests);
  for (size_t i = 0; i < n; ++i) {
    std::string record;
    Entry entry;
    int64_t cached_expiry = 0;
    const bool cached = with_payload ? value_cache_->Lookup(db, digests[i], &cached_expiry,
                                                            &entry.payload, &tickets[i], &record)
                                     : value_cache_->CachedMeta(db, digests[i], &record);
    if (!cached) {
      read.push_back(i);
      continue;
    }
    auto meta = DecodeEntryMeta(record, digests[i]);
    if (!meta.ok()) {
      found[i] = meta.status();
      continue;
    }
    entry.meta = std::move(meta).value();
    found[i] = std::move(entry);
  }
  const size_t m = read.size();
  std::vector<std::string> meta_keys(m);
  for (size_t j = 0; j < m; ++j) meta_keys[j] = EntryKey(org->id, digests[read[j]]);
  const BatchRead metas = ReadBatch(*org->db->db, org->db->meta(), meta_keys);
  const std::vector<rocksdb::PinnableSlice>& meta_values = metas.values;
  const std::vector<rocksdb::Status>& statuses = metas.statuses;
  std::vector<size_t> want_payload;  // positions in `read`
  for (size_t j = 0; j < m; ++j) {
    std::optional<Result<Entry>>& slot = found[read[j]];
    if (!statuses[j].ok()) {
      slot = statuses[j].IsNotFound() ? Status::NotFound("no entry with this digest")
                                      : FromRocks(statuses[j], "multiget failed");
      continue;
    }
    auto meta = DecodeEntryMeta(View(meta_values[j]), digests[read[j]]);
    if (!meta.ok()) {
      slot = meta.status();
      continue;
    }
    slot = Entry{std::move(meta).value(), {}};
    if (with_payload && (*slot)->meta.expires_ms > now) want_payload.push_back(j);
  }
  const size_t w = want_payload.size();
  std::vector<std::string> payload_keys(w);
  for (size_t k = 0; k < w; ++k) payload_keys[k] = PayloadKey(digests[read[want_payload[k]]]);
  const BatchRead payload_read = ReadBatch(*org->db->db, org->db->data(), payload_keys);
  const std::vector<rocksdb::PinnableSlice>& payloads = payload_read.values;
  const std::vector<rocksdb::Status>& payload_statuses = payload_read.statuses;
  for (size_t k = 0; k < w; ++k) {
    const size_t j = want_payload[k], i = read[j];
    Result<Entry>& slot = *found[i];
    const rocksdb::Status& s = payload_statuses[k];
    if (!s.ok() && !s.IsNotFound()) {
      slot = FromRocks(s, "cannot read payload");
      continue;
    }
    if (!s.ok() || payloads[k].size() < kExpirySize ||
        *ValueExpiry(View(payloads[k])) != slot->meta.expires_ms) {
      // Deleted or replaced between the two reads (or damaged): read it again alone.
      slot = ReadEntry(*org, digests[i], true);
      continue;
    }
    const std::span<const uint8_t> payload = PayloadBytes(payloads[k]);
    value_cache_->Fill(db, digests[i], tickets[i], slot->meta.expires_ms, payload,
                       View(meta_values[j]));
    slot->payload.assign(payload.begin(), payload.end());
  }
  std::vector<Result<Entry>> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    Result<Entry>& r = *found[i];
    org->counters.gets++;
    if (r.ok() && r->meta.expires_ms <= now) r = Status::NotFound("entry expired");
    if (r.ok()) {
      org->counters.hits++;
      if (org->ordered.load(std::memory_order_relaxed)) org->capacity->Touch(digests[i], now);
    } else if (r.status().code() == Status::Code::kNotFound) {
      org->counters.misses++;
    }
    out.push_back(std::move(r));
  }
  return out;
}

Result<Entry> StoreImpl::GetBySlot(std::string_view org_id, uint64_t slot, bool with_payload) {
  Digest digest{};
  {
    std::shared_lock<std::shared_mutex> lock(orgs_mu_);
    SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
    rocksdb::PinnableSlice value;
    rocksdb::Status s = org->db->db->Get({}, org->db->data(), VectorKey(slot), &value);
    if (s.IsNotFound()) return Status::NotFound("no vector at this slot");
    if (!s.ok()) return FromRocks(s, "cannot read vector slot");
    if (value.size() < kExpirySize + kDigestSize) return Status::Corruption("vector record short");
    std::memcpy(digest.data(), value.data() + kExpirySize, kDigestSize);
  }
  SC_ASSIGN_OR_RETURN(Entry entry, Get(org_id, digest, with_payload));
  if (entry.meta.vector_slot != slot) return Status::NotFound("slot was replaced");
  return entry;
}

void StoreImpl::DeleteEntry(OrgState& org, const EntryMeta& meta, rocksdb::WriteBatchBase* batch) {
  batch->Delete(org.db->meta(), EntryKey(org.id, meta.digest));
  batch->Delete(org.db->data(), PayloadKey(meta.digest));
  if (meta.vector_slot != kNoVectorSlot) batch->Delete(org.db->data(), VectorKey(meta.vector_slot));
}

Result<RemovedEntries> StoreImpl::Delete(std::string_view org_id, const Digest& digest) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
  return DeleteOne(*org, digest, nullptr);
}

Result<RemovedEntries> StoreImpl::DeleteOne(OrgState& org_ref, const Digest& digest,
                                            PendingWrites* pending) {
  OrgState* org = &org_ref;
  std::lock_guard<std::mutex> digest_lock(org->LockFor(digest));
  SC_ASSIGN_OR_RETURN(EntryMeta meta, ReadMetaToWrite(*org, digest, pending));
  rocksdb::WriteBatch own;
  DeleteEntry(*org, meta,
              pending != nullptr ? static_cast<rocksdb::WriteBatchBase*>(&pending->batch) : &own);
  SC_RETURN_IF_ERROR(WriteOrHold(
      *org, &own, pending, {digest},
      [org, digest] {
        org->capacity->Remove(digest);
        org->counters.deletes++;
      },
      "delete failed"));
  RemovedEntries removed{1, {}, {}};
  if (meta.vector_slot != kNoVectorSlot) {
    removed.slots.push_back(meta.vector_slot);
  } else {
    removed.exact_only.push_back(meta.digest);
  }
  return removed;
}

Result<RemovedEntries> StoreImpl::Invalidate(std::string_view org_id,
                                             const InvalidateFilter& filter) {
  if (!filter.name_space && !filter.older_than_ms) {
    return Status::InvalidArgument("invalidate needs a namespace or an older_than time");
  }
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
  auto matches = [&](const EntryMeta& m) {
    return (filter.name_space && m.name_space == *filter.name_space) ||
           (filter.older_than_ms && m.created_ms < *filter.older_than_ms);
  };
  std::vector<Digest> candidates;
  {
    const std::string prefix = EntryKeyPrefix(org->id);
    std::unique_ptr<rocksdb::Iterator> it(org->db->db->NewIterator({}, org->db->meta()));
    for (it->Seek(prefix); it->Valid() && StartsWith(View(it->key()), prefix); it->Next()) {
      Digest d{};
      if (it->key().size() != prefix.size() + kDigestSize) continue;
      std::memcpy(d.data(), it->key().data() + prefix.size(), kDigestSize);
      SC_ASSIGN_OR_RETURN(EntryMeta m, DecodeEntryMeta(View(it->value()), d));
      if (matches(m)) candidates.push_back(d);
    }
    if (!it->status().ok()) return FromRocks(it->status(), "invalidate scan failed");
  }
  RemovedEntries removed;
  for (const Digest& d : candidates) {
    std::lock_guard<std::mutex> digest_lock(org->LockFor(d));
    auto meta = ReadMetaToWrite(*org, d, nullptr);  // it may have been replaced since the scan
    if (meta.status().IsNotFound() || (meta.ok() && !matches(*meta))) continue;
    if (!meta.ok()) return meta.status();
    rocksdb::WriteBatch batch;
    DeleteEntry(*org, *meta, &batch);
    rocksdb::Status s = Write(*org->db, write_options_, &batch);
    if (!s.ok()) return FromRocks(s, "invalidate failed");
    org->capacity->Remove(d);
    removed.count++;
    if (meta->vector_slot != kNoVectorSlot) {
      removed.slots.push_back(meta->vector_slot);
    } else {
      removed.exact_only.push_back(meta->digest);
    }
  }
  org->counters.deletes += removed.count;
  return removed;
}

// Hit counts are written a digest-lock stripe at a time: that stripe's hits (at most
// kHitsPerWrite) read with one MultiGet and written back in one write, under its lock, so
// no put of one of those entries comes between the read and the write. (One read and one
// write per hit made the hit counting of a read-only load cost more than the reads.)
constexpr size_t kHitsPerWrite = 128;

Status StoreImpl::RecordHits(std::string_view org_id, std::span<const HitUpdate> hits) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
  // By stripe, then digest; one update per digest.
  std::vector<HitUpdate> sorted(hits.begin(), hits.end());
  std::sort(sorted.begin(), sorted.end(), [](const HitUpdate& a, const HitUpdate& b) {
    const size_t sa = OrgState::StripeOf(a.digest), sb = OrgState::StripeOf(b.digest);
    return sa != sb ? sa < sb : a.digest < b.digest;
  });
  std::vector<HitUpdate> merged;
  merged.reserve(sorted.size());
  for (const HitUpdate& h : sorted) {
    if (!merged.empty() && merged.back().digest == h.digest) {
      merged.back().hits += h.hits;
      merged.back().last_hit_ms = std::max(merged.back().last_hit_ms, h.last_hit_ms);
    } else {
      merged.push_back(h);
    }
  }
  for (size_t i = 0; i < merged.size();) {
    const size_t stripe = OrgState::StripeOf(merged[i].digest);
    size_t j = i + 1;
    while (j < merged.size() && j - i < kHitsPerWrite &&
           OrgState::StripeOf(merged[j].digest) == stripe) {
      ++j;
    }
    SC_RETURN_IF_ERROR(RecordStripeHits(*org, stripe, std::span(merged).subspan(i, j - i)));
    i = j;
  }
  return Status::Ok();
}

Status StoreImpl::RecordStripeHits(OrgState& org, size_t stripe, std::span<const HitUpdate> hits) {
  std::lock_guard<std::mutex> digest_lock(org.digest_locks[stripe]);
  const size_t n = hits.size();
  // The meta records: from the table of hot values where it holds them (under the stripe's
  // lock, the records in the database: every write forgets or refreshes its keys there), the
  // others with one MultiGet. Not an expired entry's: compaction drops the records of
  // expired entries without telling the table, and counting its hits must not write one back.
  const int64_t now = clock_->NowMillis();
  std::vector<std::string> keys(n), cached(n);
  std::vector<rocksdb::Slice> slices;
  std::vector<size_t> read;  // hits whose record is read from the database
  std::vector<Digest> digests(n);
  for (size_t i = 0; i < n; ++i) digests[i] = hits[i].digest;
  value_cache_->Prefetch(org.db->incarnation, digests);  // (their cache misses overlap)
  for (size_t i = 0; i < n; ++i) {
    keys[i] = EntryKey(org.id, hits[i].digest);
    if (value_cache_->CachedMeta(org.db->incarnation, hits[i].digest, &cached[i]) &&
        ValueExpiry(cached[i]).value_or(0) > now) {
      continue;
    }
    read.push_back(i);
    slices.push_back(keys[i]);
  }
  std::vector<rocksdb::PinnableSlice> values(read.size());
  std::vector<rocksdb::Status> statuses(read.size());
  if (!read.empty()) {
    org.db->db->MultiGet({}, org.db->meta(), read.size(), slices.data(), values.data(),
                         statuses.data());
  }
  // Each hit's record; nullopt where the entry was deleted since the hit (nothing to count).
  std::vector<std::optional<std::string_view>> records(n);
  for (size_t i = 0; i < n; ++i) records[i] = cached[i];
  for (size_t r = 0; r < read.size(); ++r) {
    if (statuses[r].IsNotFound()) {
      records[read[r]].reset();
    } else if (!statuses[r].ok()) {
      return FromRocks(statuses[r], "cannot record hits");
    } else {
      records[read[r]] = View(values[r]);
    }
  }
  rocksdb::WriteBatch batch;
  std::vector<std::pair<const Digest*, std::string>> written;  // digest, new meta record
  for (size_t i = 0; i < n; ++i) {
    if (!records[i]) continue;
    SC_ASSIGN_OR_RETURN(EntryMeta meta, DecodeEntryMeta(*records[i], hits[i].digest));
    meta.hits += hits[i].hits;
    meta.last_hit_ms = std::max(meta.last_hit_ms, hits[i].last_hit_ms);
    written.emplace_back(&hits[i].digest, EncodeEntryMeta(meta));
    batch.Put(org.db->meta(), keys[i], written.back().second);
  }
  if (batch.Count() == 0) return Status::Ok();
  // The entries' payloads are unchanged: cached ones stay, with their new meta records
  // (under the stripe's lock, so no other write of these digests comes between).
  rocksdb::Status s = Write(*org.db, write_options_, &batch, /*forget_meta=*/false);
  for (const auto& [digest, record] : written) {
    if (s.ok()) {
      value_cache_->RefreshMeta(org.db->incarnation, *digest, record);
    } else {
      value_cache_->Forget(org.db->incarnation, *digest);
    }
  }
  return s.ok() ? Status::Ok() : FromRocks(s, "cannot record hits");
}

Result<EntryMeta> StoreImpl::SetExpiry(std::string_view org_id, const Digest& digest,
                                       int64_t expires_ms) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
  return SetEntryExpiry(*org, digest, expires_ms, nullptr);
}

Result<EntryMeta> StoreImpl::SetEntryExpiry(OrgState& org_ref, const Digest& digest,
                                            int64_t expires_ms, PendingWrites* pending) {
  OrgState* org = &org_ref;
  const int64_t now = clock_->NowMillis();
  if (expires_ms <= now || expires_ms - now > options_.max_ttl_ms) {
    return Status::InvalidArgument("expiry must be after now and at most " +
                                   std::to_string(options_.max_ttl_ms) + " ms ahead");
  }
  std::lock_guard<std::mutex> digest_lock(org->LockFor(digest));
  SC_ASSIGN_OR_RETURN(EntryMeta meta, ReadMetaToWrite(*org, digest, pending));
  if (meta.expires_ms <= now) return Status::NotFound("entry expired");
  std::string payload, vector;
  // The payload record from the table of hot values when it holds the entry (one written,
  // read by key or returned by lookups recently; under the digest's lock the table's copy is
  // the database's), else from the files.
  ValueCache::Ticket ticket;
  const bool cached =
      pending == nullptr && value_cache_->Read(
                                org->db->incarnation, digest,
                                [&](int64_t expiry, std::span<const uint8_t> bytes) {
                                  payload = EncodePayloadValue(expiry, bytes);
                                },
                                &ticket);
  rocksdb::Status s;
  if (!cached) s = ReadRecord(*org, org->db->data(), PayloadKey(digest), &payload, pending);
  if (!s.ok()) return FromRocks(s, "cannot read payload of org " + org->id);
  if (payload.size() < kExpirySize) return Status::Corruption("payload record is truncated");
  if (meta.vector_slot != kNoVectorSlot) {
    s = ReadRecord(*org, org->db->data(), VectorKey(meta.vector_slot), &vector, pending);
    if (!s.ok()) return FromRocks(s, "cannot read vector of org " + org->id);
    if (vector.size() < kExpirySize) return Status::Corruption("vector record is truncated");
  }
  meta.expires_ms = expires_ms;
  meta.ttl_ms = expires_ms - now;
  rocksdb::WriteBatch own;
  rocksdb::WriteBatchBase& batch =
      pending != nullptr ? static_cast<rocksdb::WriteBatchBase&>(pending->batch) : own;
  batch.Put(org->db->meta(), EntryKey(org->id, digest), EncodeEntryMeta(meta));
  ReplaceValueExpiry(&payload, expires_ms);
  batch.Put(org->db->data(), PayloadKey(digest), payload);
  if (!vector.empty()) {
    ReplaceValueExpiry(&vector, expires_ms);
    batch.Put(org->db->data(), VectorKey(meta.vector_slot), vector);
  }
  SC_RETURN_IF_ERROR(WriteOrHold(
      *org, &own, pending, {digest},
      [org, digest, expires_ms] { org->capacity->SetExpiry(digest, expires_ms); },
      "cannot change the expiry"));
  return meta;
}

Result<Digest> StoreImpl::NameDigest(std::string_view org_id, std::string_view name) {
  // Domain-separated, so that other kinds of names can get digests under the same key.
  static constexpr std::string_view kKeyNameTag = "sealcache/key-name/v1";
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
  std::shared_ptr<const crypto::HmacSha256Key> mac;
  {
    std::lock_guard<std::mutex> l(org->name_key_mu);
    if (org->name_mac == nullptr) {
      SC_ASSIGN_OR_RETURN(std::shared_ptr<const crypto::SecretBytes> key,
                          catalog_->NameKey(org->id));
      SC_ASSIGN_OR_RETURN(crypto::HmacSha256Key prepared, crypto::HmacSha256Key::Create(*key));
      org->name_mac = std::make_shared<const crypto::HmacSha256Key>(std::move(prepared));
    }
    mac = org->name_mac;
  }
  std::string input(kKeyNameTag);
  input.push_back('\0');
  input.append(name);
  return mac->Mac({reinterpret_cast<const uint8_t*>(input.data()), input.size()});
}

Status StoreImpl::ScanMeta(std::string_view org_id, const std::function<bool(const EntryMeta&)>& fn,
                           const Digest& from) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
  const std::string prefix = EntryKeyPrefix(org->id);
  const int64_t now = clock_->NowMillis();
  std::unique_ptr<rocksdb::Iterator> it(org->db->db->NewIterator({}, org->db->meta()));
  const std::string start =
      prefix + std::string(reinterpret_cast<const char*>(from.data()), from.size());
  for (it->Seek(start); it->Valid() && StartsWith(View(it->key()), prefix); it->Next()) {
    if (it->key().size() != prefix.size() + kDigestSize) continue;
    Digest d{};
    std::memcpy(d.data(), it->key().data() + prefix.size(), kDigestSize);
    SC_ASSIGN_OR_RETURN(EntryMeta m, DecodeEntryMeta(View(it->value()), d));
    if (m.expires_ms <= now) continue;
    if (!fn(m)) break;
  }
  return FromRocks(it->status());
}

Status StoreImpl::ScanVectors(
    std::string_view org_id, uint64_t from_slot,
    const std::function<bool(uint64_t, const Digest&, int64_t, std::span<const float>)>& fn) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
  const int64_t now = clock_->NowMillis();
  std::vector<float> buffer;
  std::unique_ptr<rocksdb::Iterator> it(org->db->db->NewIterator({}, org->db->data()));
  for (it->Seek(VectorKey(from_slot)); it->Valid() && it->key()[0] == kVectorPrefix; it->Next()) {
    SC_ASSIGN_OR_RETURN(uint64_t slot, DecodeVectorKey(View(it->key())));
    SC_ASSIGN_OR_RETURN(VectorValue v,
                        DecodeVectorValue(View(it->value()), org->config.dimension, &buffer));
    if (v.expires_ms <= now) continue;
    if (!fn(slot, v.digest, v.expires_ms, v.vector)) break;
  }
  return FromRocks(it->status(), "cannot scan vectors of " + org->id);
}

Result<OrgStats> StoreImpl::Stats(std::string_view org_id) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
  OrgStats st;
  uint64_t keys = 0;
  org->db->db->GetIntProperty(org->db->data(), "rocksdb.estimate-num-keys", &keys);
  st.estimated_entries = keys / 2;  // one payload and one vector record per entry
  org->db->db->GetIntProperty(org->db->data(), "rocksdb.total-sst-files-size", &st.live_sst_bytes);
  st.puts = org->counters.puts;
  st.gets = org->counters.gets;
  st.hits = org->counters.hits;
  st.misses = org->counters.misses;
  st.deletes = org->counters.deletes;
  org->capacity->ForgetExpired(clock_->NowMillis());
  st.live_entries = org->capacity->entries();
  st.logical_bytes = org->capacity->bytes();
  {
    std::lock_guard<std::mutex> l(org->config_mu);
    st.limits = org->config.limits;
  }
  st.eviction_policy = org->policy.load();
  st.evictions_org_limit = org->counters.evictions_org_limit;
  st.evictions_server_limit = org->counters.evictions_server_limit;
  {
    std::lock_guard<std::mutex> l(decrypt_failures_mu_);
    auto it = decrypt_failures_.find(org->id);
    st.decrypt_failures = it == decrypt_failures_.end() ? 0 : it->second;
  }
  SC_ASSIGN_OR_RETURN(auto active, keystore_->Active(org->ring()));
  st.active_key_version = active.version;
  SC_ASSIGN_OR_RETURN(auto info, keystore_->Versions(org->ring()));
  for (const auto& v : info) {
    if (v.version == active.version) st.active_key_age_ms = clock_->NowMillis() - v.created_ms;
  }
  return st;
}

Status StoreImpl::Flush() {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  for (auto& [id, org] : orgs_) {
    if (org->db != nullptr) SC_RETURN_IF_ERROR(FlushOrg(*org->db, "flush of org " + id));
  }
  return Status::Ok();
}

Status StoreImpl::CompactOrg(std::string_view org_id) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
  rocksdb::CompactRangeOptions cro;
  cro.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  rocksdb::DB* db = org->db->db;
  SC_RETURN_IF_ERROR(
      FromRocks(db->CompactRange(cro, org->db->data(), nullptr, nullptr), "compaction"));
  return FromRocks(db->CompactRange(cro, org->db->meta(), nullptr, nullptr), "meta compaction");
}

}  // namespace internal
}  // namespace sealcache::storage
