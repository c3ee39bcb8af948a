// Moving an org between nodes of a cluster (server/CLUSTER.md): ExportOrg, ReopenOrg and
// ImportOrg of StoreImpl. The files travel as they are on disk (ciphertext under the org's
// keys, plaintext metadata); the keys travel wrapped under the master key the nodes share.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "private_file_system.h"
#include "rocksdb_status.h"
#include "sealcache/crypto/aead.h"
#include "sealcache/crypto/atomic_file.h"
#include "sealcache/encoding.h"
#include "store_impl.h"

namespace sealcache::storage::internal {
namespace {

constexpr std::string_view kNameKeyMoveAad = "sealcache/name-key-move/v1";

std::vector<uint8_t> NameKeyAad(const std::string& org, uint32_t version) {
  std::vector<uint8_t> aad;
  PutBytes(aad, kNameKeyMoveAad);
  PutFixed8(aad, static_cast<uint8_t>(org.size()));
  PutBytes(aad, org);
  PutFixed32(aad, version);
  return aad;
}

// Files of an org's directory that a copy leaves out: the WAL (flushed before the export,
// and sealed under the node's own key), RocksDB's lock, the info LOG, temp files.
bool LeftOut(const std::string& name) {
  auto ends_with = [&](std::string_view suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return name == "LOCK" || name.rfind("LOG", 0) == 0 || ends_with(".log") || ends_with(".tmp") ||
         ends_with(".dbtmp");
}

// A file name a copy may carry: "name" or "dir/name" under the org's directory, each part
// of [A-Za-z0-9._-], not starting with '.', and not one LeftOut.
Status ValidateCopiedFile(std::string_view file) {
  constexpr size_t kMaxCopiedName = 255;
  auto bad = [&] {
    return Status::InvalidArgument("not a file of an org's copy: " +
                                   std::string(file.substr(0, kMaxCopiedName)));
  };
  if (file.empty() || file.size() > kMaxCopiedName) return bad();
  size_t parts = 0;
  for (size_t start = 0; start <= file.size();) {
    size_t end = file.find('/', start);
    if (end == std::string_view::npos) end = file.size();
    const std::string_view part = file.substr(start, end - start);
    if (part.empty() || part[0] == '.' || ++parts > 2) return bad();
    for (char c : part) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-';
      if (!ok) return bad();
    }
    start = end + 1;
  }
  const size_t slash = file.rfind('/');
  if (LeftOut(std::string(slash == std::string_view::npos ? file : file.substr(slash + 1)))) {
    return bad();
  }
  return Status::Ok();
}

Status Errno(const std::string& what) {
  return Status::IOError(what + ": " + std::strerror(errno));
}

}  // namespace

Result<OrgExport> StoreImpl::ExportOrg(std::string_view org_id) {
  // Held throughout: no drop, create, import or reopen of an org meanwhile.
  std::lock_guard<std::mutex> admin(org_admin_mu_);
  auto flush = [this](OrgState& org) {
    // Every family's memtable to SSTs: the WAL then holds nothing a copy needs.
    return FromRocks(org.db->db->Flush(rocksdb::FlushOptions(), org.db->handles),
                     "cannot flush org " + org.id + " to move it");
  };
  std::string id;
  {
    // The caller has stopped the org's requests: most of the flush happens here, while the
    // other orgs keep serving.
    std::shared_lock<std::shared_mutex> lock(orgs_mu_);
    SC_ASSIGN_OR_RETURN(OrgState * org, FindOpenOrg(org_id));
    id = org->id;
    SC_RETURN_IF_ERROR(flush(*org));
  }
  OrgExport out;
  OrgState* org = nullptr;
  {
    // Exclusive: waits for the org's running operations, which hold it shared.
    std::unique_lock<std::shared_mutex> lock(orgs_mu_);
    SC_ASSIGN_OR_RETURN(org, FindOpenOrg(id));
    SC_RETURN_IF_ERROR(flush(*org));  // what arrived since (normally nothing)
    {
      std::lock_guard<std::mutex> l(org->config_mu);
      out.config = org->config;
    }
    org->db.reset();  // closed: its files stop changing
    org->unavailable = Status::Unavailable("org " + id + " is being moved to another node");
  }
  // From here the org's files and keys are what the copy gets.
  auto reopen = [&](Status why) -> Status {
    std::unique_lock<std::shared_mutex> lock(orgs_mu_);
    auto db = OpenOrgDb(id, /*create=*/false);
    if (db.ok()) {
      org->db = std::move(db).value();
      org->unavailable = Status::Ok();
    }
    return why.WithContext("cannot export org " + id);
  };
  const crypto::RingId ring{crypto::KeyScope::kOrg, id};
  auto exported_ring = keystore_->ExportRing(ring);
  if (!exported_ring.ok()) return reopen(exported_ring.status());
  out.ring = std::move(exported_ring).value();
  auto name_key = catalog_->NameKey(id);
  if (!name_key.ok()) return reopen(name_key.status());
  auto active = keystore_->Active(ring);
  if (!active.ok()) return reopen(active.status());
  auto aead = crypto::Aead::New(*active->key);
  if (!aead.ok()) return reopen(aead.status());
  auto sealed = (*aead)->Seal((*name_key)->span(), NameKeyAad(id, active->version));
  if (!sealed.ok()) return reopen(sealed.status());
  out.sealed_name_key = std::move(sealed).value();
  out.name_key_version = active->version;
  const std::filesystem::path root = layout_.org_dir(id);
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file() || LeftOut(it->path().filename().string())) continue;
    out.files.push_back(it->path().lexically_relative(root).string());
  }
  if (ec) return reopen(Status::IOError("cannot list " + root.string() + ": " + ec.message()));
  std::sort(out.files.begin(), out.files.end());
  SC_RETURN_IF_ERROR(RecordAudit("org_exported",
                                 {{"org", id}, {"files", static_cast<int64_t>(out.files.size())}}));
  return out;
}

Status StoreImpl::ReopenOrg(std::string_view org_id) {
  std::lock_guard<std::mutex> admin(org_admin_mu_);
  std::unique_lock<std::shared_mutex> lock(orgs_mu_);
  SC_ASSIGN_OR_RETURN(OrgState * org, FindOrg(org_id));
  if (org->db != nullptr) return Status::Ok();
  if (org->unavailable.code() != Status::Code::kUnavailable) return org->unavailable;  // damaged
  SC_ASSIGN_OR_RETURN(org->db, OpenOrgDb(org->id, /*create=*/false));
  org->unavailable = Status::Ok();
  return RecordAudit("org_export_undone", {{"org", org->id}});
}

Result<std::vector<uint8_t>> StoreImpl::ReadExportedFile(std::string_view org_id,
                                                         std::string_view file, uint64_t offset,
                                                         size_t max) {
  SC_RETURN_IF_ERROR(ValidateCopiedFile(file));
  std::string path;
  {
    std::shared_lock<std::shared_mutex> lock(orgs_mu_);
    SC_ASSIGN_OR_RETURN(OrgState * org, FindOrg(org_id));
    if (org->db != nullptr || org->unavailable.code() != Status::Code::kUnavailable) {
      return Status::FailedPrecondition("org " + org->id + " is not exported");
    }
    path = layout_.org_dir(org->id) + "/" + std::string(file);
  }
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open " + path);
  std::vector<uint8_t> out(max);
  const ssize_t n = pread(fd, out.data(), max, static_cast<off_t>(offset));
  const int saved = errno;
  close(fd);
  errno = saved;
  if (n < 0) return Errno("cannot read " + path);
  out.resize(static_cast<size_t>(n));
  return out;
}

Status StoreImpl::StageImport(std::string_view org_view) {
  SC_RETURN_IF_ERROR(crypto::ValidateOrgId(org_view));
  const std::string org(org_view);
  {
    std::shared_lock<std::shared_mutex> lock(orgs_mu_);
    if (orgs_.count(org)) return Status::AlreadyExists("org " + org + " already exists here");
  }
  const std::string staged = layout_.incoming_dir() + "/" + org;
  std::error_code ec;
  std::filesystem::remove_all(staged, ec);
  if (ec) return Status::IOError("cannot remove " + staged + ": " + ec.message());
  SC_RETURN_IF_ERROR(MakePrivateDir(layout_.incoming_dir()));
  return MakePrivateDir(staged);
}

Status StoreImpl::WriteStaged(std::string_view org_view, std::string_view file, uint64_t offset,
                              std::span<const uint8_t> bytes) {
  SC_RETURN_IF_ERROR(crypto::ValidateOrgId(org_view));
  SC_RETURN_IF_ERROR(ValidateCopiedFile(file));
  const std::string staged = layout_.incoming_dir() + "/" + std::string(org_view);
  if (!std::filesystem::is_directory(staged)) {
    return Status::FailedPrecondition("no import of org " + std::string(org_view) + " is staged");
  }
  const std::string path = staged + "/" + std::string(file);
  if (const size_t slash = file.find('/'); slash != std::string_view::npos) {
    SC_RETURN_IF_ERROR(MakePrivateDir(staged + "/" + std::string(file.substr(0, slash))));
  }
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, kPrivateFileMode);
  if (fd < 0) return Errno("cannot open " + path);
  struct stat st {};
  Status out = Status::Ok();
  if (fstat(fd, &st) != 0) {
    out = Errno("cannot stat " + path);
  } else if (static_cast<uint64_t>(st.st_size) != offset) {
    out = Status::InvalidArgument("staged " + std::string(file) + " has " +
                                  std::to_string(st.st_size) + " bytes, not " +
                                  std::to_string(offset));
  } else {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n =
          pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        out = Errno("cannot write " + path);
        break;
      }
      done += static_cast<size_t>(n);
    }
  }
  close(fd);
  return out;
}

Status StoreImpl::AbandonImport(std::string_view org_view) {
  SC_RETURN_IF_ERROR(crypto::ValidateOrgId(org_view));
  std::error_code ec;
  std::filesystem::remove_all(layout_.incoming_dir() + "/" + std::string(org_view), ec);
  if (ec) return Status::IOError("cannot remove a staged import: " + ec.message());
  return Status::Ok();
}

Status StoreImpl::ImportOrg(std::string_view org_view, const OrgExport& from) {
  SC_RETURN_IF_ERROR(crypto::ValidateOrgId(org_view));
  const std::string org(org_view);
  std::lock_guard<std::mutex> admin(org_admin_mu_);
  {
    std::shared_lock<std::shared_mutex> lock(orgs_mu_);
    if (orgs_.count(org)) return Status::AlreadyExists("org " + org + " already exists here");
  }
  const crypto::RingId ring{crypto::KeyScope::kOrg, org};
  const std::string staged = layout_.incoming_dir() + "/" + org;
  const std::string dir = layout_.org_dir(org);
  std::set<std::string> dirs = {staged};
  for (const std::string& f : from.files) {
    SC_RETURN_IF_ERROR(ValidateCopiedFile(f));
    const std::string path = staged + "/" + f;
    // Durable before the catalog names the org: synced here, then renamed as a whole.
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Errno("the copy of org " + org + " lacks " + f);
    const int synced = fsync(fd);
    close(fd);
    if (synced != 0) return Errno("cannot sync " + path);
    dirs.insert(std::filesystem::path(path).parent_path().string());
  }
  for (const std::string& d : dirs) SC_RETURN_IF_ERROR(crypto::SyncDirectory(d));
  // The keys first (checked under this node's master key), as at a create: a key version
  // is durable here before any file that uses it is the org's.
  SC_RETURN_IF_ERROR(keystore_->ImportRing(ring, from.ring));
  std::unique_ptr<OrgDb> db;
  auto undo = [&](Status why) {
    db.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (keystore_->IsLive(ring)) (void)keystore_->DestroyRing(ring);
    return why.WithContext("cannot import org " + org);
  };
  auto key = keystore_->Key(ring, from.name_key_version);
  if (!key.ok()) return undo(key.status());
  auto aead = crypto::Aead::New(**key);
  if (!aead.ok()) return undo(aead.status());
  auto name_key = (*aead)->OpenSecret(from.sealed_name_key, NameKeyAad(org, from.name_key_version));
  if (!name_key.ok()) return undo(Status::InvalidArgument("its name key does not open"));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // leftovers of an earlier tenant's drop
  std::filesystem::rename(staged, dir, ec);
  if (ec)
    return undo(Status::IOError("cannot move " + staged + " to " + dir + ": " + ec.message()));
  if (Status s = crypto::SyncDirectory(layout_.orgs_dir()); !s.ok()) return undo(s);
  auto opened = OpenOrgDb(org, /*create=*/false);
  if (!opened.ok()) return undo(opened.status());
  db = std::move(opened).value();
  auto state = std::make_unique<OrgState>();
  state->id = org;
  state->config = from.config;
  state->db = std::move(db);
  auto next = RecoverNextSlot(*state);
  if (!next.ok()) return undo(next.status());
  state->next_slot = *next;
  if (Status s = LoadCapacity(*state); !s.ok()) return undo(s);
  // The commit point: the org's record, with its name key, in the catalog.
  Status committed = catalog_->AddOrg(
      org, from.config, std::make_shared<const crypto::SecretBytes>(std::move(name_key).value()));
  if (!committed.ok()) {
    db = std::move(state->db);
    return undo(committed);
  }
  {
    std::unique_lock<std::shared_mutex> lock(orgs_mu_);
    orgs_.emplace(org, std::move(state));
  }
  return RecordAudit("org_imported",
                     {{"org", org}, {"files", static_cast<int64_t>(from.files.size())}});
}

}  // namespace sealcache::storage::internal
