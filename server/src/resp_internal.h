// What the command files of the Redis-protocol front share: the per-command context, Redis's
// error wording, and the records that keys are stored as (server/RESP.md, "How keys map to
// entries"). Private to server/.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "resp_commands.h"

namespace sealcache::server::internal::resp {

constexpr char kNoAuth[] = "NOAUTH Authentication required.";
constexpr char kWrongType[] = "WRONGTYPE Operation against a key holding the wrong kind of value";
constexpr char kSyntaxError[] = "ERR syntax error";
constexpr char kNotAnInteger[] = "ERR value is not an integer or out of range";
// What Redis answers a write at maxmemory under noeviction (or with nothing left to evict).
constexpr char kOom[] = "OOM command not allowed when used memory > 'maxmemory'.";
constexpr int64_t kMsPerSecond = 1000;

std::string Lower(std::string_view s);
std::string Upper(std::string_view s);
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
// (Integers: ParseRedisInteger, resp_parser.h.) A finite double as Redis parses one (strtod over
// the whole argument; "inf" allowed).
std::optional<double> ParseDouble(std::string_view s);

inline int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Context {
  CacheService* service;
  RespServerFacts* facts;
  RespSession& s;
  const RespCommand& args;
  RespWriter& out;
  // Set for a write run with the EXPIRE after it (RespCommands::ExecuteWithExpiry).
  WriteExpiry* expiry = nullptr;
};

// A service error as Redis would word it for `command` (a FailedPrecondition carrying
// kWrongType is answered as WRONGTYPE).
void ReplyError(RespWriter& out, const Status& status, std::string_view command);
inline Status WrongType() { return Status::FailedPrecondition(kWrongType); }

// ---- records: what a key's entry holds (encrypted with the org's data) -------------------------
// Magic 'R', version 1, type, the name's length (u32 little-endian) and the name, then
//   string (1): the value;
//   hash (2):   the field count (u32), then each field and value, each as u32 length + bytes.
enum class RecordType : uint8_t { kString = 1, kHash = 2 };

using HashFields = std::vector<std::pair<std::string, std::string>>;

struct KeyRecord {
  RecordType type = RecordType::kString;
  std::string_view name;
  std::string_view value;                                             // a string's
  std::vector<std::pair<std::string_view, std::string_view>> fields;  // a hash's, in order
};

// Redis's stringmatchlen (case-sensitive): '*', '?', '[...]' (with '^' and ranges) and '\'
// escapes.
bool StringMatch(std::string_view pattern, std::string_view s);

// Little-endian u32 lengths, as records and the front's side files use them.
void PutU32(std::vector<uint8_t>& out, size_t n);
void PutBytes(std::vector<uint8_t>& out, std::string_view bytes);
// Reads a u32 at `*at` (and, for TakeString, that many bytes after it); false if `in` is too
// short.
bool TakeU32(std::span<const uint8_t> in, size_t* at, uint32_t* v);
bool TakeString(std::span<const uint8_t> in, size_t* at, std::string_view* out);

// A hash record's fields, copied out of the payload it points into.
HashFields OwnedFields(const KeyRecord& r);

std::vector<uint8_t> StringRecord(std::string_view name, std::string_view value);
std::vector<uint8_t> HashRecord(std::string_view name, const HashFields& fields);
// nullopt if `payload` is not a well-formed record (a native entry, or damage).
std::optional<KeyRecord> ParseRecord(std::span<const uint8_t> payload);

// Calls `fn` on every live entry of the session's org, a page of `page_entries` at a time,
// until it returns an error (which is returned).
Status ForEachEntry(Context& c, size_t page_entries,
                    const std::function<Status(const PagedEntry&)>& fn);

// The digest `name` maps to in the session's org.
inline Result<storage::Digest> KeyDigest(Context& c, std::string_view name) {
  return c.service->NameDigest(c.s.session, name);
}

// ---- handlers defined outside resp_commands.cc ------------------------------------------------
// resp_data.cc: hashes and the keyspace.
void HSet(Context& c);
void HMSet(Context& c);
void HGet(Context& c);
void HMGet(Context& c);
void HGetAll(Context& c);
void HDel(Context& c);
void HExists(Context& c);
void HLen(Context& c);
void Scan(Context& c);
void Keys(Context& c);
void FlushDb(Context& c);
// resp_search.cc: the search module's subset.
void FtList(Context& c);
void FtCreate(Context& c);
void FtInfo(Context& c);
void FtSearch(Context& c);
void FtDropIndex(Context& c);
// What MODULE LIST and HELLO report for the search module.
void WriteSearchModule(RespWriter& out);
// The vector the entry of hash `name` must carry for `fields`: the vector field of the
// first search index whose prefix `name` has (empty: none, or the field is missing or
// malformed, which that index counts as an indexing failure, as RediSearch does).
std::vector<float> VectorForHash(Context& c, std::string_view name, const HashFields& fields);
// What keeps the search state of the session's org in step with hash `name` written with
// `fields` (empty: removed): an EntryChange's on_applied, run once the write is made (at
// once, or at a transaction's commit), so it holds what it needs by value.
std::function<void()> HashWrittenHook(Context& c, const storage::Digest& digest,
                                      std::string_view name, HashFields fields);

}  // namespace sealcache::server::internal::resp
