#include "sealcache/storage/inspect.h"

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/sst_file_reader.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <thread>

#include "encrypted_file_system.h"
#include "expiry.h"
#include "read_only_file_system.h"
#include "records.h"
#include "rocksdb_status.h"
#include "sealcache/crypto/keystore.h"
#include "sealcache/storage/file_header.h"
#include "store_impl.h"

namespace sealcache::storage {
namespace {

// A server may switch its MANIFEST or delete an obsolete WAL between the moment RocksDB
// lists the directory and the moment it opens the file; a fresh attempt then sees the new
// state.
constexpr int kOpenAttempts = 4;
constexpr auto kOpenRetryDelay = std::chrono::milliseconds(50);
constexpr uint64_t kUnlimitedPathSize = std::numeric_limits<uint64_t>::max();

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

std::string FamilyName(std::string_view org) {
  return internal::kOrgFamilyPrefix + std::string(org);
}

bool Retryable(const rocksdb::Status& s) {
  return s.IsIOError() || s.IsPathNotFound() || s.IsNotFound();
}

uint64_t PhysicalSize(const std::string& path) {
  std::error_code ec;
  uint64_t size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}

// The WAL with the highest file number: the one a server is writing.
std::optional<std::string> NewestWal(const DataLayout& layout) {
  std::optional<std::string> newest;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(layout.db_dir(), ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() <= 4 || name.substr(name.size() - 4) != ".log") continue;
    if (!newest || name > std::filesystem::path(*newest).filename().string()) {
      newest = e.path().string();
    }
  }
  return newest;
}

}  // namespace

struct StoreView::Impl {
  explicit Impl(std::string dir) : layout(std::move(dir)) {}
  ~Impl() {
    if (db == nullptr) return;
    for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h);
    db->Close();
    delete db;
  }

  Status OpenFileSystem(const StoreViewOptions& options);
  rocksdb::DBOptions DatabaseOptions(bool strict_wal) const;
  Status OpenDatabase(bool strict_wal);
  Result<rocksdb::ColumnFamilyHandle*> OrgFamily(std::string_view org) const;
  Result<std::string> GetFrom(rocksdb::ColumnFamilyHandle* cf, const std::string& key,
                              const std::string& what) const;
  Result<bool> SstHolds(const std::string& path, const std::string& key,
                        const std::string& value) const;

  DataLayout layout;
  SystemClock clock;
  bool full = false;
  bool benchmark = false;
  std::unique_ptr<crypto::Keystore> keystore;
  std::shared_ptr<rocksdb::FileSystem> fs;
  std::unique_ptr<rocksdb::Env> env;
  std::shared_ptr<rocksdb::Logger> logger = internal::NewDiscardingLogger();
  std::vector<std::string> org_families;
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>> orgs;
};

Status StoreView::Impl::OpenFileSystem(const StoreViewOptions& options) {
  benchmark = std::filesystem::exists(layout.db_dir() + "/" + internal::kPlaintextMarker);
  const bool keyed = options.master_key != nullptr && !benchmark;
  full = keyed || benchmark;
  auto base = internal::NewReadOnlyFileSystem(rocksdb::FileSystem::Default(), /*hide_wal=*/!full);
  if (!keyed) {
    fs = std::move(base);
    return Status::Ok();
  }
  crypto::KeystoreOptions ks;
  ks.clock = &clock;
  ks.create_if_missing = false;
  ks.read_only = true;  // no lock: a server may hold the keystore open
  SC_ASSIGN_OR_RETURN(keystore,
                      crypto::Keystore::Open(layout.keystore_path(), *options.master_key, ks));
  fs = internal::NewRoutingFileSystem(layout, keystore.get(), std::move(base), {});
  if (fs == nullptr) return Status::Internal("cannot create the decrypting file system");
  return Status::Ok();
}

rocksdb::DBOptions StoreView::Impl::DatabaseOptions(bool strict_wal) const {
  rocksdb::DBOptions o;
  o.env = env.get();
  o.info_log = logger;  // RocksDB would otherwise create (and rotate) db/LOG
  o.create_if_missing = false;
  o.allow_mmap_reads = false;  // incompatible with the encrypted file system
  o.paranoid_checks = true;
  // -1 opens every table file during Open: the view keeps them even if the server
  // compacts them away afterwards, so it stays a consistent snapshot.
  o.max_open_files = -1;
  o.wal_recovery_mode = strict_wal ? rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords
                                   : rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  return o;
}

Status StoreView::Impl::OpenDatabase(bool strict_wal) {
  env = rocksdb::NewCompositeEnv(fs);
  const rocksdb::DBOptions db_options = DatabaseOptions(strict_wal);
  rocksdb::Status s;
  for (int attempt = 0; attempt < kOpenAttempts; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(kOpenRetryDelay);
    std::vector<std::string> families;
    s = rocksdb::DB::ListColumnFamilies(db_options, layout.db_dir(), &families);
    if (!s.ok()) continue;
    org_families.clear();
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
    rocksdb::ColumnFamilyOptions meta_options;
    // Reading the slot counter needs the operator its merge operands were written with.
    meta_options.merge_operator = internal::NewMaxSlotMergeOperator();
    // A family's SSTs are found only through its cf_paths (the MANIFEST keeps path ids).
    meta_options.cf_paths = {{layout.meta_dir(), kUnlimitedPathSize}};
    descriptors.emplace_back(internal::kMetaFamily, meta_options);
    for (const std::string& name : families) {
      if (!StartsWith(name, internal::kOrgFamilyPrefix)) continue;
      org_families.push_back(name.substr(std::strlen(internal::kOrgFamilyPrefix)));
      // A subset of the families is allowed read-only: keyless views skip the encrypted ones.
      if (!full) continue;
      rocksdb::ColumnFamilyOptions org_options;
      org_options.cf_paths = {{layout.org_dir(org_families.back()), kUnlimitedPathSize}};
      descriptors.emplace_back(name, org_options);
    }
    s = rocksdb::DB::OpenForReadOnly(db_options, layout.db_dir(), descriptors, &handles, &db);
    if (s.ok()) break;
    if (!Retryable(s)) break;
  }
  if (!s.ok()) return internal::FromRocks(s, "cannot open " + layout.db_dir() + " read-only");
  meta = handles[1];
  for (size_t i = 2; i < handles.size(); ++i) {
    orgs.emplace(handles[i]->GetName().substr(std::strlen(internal::kOrgFamilyPrefix)), handles[i]);
  }
  return Status::Ok();
}

Result<rocksdb::ColumnFamilyHandle*> StoreView::Impl::OrgFamily(std::string_view org) const {
  if (!full) {
    return Status::FailedPrecondition("org data is encrypted: a master key is needed to read it");
  }
  auto it = orgs.find(org);
  if (it == orgs.end()) return Status::NotFound("unknown org " + std::string(org));
  return it->second;
}

Result<std::string> StoreView::Impl::GetFrom(rocksdb::ColumnFamilyHandle* cf,
                                             const std::string& key,
                                             const std::string& what) const {
  std::string value;
  rocksdb::Status s = db->Get({}, cf, key, &value);
  if (s.IsNotFound()) return Status::NotFound(what + " not found");
  if (!s.ok()) return internal::FromRocks(s, "cannot read " + what);
  return value;
}

// True if the SST at `path` holds `key` with exactly `value` (its newest version there).
Result<bool> StoreView::Impl::SstHolds(const std::string& path, const std::string& key,
                                       const std::string& value) const {
  rocksdb::Options options;
  options.env = env.get();
  options.info_log = logger;
  rocksdb::SstFileReader reader(options);
  SC_RETURN_IF_ERROR(internal::FromRocks(reader.Open(path), "cannot open " + path));
  std::unique_ptr<rocksdb::Iterator> it(reader.NewIterator({}));
  it->Seek(key);
  bool holds = it->Valid() && View(it->key()) == key && View(it->value()) == value;
  SC_RETURN_IF_ERROR(internal::FromRocks(it->status(), "cannot read " + path));
  return holds;
}

StoreView::StoreView(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StoreView::~StoreView() = default;

Result<std::unique_ptr<StoreView>> StoreView::Open(const StoreViewOptions& options) {
  if (options.data_dir.empty()) return Status::InvalidArgument("data directory is empty");
  std::error_code ec;
  std::string dir = std::filesystem::absolute(options.data_dir, ec).lexically_normal().string();
  if (ec) return Status::InvalidArgument("bad data directory " + options.data_dir);
  auto impl = std::make_unique<Impl>(dir);
  if (!std::filesystem::exists(impl->layout.db_dir() + "/CURRENT")) {
    return Status::NotFound("no sealcache database in " + impl->layout.data_dir());
  }
  SC_RETURN_IF_ERROR(impl->OpenFileSystem(options));
  SC_RETURN_IF_ERROR(impl->OpenDatabase(options.strict_wal));
  return std::unique_ptr<StoreView>(new StoreView(std::move(impl)));
}

const DataLayout& StoreView::layout() const { return impl_->layout; }
bool StoreView::full() const { return impl_->full; }
bool StoreView::plaintext_benchmark() const { return impl_->benchmark; }
const std::vector<std::string>& StoreView::org_families() const { return impl_->org_families; }

Result<std::vector<OrgRecord>> StoreView::Orgs() {
  std::vector<OrgRecord> out;
  const std::string prefix(1, internal::kOrgInfoPrefix);
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator({}, impl_->meta));
  for (it->Seek(prefix); it->Valid() && StartsWith(View(it->key()), prefix); it->Next()) {
    OrgRecord r;
    r.org = std::string(View(it->key()).substr(prefix.size()));
    SC_ASSIGN_OR_RETURN(r.config, internal::DecodeOrgInfo(View(it->value())));
    out.push_back(std::move(r));
  }
  SC_RETURN_IF_ERROR(internal::FromRocks(it->status(), "cannot list orgs"));
  return out;
}

Result<OrgConfig> StoreView::GetOrg(std::string_view org) {
  SC_RETURN_IF_ERROR(crypto::ValidateOrgId(org));
  auto value = impl_->GetFrom(impl_->meta, internal::OrgInfoKey(org), "org " + std::string(org));
  if (!value.ok()) return value.status();
  return internal::DecodeOrgInfo(*value);
}

Status StoreView::ScanEntries(std::string_view org,
                              const std::function<bool(const EntryMeta&)>& fn) {
  SC_RETURN_IF_ERROR(crypto::ValidateOrgId(org));
  const std::string prefix = internal::EntryKeyPrefix(org);
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator({}, impl_->meta));
  for (it->Seek(prefix); it->Valid() && StartsWith(View(it->key()), prefix); it->Next()) {
    if (it->key().size() != prefix.size() + kDigestSize) continue;
    Digest d{};
    std::memcpy(d.data(), it->key().data() + prefix.size(), kDigestSize);
    SC_ASSIGN_OR_RETURN(EntryMeta m, internal::DecodeEntryMeta(View(it->value()), d));
    if (!fn(m)) break;
  }
  return internal::FromRocks(it->status(), "cannot scan entries of " + std::string(org));
}

Result<EntryMeta> StoreView::GetEntryMeta(std::string_view org, const Digest& digest) {
  SC_RETURN_IF_ERROR(crypto::ValidateOrgId(org));
  SC_ASSIGN_OR_RETURN(std::string value,
                      impl_->GetFrom(impl_->meta, internal::EntryKey(org, digest), "entry"));
  return internal::DecodeEntryMeta(value, digest);
}

Result<std::vector<OrgSstFile>> StoreView::OrgSstFiles(std::string_view org) {
  SC_RETURN_IF_ERROR(crypto::ValidateOrgId(org));
  std::vector<OrgSstFile> out;
  auto add = [&](const std::string& path) -> OrgSstFile& {
    OrgSstFile f;
    f.path = path;
    f.physical_bytes = PhysicalSize(path);
    auto header = ReadFileHeader(path);
    if (header.ok()) {
      f.key_version = header->key_version;
    } else {
      f.header_error = header.status().message();
    }
    out.push_back(std::move(f));
    return out.back();
  };
  if (!impl_->full) {
    std::error_code ec;
    for (const auto& e :
         std::filesystem::directory_iterator(impl_->layout.org_dir(std::string(org)), ec)) {
      if (e.path().extension() == ".sst") add(e.path().string());
    }
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.path < b.path; });
    return out;
  }
  SC_ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, impl_->OrgFamily(org));
  std::vector<rocksdb::LiveFileMetaData> live;
  impl_->db->GetLiveFilesMetaData(&live);
  rocksdb::TablePropertiesCollection props;
  SC_RETURN_IF_ERROR(internal::FromRocks(impl_->db->GetPropertiesOfAllTables(cf, &props),
                                         "cannot read table properties"));
  for (const auto& meta : live) {
    if (meta.column_family_name != FamilyName(org)) continue;
    OrgSstFile& f = add(meta.db_path + meta.name);
    f.level = meta.level;
    auto p = props.find(f.path);
    if (p != props.end() && p->second) f.max_expiry_ms = internal::MaxExpiryOf(*p->second);
  }
  return out;
}

Result<std::vector<uint8_t>> StoreView::ReadPayload(std::string_view org, const Digest& digest) {
  SC_ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, impl_->OrgFamily(org));
  SC_ASSIGN_OR_RETURN(std::string value,
                      impl_->GetFrom(cf, internal::PayloadKey(digest), "payload"));
  if (value.size() < internal::kExpirySize) return Status::Corruption("payload record is short");
  return std::vector<uint8_t>(value.begin() + internal::kExpirySize, value.end());
}

Result<std::vector<float>> StoreView::ReadVector(std::string_view org, uint64_t slot) {
  SC_ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, impl_->OrgFamily(org));
  SC_ASSIGN_OR_RETURN(OrgConfig config, GetOrg(org));
  SC_ASSIGN_OR_RETURN(std::string value, impl_->GetFrom(cf, internal::VectorKey(slot), "vector"));
  std::vector<float> buffer;
  SC_ASSIGN_OR_RETURN(internal::VectorValue v,
                      internal::DecodeVectorValue(value, config.dimension, &buffer));
  return std::vector<float>(v.vector.begin(), v.vector.end());
}

Result<RecordLocation> StoreView::LocatePayload(std::string_view org, const Digest& digest) {
  SC_ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, impl_->OrgFamily(org));
  const std::string key = internal::PayloadKey(digest);
  SC_ASSIGN_OR_RETURN(std::string value, impl_->GetFrom(cf, key, "payload"));
  std::vector<rocksdb::LiveFileMetaData> live;
  impl_->db->GetLiveFilesMetaData(&live);
  std::erase_if(live, [&](const rocksdb::LiveFileMetaData& m) {
    return m.column_family_name != FamilyName(org) || key < m.smallestkey || key > m.largestkey;
  });
  // Read order: level 0 newest first, then the deeper levels.
  std::sort(live.begin(), live.end(), [](const auto& a, const auto& b) {
    if (a.level != b.level) return a.level < b.level;
    return a.largest_seqno > b.largest_seqno;
  });
  RecordLocation loc;
  for (const auto& meta : live) {
    const std::string path = meta.db_path + meta.name;
    SC_ASSIGN_OR_RETURN(bool holds, impl_->SstHolds(path, key, value));
    if (!holds) continue;
    loc.path = path;
    loc.ring = {crypto::KeyScope::kOrg, std::string(org)};
    break;
  }
  if (loc.path.empty()) {
    // Not in any SST: the current version is in the memtable, i.e. only in the WAL.
    auto wal = NewestWal(impl_->layout);
    if (!wal) return Status::NotFound("the payload is in no SST and there is no WAL");
    loc.path = *wal;
    loc.ring = {crypto::KeyScope::kNode, ""};
    loc.in_wal = true;
  }
  auto header = ReadFileHeader(loc.path);
  if (header.ok()) loc.key_version = header->key_version;
  return loc;
}

}  // namespace sealcache::storage
