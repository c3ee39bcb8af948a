// Migration of a store written before the per-org layout: one RocksDB instance in <data>/db
// shared by every org (families "meta" and "org.<org>") and index snapshots in
// <data>/index/<org>/. Store::Open moves it into the per-org layout once.
//
// Crash-safe by ordering: the legacy instance is only read (a read-only open, the WAL
// replayed into memory); each org's records are copied into a new instance of its own,
// flushed; the catalog is written with every org and token at once (the commit point); only
// then are db/ and index/ removed. A crash before the commit redoes the migration from the
// untouched legacy files; a crash after it only finishes the removal.
#include <rocksdb/db.h>

#include <filesystem>

#include "private_file_system.h"
#include "read_only_file_system.h"
#include "records.h"
#include "rocksdb_status.h"
#include "sealcache/crypto/atomic_file.h"
#include "store_impl.h"

namespace sealcache::storage::internal {
namespace {

constexpr size_t kMigrationBatchBytes = 4u << 20;

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

// The legacy instance, open read-only; closes it on destruction.
struct LegacyDb {
  ~LegacyDb() {
    if (db == nullptr) return;
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    db->Close();
    delete db;
  }
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  std::map<std::string, rocksdb::ColumnFamilyHandle*> orgs;
};

// Copies every record of `from` whose key starts with `prefix` into `to` of `db`, in
// batches without the WAL (the caller flushes).
Status CopyRange(rocksdb::DB* from_db, rocksdb::ColumnFamilyHandle* from, std::string_view prefix,
                 rocksdb::DB* db, rocksdb::ColumnFamilyHandle* to, uint64_t* records) {
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(from_db->NewIterator({}, from));
  for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size()));
       it->Valid() && StartsWith(View(it->key()), prefix); it->Next()) {
    batch.Put(to, it->key(), it->value());
    ++*records;
    if (batch.GetDataSize() >= kMigrationBatchBytes) {
      SC_RETURN_IF_ERROR(FromRocks(db->Write(wo, &batch), "migration write"));
      batch.Clear();
    }
  }
  SC_RETURN_IF_ERROR(FromRocks(it->status(), "migration read"));
  if (batch.Count() > 0) SC_RETURN_IF_ERROR(FromRocks(db->Write(wo, &batch), "migration write"));
  return Status::Ok();
}

}  // namespace

Status StoreImpl::MigrateLegacyLayout() {
  const std::string legacy = layout_.legacy_db_dir();
  auto finish = [&]() -> Status {
    std::error_code ec;
    std::filesystem::remove_all(legacy, ec);
    if (ec) return Status::IOError("cannot remove " + legacy + ": " + ec.message());
    std::filesystem::remove_all(layout_.legacy_index_dir(), ec);
    return crypto::SyncDirectory(layout_.data_dir());
  };
  // The catalog exists only once a migration (or this layout) committed.
  if (std::filesystem::exists(layout_.catalog_path())) return finish();
  if (!std::filesystem::exists(legacy + "/CURRENT")) return finish();  // never held data

  rocksdb::DBOptions db_options;
  db_options.env = env_.get();
  db_options.info_log = NewDiscardingLogger();
  db_options.allow_mmap_reads = false;
  db_options.paranoid_checks = true;
  db_options.max_open_files = -1;
  std::vector<std::string> families;
  SC_RETURN_IF_ERROR(FromRocks(rocksdb::DB::ListColumnFamilies(db_options, legacy, &families),
                               "cannot list the families of " + legacy));
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
  rocksdb::ColumnFamilyOptions meta_options;
  meta_options.merge_operator = slot_merge_;
  meta_options.cf_paths = {{layout_.legacy_meta_dir(), std::numeric_limits<uint64_t>::max()}};
  descriptors.emplace_back(kMetaFamily, meta_options);
  std::vector<std::string> family_orgs;
  for (const std::string& name : families) {
    if (!StartsWith(name, kOrgFamilyPrefix)) continue;
    std::string org = name.substr(std::strlen(kOrgFamilyPrefix));
    SC_RETURN_IF_ERROR(crypto::ValidateOrgId(org).WithContext("legacy column family " + name));
    rocksdb::ColumnFamilyOptions org_options;
    org_options.cf_paths = {{layout_.legacy_org_dir(org), std::numeric_limits<uint64_t>::max()}};
    descriptors.emplace_back(name, org_options);
    family_orgs.push_back(org);
  }
  LegacyDb old;
  SC_RETURN_IF_ERROR(FromRocks(
      rocksdb::DB::OpenForReadOnly(db_options, legacy, descriptors, &old.handles, &old.db),
      "cannot open the store of the shared layout in " + legacy + " to migrate it"));
  old.meta = old.handles[1];
  for (size_t i = 0; i < family_orgs.size(); ++i) old.orgs[family_orgs[i]] = old.handles[i + 2];

  // Orgs with a commit record; families without one were half created or dropped.
  std::map<std::string, OrgConfig> orgs;
  std::map<std::string, TokenRecord> tokens;
  {
    std::unique_ptr<rocksdb::Iterator> it(old.db->NewIterator({}, old.meta));
    const std::string org_prefix(1, kOrgInfoPrefix), token_prefix(1, kTokenPrefix);
    for (it->Seek(org_prefix); it->Valid() && StartsWith(View(it->key()), org_prefix); it->Next()) {
      std::string org(View(it->key()).substr(1));
      if (!old.orgs.count(org)) continue;
      SC_ASSIGN_OR_RETURN(orgs[org], DecodeOrgInfo(View(it->value())));
    }
    for (it->Seek(token_prefix); it->Valid() && StartsWith(View(it->key()), token_prefix);
         it->Next()) {
      SC_ASSIGN_OR_RETURN(TokenRecord t, DecodeToken(View(it->value())));
      if (!t.org.empty() && !orgs.count(t.org)) continue;
      tokens.emplace(std::string(View(it->key()).substr(1)), std::move(t));
    }
    SC_RETURN_IF_ERROR(FromRocks(it->status(), "cannot read the legacy catalog"));
  }

  uint64_t records = 0;
  for (const auto& [org, config] : orgs) {
    std::error_code ec;
    std::filesystem::remove_all(layout_.org_dir(org), ec);  // an interrupted attempt
    SC_ASSIGN_OR_RETURN(std::unique_ptr<OrgDb> db, OpenOrgDb(org, /*create=*/true));
    for (const std::string& prefix : {EntryKeyPrefix(org), OrgInfoKey(org), SlotKey(org)}) {
      // Entry keys share the org's prefix; the org's own record and counter are exact keys.
      SC_RETURN_IF_ERROR(CopyRange(old.db, old.meta, prefix, db->db, db->meta(), &records));
    }
    SC_RETURN_IF_ERROR(CopyRange(old.db, old.orgs.at(org), "", db->db, db->data(), &records));
    SC_RETURN_IF_ERROR(FlushOrg(*db, "flush of migrated org " + org));
    // Snapshots are copied, not moved: a crash before the commit leaves the legacy files
    // whole for the next attempt.
    const std::string old_index = layout_.legacy_index_dir() + "/" + org;
    if (std::filesystem::is_directory(old_index)) {
      SC_RETURN_IF_ERROR(MakePrivateDir(layout_.org_index_dir(org)));
      for (const auto& f : std::filesystem::directory_iterator(old_index, ec)) {
        if (!f.is_regular_file()) continue;
        std::filesystem::copy_file(f.path(),
                                   layout_.org_index_dir(org) + "/" + f.path().filename().string(),
                                   std::filesystem::copy_options::overwrite_existing, ec);
        if (ec) return Status::IOError("cannot copy " + f.path().string() + ": " + ec.message());
      }
    }
  }
  SC_RETURN_IF_ERROR(catalog_->AddAll(orgs, tokens).WithContext("migration commit"));
  SC_RETURN_IF_ERROR(RecordAudit("store_migrated", {{"layout", "per-org instances"},
                                                    {"orgs", static_cast<int64_t>(orgs.size())},
                                                    {"records", static_cast<int64_t>(records)}}));
  if (options_.on_event) {
    options_.on_event("migrated " + std::to_string(orgs.size()) + " orgs (" +
                      std::to_string(records) +
                      " records) from the shared instance in db/ to one instance per org");
  }
  return finish();
}

}  // namespace sealcache::storage::internal
