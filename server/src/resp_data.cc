// The Redis-protocol front's hashes and keyspace commands (server/RESP.md): HSET and the hash
// reads, SCAN, KEYS and FLUSHDB. A hash is one entry whose encrypted payload is its record
// (resp_internal.h); a hash under a search index's prefix also carries the index's vector
// field as the entry's vector, so FT.SEARCH finds it with the org's own HNSW index.
#include <algorithm>
#include <charconv>
#include <limits>

#include "resp_internal.h"

namespace sealcache::server::internal::resp {
namespace {

// SCAN's COUNT when none is given, and KEYS' page size (Redis: 10).
constexpr size_t kDefaultScanCount = 10;
constexpr size_t kKeysPageEntries = 1000;
// A COUNT above this is clamped: one page is read and decrypted in one go.
constexpr int64_t kMaxScanCount = 100'000;

struct OwnedRecord {
  std::vector<uint8_t> payload;
  KeyRecord record;  // points into payload
};

// The record of `name` (nullopt if the key does not exist); WrongType if the entry is not a
// record of this name (a native entry has no name).
Result<std::optional<OwnedRecord>> ReadKey(Context& c, std::string_view name) {
  SC_ASSIGN_OR_RETURN(storage::Digest digest, KeyDigest(c, name));
  std::optional<OwnedRecord> out;
  auto value = c.service->Read(c.s.session, digest);
  if (value.status().IsNotFound()) return out;
  if (!value.ok()) return value.status();
  out.emplace();
  out->payload = std::move(value->payload);
  auto record = ParseRecord(out->payload);
  if (!record || record->name != name) return WrongType();
  out->record = std::move(*record);
  return out;
}

// The hash of `name`, or nullopt; WrongType if the key holds something else.
Result<std::optional<OwnedRecord>> ReadHash(Context& c, std::string_view name) {
  SC_ASSIGN_OR_RETURN(auto key, ReadKey(c, name));
  if (key && key->record.type != RecordType::kHash) return WrongType();
  return key;
}

std::optional<std::string_view> FieldOf(const KeyRecord& r, std::string_view field) {
  for (const auto& [f, v] : r.fields) {
    if (f == field) return v;
  }
  return std::nullopt;
}

// A SCAN cursor is the first 8 bytes of the next digest (big-endian), 0 at both ends; so a
// cursor stays valid across writes and restarts, as Redis's does across rehashing.
storage::Digest CursorDigest(uint64_t cursor) {
  storage::Digest d{};
  for (int i = 0; i < 8; ++i) d[i] = static_cast<uint8_t>(cursor >> (56 - 8 * i));
  return d;
}
uint64_t DigestCursor(const storage::Digest& d) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | d[i];
  return v;
}

std::string_view TypeName(RecordType t) { return t == RecordType::kHash ? "hash" : "string"; }

void HSetCommon(Context& c, bool reply_ok) {
  if (c.args.size() % 2 != 0) {
    return c.out.Error("ERR wrong number of arguments for '" + Lower(c.args[0]) + "' command");
  }
  const std::string& name = c.args[1];
  auto digest = KeyDigest(c, name);
  if (!digest.ok()) return ReplyError(c.out, digest.status(), c.args[0]);
  int64_t added = 0;
  Status st =
      c.service->Update(c.s.session, *digest, [&](const LiveEntry* current) -> Result<EntryChange> {
        HashFields fields;
        if (current != nullptr) {
          auto r = ParseRecord(current->payload);
          if (!r || r->name != name || r->type != RecordType::kHash) return WrongType();
          fields = OwnedFields(*r);
        }
        added = 0;
        for (size_t i = 2; i + 1 < c.args.size(); i += 2) {
          auto it = std::find_if(fields.begin(), fields.end(),
                                 [&](const auto& fv) { return fv.first == c.args[i]; });
          if (it != fields.end()) {
            it->second = c.args[i + 1];
          } else {
            fields.emplace_back(c.args[i], c.args[i + 1]);
            ++added;
          }
        }
        EntryChange change;
        change.kind = EntryChange::Kind::kPut;
        change.payload = HashRecord(name, fields);
        change.vector = VectorForHash(c, name, fields);
        // A new hash gets the default TTL and a changed one keeps its expiry, unless the
        // EXPIRE after the write sets one (run with it).
        change.ttl_ms = c.expiry != nullptr ? c.expiry->ttl_ms : c.facts->default_ttl_ms;
        change.keep_expiry = current != nullptr && c.expiry == nullptr;
        change.on_applied = HashWrittenHook(c, *digest, name, std::move(fields));
        return change;
      });
  if (!st.ok()) return ReplyError(c.out, st, c.args[0]);
  if (c.expiry != nullptr) c.expiry->applied = true;
  if (reply_ok) return c.out.SimpleString("OK");
  c.out.Integer(added);
}

}  // namespace

bool StringMatch(std::string_view p, std::string_view s) {
  while (!p.empty()) {
    switch (p[0]) {
      case '*': {
        while (p.size() > 1 && p[1] == '*') p.remove_prefix(1);
        if (p.size() == 1) return true;
        for (size_t i = 0; i <= s.size(); ++i) {
          if (StringMatch(p.substr(1), s.substr(i))) return true;
        }
        return false;
      }
      case '?':
        if (s.empty()) return false;
        s.remove_prefix(1);
        p.remove_prefix(1);
        break;
      case '[': {
        if (s.empty()) return false;
        p.remove_prefix(1);
        const bool negate = !p.empty() && p[0] == '^';
        if (negate) p.remove_prefix(1);
        bool match = false;
        while (!p.empty() && p[0] != ']') {
          if (p[0] == '\\' && p.size() >= 2) {
            p.remove_prefix(1);
            match |= p[0] == s[0];
            p.remove_prefix(1);
          } else if (p.size() >= 3 && p[1] == '-') {
            char lo = p[0], hi = p[2];
            if (lo > hi) std::swap(lo, hi);
            match |= s[0] >= lo && s[0] <= hi;
            p.remove_prefix(3);
          } else {
            match |= p[0] == s[0];
            p.remove_prefix(1);
          }
        }
        if (!p.empty()) p.remove_prefix(1);  // ']'
        if (match == negate) return false;
        s.remove_prefix(1);
        break;
      }
      case '\\':
        if (p.size() >= 2) p.remove_prefix(1);
        [[fallthrough]];
      default:
        if (s.empty() || p[0] != s[0]) return false;
        s.remove_prefix(1);
        p.remove_prefix(1);
    }
  }
  return s.empty();
}

HashFields OwnedFields(const KeyRecord& r) {
  HashFields out;
  out.reserve(r.fields.size());
  for (const auto& [f, v] : r.fields) out.emplace_back(f, v);
  return out;
}

Status ForEachEntry(Context& c, size_t page_entries,
                    const std::function<Status(const PagedEntry&)>& fn) {
  storage::Digest from{};
  for (;;) {
    SC_ASSIGN_OR_RETURN(EntryPage page, c.service->Scan(c.s.session, from, page_entries));
    for (const PagedEntry& e : page.entries) SC_RETURN_IF_ERROR(fn(e));
    if (!page.next) return Status::Ok();
    from = *page.next;
  }
}

void HSet(Context& c) { HSetCommon(c, false); }
void HMSet(Context& c) { HSetCommon(c, true); }

void HGet(Context& c) {
  auto h = ReadHash(c, c.args[1]);
  if (!h.ok()) return ReplyError(c.out, h.status(), c.args[0]);
  std::optional<std::string_view> v;
  if (*h) v = FieldOf((*h)->record, c.args[2]);
  v ? c.out.Bulk(*v) : c.out.NullBulk();
}

void HMGet(Context& c) {
  auto h = ReadHash(c, c.args[1]);
  if (!h.ok()) return ReplyError(c.out, h.status(), c.args[0]);
  c.out.ArrayHeader(c.args.size() - 2);
  for (size_t i = 2; i < c.args.size(); ++i) {
    std::optional<std::string_view> v;
    if (*h) v = FieldOf((*h)->record, c.args[i]);
    v ? c.out.Bulk(*v) : c.out.NullBulk();
  }
}

void HGetAll(Context& c) {
  auto h = ReadHash(c, c.args[1]);
  if (!h.ok()) return ReplyError(c.out, h.status(), c.args[0]);
  if (!*h) return c.out.MapHeader(0);
  c.out.MapHeader((*h)->record.fields.size());
  for (const auto& [f, v] : (*h)->record.fields) {
    c.out.Bulk(f);
    c.out.Bulk(v);
  }
}

void HExists(Context& c) {
  auto h = ReadHash(c, c.args[1]);
  if (!h.ok()) return ReplyError(c.out, h.status(), c.args[0]);
  c.out.Integer(*h && FieldOf((*h)->record, c.args[2]) ? 1 : 0);
}

void HLen(Context& c) {
  auto h = ReadHash(c, c.args[1]);
  if (!h.ok()) return ReplyError(c.out, h.status(), c.args[0]);
  c.out.Integer(*h ? static_cast<int64_t>((*h)->record.fields.size()) : 0);
}

// HDEL key field...: how many fields were removed; the key goes with its last field.
void HDel(Context& c) {
  const std::string& name = c.args[1];
  auto digest = KeyDigest(c, name);
  if (!digest.ok()) return ReplyError(c.out, digest.status(), c.args[0]);
  int64_t removed = 0;
  Status st =
      c.service->Update(c.s.session, *digest, [&](const LiveEntry* current) -> Result<EntryChange> {
        removed = 0;
        if (current == nullptr) return EntryChange{};
        auto r = ParseRecord(current->payload);
        if (!r || r->name != name || r->type != RecordType::kHash) return WrongType();
        HashFields fields = OwnedFields(*r);
        for (size_t i = 2; i < c.args.size(); ++i) {
          auto it = std::find_if(fields.begin(), fields.end(),
                                 [&](const auto& fv) { return fv.first == c.args[i]; });
          if (it == fields.end()) continue;
          fields.erase(it);
          ++removed;
        }
        EntryChange change;
        if (removed == 0) return change;
        if (fields.empty()) {
          change.kind = EntryChange::Kind::kDelete;
          change.on_applied = HashWrittenHook(c, *digest, name, {});
          return change;
        }
        change.kind = EntryChange::Kind::kPut;
        change.payload = HashRecord(name, fields);
        change.vector = VectorForHash(c, name, fields);
        change.ttl_ms = c.facts->default_ttl_ms;
        change.keep_expiry = true;
        change.on_applied = HashWrittenHook(c, *digest, name, std::move(fields));
        return change;
      });
  if (!st.ok()) return ReplyError(c.out, st, c.args[0]);
  c.out.Integer(removed);
}

namespace {

// A cursor as Redis reads one (strtoul, base 10): an optional sign, digits ("-n" wraps to
// 2^64 - n, "" is 0), nothing else; out of range is invalid.
std::optional<uint64_t> ParseCursor(std::string_view s) {
  if (s.empty()) return 0;
  const bool negative = s[0] == '-';
  const std::string_view digits = s[0] == '+' || negative ? s.substr(1) : s;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    return std::nullopt;
  }
  return negative ? 0 - v : v;
}

}  // namespace

// SCAN cursor [MATCH pattern] [COUNT n] [TYPE string|hash]: the keys of the session's org.
// Entries written through the native protocol have no name and are never listed.
void Scan(Context& c) {
  const auto parsed = ParseCursor(c.args[1]);
  if (!parsed) return c.out.Error("ERR invalid cursor");
  const uint64_t cursor = *parsed;
  std::optional<std::string> pattern, type;
  size_t count = kDefaultScanCount;
  for (size_t i = 2; i < c.args.size(); i += 2) {
    const std::string opt = Lower(c.args[i]);
    if (i + 1 >= c.args.size()) return c.out.Error("ERR syntax error");
    if (opt == "match") {
      pattern = c.args[i + 1];
    } else if (opt == "count") {
      auto n = ParseRedisInteger(c.args[i + 1]);
      if (!n) return c.out.Error("ERR value is not an integer or out of range");
      if (*n < 1) return c.out.Error("ERR syntax error");
      count = static_cast<size_t>(std::min(*n, kMaxScanCount));
    } else if (opt == "type") {
      type = Lower(c.args[i + 1]);
    } else {
      return c.out.Error("ERR syntax error");
    }
  }
  auto page = c.service->Scan(c.s.session, CursorDigest(cursor), count);
  if (!page.ok()) return ReplyError(c.out, page.status(), c.args[0]);
  std::vector<std::string> names;
  for (const PagedEntry& e : page->entries) {
    auto r = ParseRecord(e.payload);
    if (!r) continue;
    if (pattern && !StringMatch(*pattern, r->name)) continue;
    if (type && *type != TypeName(r->type)) continue;
    names.emplace_back(r->name);
  }
  uint64_t next = page->next ? DigestCursor(*page->next) : 0;
  // Two digests sharing their first 8 bytes: step past them rather than loop.
  if (page->next && next <= cursor) next = cursor + 1;
  c.out.ArrayHeader(2);
  c.out.Bulk(std::to_string(next));
  c.out.ArrayHeader(names.size());
  for (const auto& n : names) c.out.Bulk(n);
}

// KEYS pattern: every matching key of the session's org (a full scan, as in Redis).
void Keys(Context& c) {
  std::vector<std::string> names;
  Status st = ForEachEntry(c, kKeysPageEntries, [&](const PagedEntry& e) {
    auto r = ParseRecord(e.payload);
    if (r && StringMatch(c.args[1], r->name)) names.emplace_back(r->name);
    return Status::Ok();
  });
  if (!st.ok()) return ReplyError(c.out, st, c.args[0]);
  c.out.ArrayHeader(names.size());
  for (const auto& n : names) c.out.Bulk(n);
}

// FLUSHDB [ASYNC|SYNC]: removes every entry of the session's org (named or not).
void FlushDb(Context& c) {
  if (c.args.size() > 2 || (c.args.size() == 2 && !EqualsIgnoreCase(c.args[1], "async") &&
                            !EqualsIgnoreCase(c.args[1], "sync"))) {
    return c.out.Error("ERR syntax error");
  }
  Status st = ForEachEntry(c, kKeysPageEntries, [&](const PagedEntry& e) {
    return c.service->Update(c.s.session, e.digest, [&](const LiveEntry* current) {
      EntryChange change;
      if (current != nullptr) {
        change.kind = EntryChange::Kind::kDelete;
        change.on_applied = HashWrittenHook(c, e.digest, "", {});
      }
      return Result<EntryChange>(std::move(change));
    });
  });
  if (!st.ok()) return ReplyError(c.out, st, c.args[0]);
  c.out.SimpleString("OK");
}

}  // namespace sealcache::server::internal::resp
