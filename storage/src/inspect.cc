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

#include "catalog.h"
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

bool Retryable(const rocksdb::Status& s) {
  return s.IsIOError() || s.IsPathNotFound() || s.IsNotFound();
}

uint64_t PhysicalSize(const std::string& path) {
  std::error_code ec;
  uint64_t size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}

// The WAL with the highest file number in `dir`: the one a server is writing.
std::optional<std::string> NewestWal(const std::string& dir) {
  std::optional<std::string> newest;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() <= 4 || name.substr(name.size() - 4) != ".log") continue;
    if (!newest || name > std::filesystem::path(*newest).filename().string()) {
      newest = e.path().string();
    }
  }
  return newest;
}

// One org's instance, open read-only.
struct OrgView {
  OrgView() = default;
  OrgView(const OrgView&) = delete;
  OrgView& operator=(const OrgView&) = delete;
  ~OrgView() {
    if (db == nullptr) return;
    for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h);
    db->Close();
    delete db;
  }
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  rocksdb::ColumnFamilyHandle* data = nullptr;  // null in keyless views
};

}  // namespace

struct StoreView::Impl {
  explicit Impl(std::string dir) : layout(std::move(dir)) {}

  Status OpenFileSystem(const StoreViewOptions& options);
  rocksdb::DBOptions DatabaseOptions(bool strict_wal) const;
  Result<std::unique_ptr<OrgView>> OpenOrg(const std::string& org, bool strict_wal);
  void OpenOrgs(bool strict_wal);
  Result<OrgView*> Org(std::string_view org) const;
  Result<OrgView*> OrgData(std::string_view org) const;
  Result<std::string> GetFrom(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                              const std::string& key, const std::string& what) const;
  Result<bool> SstHolds(const std::string& path, const std::string& key,
                        const std::string& value) const;

  DataLayout layout;
  SystemClock clock;
  bool full = false;
  bool benchmark = false;
  std::unique_ptr<crypto::Keystore> keystore;
  std::unique_ptr<internal::Catalog> catalog;  // keyed views
  std::shared_ptr<rocksdb::FileSystem> fs;
  std::unique_ptr<rocksdb::Env> env;
  std::shared_ptr<rocksdb::Logger> logger = internal::NewDiscardingLogger();
  std::vector<std::string> org_families;
  std::map<std::string, std::unique_ptr<OrgView>, std::less<>> orgs;
  std::map<std::string, Status, std::less<>> failed;
};

Status StoreView::Impl::OpenFileSystem(const StoreViewOptions& options) {
  benchmark = std::filesystem::exists(layout.plaintext_marker_path());
  const bool keyed = options.master_key != nullptr && !benchmark;
  full = keyed || benchmark;
  auto base = internal::NewReadOnlyFileSystem(rocksdb::FileSystem::Default(), /*hide_wal=*/!full);
  if (options.master_key != nullptr) {
    crypto::KeystoreOptions ks;
    ks.clock = &clock;
    ks.create_if_missing = false;
    ks.read_only = true;  // no lock: a server may hold the keystore open
    SC_ASSIGN_OR_RETURN(keystore,
                        crypto::Keystore::Open(layout.keystore_path(), *options.master_key, ks));
    if (std::filesystem::exists(layout.catalog_path())) {
      SC_ASSIGN_OR_RETURN(catalog,
                          internal::Catalog::OpenReadOnly(layout.catalog_path(), keystore.get()));
    }
  }
  if (!keyed) {
    fs = std::move(base);
    return Status::Ok();
  }
  fs = internal::NewRoutingFileSystem(layout, keystore.get(), std::move(base), {});
  if (fs == nullptr) return Status::Internal("cannot create the decrypting file system");
  return Status::Ok();
}

rocksdb::DBOptions StoreView::Impl::DatabaseOptions(bool strict_wal) const {
  rocksdb::DBOptions o;
  o.env = env.get();
  o.info_log = logger;  // RocksDB would otherwise create (and rotate) the org's LOG
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

Result<std::unique_ptr<OrgView>> StoreView::Impl::OpenOrg(const std::string& org, bool strict_wal) {
  const rocksdb::DBOptions db_options = DatabaseOptions(strict_wal);
  const std::string dir = layout.org_dir(org);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
  rocksdb::ColumnFamilyOptions meta_options;
  // Reading the slot counter needs the operator its merge operands were written with.
  meta_options.merge_operator = internal::NewMaxSlotMergeOperator();
  // A family's SSTs are found only through its cf_paths (the MANIFEST keeps path ids).
  meta_options.cf_paths = {{layout.org_meta_dir(org), kUnlimitedPathSize}};
  descriptors.emplace_back(internal::kMetaFamily, meta_options);
  if (full) {
    // A subset of the families is allowed read-only: keyless views skip the encrypted one.
    rocksdb::ColumnFamilyOptions data_options;
    data_options.cf_paths = {{layout.org_data_dir(org), kUnlimitedPathSize}};
    descriptors.emplace_back(internal::kDataFamily, data_options);
  }
  auto view = std::make_unique<OrgView>();
  rocksdb::Status s;
  for (int attempt = 0; attempt < kOpenAttempts; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(kOpenRetryDelay);
    s = rocksdb::DB::OpenForReadOnly(db_options, dir, descriptors, &view->handles, &view->db);
    if (s.ok() || !Retryable(s)) break;
  }
  if (!s.ok()) return internal::FromRocks(s, "cannot open the database of org " + org);
  view->meta = view->handles[1];
  if (full) view->data = view->handles[2];
  return view;
}

void StoreView::Impl::OpenOrgs(bool strict_wal) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(layout.orgs_dir(), ec)) {
    const std::string org = e.path().filename().string();
    if (!e.is_directory() || !crypto::ValidateOrgId(org).ok()) continue;
    org_families.push_back(org);
  }
  std::sort(org_families.begin(), org_families.end());
  for (const std::string& org : org_families) {
    auto view = OpenOrg(org, strict_wal);
    if (view.ok()) {
      orgs.emplace(org, std::move(view).value());
    } else {
      failed.emplace(org, view.status());
    }
  }
}

Result<OrgView*> StoreView::Impl::Org(std::string_view org) const {
  SC_RETURN_IF_ERROR(crypto::ValidateOrgId(org));
  if (auto f = failed.find(org); f != failed.end()) return f->second;
  auto it = orgs.find(org);
  if (it == orgs.end()) return Status::NotFound("unknown org " + std::string(org));
  return it->second.get();
}

Result<OrgView*> StoreView::Impl::OrgData(std::string_view org) const {
  if (!full) {
    return Status::FailedPrecondition("org data is encrypted: a master key is needed to read it");
  }
  return Org(org);
}

Result<std::string> StoreView::Impl::GetFrom(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
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
  if (std::filesystem::exists(impl->layout.legacy_db_dir() + "/CURRENT")) {
    return Status::FailedPrecondition(
        impl->layout.data_dir() +
        " was written by an earlier sealcache (one shared database in db/): start sealcached "
        "on it once to migrate it");
  }
  if (!std::filesystem::exists(impl->layout.keystore_path())) {
    return Status::NotFound("no sealcache store in " + impl->layout.data_dir());
  }
  SC_RETURN_IF_ERROR(impl->OpenFileSystem(options));
  impl->env = rocksdb::NewCompositeEnv(impl->fs);
  impl->OpenOrgs(options.strict_wal);
  return std::unique_ptr<StoreView>(new StoreView(std::move(impl)));
}

const DataLayout& StoreView::layout() const { return impl_->layout; }
bool StoreView::full() const { return impl_->full; }
bool StoreView::plaintext_benchmark() const { return impl_->benchmark; }
const std::vector<std::string>& StoreView::org_families() const { return impl_->org_families; }

Status StoreView::OrgStatus(std::string_view org) const { return impl_->Org(org).status(); }

Result<std::vector<OrgRecord>> StoreView::Orgs() {
  std::vector<OrgRecord> out;
  if (impl_->catalog != nullptr) {
    for (auto& [org, config] : impl_->catalog->Orgs()) out.push_back({org, config});
    return out;
  }
  for (const std::string& org : impl_->org_families) {
    if (!OrgStatus(org).ok()) {
      out.push_back({org, {}});  // listed, its config unknown: OrgStatus() says why
      continue;
    }
    auto config = GetOrg(org);
    if (config.status().IsNotFound()) continue;  // no org record: not (or no longer) an org
    if (!config.ok()) return config.status();
    out.push_back({org, *config});
  }
  return out;
}

Result<OrgConfig> StoreView::GetOrg(std::string_view org) {
  SC_RETURN_IF_ERROR(crypto::ValidateOrgId(org));
  if (impl_->catalog != nullptr) {
    auto config = impl_->catalog->FindOrg(org);
    if (!config) return Status::NotFound("org " + std::string(org) + " not found");
    return *config;
  }
  SC_ASSIGN_OR_RETURN(OrgView * v, impl_->Org(org));
  SC_ASSIGN_OR_RETURN(std::string value, impl_->GetFrom(v->db, v->meta, internal::OrgInfoKey(org),
                                                        "org " + std::string(org)));
  return internal::DecodeOrgInfo(value);
}

Status StoreView::ScanEntries(std::string_view org,
                              const std::function<bool(const EntryMeta&)>& fn) {
  SC_ASSIGN_OR_RETURN(OrgView * v, impl_->Org(org));
  const std::string prefix = internal::EntryKeyPrefix(org);
  std::unique_ptr<rocksdb::Iterator> it(v->db->NewIterator({}, v->meta));
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
  SC_ASSIGN_OR_RETURN(OrgView * v, impl_->Org(org));
  SC_ASSIGN_OR_RETURN(std::string value,
                      impl_->GetFrom(v->db, v->meta, internal::EntryKey(org, digest), "entry"));
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
  auto v = impl_->Org(org);
  if (!impl_->full || !v.ok()) {
    // Keyless, or the org's database does not open: the files in its data directory.
    std::error_code ec;
    for (const auto& e :
         std::filesystem::directory_iterator(impl_->layout.org_data_dir(std::string(org)), ec)) {
      if (e.path().extension() == ".sst") add(e.path().string());
    }
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.path < b.path; });
    return out;
  }
  std::vector<rocksdb::LiveFileMetaData> live;
  (*v)->db->GetLiveFilesMetaData(&live);
  rocksdb::TablePropertiesCollection props;
  SC_RETURN_IF_ERROR(internal::FromRocks((*v)->db->GetPropertiesOfAllTables((*v)->data, &props),
                                         "cannot read table properties"));
  for (const auto& meta : live) {
    if (meta.column_family_name != internal::kDataFamily) continue;
    OrgSstFile& f = add(meta.db_path + meta.name);
    f.level = meta.level;
    auto p = props.find(f.path);
    if (p != props.end() && p->second) f.max_expiry_ms = internal::MaxExpiryOf(*p->second);
  }
  return out;
}

Result<std::vector<uint8_t>> StoreView::ReadPayload(std::string_view org, const Digest& digest) {
  SC_ASSIGN_OR_RETURN(OrgView * v, impl_->OrgData(org));
  SC_ASSIGN_OR_RETURN(std::string value,
                      impl_->GetFrom(v->db, v->data, internal::PayloadKey(digest), "payload"));
  if (value.size() < internal::kExpirySize) return Status::Corruption("payload record is short");
  return std::vector<uint8_t>(value.begin() + internal::kExpirySize, value.end());
}

Result<std::vector<float>> StoreView::ReadVector(std::string_view org, uint64_t slot) {
  SC_ASSIGN_OR_RETURN(OrgView * v, impl_->OrgData(org));
  SC_ASSIGN_OR_RETURN(OrgConfig config, GetOrg(org));
  SC_ASSIGN_OR_RETURN(std::string value,
                      impl_->GetFrom(v->db, v->data, internal::VectorKey(slot), "vector"));
  std::vector<float> buffer;
  SC_ASSIGN_OR_RETURN(internal::VectorValue record,
                      internal::DecodeVectorValue(value, config.dimension, &buffer));
  return std::vector<float>(record.vector.begin(), record.vector.end());
}

Result<RecordLocation> StoreView::LocatePayload(std::string_view org, const Digest& digest) {
  SC_ASSIGN_OR_RETURN(OrgView * v, impl_->OrgData(org));
  const std::string key = internal::PayloadKey(digest);
  SC_ASSIGN_OR_RETURN(std::string value, impl_->GetFrom(v->db, v->data, key, "payload"));
  std::vector<rocksdb::LiveFileMetaData> live;
  v->db->GetLiveFilesMetaData(&live);
  std::erase_if(live, [&](const rocksdb::LiveFileMetaData& m) {
    return m.column_family_name != internal::kDataFamily || key < m.smallestkey ||
           key > m.largestkey;
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
    auto wal = NewestWal(impl_->layout.org_dir(std::string(org)));
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
