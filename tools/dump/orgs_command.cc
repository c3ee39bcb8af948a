// `orgs` and `stats`: per-org summaries from the meta family, the org SSTs' headers and the
// keystore metadata. Need no key (a key adds unflushed writes and exact live-file sets).
#include <map>

#include "commands.h"
#include "sealcache/crypto/keystore.h"
#include "sealcache/storage/file_check.h"
#include "text_format.h"

namespace sealcache::dump {
namespace {

constexpr int64_t kMsPerDay = int64_t{24} * 3600 * 1000;

struct VersionUsage {
  uint64_t sst_files = 0, sst_bytes = 0;
};

struct OrgSummary {
  storage::OrgRecord record;
  uint64_t live_entries = 0, expired_entries = 0;
  uint64_t payload_bytes = 0;  // of live entries, from their metadata
  uint64_t logical_bytes = 0;  // what capacity limits count (storage::EntryLogicalBytes)
  uint64_t sst_files = 0, sst_bytes = 0;
  std::map<uint32_t, VersionUsage> by_version;  // SSTs per key version from their headers
  std::vector<crypto::KeyInfo> keys;            // the org's ring in the keystore
  std::string error;  // why the org's database does not open (its counts are then empty)
};

Result<OrgSummary> Summarize(storage::StoreView& view, storage::OrgRecord record,
                             const crypto::KeystoreMetadata& keystore, int64_t now_ms) {
  OrgSummary s;
  s.record = std::move(record);
  const std::string& org = s.record.org;
  if (Status open = view.OrgStatus(org); !open.ok()) {
    s.error = open.ToString();  // one damaged org does not hide the others
  } else {
    SC_RETURN_IF_ERROR(view.ScanEntries(org, [&](const storage::EntryMeta& m) {
      if (m.expires_ms <= now_ms) {
        s.expired_entries++;
      } else {
        s.live_entries++;
        s.payload_bytes += m.payload_size;
        s.logical_bytes += storage::EntryLogicalBytes(m, s.record.config.dimension);
      }
      return true;
    }));
  }
  SC_ASSIGN_OR_RETURN(auto files, view.OrgSstFiles(org));
  for (const auto& f : files) {
    s.sst_files++;
    s.sst_bytes += f.physical_bytes;
    VersionUsage& u = s.by_version[f.key_version];
    u.sst_files++;
    u.sst_bytes += f.physical_bytes;
  }
  for (const crypto::KeyInfo& k : keystore.keys) {
    if (k.ring.scope == crypto::KeyScope::kOrg && k.ring.org == org) s.keys.push_back(k);
  }
  return s;
}

Result<std::vector<OrgSummary>> SummarizeAll(storage::StoreView& view, const CommandContext& ctx) {
  SC_ASSIGN_OR_RETURN(auto keystore, crypto::Keystore::ReadMetadata(ctx.layout.keystore_path()));
  SC_ASSIGN_OR_RETURN(auto orgs, view.Orgs());
  std::vector<OrgSummary> out;
  for (auto& record : orgs) {
    SC_ASSIGN_OR_RETURN(OrgSummary s, Summarize(view, std::move(record), keystore, ctx.now_ms));
    out.push_back(std::move(s));
  }
  return out;
}

std::string VersionsText(const std::vector<crypto::KeyInfo>& keys) {
  std::string out;
  for (const auto& k : keys) {
    if (!out.empty()) out += ",";
    out += std::to_string(k.version) + ":" + std::string(crypto::KeyStateName(k.state));
  }
  return out.empty() ? "-" : out;
}

Json KeysJson(const std::vector<crypto::KeyInfo>& keys) {
  Json a = Json::MakeArray();
  for (const auto& k : keys) {
    a.Push(
        Json::MakeObject().Set("version", k.version).Set("state", crypto::KeyStateName(k.state)));
  }
  return a;
}

// "max_bytes=N max_entries=N policy", "-" for none.
std::string LimitsText(const storage::OrgLimits& l) {
  std::string out;
  if (l.max_bytes > 0) out += "max_bytes=" + std::to_string(l.max_bytes) + " ";
  if (l.max_entries > 0) out += "max_entries=" + std::to_string(l.max_entries) + " ";
  out += l.eviction_policy.empty() ? "default-policy" : l.eviction_policy;
  return out;
}

void SetCapacityJson(const OrgSummary& s, Json* j) {
  const storage::OrgLimits& l = s.record.config.limits;
  j->Set("logical_bytes", s.logical_bytes)
      .Set("max_bytes", l.max_bytes)
      .Set("max_entries", l.max_entries)
      .Set("eviction_policy", l.eviction_policy.empty() ? Json() : Json(l.eviction_policy));
}

const crypto::KeyInfo* ActiveKey(const std::vector<crypto::KeyInfo>& keys) {
  for (const auto& k : keys) {
    if (k.state == crypto::KeyState::kActive) return &k;
  }
  return nullptr;
}

void SetViewInfo(const storage::StoreView& view, const CommandContext& ctx, CommandOutput* out) {
  out->json.Set("view", ViewMode(view)).Set("view_note", ViewNote(view));
  out->json.Set("now_ms", ctx.now_ms);
  out->text = ViewNote(view) + "\n";
}

}  // namespace

Result<CommandOutput> RunOrgs(const CommandContext& ctx) {
  SC_ASSIGN_OR_RETURN(auto view, OpenView(ctx));
  SC_ASSIGN_OR_RETURN(auto orgs, SummarizeAll(*view, ctx));
  CommandOutput out;
  SetViewInfo(*view, ctx, &out);
  TextTable table({"ORG", "ENTRIES", "EXPIRED", "PAYLOAD-BYTES", "LOGICAL-BYTES", "LIMITS",
                   "SST-FILES", "SST-BYTES", "DIM", "METRIC", "INDEX", "CREATED", "KEY-VERSIONS"});
  Json list = Json::MakeArray();
  for (const OrgSummary& s : orgs) {
    const storage::OrgConfig& c = s.record.config;
    Json j = Json::MakeObject();
    j.Set("org", s.record.org).Set("entries", s.live_entries);
    j.Set("expired_entries", s.expired_entries).Set("payload_bytes", s.payload_bytes);
    j.Set("sst_files", s.sst_files).Set("sst_bytes", s.sst_bytes);
    j.Set("dimension", c.dimension).Set("metric", c.metric).Set("index_kind", c.index_kind);
    j.Set("created_ms", c.created_ms).Set("key_versions", KeysJson(s.keys));
    SetCapacityJson(s, &j);
    if (!s.error.empty()) j.Set("error", s.error);
    list.Push(std::move(j));
    table.Add({s.record.org, std::to_string(s.live_entries), std::to_string(s.expired_entries),
               std::to_string(s.payload_bytes), std::to_string(s.logical_bytes),
               LimitsText(c.limits), std::to_string(s.sst_files), std::to_string(s.sst_bytes),
               std::to_string(c.dimension), c.metric, c.index_kind, FormatTime(c.created_ms),
               VersionsText(s.keys)});
  }
  out.json.Set("orgs", std::move(list));
  out.text += table.Render();
  for (const OrgSummary& s : orgs) {
    if (!s.error.empty()) out.text += "UNREADABLE " + s.record.org + ": " + s.error + "\n";
  }
  if (!view->full()) out.text += "SST-FILES/BYTES: *.sst files in the org's directory\n";
  return out;
}

// Live encrypted files by format (v1 disappears as compaction rewrites SSTs and snapshots are
// replaced): what the chunk format costs on disk is PHYSICAL over LOGICAL.
Status AddBytesByFormat(const CommandContext& ctx, CommandOutput* out) {
  SC_ASSIGN_OR_RETURN(auto files, storage::CheckDataFiles(ctx.layout));
  struct Usage {
    uint64_t files = 0, logical = 0, physical = 0;
  };
  std::map<std::string, Usage> by_format;  // "v1", "v2"
  for (const auto& f : files) {
    if (!f.encrypted) continue;
    Usage& u = by_format["v" + std::to_string(f.format_version)];
    ++u.files;
    u.logical += f.logical_bytes;
    u.physical += f.physical_bytes;
  }
  TextTable table({"FORMAT", "FILES", "LOGICAL-BYTES", "PHYSICAL-BYTES"});
  Json json = Json::MakeObject();
  for (const char* format : {"v1", "v2"}) {
    const Usage u = by_format[format];
    json.Set(format, Json::MakeObject()
                         .Set("files", u.files)
                         .Set("logical_bytes", u.logical)
                         .Set("physical_bytes", u.physical));
    table.Add(
        {format, std::to_string(u.files), std::to_string(u.logical), std::to_string(u.physical)});
  }
  out->json.Set("encrypted_files_by_format", std::move(json));
  out->text += "\nencrypted files by format:\n" + table.Render();
  return Status::Ok();
}

Result<CommandOutput> RunStats(const CommandContext& ctx) {
  SC_ASSIGN_OR_RETURN(auto view, OpenView(ctx));
  SC_ASSIGN_OR_RETURN(auto orgs, SummarizeAll(*view, ctx));
  const int64_t interval_ms = ctx.options.rotation_interval_days * kMsPerDay;
  CommandOutput out;
  SetViewInfo(*view, ctx, &out);
  out.json.Set("rotation_interval_days", ctx.options.rotation_interval_days);
  TextTable per_org({"ORG", "ENTRIES", "EXPIRED", "PAYLOAD-BYTES", "LOGICAL-BYTES", "SST-FILES",
                     "SST-BYTES", "ACTIVE-KEY", "KEY-AGE", "ROTATION-DUE"});
  TextTable per_version({"ORG", "VERSION", "STATE", "SST-FILES", "SST-BYTES"});
  Json org_list = Json::MakeArray(), version_list = Json::MakeArray();
  OrgSummary total;
  for (const OrgSummary& s : orgs) {
    const crypto::KeyInfo* active = ActiveKey(s.keys);
    const int64_t age = active ? ctx.now_ms - active->created_ms : 0;
    const bool overdue = active && age > interval_ms;
    Json j = Json::MakeObject();
    j.Set("org", s.record.org).Set("entries", s.live_entries);
    j.Set("expired_entries", s.expired_entries).Set("payload_bytes", s.payload_bytes);
    j.Set("sst_files", s.sst_files).Set("sst_bytes", s.sst_bytes);
    j.Set("active_key_version", active ? Json(active->version) : Json());
    j.Set("active_key_age_ms", active ? Json(age) : Json());
    j.Set("rotation_overdue", overdue);
    SetCapacityJson(s, &j);
    org_list.Push(std::move(j));
    per_org.Add({s.record.org, std::to_string(s.live_entries), std::to_string(s.expired_entries),
                 std::to_string(s.payload_bytes), std::to_string(s.logical_bytes),
                 std::to_string(s.sst_files), std::to_string(s.sst_bytes),
                 active ? std::to_string(active->version) : "-", active ? FormatDuration(age) : "-",
                 !active   ? "-"
                 : overdue ? "OVERDUE"
                           : "in " + FormatDuration(interval_ms - age)});
    for (const crypto::KeyInfo& k : s.keys) {
      auto it = s.by_version.find(k.version);
      const VersionUsage u = it == s.by_version.end() ? VersionUsage{} : it->second;
      version_list.Push(Json::MakeObject()
                            .Set("org", s.record.org)
                            .Set("version", k.version)
                            .Set("state", crypto::KeyStateName(k.state))
                            .Set("sst_files", u.sst_files)
                            .Set("sst_bytes", u.sst_bytes));
      per_version.Add({s.record.org, std::to_string(k.version),
                       std::string(crypto::KeyStateName(k.state)), std::to_string(u.sst_files),
                       std::to_string(u.sst_bytes)});
    }
    total.live_entries += s.live_entries;
    total.expired_entries += s.expired_entries;
    total.payload_bytes += s.payload_bytes;
    total.logical_bytes += s.logical_bytes;
    total.sst_files += s.sst_files;
    total.sst_bytes += s.sst_bytes;
  }
  out.json.Set("orgs", std::move(org_list)).Set("key_versions", std::move(version_list));
  out.json.Set("totals", Json::MakeObject()
                             .Set("orgs", orgs.size())
                             .Set("entries", total.live_entries)
                             .Set("expired_entries", total.expired_entries)
                             .Set("payload_bytes", total.payload_bytes)
                             .Set("logical_bytes", total.logical_bytes)
                             .Set("sst_files", total.sst_files)
                             .Set("sst_bytes", total.sst_bytes));
  per_org.Add({"TOTAL", std::to_string(total.live_entries), std::to_string(total.expired_entries),
               std::to_string(total.payload_bytes), std::to_string(total.logical_bytes),
               std::to_string(total.sst_files), std::to_string(total.sst_bytes), "", "", ""});
  out.text += "per org (rotation interval " + std::to_string(ctx.options.rotation_interval_days) +
              " days):\n" + per_org.Render() + "\nper key version:\n" + per_version.Render();
  SC_RETURN_IF_ERROR(AddBytesByFormat(ctx, &out));
  return out;
}

}  // namespace sealcache::dump
