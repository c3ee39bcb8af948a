// `keys`: the keystore's plaintext metadata and the files on disk per key version; with the
// master key also the keystore's authentication and the live SSTs per version.
#include <map>

#include "commands.h"
#include "sealcache/crypto/keystore.h"
#include "sealcache/storage/file_check.h"
#include "text_format.h"

namespace sealcache::dump {
namespace {

struct Usage {
  uint64_t files = 0, bytes = 0;
};
using UsageByVersion = std::map<std::pair<crypto::RingId, uint32_t>, Usage>;

// Encrypted files on disk by the ring and version their headers name.
Result<UsageByVersion> UsageOnDisk(const storage::DataLayout& layout) {
  SC_ASSIGN_OR_RETURN(auto files, storage::CheckDataFiles(layout));
  UsageByVersion usage;
  for (const auto& f : files) {
    if (!f.key_ring) continue;
    Usage& u = usage[{*f.key_ring, f.key_version}];
    u.files++;
    u.bytes += f.physical_bytes;
  }
  return usage;
}

// Live SSTs (RocksDB's metadata, what the key reaper counts) by org and version.
Result<UsageByVersion> LiveSstUsage(const CommandContext& ctx) {
  SC_ASSIGN_OR_RETURN(auto view, OpenView(ctx));
  UsageByVersion usage;
  for (const std::string& org : view->org_families()) {
    SC_ASSIGN_OR_RETURN(auto files, view->OrgSstFiles(org));
    for (const auto& f : files) {
      Usage& u = usage[{{crypto::KeyScope::kOrg, org}, f.key_version}];
      u.files++;
      u.bytes += f.physical_bytes;
    }
  }
  return usage;
}

Json KeyJson(const crypto::KeyInfo& k, const Usage& disk, const std::optional<Usage>& live) {
  Json j = Json::MakeObject();
  j.Set("scope", crypto::KeyScopeName(k.ring.scope));
  j.Set("org", k.ring.org.empty() ? Json() : Json(k.ring.org));
  j.Set("version", k.version).Set("state", crypto::KeyStateName(k.state));
  j.Set("created_ms", k.created_ms).Set("rotated_ms", k.rotated_ms);
  j.Set("destroyed_ms", k.destroyed_ms);
  j.Set("files_on_disk", disk.files).Set("bytes_on_disk", disk.bytes);
  j.Set("live_sst_files", live ? Json(live->files) : Json());
  j.Set("live_sst_bytes", live ? Json(live->bytes) : Json());
  return j;
}

}  // namespace

Result<CommandOutput> RunKeys(const CommandContext& ctx) {
  const std::string path = ctx.layout.keystore_path();
  SC_ASSIGN_OR_RETURN(crypto::KeystoreMetadata meta, crypto::Keystore::ReadMetadata(path));
  SC_ASSIGN_OR_RETURN(UsageByVersion disk, UsageOnDisk(ctx.layout));
  std::optional<UsageByVersion> live;
  std::optional<Status> auth;
  if (ctx.master_key) {
    auth = crypto::Keystore::Verify(path, *ctx.master_key);
    if (auth->ok()) {
      SC_ASSIGN_OR_RETURN(live, LiveSstUsage(ctx));
    }
  }
  CommandOutput out;
  Json keystore = Json::MakeObject();
  keystore.Set("path", path).Set("format_version", meta.format_version);
  keystore.Set("generation", meta.generation);
  keystore.Set("master_key_fingerprint", meta.master_key_fingerprint);
  keystore.Set("authenticated", auth ? Json(auth->ok()) : Json());
  keystore.Set("auth_error", auth && !auth->ok() ? Json(auth->ToString()) : Json());
  out.text = "keystore " + path + " (format v" + std::to_string(meta.format_version) +
             ", generation " + std::to_string(meta.generation) + ", master key fingerprint " +
             meta.master_key_fingerprint + ")\n";
  out.text += !auth        ? "authentication: not checked (no --master-key)\n"
              : auth->ok() ? "authentication: OK\n"
                           : "authentication: FAILED: " + auth->ToString() + "\n";
  TextTable table({"SCOPE", "ORG", "VERSION", "STATE", "CREATED", "ROTATED", "DESTROYED", "FILES",
                   "BYTES", "LIVE-SST"});
  Json keys = Json::MakeArray();
  for (const crypto::KeyInfo& k : meta.keys) {
    const Usage d = disk.count({k.ring, k.version}) ? disk[{k.ring, k.version}] : Usage{};
    std::optional<Usage> l;
    if (live && k.ring.scope == crypto::KeyScope::kOrg) {
      l = live->count({k.ring, k.version}) ? (*live)[{k.ring, k.version}] : Usage{};
    }
    keys.Push(KeyJson(k, d, l));
    table.Add({std::string(crypto::KeyScopeName(k.ring.scope)),
               k.ring.org.empty() ? "-" : k.ring.org, std::to_string(k.version),
               std::string(crypto::KeyStateName(k.state)), FormatTime(k.created_ms),
               FormatTime(k.rotated_ms), FormatTime(k.destroyed_ms), std::to_string(d.files),
               std::to_string(d.bytes),
               l ? std::to_string(l->files) + " (" + std::to_string(l->bytes) + " B)" : "-"});
  }
  out.json.Set("keystore", std::move(keystore)).Set("keys", std::move(keys));
  out.text += table.Render();
  out.text += "FILES/BYTES: encrypted files on disk whose header names the version";
  out.text += live ? "; LIVE-SST: live SSTs in the database\n" : "\n";
  if (auth && !auth->ok()) out.exit_code = kExitProblems;
  return out;
}

}  // namespace sealcache::dump
