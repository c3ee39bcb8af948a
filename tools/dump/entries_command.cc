// `entries` (plaintext metadata, no key) and `entry` (one decrypted entry, audited).
#include <algorithm>
#include <cmath>

#include "commands.h"
#include "sealcache/crypto/master_key.h"
#include "sealcache/storage/audit_log.h"
#include "text_format.h"

namespace sealcache::dump {
namespace {

constexpr size_t kVectorPreview = 8;

Json EntryJson(const storage::EntryMeta& m, bool expired) {
  Json j = Json::MakeObject();
  j.Set("digest", Hex(m.digest)).Set("created_ms", m.created_ms);
  j.Set("expires_ms", m.expires_ms).Set("ttl_ms", m.ttl_ms).Set("expired", expired);
  j.Set("namespace", m.name_space).Set("payload_size", m.payload_size);
  j.Set("vector_slot", m.vector_slot).Set("hits", m.hits).Set("last_hit_ms", m.last_hit_ms);
  return j;
}

// UTF-8 without control characters other than newline and tab prints as text.
bool PrintableText(std::span<const uint8_t> bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    const uint8_t c = bytes[i];
    if (c < 0x80) {
      if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') return false;
      if (c == 0x7f) return false;
      ++i;
      continue;
    }
    const size_t n = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > bytes.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((bytes[i + k] >> 6) != 0x2) return false;
    }
    i += n;
  }
  return true;
}

Json VectorJson(std::span<const float> v) {
  double norm = 0;
  for (float x : v) norm += double{x} * x;
  Json head = Json::MakeArray();
  for (size_t k = 0; k < std::min(v.size(), kVectorPreview); ++k) head.Push(double{v[k]});
  Json j = Json::MakeObject();
  j.Set("dimension", v.size()).Set("l2_norm", std::sqrt(norm));
  j.Set("min", v.empty() ? Json() : Json(double{*std::min_element(v.begin(), v.end())}));
  j.Set("max", v.empty() ? Json() : Json(double{*std::max_element(v.begin(), v.end())}));
  j.Set("first", std::move(head));
  return j;
}

std::string VectorText(std::span<const float> v) {
  double norm = 0;
  for (float x : v) norm += double{x} * x;
  std::string out = "dimension " + std::to_string(v.size()) + ", L2 norm " +
                    std::to_string(std::sqrt(norm)) + ", first:";
  for (size_t k = 0; k < std::min(v.size(), kVectorPreview); ++k) {
    out += " " + std::to_string(v[k]);
  }
  return out;
}

Result<storage::Digest> ParseDigest(const std::string& hex) {
  auto bytes = crypto::ParseHex(hex);
  if (!bytes.ok() || bytes->size() != storage::kDigestSize) {
    return Status::InvalidArgument("--digest must be 64 hex characters");
  }
  storage::Digest d{};
  std::copy(bytes->begin(), bytes->end(), d.begin());
  return d;
}

// Reading a payload is an access to customer data: it is recorded before anything is shown.
Status AuditEntryRead(const CommandContext& ctx, const std::string& digest_hex) {
  SystemClock clock;
  SC_ASSIGN_OR_RETURN(auto audit, storage::AuditLog::Open(ctx.layout.audit_log_path(), &clock));
  return audit->Record(
      "dump_entry_read",
      {{"tool", std::string("sealcache-dump")}, {"org", *ctx.options.org}, {"digest", digest_hex}});
}

}  // namespace

Result<CommandOutput> RunEntries(const CommandContext& ctx) {
  SC_ASSIGN_OR_RETURN(auto view, OpenView(ctx));
  const std::string& org = *ctx.options.org;
  SC_RETURN_IF_ERROR(view->GetOrg(org).status());
  CommandOutput out;
  TextTable table(
      {"DIGEST", "CREATED", "EXPIRES", "TTL", "NAMESPACE", "PAYLOAD", "HITS", "LAST-HIT", "SLOT"});
  Json list = Json::MakeArray();
  uint64_t matching = 0;
  const uint64_t limit = ctx.options.limit;
  SC_RETURN_IF_ERROR(view->ScanEntries(org, [&](const storage::EntryMeta& m) {
    const bool expired = m.expires_ms <= ctx.now_ms;
    if (expired && !ctx.options.include_expired) return true;
    if (ctx.options.name_space && m.name_space != *ctx.options.name_space) return true;
    if (limit != 0 && matching >= limit) return ++matching, true;  // count, do not list
    ++matching;
    list.Push(EntryJson(m, expired));
    table.Add({Hex(m.digest), FormatTime(m.created_ms),
               FormatTime(m.expires_ms) + (expired ? " (expired)" : ""), FormatDuration(m.ttl_ms),
               m.name_space.empty() ? "-" : m.name_space, std::to_string(m.payload_size),
               std::to_string(m.hits), FormatTime(m.last_hit_ms), std::to_string(m.vector_slot)});
    return true;
  }));
  const bool truncated = limit != 0 && matching > limit;
  out.json.Set("org", org).Set("view", ViewMode(*view)).Set("view_note", ViewNote(*view));
  out.json.Set("now_ms", ctx.now_ms).Set("matching", matching).Set("truncated", truncated);
  out.json.Set("entries", std::move(list));
  out.text = ViewNote(*view) + "\n" + table.Render() + std::to_string(matching) + " matching entr" +
             (matching == 1 ? "y" : "ies") +
             (truncated ? " (first " + std::to_string(limit) + " shown)" : "") + "\n";
  return out;
}

Result<CommandOutput> RunEntry(const CommandContext& ctx) {
  const std::string& org = *ctx.options.org;
  SC_ASSIGN_OR_RETURN(storage::Digest digest, ParseDigest(*ctx.options.digest_hex));
  SC_ASSIGN_OR_RETURN(auto view, OpenView(ctx));
  SC_ASSIGN_OR_RETURN(storage::EntryMeta meta, view->GetEntryMeta(org, digest));
  const std::string hex = Hex(digest);
  SC_RETURN_IF_ERROR(AuditEntryRead(ctx, hex).WithContext("refusing to show the entry"));
  SC_ASSIGN_OR_RETURN(auto payload, view->ReadPayload(org, digest));
  SC_ASSIGN_OR_RETURN(auto vector, view->ReadVector(org, meta.vector_slot));
  SC_ASSIGN_OR_RETURN(storage::RecordLocation loc, view->LocatePayload(org, digest));
  const bool text = PrintableText(payload);
  const std::string shown = text ? std::string(payload.begin(), payload.end()) : Hex(payload);
  CommandOutput out;
  out.json = EntryJson(meta, meta.expires_ms <= ctx.now_ms);
  out.json.Set("org", org).Set("payload_encoding", text ? "text" : "hex").Set("payload", shown);
  out.json.Set("vector", VectorJson(vector));
  out.json.Set("protected_by",
               Json::MakeObject()
                   .Set("key_scope", crypto::KeyScopeName(loc.ring.scope))
                   .Set("key_org", loc.ring.org.empty() ? Json() : Json(loc.ring.org))
                   .Set("key_version", loc.key_version)
                   .Set("file", loc.path)
                   .Set("in_wal", loc.in_wal));
  out.text = "org " + org + " digest " + hex + "\ncreated " + FormatTime(meta.created_ms) +
             ", expires " + FormatTime(meta.expires_ms) + ", ttl " + FormatDuration(meta.ttl_ms) +
             ", namespace '" + meta.name_space + "', hits " + std::to_string(meta.hits) +
             ", last hit " + FormatTime(meta.last_hit_ms) + ", slot " +
             std::to_string(meta.vector_slot) + "\nprotected by " + loc.ring.ToString() +
             " key version " + std::to_string(loc.key_version) + " (" + loc.path +
             (loc.in_wal ? ", not flushed yet" : "") + ")\nvector: " + VectorText(vector) +
             "\npayload (" + std::to_string(payload.size()) + " bytes, " + (text ? "text" : "hex") +
             "):\n" + shown + "\n";
  return out;
}

}  // namespace sealcache::dump
