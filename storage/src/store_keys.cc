// Key rotation, key status, the key reaper and encrypted side files of StoreImpl.
#include <rocksdb/file_system.h>

#include <filesystem>

#include "private_file_system.h"
#include "records.h"
#include "rocksdb_status.h"
#include "sealcache/crypto/atomic_file.h"
#include "sealcache/storage/fault_points.h"
#include "store_impl.h"

namespace sealcache::storage::internal {
namespace {

constexpr size_t kMaxOrgFileName = 128;
// How long the reaper gives a compaction's obsolete inputs to be deleted (see
// TableOnDiskStillUses): at most kObsoleteFileWaits x kObsoleteFileWait.
constexpr int kObsoleteFileWaits = 10;
constexpr auto kObsoleteFileWait = std::chrono::milliseconds(10);

Status ValidateOrgFileName(std::string_view name) {
  if (name.empty() || name.size() > kMaxOrgFileName || name[0] == '.') {
    return Status::InvalidArgument("invalid org file name");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return Status::InvalidArgument("invalid org file name");
  }
  return Status::Ok();
}

}  // namespace

Result<uint32_t> StoreImpl::RotateKey(std::string_view org_id) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
  return RotateOrgKey(*org, "admin");
}

// REQUIRES: orgs_mu_ held (shared).
Result<uint32_t> StoreImpl::RotateOrgKey(OrgState& org, std::string_view reason) {
  // Everything written so far goes to SSTs under the version being retired, so the reaper
  // accounts it to that version, and the org's WAL files holding it (node key) become
  // obsolete and are deleted, instead of a later flush carrying it under the new version.
  SC_RETURN_IF_ERROR(FlushOrg(*org.db, "flush before rotation"));
  SC_ASSIGN_OR_RETURN(uint32_t version, keystore_->Rotate(org.ring()));
  SC_RETURN_IF_ERROR(ReachFaultPoint(kFaultRotateAfterKeystore));
  SC_RETURN_IF_ERROR(RecordAudit(
      "key_rotated",
      {{"org", org.id}, {"key_version", int64_t{version}}, {"reason", std::string(reason)}}));
  return version;
}

// True if the org's ACTIVE key version is at least rotation_interval_ms old.
bool StoreImpl::RotationDue(const OrgState& org) const {
  if (options_.rotation_interval_ms <= 0) return false;
  auto active = keystore_->Active(org.ring());
  if (!active.ok()) return false;
  auto versions = keystore_->Versions(org.ring());
  if (!versions.ok()) return false;
  for (const crypto::KeyInfo& v : *versions) {
    if (v.version == active->version) {
      return clock_->NowMillis() - v.created_ms >= options_.rotation_interval_ms;
    }
  }
  return false;
}

Result<std::string> StoreImpl::RotateMasterKey(const crypto::SecretBytes& new_master_key,
                                               std::string_view provider) {
  const std::string from = keystore_->master_key_fingerprint();
  SC_RETURN_IF_ERROR(keystore_->RotateMasterKey(new_master_key));
  const std::string to = keystore_->master_key_fingerprint();
  SC_RETURN_IF_ERROR(RecordAudit(
      "master_key_rotated",
      {{"from_fingerprint", from}, {"to_fingerprint", to}, {"provider", std::string(provider)}}));
  return to;
}

Result<uint32_t> StoreImpl::FileKeyVersion(const std::string& path) {
  {
    std::lock_guard<std::mutex> l(file_versions_mu_);
    auto it = file_versions_.find(path);
    if (it != file_versions_.end()) return it->second;
  }
  SC_ASSIGN_OR_RETURN(FileHeader header, ReadFileHeader(path));
  std::lock_guard<std::mutex> l(file_versions_mu_);
  file_versions_[path] = header.key_version;
  return header.key_version;
}

Result<std::vector<OrgFile>> StoreImpl::OrgFiles(const OrgState& org) {
  std::vector<rocksdb::LiveFileMetaData> live;
  org.db->db->GetLiveFilesMetaData(&live);
  rocksdb::TablePropertiesCollection props;
  rocksdb::Status s = org.db->db->GetPropertiesOfAllTables(org.db->data(), &props);
  if (!s.ok()) return FromRocks(s, "cannot read table properties of " + org.id);
  const std::string family = kDataFamily;
  std::vector<OrgFile> files;
  for (const auto& f : live) {
    if (f.column_family_name != family) continue;
    OrgFile file;
    file.path = f.db_path + f.name;
    file.size = f.size;
    file.level = f.level;
    file.smallest_key = f.smallestkey;
    file.largest_key = f.largestkey;
    SC_ASSIGN_OR_RETURN(file.key_version, FileKeyVersion(file.path));
    auto p = props.find(file.path);
    if (p != props.end() && p->second) file.max_expiry_ms = MaxExpiryOf(*p->second);
    files.push_back(std::move(file));
  }
  return files;
}

Result<std::vector<KeyVersionStatus>> StoreImpl::KeyStatus(std::string_view org_id) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
  SC_ASSIGN_OR_RETURN(auto versions, keystore_->Versions(org->ring()));
  SC_ASSIGN_OR_RETURN(auto files, OrgFiles(*org));
  SC_ASSIGN_OR_RETURN(auto side_files, SideFiles(*org));
  std::vector<KeyVersionStatus> out;
  for (const crypto::KeyInfo& info : versions) {
    KeyVersionStatus st;
    st.version = info.version;
    st.state = info.state;
    st.created_ms = info.created_ms;
    st.rotated_ms = info.rotated_ms;
    st.destroyed_ms = info.destroyed_ms;
    for (const OrgFile& f : files) {
      if (f.key_version != info.version) continue;
      st.live_files++;
      st.live_bytes += f.size;
      st.max_expiry_ms = std::max(st.max_expiry_ms, f.max_expiry_ms);
    }
    for (const SideFile& f : side_files) {
      if (f.key_version != info.version) continue;
      st.live_files++;
      st.live_bytes += f.size;
    }
    out.push_back(st);
  }
  return out;
}

// True if an SST file in the org's directory that is not (yet, or any more) live is
// encrypted under `version`, or has no readable header yet. Such a file is the output of a
// flush or compaction that opened it before the rotation and has not been installed: its
// records are not in any live file, so destroying the key now would make them unreadable
// once it is. Obsolete files still on disk keep the key until RocksDB deletes them.
bool StoreImpl::TableOnDiskUses(const OrgState& org, uint32_t version) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(layout_.org_data_dir(org.id), ec)) {
    if (entry.path().extension() != ".sst") continue;
    auto file_version = FileKeyVersion(entry.path().string());
    if (!file_version.ok()) {
      // Vanished since the listing (deleted as obsolete): no longer a reason to wait. Any
      // other failure (a header not yet written): wait for the next pass.
      if (!std::filesystem::exists(entry.path())) continue;
      return true;
    }
    if (*file_version == version) return true;
  }
  return ec ? true : false;
}

// TableOnDiskUses, after the files that only wait for deletion are gone: RocksDB deletes a
// compaction's inputs in the background job's cleanup, which can end after CompactRange has
// returned, and until then they look like a flush or compaction output in progress. Enabling
// deletions purges obsolete files now; a file another job has already claimed is deleted by
// that job a moment later, hence the short bounded wait.
bool StoreImpl::TableOnDiskStillUses(const OrgState& org, uint32_t version) {
  if (!TableOnDiskUses(org, version)) return false;
  (void)org.db->db->DisableFileDeletions();
  (void)org.db->db->EnableFileDeletions(/*force=*/false);
  for (int i = 0; i < kObsoleteFileWaits; ++i) {
    if (!TableOnDiskUses(org, version)) return false;
    std::this_thread::sleep_for(kObsoleteFileWait);
  }
  return TableOnDiskUses(org, version);
}

// For each RETIRING version of the org: destroy it if no live file uses it; otherwise
// compact away the files under it whose every record has expired, then check again.
Result<ReaperReport> StoreImpl::ReapOrg(OrgState& org) {
  ReaperReport report;
  SC_ASSIGN_OR_RETURN(auto versions, keystore_->Versions(org.ring()));
  const int64_t now = clock_->NowMillis();
  for (const crypto::KeyInfo& info : versions) {
    if (info.state != crypto::KeyState::kRetiring) continue;
    SC_ASSIGN_OR_RETURN(auto files, OrgFiles(org));
    bool in_use = false;
    for (const OrgFile& f : files) {
      if (f.key_version != info.version) continue;
      in_use = true;
      if (f.max_expiry_ms > now) continue;
      rocksdb::CompactRangeOptions cro;
      cro.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
      rocksdb::Slice begin(f.smallest_key), end(f.largest_key);
      SC_RETURN_IF_ERROR(ReachFaultPoint(kFaultReaperBeforeCompaction));
      SC_RETURN_IF_ERROR(FromRocks(org.db->db->CompactRange(cro, org.db->data(), &begin, &end),
                                   "reaper compaction of " + f.path));
      SC_RETURN_IF_ERROR(ReachFaultPoint(kFaultReaperAfterCompaction));
      report.files_compacted++;
    }
    if (in_use) {
      SC_ASSIGN_OR_RETURN(files, OrgFiles(org));
      in_use = std::any_of(files.begin(), files.end(),
                           [&](const OrgFile& f) { return f.key_version == info.version; });
    }
    if (in_use || TableOnDiskStillUses(org, info.version)) continue;
    SC_RETURN_IF_ERROR(ReencryptSideFiles(org, info.version));
    SC_RETURN_IF_ERROR(ReachFaultPoint(kFaultReaperBeforeDestroy));
    SC_RETURN_IF_ERROR(keystore_->Destroy(org.ring(), info.version));
    // Shredded means gone from memory too: no decrypted payload read while the key lived
    // stays in the table of hot values (its live entries are read again from files under
    // the newer key).
    if (org.db != nullptr) value_cache_->ForgetDb(org.db->incarnation);
    SC_RETURN_IF_ERROR(ReachFaultPoint(kFaultReaperAfterDestroy));
    SC_RETURN_IF_ERROR(
        RecordAudit("key_destroyed", {{"org", org.id}, {"key_version", int64_t{info.version}}}));
    report.destroyed.emplace_back(org.id, info.version);
  }
  return report;
}

Result<ReaperReport> StoreImpl::RunKeyReaper() {
  std::lock_guard<std::mutex> pass(reaper_mu_);
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  ReaperReport total;
  for (auto& [id, org] : orgs_) {
    if (org->db == nullptr) continue;  // unavailable: its keys wait until it is repaired
    if (RotationDue(*org)) {
      SC_ASSIGN_OR_RETURN(uint32_t version, RotateOrgKey(*org, "schedule"));
      total.rotated.emplace_back(id, version);
    }
    SC_ASSIGN_OR_RETURN(ReaperReport r, ReapOrg(*org));
    total.files_compacted += r.files_compacted;
    total.destroyed.insert(total.destroyed.end(), r.destroyed.begin(), r.destroyed.end());
  }
  {
    // Forget headers of files that are gone.
    std::vector<rocksdb::LiveFileMetaData> live;
    for (auto& [id, org] : orgs_) {
      if (org->db == nullptr) continue;
      std::vector<rocksdb::LiveFileMetaData> files;
      org->db->db->GetLiveFilesMetaData(&files);
      live.insert(live.end(), files.begin(), files.end());
    }
    std::unordered_map<std::string, uint32_t> kept;
    std::lock_guard<std::mutex> l(file_versions_mu_);
    for (const auto& f : live) {
      auto it = file_versions_.find(f.db_path + f.name);
      if (it != file_versions_.end()) kept.insert(*it);
    }
    file_versions_.swap(kept);
  }
  return total;
}

void StoreImpl::ReaperLoop() {
  std::unique_lock<std::mutex> lock(reaper_mu_);
  while (!stopping_) {
    reaper_cv_.wait_for(lock, std::chrono::milliseconds(options_.reaper_period_ms),
                        [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    auto report = RunKeyReaper();
    if (!report.ok()) {
      (void)RecordAudit("reaper_error", {{"error", report.status().message()}}, false);
    }
    lock.lock();
  }
}

// ---- Encrypted side files ------------------------------------------------------------------

constexpr char kTempSuffix[] = ".tmp";

Result<std::vector<SideFile>> StoreImpl::SideFiles(const OrgState& org) {
  std::vector<SideFile> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(layout_.org_index_dir(org.id), ec)) {
    if (!entry.is_regular_file() || entry.path().extension() == kTempSuffix) continue;
    const std::string path = entry.path().string();
    // Not FileKeyVersion: side files are replaced under the same name.
    auto header = ReadFileHeader(path);
    if (!header.ok()) {
      if (!std::filesystem::exists(path)) continue;  // replaced since the listing
      return header.status();
    }
    out.push_back({path, header->key_version, entry.file_size(ec)});
  }
  return out;
}

Status StoreImpl::ReencryptSideFiles(OrgState& org, uint32_t version) {
  std::lock_guard<std::mutex> writes(org.side_files_mu);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(layout_.org_index_dir(org.id), ec)) {
    if (entry.path().extension() == kTempSuffix) {
      std::filesystem::remove(entry.path(), ec);  // no write is under way: we hold the lock
    }
  }
  SC_ASSIGN_OR_RETURN(auto files, SideFiles(org));
  for (const SideFile& f : files) {
    if (f.key_version != version) continue;
    SC_ASSIGN_OR_RETURN(auto bytes, ReadOrgFileLocked(f.path));
    SC_RETURN_IF_ERROR(WriteOrgFileLocked(f.path, bytes));
    SC_RETURN_IF_ERROR(
        RecordAudit("side_file_reencrypted",
                    {{"org", org.id}, {"file", f.path}, {"from_key_version", int64_t{version}}}));
  }
  return Status::Ok();
}

Result<std::string> StoreImpl::OrgFilePath(std::string_view org_id, std::string_view name) const {
  SC_RETURN_IF_ERROR(ValidateOrgFileName(name));
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
  return layout_.org_index_dir(org->id) + "/" + std::string(name);
}

Status StoreImpl::WriteOrgFile(std::string_view org_id, std::string_view name,
                               std::span<const uint8_t> bytes) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(std::string path, OrgFilePath(org_id, name));
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
  std::lock_guard<std::mutex> writes(org->side_files_mu);
  return WriteOrgFileLocked(path, bytes);
}

Status StoreImpl::WriteOrgFileLocked(const std::string& path, std::span<const uint8_t> bytes) {
  const std::string dir = path.substr(0, path.rfind('/'));
  SC_RETURN_IF_ERROR(MakePrivateDir(dir));
  const std::string tmp = path + kTempSuffix;
  rocksdb::FileOptions fo;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  SC_RETURN_IF_ERROR(FromRocks(fs_->NewWritableFile(tmp, fo, &file, nullptr), "create " + tmp));
  rocksdb::Slice data(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  rocksdb::IOStatus s = file->Append(data, {}, nullptr);
  if (s.ok()) s = file->Sync({}, nullptr);
  if (s.ok()) s = file->Close({}, nullptr);
  if (!s.ok()) return FromRocks(s, "write " + tmp);
  SC_RETURN_IF_ERROR(FromRocks(fs_->RenameFile(tmp, path, {}, nullptr), "rename " + tmp));
  return crypto::SyncDirectory(dir);
}

Result<std::vector<uint8_t>> StoreImpl::ReadOrgFile(std::string_view org_id,
                                                    std::string_view name) {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(std::string path, OrgFilePath(org_id, name));
  return ReadOrgFileLocked(path);
}

Result<std::vector<uint8_t>> StoreImpl::ReadOrgFileLocked(const std::string& path) {
  if (!std::filesystem::exists(path)) return Status::NotFound(path + " does not exist");
  uint64_t size = 0;
  SC_RETURN_IF_ERROR(FromRocks(fs_->GetFileSize(path, {}, &size, nullptr), "size of " + path));
  std::unique_ptr<rocksdb::FSRandomAccessFile> file;
  SC_RETURN_IF_ERROR(FromRocks(fs_->NewRandomAccessFile(path, {}, &file, nullptr), "open " + path));
  std::vector<uint8_t> out(size);
  rocksdb::Slice result;
  SC_RETURN_IF_ERROR(
      FromRocks(file->Read(0, size, {}, &result, reinterpret_cast<char*>(out.data()), nullptr),
                "read " + path));
  if (result.size() != size) return Status::Corruption(path + " is shorter than its size");
  if (result.data() != reinterpret_cast<const char*>(out.data())) {
    std::memcpy(out.data(), result.data(), size);
  }
  return out;
}

}  // namespace sealcache::storage::internal
