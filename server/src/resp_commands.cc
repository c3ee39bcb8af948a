#include "resp_commands.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <optional>
#include <unordered_map>

#include "protocol_generated.h"
#include "resp_internal.h"
#include "sealcache/server/frame.h"

namespace sealcache::server::internal {
namespace resp {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && Lower(a) == Lower(b);
}

std::optional<double> ParseDouble(std::string_view s) {
  if (s.empty() || s.size() > 64 || std::isspace(static_cast<unsigned char>(s[0]))) {
    return std::nullopt;
  }
  const std::string copy(s);
  char* end = nullptr;
  const double v = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || std::isnan(v)) return std::nullopt;
  return v;
}

void ReplyError(RespWriter& out, const Status& status, std::string_view command) {
  switch (status.code()) {
    case Status::Code::kUnauthenticated:
      return out.Error(kNoAuth);
    case Status::Code::kPermissionDenied:
      return out.Error("NOPERM this user has no permissions to run the '" + Lower(command) +
                       "' command");
    case Status::Code::kUnavailable:  // a key server that is down: retry later
      return out.Error("UNAVAILABLE " + status.message());
    case Status::Code::kMoved: {
      // Another node owns the session's org: Redis Cluster's redirect, as `redis-cli -c` and
      // cluster clients follow it (every org is one slot, 0); the message is "NATIVE RESP".
      const std::string& where = status.message();
      const size_t space = where.find(' ');
      return out.Error("MOVED 0 " + (space == std::string::npos ? where : where.substr(space + 1)));
    }
    case Status::Code::kResourceExhausted:
      // A capacity limit refused the write: Redis's words at maxmemory, then which limit.
      if (status.message().find(storage::kCapacityLimitWords) != std::string::npos) {
        return out.Error(std::string(kOom) + " " + status.message());
      }
      return out.Error("ERR " + status.message());
    case Status::Code::kFailedPrecondition:
      if (status.message() == kWrongType) return out.Error(kWrongType);
      [[fallthrough]];
    default:
      return out.Error("ERR " + status.message());
  }
}

void PutU32(std::vector<uint8_t>& out, size_t n) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
}
void PutBytes(std::vector<uint8_t>& out, std::string_view bytes) {
  // As bytes: from char iterators the insert copies one byte at a time.
  const auto* begin = reinterpret_cast<const uint8_t*>(bytes.data());
  out.insert(out.end(), begin, begin + bytes.size());
}

bool TakeU32(std::span<const uint8_t> in, size_t* at, uint32_t* v) {
  if (in.size() - *at < 4) return false;
  *v = uint32_t{in[*at]} | uint32_t{in[*at + 1]} << 8 | uint32_t{in[*at + 2]} << 16 |
       uint32_t{in[*at + 3]} << 24;
  *at += 4;
  return true;
}

bool TakeString(std::span<const uint8_t> in, size_t* at, std::string_view* out) {
  uint32_t n = 0;
  if (!TakeU32(in, at, &n) || in.size() - *at < n) return false;
  *out = std::string_view(reinterpret_cast<const char*>(in.data()) + *at, n);
  *at += n;
  return true;
}

namespace {
constexpr uint8_t kRecordMagic = 'R';
constexpr uint8_t kRecordVersion = 1;
constexpr size_t kRecordHeaderBytes = 3 + 4;

std::vector<uint8_t> RecordHead(RecordType type, std::string_view name, size_t body_bytes) {
  std::vector<uint8_t> r;
  r.reserve(kRecordHeaderBytes + name.size() + body_bytes);
  r.push_back(kRecordMagic);
  r.push_back(kRecordVersion);
  r.push_back(static_cast<uint8_t>(type));
  PutU32(r, name.size());
  PutBytes(r, name);
  return r;
}
}  // namespace

std::vector<uint8_t> StringRecord(std::string_view name, std::string_view value) {
  auto r = RecordHead(RecordType::kString, name, value.size());
  PutBytes(r, value);
  return r;
}

std::vector<uint8_t> HashRecord(std::string_view name, const HashFields& fields) {
  size_t body = 4;
  for (const auto& [f, v] : fields) body += 8 + f.size() + v.size();
  auto r = RecordHead(RecordType::kHash, name, body);
  PutU32(r, fields.size());
  for (const auto& [f, v] : fields) {
    PutU32(r, f.size());
    PutBytes(r, f);
    PutU32(r, v.size());
    PutBytes(r, v);
  }
  return r;
}

std::optional<KeyRecord> ParseRecord(std::span<const uint8_t> p) {
  if (p.size() < kRecordHeaderBytes || p[0] != kRecordMagic || p[1] != kRecordVersion) {
    return std::nullopt;
  }
  KeyRecord r;
  size_t at = 3;
  if (!TakeString(p, &at, &r.name)) return std::nullopt;
  const auto* base = reinterpret_cast<const char*>(p.data());
  switch (p[2]) {
    case static_cast<uint8_t>(RecordType::kString):
      r.type = RecordType::kString;
      r.value = std::string_view(base + at, p.size() - at);
      return r;
    case static_cast<uint8_t>(RecordType::kHash): {
      r.type = RecordType::kHash;
      uint32_t count = 0;
      if (!TakeU32(p, &at, &count)) return std::nullopt;
      // Each field takes at least 8 bytes: a count beyond that is damage, not a huge reserve.
      if (count > (p.size() - at) / 8) return std::nullopt;
      r.fields.reserve(count);
      for (uint32_t i = 0; i < count; ++i) {
        std::string_view f, v;
        if (!TakeString(p, &at, &f) || !TakeString(p, &at, &v)) return std::nullopt;
        r.fields.emplace_back(f, v);
      }
      if (at != p.size()) return std::nullopt;
      return r;
    }
    default:
      return std::nullopt;
  }
}

}  // namespace resp

namespace {

using namespace resp;  // NOLINT: this file is the front's command table

namespace P = protocol;
using FBB = flatbuffers::FlatBufferBuilder;

// What HELLO reports. The front follows Redis 7.2's replies (server/RESP.md).
constexpr char kRedisVersion[] = "7.2.0";
constexpr char kWrongPass[] = "WRONGPASS invalid username-password pair or user is disabled.";
// The user name an admin token is given with (an org token's user name is its org).
constexpr char kAdminUser[] = "admin";
// Longest argument quoted back in "unknown command" (Redis: 128).
constexpr size_t kQuotedArgumentsBytes = 128;
// What a queued argument costs besides its bytes, counted against a transaction's bound.
constexpr size_t kQueuedArgumentOverhead = sizeof(std::string);

// A native request through CacheService::Handle, as a native connection would send it.
class NativeCall {
 public:
  NativeCall(CacheService* service, Session& session) : service_(service), session_(session) {}

  template <typename Build>
  Result<const P::Response*> Run(P::RequestBody type, Build build) {
    FBB fbb(256);
    flatbuffers::Offset<void> body = build(fbb);
    P::RequestBuilder rb(fbb);
    rb.add_id(1);
    rb.add_body_type(type);
    rb.add_body(body);
    fbb.Finish(rb.Finish(), kFileIdentifier);
    response_ = service_->Handle(session_, {fbb.GetBufferPointer(), fbb.GetSize()});
    SC_ASSIGN_OR_RETURN(const P::Response* r, VerifyResponse(response_));
    Status status = FromWire(r->status(), r->message() ? r->message()->string_view() : "");
    if (!status.ok()) return status;
    return r;
  }

 private:
  CacheService* service_;
  Session& session_;
  std::vector<uint8_t> response_;  // what Run's result points into
};

// Binds the session to `token` (user name checked against the token's org); writes the
// error and returns false if it does not authenticate.
// Redis's rule for client names (CLIENT SETNAME, HELLO ... SETNAME): printable, no spaces.
constexpr char kBadClientName[] =
    "ERR Client names cannot contain spaces, newlines or special characters.";
bool ValidClientName(std::string_view name) {
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char ch) { return ch >= '!' && ch <= '~'; });
}

bool Authenticate(Context& c, std::optional<std::string_view> user, std::string_view token) {
  Session attempt;
  NativeCall call(c.service, attempt);
  auto r = call.Run(P::RequestBody::HelloRequest, [&](FBB& fbb) {
    return P::CreateHelloRequest(fbb, fbb.CreateString(token)).Union();
  });
  bool ok = r.ok();
  if (ok && user) {
    const auto* hello = (*r)->body_as_HelloResponse();
    const std::string org = hello->org() ? hello->org()->str() : "";
    ok = hello->admin() ? *user == kAdminUser : *user == org;
  }
  if (!ok) {
    c.out.Error(kWrongPass);
    return false;
  }
  c.s.session = std::move(attempt);
  return true;
}

void Ping(Context& c) {
  if (c.args.size() > 2) return c.out.Error("ERR wrong number of arguments for 'ping' command");
  if (c.args.size() == 2) return c.out.Bulk(c.args[1]);
  c.out.SimpleString("PONG");
}

void Echo(Context& c) { c.out.Bulk(c.args[1]); }

void Auth(Context& c) {
  if (c.args.size() > 3) return c.out.Error("ERR syntax error");
  if (c.args.size() == 3) {
    if (Authenticate(c, c.args[1], c.args[2])) c.out.SimpleString("OK");
  } else if (Authenticate(c, std::nullopt, c.args[1])) {
    c.out.SimpleString("OK");
  }
}

// HELLO [protover [AUTH user token] [SETNAME name]], as redis-server 7.0 runs it: the options
// in order, an AUTH tried and a name checked and set as each is read (so a refusal leaves
// what came before it done), then the protocol set once the session is authenticated.
void Hello(Context& c) {
  int protocol = c.out.protocol();
  size_t i = 1;
  if (c.args.size() > 1) {
    auto v = ParseRedisInteger(c.args[1]);
    if (!v) return c.out.Error("ERR Protocol version is not an integer or out of range");
    if (*v != 2 && *v != 3) return c.out.Error("NOPROTO unsupported protocol version");
    protocol = static_cast<int>(*v);
    i = 2;
  }
  for (; i < c.args.size(); ++i) {
    const size_t left = c.args.size() - i - 1;
    if (EqualsIgnoreCase(c.args[i], "AUTH") && left >= 2) {
      if (!Authenticate(c, c.args[i + 1], c.args[i + 2])) return;
      i += 2;
    } else if (EqualsIgnoreCase(c.args[i], "SETNAME") && left >= 1) {
      if (!ValidClientName(c.args[i + 1])) return c.out.Error(kBadClientName);
      c.s.client_name = c.args[++i];
    } else {
      return c.out.Error("ERR Syntax error in HELLO option '" + c.args[i] + "'");
    }
  }
  if (!c.service->CheckSession(c.s.session).ok()) {
    c.s.session = Session{};
    return c.out.Error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
        "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
        "select the RESP protocol version at the same time");
  }
  c.out.set_protocol(protocol);
  c.out.MapHeader(7);
  c.out.Bulk("server");
  c.out.Bulk("redis");
  c.out.Bulk("version");
  c.out.Bulk(kRedisVersion);
  c.out.Bulk("proto");
  c.out.Integer(protocol);
  c.out.Bulk("id");
  c.out.Integer(static_cast<int64_t>(c.s.client_id));
  c.out.Bulk("mode");
  c.out.Bulk("standalone");
  c.out.Bulk("role");
  c.out.Bulk("master");
  c.out.Bulk("modules");
  c.out.ArrayHeader(1);
  WriteSearchModule(c.out);
}

void Select(Context& c) {
  auto db = ParseRedisInteger(c.args[1]);
  if (!db) return c.out.Error("ERR value is not an integer or out of range");
  if (*db != 0) return c.out.Error("ERR DB index is out of range");
  c.out.SimpleString("OK");
}

// The subcommand and its arity are checked against the table before (Refusal).
void Client(Context& c) {
  const std::string sub = Lower(c.args[1]);
  if (sub == "setname") {
    if (!ValidClientName(c.args[2])) return c.out.Error(kBadClientName);
    c.s.client_name = c.args[2];
    return c.out.SimpleString("OK");
  }
  if (sub == "getname") {
    return c.s.client_name.empty() ? c.out.NullBulk() : c.out.Bulk(c.s.client_name);
  }
  if (sub == "id") return c.out.Integer(static_cast<int64_t>(c.s.client_id));
  c.out.SimpleString("OK");  // setinfo: the library's name and version are not kept
}

void Quit(Context& c) {
  c.s.close_after_reply = true;
  c.out.SimpleString("OK");
}

void Reset(Context& c) {
  c.s.session = Session{};
  c.s.client_name.clear();
  c.out.set_protocol(2);
  c.out.SimpleString("RESET");
}

// ---- server introspection ---------------------------------------------------------------------

// Entries of the session's org (every entry has an expiry), through the native Stats.
Result<uint64_t> OrgEntries(Context& c) {
  NativeCall call(c.service, c.s.session);
  auto r = call.Run(P::RequestBody::StatsRequest,
                    [](FBB& fbb) { return P::CreateStatsRequest(fbb).Union(); });
  if (!r.ok()) return r.status();
  return (*r)->body_as_StatsResponse()->entries();
}

void DbSize(Context& c) {
  auto entries = OrgEntries(c);
  if (!entries.ok()) return ReplyError(c.out, entries.status(), c.args[0]);
  c.out.Integer(static_cast<int64_t>(*entries));
}

// CONFIG GET (the only subcommand served, Refusal checks): as Redis 7 answers it, a name
// without glob characters is answered under the name as it was asked, a pattern under the
// parameters' own names, each parameter once.
void Config(Context& c) {
  // The parameters clients ask a cache about: it keeps nothing in RDB or AOF files.
  static constexpr std::pair<std::string_view, std::string_view> kParameters[] = {
      {"save", ""}, {"appendonly", "no"}};
  std::vector<std::pair<std::string_view, std::string_view>> found;
  auto add = [&](std::string_view name, std::string_view value) {
    for (const auto& f : found) {
      if (EqualsIgnoreCase(f.first, name)) return;
    }
    found.emplace_back(name, value);
  };
  for (size_t i = 2; i < c.args.size(); ++i) {
    const std::string& asked = c.args[i];
    const bool pattern = asked.find_first_of("[*?") != std::string::npos;
    for (const auto& [name, value] : kParameters) {
      // Without case, as Redis matches parameter names (ours are lower case).
      if (!pattern && EqualsIgnoreCase(asked, name)) add(asked, value);
      if (pattern && StringMatch(Lower(asked), name)) add(name, value);
    }
  }
  c.out.MapHeader(found.size());
  for (const auto& [name, value] : found) {
    c.out.Bulk(name);
    c.out.Bulk(value);
  }
}

void ModuleList(Context& c) {  // MODULE LIST, the only subcommand served (Refusal checks)
  c.out.ArrayHeader(1);
  WriteSearchModule(c.out);
}

// The server's resident memory (the whole process: every org's index, caches and
// memtables), from /proc/self/statm; 0 if unreadable.
uint64_t ResidentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long pages = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &pages, &resident);
  std::fclose(f);
  return n == 2 ? static_cast<uint64_t>(resident) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE))
                : 0;
}

// Redis's maxmemory-policy name for an eviction policy (all our keys expire: ttl is
// volatile-ttl, the others apply to every key).
std::string RedisPolicyName(const std::string& policy) {
  if (policy == "lru") return "allkeys-lru";
  if (policy == "lfu") return "allkeys-lfu";
  if (policy == "ttl") return "volatile-ttl";
  return "noeviction";
}

constexpr int64_t kSecondsPerDay = 86'400;

std::string InfoText(Context& c, const std::string& section) {
  const bool all =
      section.empty() || section == "default" || section == "all" || section == "everything";
  const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now() - c.facts->started)
                          .count();
  std::string text;
  auto add = [&](const char* name, std::initializer_list<std::string> lines) {
    if (!all && section != name) return;
    if (!text.empty()) text += "\r\n";
    std::string title = name;
    title[0] = static_cast<char>(std::toupper(title[0]));
    text += "# " + title + "\r\n";
    for (const auto& line : lines) text += line + "\r\n";
  };
  add("server",
      {std::string("redis_version:") + kRedisVersion, "redis_mode:standalone",
       "sealcache_version:" SEALCACHE_VERSION, "os:Linux", "arch_bits:64",
       "process_id:" + std::to_string(getpid()), "tcp_port:" + std::to_string(c.facts->port),
       "uptime_in_seconds:" + std::to_string(uptime),
       "uptime_in_days:" + std::to_string(uptime / kSecondsPerDay)});
  add("clients", {"connected_clients:" + std::to_string(c.facts->connected_clients())});
  const uint64_t rss = ResidentBytes();
  // An org session sees its own org's capacity: Redis's maxmemory fields name its limit and
  // policy; the org's logical bytes and entries follow as sealcache_* fields.
  const P::StatsResponse* org = nullptr;
  NativeCall call(c.service, c.s.session);  // holds the response `org` points into
  if (!c.s.session.org.empty()) {
    auto stats = call.Run(P::RequestBody::StatsRequest,
                          [](FBB& fbb) { return P::CreateStatsRequest(fbb).Union(); });
    if (stats.ok()) org = (*stats)->body_as_StatsResponse();
  }
  const std::string policy =
      org && org->eviction_policy() ? org->eviction_policy()->str() : std::string("noeviction");
  add("memory", {"used_memory:" + std::to_string(rss), "used_memory_rss:" + std::to_string(rss),
                 "maxmemory:" + std::to_string(org ? org->max_bytes() : 0),
                 "maxmemory_policy:" + RedisPolicyName(policy),
                 "sealcache_org_bytes:" + std::to_string(org ? org->bytes() : 0),
                 "sealcache_org_entries:" + std::to_string(org ? org->entries() : 0),
                 "sealcache_org_max_entries:" + std::to_string(org ? org->max_entries() : 0),
                 "sealcache_eviction_policy:" + policy});
  add("persistence", {"loading:0"});
  add("stats",
      {"total_connections_received:" + std::to_string(c.facts->connections_received.load()),
       "total_commands_processed:" + std::to_string(c.facts->commands_processed.load()),
       "evicted_keys:" +
           std::to_string(org ? org->evictions_org_limit() + org->evictions_server_limit() : 0),
       // The org's reads that found their entry and those that did not (exact reads and
       // lookups, as its stats count them): a cache's hit rate, where monitors read it.
       "keyspace_hits:" + std::to_string(org ? org->hits() : 0),
       "keyspace_misses:" + std::to_string(org ? org->misses() : 0)});
  add("replication", {"role:master", "connected_slaves:0"});
  add("cluster", {"cluster_enabled:0"});
  if (all || section == "keyspace") {
    // Only the session's org: other orgs do not exist for it. Every entry expires.
    auto entries = OrgEntries(c);
    const uint64_t n = entries.ok() ? *entries : 0;
    std::vector<std::string> lines;
    if (n > 0) {
      lines.push_back("db0:keys=" + std::to_string(n) + ",expires=" + std::to_string(n) +
                      ",avg_ttl=0");
    }
    if (!text.empty()) text += "\r\n";
    text += "# Keyspace\r\n";
    for (const auto& line : lines) text += line + "\r\n";
  }
  return text;
}

void Info(Context& c) {
  const std::string section = c.args.size() > 1 ? Lower(c.args[1]) : "";
  c.out.Verbatim("txt", InfoText(c, section));
}

// ---- SEALCACHE.* admin commands -------------------------------------------------------------

// [MAXBYTES n] [MAXENTRIES n] [POLICY lru|lfu|ttl|noeviction] from args[from]; false (after
// replying) on a syntax error.
struct RespLimits {
  uint64_t max_bytes = 0, max_entries = 0;
  std::string policy;
};
bool ParseLimits(Context& c, size_t from, RespLimits* out) {
  for (size_t i = from; i < c.args.size(); i += 2) {
    const std::string opt = Lower(c.args[i]);
    if (i + 1 >= c.args.size()) return c.out.Error(std::string(kSyntaxError)), false;
    if (opt == "policy") {
      out->policy = Lower(c.args[i + 1]);
      continue;
    }
    auto n = ParseRedisInteger(c.args[i + 1]);
    if (!n || *n < 0) return c.out.Error(std::string(kNotAnInteger)), false;
    if (opt == "maxbytes") {
      out->max_bytes = static_cast<uint64_t>(*n);
    } else if (opt == "maxentries") {
      out->max_entries = static_cast<uint64_t>(*n);
    } else {
      return c.out.Error(std::string(kSyntaxError)), false;
    }
  }
  return true;
}

void CreateOrg(Context& c) {
  auto dim = ParseRedisInteger(c.args[2]);
  if (!dim || *dim <= 0 || *dim > UINT32_MAX) {
    return c.out.Error("ERR dimension is not an integer or out of range");
  }
  size_t next = 3;
  std::string kind = "hnsw";
  if (c.args.size() > 3 && (Lower(c.args[3]) == "hnsw" || Lower(c.args[3]) == "flat")) {
    kind = Lower(c.args[3]);
    next = 4;
  }
  RespLimits limits;
  if (!ParseLimits(c, next, &limits)) return;
  NativeCall call(c.service, c.s.session);
  auto r = call.Run(P::RequestBody::CreateOrgRequest, [&](FBB& fbb) {
    auto org = fbb.CreateString(c.args[1]);
    auto metric = fbb.CreateString("cosine");
    auto index_kind = fbb.CreateString(kind);
    auto policy = limits.policy.empty() ? 0 : fbb.CreateString(limits.policy);
    return P::CreateCreateOrgRequest(fbb, org, static_cast<uint32_t>(*dim), metric, index_kind, 0,
                                     0, 0, 0, limits.max_bytes, limits.max_entries, policy)
        .Union();
  });
  if (!r.ok()) return ReplyError(c.out, r.status(), c.args[0]);
  const auto* created = (*r)->body_as_CreateOrgResponse();
  c.out.MapHeader(3);
  c.out.Bulk("org");
  c.out.Bulk(created->org()->string_view());
  c.out.Bulk("token");
  c.out.Bulk(created->token()->string_view());
  c.out.Bulk("token_id");
  c.out.Bulk(created->token_id()->string_view());
}

void SetLimits(Context& c) {
  RespLimits limits;
  if (!ParseLimits(c, 2, &limits)) return;
  NativeCall call(c.service, c.s.session);
  auto r = call.Run(P::RequestBody::SetOrgLimitsRequest, [&](FBB& fbb) {
    return P::CreateSetOrgLimitsRequest(fbb, fbb.CreateString(c.args[1]), limits.max_bytes,
                                        limits.max_entries, fbb.CreateString(limits.policy))
        .Union();
  });
  if (!r.ok()) return ReplyError(c.out, r.status(), c.args[0]);
  c.out.Integer(static_cast<int64_t>((*r)->body_as_SetOrgLimitsResponse()->evicted()));
}

void DropOrg(Context& c) {
  NativeCall call(c.service, c.s.session);
  auto r = call.Run(P::RequestBody::DropOrgRequest, [&](FBB& fbb) {
    return P::CreateDropOrgRequest(fbb, fbb.CreateString(c.args[1])).Union();
  });
  if (!r.ok()) return ReplyError(c.out, r.status(), c.args[0]);
  c.out.SimpleString("OK");
}

void RotateKey(Context& c) {
  NativeCall call(c.service, c.s.session);
  auto r = call.Run(P::RequestBody::RotateKeyRequest, [&](FBB& fbb) {
    return P::CreateRotateKeyRequest(fbb, fbb.CreateString(c.args[1])).Union();
  });
  if (!r.ok()) return ReplyError(c.out, r.status(), c.args[0]);
  c.out.Integer((*r)->body_as_RotateKeyResponse()->version());
}

void RotateMasterKey(Context& c) {
  NativeCall call(c.service, c.s.session);
  auto r = call.Run(P::RequestBody::RotateMasterKeyRequest, [&](FBB& fbb) {
    return P::CreateRotateMasterKeyRequest(fbb, fbb.CreateString(c.args[1])).Union();
  });
  if (!r.ok()) return ReplyError(c.out, r.status(), c.args[0]);
  const auto* fp = (*r)->body_as_RotateMasterKeyResponse()->fingerprint();
  c.out.Bulk(fp != nullptr ? fp->str() : std::string());
}

void KeyStatus(Context& c) {
  NativeCall call(c.service, c.s.session);
  auto r = call.Run(P::RequestBody::KeyStatusRequest, [&](FBB& fbb) {
    return P::CreateKeyStatusRequest(fbb, fbb.CreateString(c.args[1])).Union();
  });
  if (!r.ok()) return ReplyError(c.out, r.status(), c.args[0]);
  const auto* versions = (*r)->body_as_KeyStatusResponse()->versions();
  c.out.ArrayHeader(versions ? versions->size() : 0);
  if (!versions) return;
  for (const P::KeyVersion* v : *versions) {
    c.out.MapHeader(8);
    c.out.Bulk("version");
    c.out.Integer(v->version());
    c.out.Bulk("state");
    c.out.Bulk(v->state() ? v->state()->string_view() : "");
    c.out.Bulk("created_ms");
    c.out.Integer(v->created_ms());
    c.out.Bulk("rotated_ms");
    c.out.Integer(v->rotated_ms());
    c.out.Bulk("destroyed_ms");
    c.out.Integer(v->destroyed_ms());
    c.out.Bulk("live_files");
    c.out.Integer(static_cast<int64_t>(v->live_files()));
    c.out.Bulk("live_bytes");
    c.out.Integer(static_cast<int64_t>(v->live_bytes()));
    c.out.Bulk("max_expiry_ms");
    c.out.Integer(v->max_expiry_ms());
  }
}

void ListOrgs(Context& c) {
  NativeCall call(c.service, c.s.session);
  auto r = call.Run(P::RequestBody::ListOrgsRequest,
                    [&](FBB& fbb) { return P::CreateListOrgsRequest(fbb).Union(); });
  if (!r.ok()) return ReplyError(c.out, r.status(), c.args[0]);
  const auto* orgs = (*r)->body_as_ListOrgsResponse()->orgs();
  c.out.ArrayHeader(orgs ? orgs->size() : 0);
  if (!orgs) return;
  for (const P::OrgSummary* o : *orgs) {
    c.out.MapHeader(10);
    c.out.Bulk("org");
    c.out.Bulk(o->org() ? o->org()->string_view() : "");
    c.out.Bulk("entries");
    c.out.Integer(static_cast<int64_t>(o->entries()));
    c.out.Bulk("bytes");
    c.out.Integer(static_cast<int64_t>(o->bytes()));
    c.out.Bulk("max_bytes");
    c.out.Integer(static_cast<int64_t>(o->max_bytes()));
    c.out.Bulk("max_entries");
    c.out.Integer(static_cast<int64_t>(o->max_entries()));
    c.out.Bulk("eviction_policy");
    c.out.Bulk(o->eviction_policy() ? o->eviction_policy()->string_view() : "");
    c.out.Bulk("dimension");
    c.out.Integer(o->dimension());
    c.out.Bulk("metric");
    c.out.Bulk(o->metric() ? o->metric()->string_view() : "");
    c.out.Bulk("index_kind");
    c.out.Bulk(o->index_kind() ? o->index_kind()->string_view() : "");
    c.out.Bulk("created_ms");
    c.out.Integer(o->created_ms());
  }
}

void IssueToken(Context& c) {
  NativeCall call(c.service, c.s.session);
  auto r = call.Run(P::RequestBody::IssueTokenRequest, [&](FBB& fbb) {
    return P::CreateIssueTokenRequest(fbb, fbb.CreateString(c.args[1])).Union();
  });
  if (!r.ok()) return ReplyError(c.out, r.status(), c.args[0]);
  const auto* issued = (*r)->body_as_IssueTokenResponse();
  c.out.MapHeader(2);
  c.out.Bulk("token");
  c.out.Bulk(issued->token()->string_view());
  c.out.Bulk("token_id");
  c.out.Bulk(issued->token_id()->string_view());
}

void RevokeToken(Context& c) {
  NativeCall call(c.service, c.s.session);
  auto r = call.Run(P::RequestBody::RevokeTokenRequest, [&](FBB& fbb) {
    auto org = fbb.CreateString(c.args[1]);
    auto id = c.args.size() > 2 ? fbb.CreateString(c.args[2]) : 0;
    return P::CreateRevokeTokenRequest(fbb, org, id).Union();
  });
  if (!r.ok()) return ReplyError(c.out, r.status(), c.args[0]);
  c.out.Integer(static_cast<int64_t>((*r)->body_as_RevokeTokenResponse()->revoked()));
}

// ---- exact cache: strings ---------------------------------------------------------------------

// The value if `payload` is the string record of `name`.
std::optional<std::string_view> StringValue(std::span<const uint8_t> payload,
                                            std::string_view name) {
  auto r = ParseRecord(payload);
  if (!r || r->type != RecordType::kString || r->name != name) return std::nullopt;
  return r->value;
}

flatbuffers::Offset<flatbuffers::Vector<uint8_t>> DigestVector(FBB& fbb, const storage::Digest& d) {
  return fbb.CreateVector(d.data(), d.size());
}

// The live entry of `name` (NotFound if none), through the native GetEntry.
Result<const P::GetEntryResponse*> ReadEntry(Context& c, NativeCall& call, std::string_view name,
                                             bool with_payload) {
  SC_ASSIGN_OR_RETURN(storage::Digest digest, KeyDigest(c, name));
  auto r = call.Run(P::RequestBody::GetEntryRequest, [&](FBB& fbb) {
    return P::CreateGetEntryRequest(fbb, DigestVector(fbb, digest), with_payload).Union();
  });
  if (!r.ok()) return r.status();
  return (*r)->body_as_GetEntryResponse();
}

struct SetOptions {
  P::PutCondition condition = P::PutCondition::Always;
  bool keep_ttl = false;
  bool get = false;
  std::optional<int64_t> ttl_ms;  // from EX, PX, EXAT or PXAT (may be <= 0: already expired)
};

// Writes `value` under `name` with `o`'s condition, expiry and KEEPTTL (not its GET: SET ...
// GET is SetUnderLock's); the reply is the caller's.
Status WriteString(Context& c, std::string_view name, std::string_view value, const SetOptions& o) {
  const int64_t ttl_ms = o.ttl_ms.value_or(c.facts->default_ttl_ms);
  const auto record = StringRecord(name, value);
  SC_ASSIGN_OR_RETURN(storage::Digest key, KeyDigest(c, name));
  NativeCall call(c.service, c.s.session);
  auto r = call.Run(P::RequestBody::PutRequest, [&](FBB& fbb) {
    auto digest = DigestVector(fbb, key);
    auto payload = fbb.CreateVector(record);
    P::PutRequestBuilder b(fbb);
    b.add_digest(digest);
    b.add_payload(payload);
    b.add_ttl_ms(ttl_ms);
    b.add_condition(o.condition);
    b.add_keep_expiry(o.keep_ttl);
    return b.Finish().Union();
  });
  return r.status();
}

// Deletes `name`'s entry; true if there was one.
// (Under the key's lock, so the search state forgets a deleted hash in the order of the
// writes: a hash written again right after is not forgotten.)
Result<bool> DeleteKey(Context& c, std::string_view name) {
  SC_ASSIGN_OR_RETURN(storage::Digest digest, KeyDigest(c, name));
  bool existed = false;
  SC_RETURN_IF_ERROR(
      c.service->Update(c.s.session, digest, [&](const LiveEntry* current) -> Result<EntryChange> {
        EntryChange change;
        existed = current != nullptr;
        if (existed) {
          change.kind = EntryChange::Kind::kDelete;
          change.on_applied = HashWrittenHook(c, digest, name, {});
        }
        return change;
      }));
  return existed;
}

// GET's reply to the read `v` of the key `name`.
void ReplyGet(RespWriter& out, const Result<storage::ValueView>& v, std::string_view name,
              std::string_view command) {
  // (The value is written into the reply from the record read, without a copy in between.)
  if (v.status().IsNotFound()) return out.NullBulk();
  if (!v.ok()) return ReplyError(out, v.status(), command);
  auto value = StringValue(v->payload, name);
  if (!value) return ReplyError(out, Status::FailedPrecondition(kWrongType), command);
  out.Bulk(*value);
}

void Get(Context& c) {
  auto digest = KeyDigest(c, c.args[1]);
  if (!digest.ok()) return ReplyError(c.out, digest.status(), c.args[0]);
  const auto v = c.service->Read(c.s.session, *digest);
  ReplyGet(c.out, storage::ViewOfValue(v), c.args[1], c.args[0]);
}

// SET's expiry options.
enum class ExpiryOption { kNone, kEx, kPx, kExAt, kPxAt };

ExpiryOption ExpiryOptionOf(std::string_view lower) {
  if (lower == "ex") return ExpiryOption::kEx;
  if (lower == "px") return ExpiryOption::kPx;
  if (lower == "exat") return ExpiryOption::kExAt;
  if (lower == "pxat") return ExpiryOption::kPxAt;
  return ExpiryOption::kNone;
}

// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL], its options read as Redis 7
// reads them (parseExtendedStringArgumentsOrReply): every word is checked before any value,
// so a word out of place is a syntax error whatever comes before it; NX, XX and one kind of
// expiry may be repeated, the last expiry counting; then the expiry's value is read.
// Returns false after answering the error.
bool ParseSetOptions(Context& c, SetOptions* o) {
  ExpiryOption expiry = ExpiryOption::kNone;
  std::string_view expiry_value;
  for (size_t i = 3; i < c.args.size(); ++i) {
    const std::string opt = Lower(c.args[i]);
    const bool has_value = i + 1 < c.args.size();
    const ExpiryOption kind = ExpiryOptionOf(opt);
    if (opt == "nx" && o->condition != P::PutCondition::IfPresent) {
      o->condition = P::PutCondition::IfAbsent;
    } else if (opt == "xx" && o->condition != P::PutCondition::IfAbsent) {
      o->condition = P::PutCondition::IfPresent;
    } else if (opt == "get") {
      o->get = true;
    } else if (opt == "keepttl" && expiry == ExpiryOption::kNone) {
      o->keep_ttl = true;
    } else if (kind != ExpiryOption::kNone && !o->keep_ttl &&
               (expiry == ExpiryOption::kNone || expiry == kind) && has_value) {
      expiry = kind;
      expiry_value = c.args[++i];
    } else {
      c.out.Error(kSyntaxError);
      return false;
    }
  }
  if (expiry == ExpiryOption::kNone) return true;
  const auto v = ParseRedisInteger(expiry_value);
  if (!v) {
    c.out.Error(kNotAnInteger);
    return false;
  }
  const bool seconds = expiry == ExpiryOption::kEx || expiry == ExpiryOption::kExAt;
  const bool absolute = expiry == ExpiryOption::kExAt || expiry == ExpiryOption::kPxAt;
  const int64_t now = WallMs();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  // Redis's bounds: positive, and a time that fits in 64 bits of milliseconds since 1970.
  if (*v <= 0 || (seconds && *v > kMax / kMsPerSecond) ||
      (!absolute && (seconds ? *v * kMsPerSecond : *v) > kMax - now)) {
    c.out.Error("ERR invalid expire time in 'set' command");
    return false;
  }
  const int64_t ms = seconds ? *v * kMsPerSecond : *v;
  o->ttl_ms = absolute ? ms - now : ms;
  return true;
}

// SET ... GET, and SET with an absolute time already past (the key is set and at once
// removed, as in Redis): read and written under the key's lock, so that GET of a key holding
// a hash answers WRONGTYPE and writes nothing, and NX/XX are decided on the same entry.
void SetUnderLock(Context& c, const SetOptions& o) {
  const std::string_view name = c.args[1];
  auto digest = KeyDigest(c, name);
  if (!digest.ok()) return ReplyError(c.out, digest.status(), c.args[0]);
  const bool expired = o.ttl_ms && *o.ttl_ms <= 0;
  std::optional<std::string> previous;
  bool condition_met = true;
  Status st =
      c.service->Update(c.s.session, *digest, [&](const LiveEntry* current) -> Result<EntryChange> {
        previous.reset();
        if (o.get && current != nullptr) {
          auto value = StringValue(current->payload, name);
          if (!value) return WrongType();
          previous = std::string(*value);
        }
        condition_met = o.condition == P::PutCondition::Always ||
                        (o.condition == P::PutCondition::IfAbsent) == (current == nullptr);
        EntryChange change;
        if (!condition_met || (expired && current == nullptr)) return change;  // nothing
        // A hash this replaces leaves the search state with its entry.
        if (current != nullptr) change.on_applied = HashWrittenHook(c, *digest, name, {});
        if (expired) {
          change.kind = EntryChange::Kind::kDelete;
          return change;
        }
        change.kind = EntryChange::Kind::kPut;
        change.payload = StringRecord(name, c.args[2]);
        change.ttl_ms = o.ttl_ms.value_or(c.facts->default_ttl_ms);
        change.keep_expiry = o.keep_ttl && current != nullptr;
        return change;
      });
  if (!st.ok()) return ReplyError(c.out, st, c.args[0]);
  if (o.get) return previous ? c.out.Bulk(*previous) : c.out.NullBulk();
  if (!condition_met) return c.out.NullBulk();
  c.out.SimpleString("OK");
}

void Set(Context& c) {
  SetOptions o;
  if (!ParseSetOptions(c, &o)) return;
  if (o.get || (o.ttl_ms && *o.ttl_ms <= 0)) return SetUnderLock(c, o);
  // The common SET: one native Put, its condition (NX, XX) and KEEPTTL decided by the store.
  const Status put = WriteString(c, c.args[1], c.args[2], o);
  if (put.ok()) return c.out.SimpleString("OK");
  const bool not_met =
      (o.condition == P::PutCondition::IfAbsent && put.code() == Status::Code::kAlreadyExists) ||
      (o.condition == P::PutCondition::IfPresent && put.IsNotFound());
  if (not_met) return c.out.NullBulk();
  ReplyError(c.out, put, c.args[0]);
}

// SETEX key seconds value, PSETEX key milliseconds value.
void SetWithExpiry(Context& c, int64_t unit_ms) {
  auto v = ParseRedisInteger(c.args[2]);
  if (!v) return c.out.Error(kNotAnInteger);
  // Redis's bounds: positive, and now + the TTL fits in 64 bits of milliseconds.
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (*v <= 0 || *v > kMax / unit_ms || *v * unit_ms > kMax - WallMs()) {
    return c.out.Error("ERR invalid expire time in '" + Lower(c.args[0]) + "' command");
  }
  SetOptions o;
  o.ttl_ms = *v * unit_ms;
  const Status put = WriteString(c, c.args[1], c.args[3], o);
  if (!put.ok()) return ReplyError(c.out, put, c.args[0]);
  c.out.SimpleString("OK");
}
void SetEx(Context& c) { SetWithExpiry(c, kMsPerSecond); }
void PSetEx(Context& c) { SetWithExpiry(c, 1); }

// MGET: every key read from one view of the store, as Redis answers it at one moment (an
// EXEC's writes are seen all or none).
void MGet(Context& c) {
  std::vector<storage::Digest> digests;
  for (size_t i = 1; i < c.args.size(); ++i) {
    auto digest = KeyDigest(c, c.args[i]);
    if (!digest.ok()) return ReplyError(c.out, digest.status(), c.args[0]);
    digests.push_back(*digest);
  }
  auto values = c.service->ReadMany(c.s.session, digests);
  if (!values.ok()) return ReplyError(c.out, values.status(), c.args[0]);  // e.g. revoked
  for (const auto& v : *values) {
    if (!v.ok() && !v.status().IsNotFound()) return ReplyError(c.out, v.status(), c.args[0]);
  }
  c.out.ArrayHeader(values->size());
  for (size_t i = 0; i < values->size(); ++i) {
    const auto& v = (*values)[i];
    // Missing, or not a string: nil, as Redis's MGET.
    auto value = v.ok() ? StringValue(v->payload, c.args[i + 1]) : std::nullopt;
    value ? c.out.Bulk(*value) : c.out.NullBulk();
  }
}

// DEL and UNLINK: how many of the keys existed.
void Del(Context& c) {
  int64_t removed = 0;
  for (size_t i = 1; i < c.args.size(); ++i) {
    auto gone = DeleteKey(c, c.args[i]);
    if (!gone.ok()) return ReplyError(c.out, gone.status(), c.args[0]);
    removed += *gone ? 1 : 0;
  }
  c.out.Integer(removed);
}

// How many of the keys exist (a key named twice counts twice, as in Redis).
void Exists(Context& c) {
  int64_t found = 0;
  for (size_t i = 1; i < c.args.size(); ++i) {
    NativeCall call(c.service, c.s.session);
    auto e = ReadEntry(c, call, c.args[i], false);
    if (e.status().IsNotFound()) continue;
    if (!e.ok()) return ReplyError(c.out, e.status(), c.args[0]);
    ++found;
  }
  c.out.Integer(found);
}

// TTL and PTTL: -2 for a missing key; never -1, since every entry expires.
void TimeToLive(Context& c, bool in_ms) {
  NativeCall call(c.service, c.s.session);
  auto e = ReadEntry(c, call, c.args[1], false);
  if (e.status().IsNotFound()) return c.out.Integer(-2);
  if (!e.ok()) return ReplyError(c.out, e.status(), c.args[0]);
  const int64_t left = std::max<int64_t>(0, (*e)->meta()->expires_ms() - WallMs());
  c.out.Integer(in_ms ? left : (left + kMsPerSecond / 2) / kMsPerSecond);
}
void Ttl(Context& c) { TimeToLive(c, false); }
void PTtl(Context& c) { TimeToLive(c, true); }

// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT key time [NX|XX|GT|LT]: 1 if the expiry was set (or
// the key removed by a time already past), 0 if the key is missing or the condition fails.
// As Redis, the options are checked before the time, and a time whose milliseconds since 1970
// do not fit in 64 bits is an invalid expire time.
void SetKeyExpiry(Context& c, int64_t unit_ms, bool absolute) {
  bool nx = false, xx = false, gt = false, lt = false;
  for (size_t i = 3; i < c.args.size(); ++i) {
    const std::string opt = Lower(c.args[i]);
    if (opt == "nx") {
      nx = true;
    } else if (opt == "xx") {
      xx = true;
    } else if (opt == "gt") {
      gt = true;
    } else if (opt == "lt") {
      lt = true;
    } else {
      return c.out.Error("ERR Unsupported option " + c.args[i]);
    }
  }
  if (nx && (xx || gt || lt)) {
    return c.out.Error("ERR NX and XX, GT or LT options at the same time are not compatible");
  }
  if (gt && lt) return c.out.Error("ERR GT and LT options at the same time are not compatible");
  auto v = ParseRedisInteger(c.args[2]);
  if (!v) return c.out.Error(kNotAnInteger);
  const int64_t now = WallMs();
  const int64_t base = absolute ? 0 : now;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (*v > kMax / unit_ms || *v < std::numeric_limits<int64_t>::min() / unit_ms ||
      *v * unit_ms > kMax - base) {
    return c.out.Error("ERR invalid expire time in '" + Lower(c.args[0]) + "' command");
  }
  const int64_t at = base + *v * unit_ms;
  // Every entry has an expiry: NX never applies (to a missing key neither), XX always does.
  if (nx) return c.out.Integer(0);
  // A time a write may set, without GT or LT (the TTL refresh of a cache hit): the expiry
  // change itself finds whether the key is there. Else the entry is read first.
  if (gt || lt || at <= now || at - now > c.facts->max_ttl_ms) {
    NativeCall read(c.service, c.s.session);
    auto e = ReadEntry(c, read, c.args[1], false);
    if (e.status().IsNotFound()) return c.out.Integer(0);
    if (!e.ok()) return ReplyError(c.out, e.status(), c.args[0]);
    const int64_t current = (*e)->meta()->expires_ms();
    if ((gt && at <= current) || (lt && at >= current)) return c.out.Integer(0);
    if (at <= now) {
      auto gone = DeleteKey(c, c.args[1]);
      if (!gone.ok()) return ReplyError(c.out, gone.status(), c.args[0]);
      return c.out.Integer(*gone ? 1 : 0);
    }
  }
  auto digest = KeyDigest(c, c.args[1]);
  if (!digest.ok()) return ReplyError(c.out, digest.status(), c.args[0]);
  NativeCall call(c.service, c.s.session);
  auto r = call.Run(P::RequestBody::SetExpiryRequest, [&](FBB& fbb) {
    return P::CreateSetExpiryRequest(fbb, DigestVector(fbb, *digest), at, 0).Union();
  });
  if (r.status().IsNotFound()) return c.out.Integer(0);
  if (!r.ok()) return ReplyError(c.out, r.status(), c.args[0]);
  c.out.Integer(1);
}
void Expire(Context& c) { SetKeyExpiry(c, kMsPerSecond, false); }
void PExpire(Context& c) { SetKeyExpiry(c, 1, false); }
void ExpireAt(Context& c) { SetKeyExpiry(c, kMsPerSecond, true); }
void PExpireAt(Context& c) { SetKeyExpiry(c, 1, true); }

void Persist(Context& c) {
  c.out.Error("ERR PERSIST is not supported: every sealcache entry expires (see server/RESP.md)");
}

// STRLEN key: the value's length, 0 for a missing key (redis-cli --bigkeys sizes strings
// with it).
void StrLen(Context& c) {
  auto digest = KeyDigest(c, c.args[1]);
  if (!digest.ok()) return ReplyError(c.out, digest.status(), c.args[0]);
  const auto v = c.service->Read(c.s.session, *digest);
  if (v.status().IsNotFound()) return c.out.Integer(0);
  if (!v.ok()) return ReplyError(c.out, v.status(), c.args[0]);
  auto value = StringValue(v->payload, c.args[1]);
  if (!value) return ReplyError(c.out, WrongType(), c.args[0]);
  c.out.Integer(static_cast<int64_t>(value->size()));
}

void Type(Context& c) {
  auto digest = KeyDigest(c, c.args[1]);
  if (!digest.ok()) return ReplyError(c.out, digest.status(), c.args[0]);
  auto value = c.service->Read(c.s.session, *digest);
  if (value.status().IsNotFound()) return c.out.SimpleString("none");
  if (!value.ok()) return ReplyError(c.out, value.status(), c.args[0]);
  auto record = ParseRecord(value->payload);
  if (!record || record->name != c.args[1]) return c.out.SimpleString("none");
  c.out.SimpleString(record->type == RecordType::kHash ? "hash" : "string");
}

// ---- the table ------------------------------------------------------------------------------

using Subcommands = std::vector<std::pair<std::string_view, int>>;

struct CommandSpec {
  // Redis's arity: N means exactly N words with the name, -N at least N.
  int arity;
  bool needs_auth;
  bool admin_only;  // SEALCACHE.* admin commands (the service checks too)
  void (*handler)(Context&);
  // What COMMAND reports as the command's flags.
  std::vector<std::string_view> flags;
  // Positions of its keys, as COMMAND reports them (0: it takes none; last -1: to the end).
  int first_key = 0, last_key = 0, key_step = 0;
  // A container command's subcommands served here, each with its arity (as Redis's
  // "config|get"); empty for other commands.
  Subcommands subcommands = {};
};

void Command(Context& c);

// MULTI, EXEC and DISCARD are answered by RespCommands::Execute before the table is
// consulted; they are in it for COMMAND's listing only.
void AnsweredByExecute(Context& c) { c.out.Error("ERR " + c.args[0] + " is not allowed here"); }

const std::unordered_map<std::string, CommandSpec>& Table() {
  // The containers' subcommands served, with Redis's arities (never destroyed, as the table).
  static const auto* kClient =
      new Subcommands{{"setname", 3}, {"getname", 2}, {"id", 2}, {"setinfo", 4}};
  static const auto* kCommand = new Subcommands{{"count", 2}, {"docs", -2}, {"info", -2}};
  static const auto* kConfig = new Subcommands{{"get", -3}};
  static const auto* kModule = new Subcommands{{"list", 2}};
  static const auto* table = new std::unordered_map<std::string, CommandSpec>{
      {"ping", {-1, true, false, Ping, {"fast"}}},
      {"echo", {2, true, false, Echo, {"fast"}}},
      {"auth", {-2, false, false, Auth, {"noscript", "loading", "stale", "fast", "no_auth"}}},
      {"hello", {-1, false, false, Hello, {"noscript", "loading", "stale", "fast", "no_auth"}}},
      {"select", {2, true, false, Select, {"loading", "stale", "fast"}}},
      {"client", {-2, true, false, Client, {"loading", "stale"}, 0, 0, 0, *kClient}},
      {"quit", {-1, false, false, Quit, {"noscript", "loading", "stale", "fast", "no_auth"}}},
      {"reset", {1, false, false, Reset, {"noscript", "loading", "stale", "fast", "no_auth"}}},
      {"command", {-1, true, false, Command, {"loading", "stale"}, 0, 0, 0, *kCommand}},
      {"config",
       {-2, true, false, Config, {"admin", "noscript", "loading", "stale"}, 0, 0, 0, *kConfig}},
      {"dbsize", {1, true, false, DbSize, {"readonly", "fast"}}},
      {"info", {-1, true, false, Info, {"loading", "stale"}}},
      {"module", {-2, true, false, ModuleList, {"admin", "noscript"}, 0, 0, 0, *kModule}},
      {"get", {2, true, false, Get, {"readonly", "fast"}, 1, 1, 1}},
      {"set", {-3, true, false, Set, {"write", "denyoom"}, 1, 1, 1}},
      {"setex", {4, true, false, SetEx, {"write", "denyoom"}, 1, 1, 1}},
      {"psetex", {4, true, false, PSetEx, {"write", "denyoom"}, 1, 1, 1}},
      {"mget", {-2, true, false, MGet, {"readonly", "fast"}, 1, -1, 1}},
      {"del", {-2, true, false, Del, {"write"}, 1, -1, 1}},
      {"unlink", {-2, true, false, Del, {"write", "fast"}, 1, -1, 1}},
      {"exists", {-2, true, false, Exists, {"readonly", "fast"}, 1, -1, 1}},
      {"ttl", {2, true, false, Ttl, {"readonly", "fast"}, 1, 1, 1}},
      {"pttl", {2, true, false, PTtl, {"readonly", "fast"}, 1, 1, 1}},
      {"expire", {-3, true, false, Expire, {"write", "fast"}, 1, 1, 1}},
      {"pexpire", {-3, true, false, PExpire, {"write", "fast"}, 1, 1, 1}},
      {"expireat", {-3, true, false, ExpireAt, {"write", "fast"}, 1, 1, 1}},
      {"pexpireat", {-3, true, false, PExpireAt, {"write", "fast"}, 1, 1, 1}},
      {"persist", {2, true, false, Persist, {"write", "fast"}, 1, 1, 1}},
      {"type", {2, true, false, Type, {"readonly", "fast"}, 1, 1, 1}},
      {"strlen", {2, true, false, StrLen, {"readonly", "fast"}, 1, 1, 1}},
      {"multi", {1, true, false, AnsweredByExecute, {"noscript", "loading", "stale", "fast"}}},
      {"exec", {1, true, false, AnsweredByExecute, {"noscript", "loading", "stale"}}},
      {"discard", {1, true, false, AnsweredByExecute, {"noscript", "loading", "stale", "fast"}}},
      {"hset", {-4, true, false, HSet, {"write", "denyoom", "fast"}, 1, 1, 1}},
      {"hmset", {-4, true, false, HMSet, {"write", "denyoom", "fast"}, 1, 1, 1}},
      {"hget", {3, true, false, HGet, {"readonly", "fast"}, 1, 1, 1}},
      {"hmget", {-3, true, false, HMGet, {"readonly", "fast"}, 1, 1, 1}},
      {"hgetall", {2, true, false, HGetAll, {"readonly"}, 1, 1, 1}},
      {"hdel", {-3, true, false, HDel, {"write", "fast"}, 1, 1, 1}},
      {"hexists", {3, true, false, HExists, {"readonly", "fast"}, 1, 1, 1}},
      {"hlen", {2, true, false, HLen, {"readonly", "fast"}, 1, 1, 1}},
      {"scan", {-2, true, false, Scan, {"readonly"}}},
      {"keys", {2, true, false, Keys, {"readonly"}}},
      {"flushdb", {-1, true, false, FlushDb, {"write"}}},
      {"ft._list", {1, true, false, FtList, {"readonly"}}},
      {"ft.create", {-2, true, false, FtCreate, {"write", "denyoom"}}},
      {"ft.info", {2, true, false, FtInfo, {"readonly"}}},
      {"ft.search", {-3, true, false, FtSearch, {"readonly"}}},
      {"ft.dropindex", {-2, true, false, FtDropIndex, {"write"}}},
      {"sealcache.createorg", {-3, true, true, CreateOrg, {"admin"}}},
      {"sealcache.droporg", {2, true, true, DropOrg, {"admin"}}},
      {"sealcache.rotatekey", {2, true, true, RotateKey, {"admin"}}},
      {"sealcache.rotatemasterkey", {2, true, true, RotateMasterKey, {"admin"}}},
      {"sealcache.setlimits", {-2, true, true, SetLimits, {"admin"}}},
      {"sealcache.keystatus", {2, true, true, KeyStatus, {"admin"}}},
      {"sealcache.listorgs", {1, true, true, ListOrgs, {"admin"}}},
      {"sealcache.issuetoken", {2, true, true, IssueToken, {"admin"}}},
      {"sealcache.revoketoken", {-2, true, true, RevokeToken, {"admin"}}},
  };
  return *table;
}

// One command as Redis 7's COMMAND describes it: name, arity, flags, first key, last key,
// step, ACL categories, tips, key specifications, subcommands.
void DescribeCommand(RespWriter& out, const std::string& name, const CommandSpec& spec) {
  out.ArrayHeader(10);
  out.Bulk(name);
  out.Integer(spec.arity);
  out.SetHeader(spec.flags.size());
  for (std::string_view flag : spec.flags) out.SimpleString(flag);
  out.Integer(spec.first_key);
  out.Integer(spec.last_key);
  out.Integer(spec.key_step);
  out.SetHeader(0);
  out.ArrayHeader(0);
  out.ArrayHeader(0);
  out.ArrayHeader(0);
}

void Command(Context& c) {
  const auto& table = Table();
  const std::string sub = c.args.size() > 1 ? Lower(c.args[1]) : "";
  if (sub.empty() || (sub == "info" && c.args.size() == 2)) {  // every command
    c.out.ArrayHeader(table.size());
    for (const auto& [name, spec] : table) DescribeCommand(c.out, name, spec);
  } else if (sub == "count") {
    c.out.Integer(static_cast<int64_t>(table.size()));
  } else if (sub == "docs") {
    c.out.MapHeader(0);  // no docs: Redis allows an empty reply
  } else {               // info (Refusal checks the subcommands)
    c.out.ArrayHeader(c.args.size() - 2);
    for (size_t i = 2; i < c.args.size(); ++i) {
      auto it = table.find(Lower(c.args[i]));
      if (it == table.end()) {
        c.out.NullBulk();  // Redis's addReplyNull: $-1 in RESP2
      } else {
        DescribeCommand(c.out, it->first, it->second);
      }
    }
  }
}

// What may be queued between MULTI and EXEC: commands whose writes are entry writes (one
// atomic write at EXEC). Not: a new authentication (it would change the org under the
// transaction), writes of many entries at once or of index definitions, admin commands.
bool AllowedInTransaction(const std::string& name, const CommandSpec& spec) {
  return !spec.admin_only && name != "auth" && name != "hello" && name != "flushdb" &&
         name != "ft.create" && name != "ft.dropindex";
}

std::string UnknownCommand(const RespCommand& args) {
  std::string quoted;
  for (size_t i = 1; i < args.size() && quoted.size() < kQuotedArgumentsBytes; ++i) {
    quoted += "'" + args[i].substr(0, kQuotedArgumentsBytes - quoted.size()) + "' ";
  }
  return "ERR unknown command '" + args[0].substr(0, kQuotedArgumentsBytes) +
         "', with args beginning with: " + quoted;
}

bool ArityAllows(int arity, size_t words) {
  const int n = static_cast<int>(words);
  return arity > 0 ? n == arity : n >= -arity;
}

// Why Redis would refuse `args` before running it, in its words: an unknown command or
// subcommand, or a wrong number of arguments (a subcommand's own, as 'config|get'). Empty if
// it would not, and then `*spec` is the command's.
std::string Refusal(const RespCommand& args, const CommandSpec** spec) {
  const std::string name = Lower(args[0]);
  const auto it = Table().find(name);
  if (it == Table().end()) return UnknownCommand(args);
  const auto& subcommands = it->second.subcommands;
  if (!subcommands.empty() && args.size() > 1) {
    const std::string sub = Lower(args[1]);
    const auto s = std::find_if(subcommands.begin(), subcommands.end(),
                                [&](const auto& known) { return known.first == sub; });
    if (s == subcommands.end()) {
      return "ERR unknown subcommand '" + args[1].substr(0, kQuotedArgumentsBytes) + "'. Try " +
             Upper(name) + " HELP.";
    }
    if (!ArityAllows(s->second, args.size())) {
      return "ERR wrong number of arguments for '" + name + "|" + sub + "' command";
    }
  } else if (!ArityAllows(it->second.arity, args.size())) {
    return "ERR wrong number of arguments for '" + name + "' command";
  }
  *spec = &it->second;
  return {};
}

}  // namespace

// MULTI, EXEC and DISCARD, as Redis answers them: between MULTI and EXEC every command is
// checked (name, subcommand, arity, authentication, permission) and queued; EXEC runs the
// queue in order and answers an array of the replies; a command refused while queuing, or a
// MULTI or DISCARD with arguments, makes EXEC answer EXECABORT, and an EXEC with arguments
// discards the transaction at once.
void RespCommands::Execute(RespSession& s, const RespCommand& args, RespWriter& out) {
  const std::string name = Lower(args[0]);
  const bool transaction_command = name == "multi" || name == "exec" || name == "discard";
  auto discard = [&s] {
    s.in_multi = s.multi_refused = false;
    s.queued.clear();
    s.queued_bytes = 0;
  };
  auto refuse_queued = [&s] {
    s.multi_refused = true;
    s.queued.clear();  // EXEC answers EXECABORT: nothing of it needs keeping
    s.queued_bytes = 0;
  };
  // Redis refuses a transaction command before running it as any other (arity, then
  // authentication), and a refused EXEC discards the transaction, its error wrapped.
  std::string refusal;
  if (transaction_command && args.size() != 1) {
    refusal = "ERR wrong number of arguments for '" + name + "' command";
  } else if (transaction_command && !service_->CheckSession(s.session).ok()) {
    refusal = kNoAuth;
  }
  if (!refusal.empty()) {
    if (name == "exec") {
      discard();
      // The reason without its code when that is ERR (NOAUTH keeps its own).
      constexpr std::string_view kErr = "ERR ";
      return out.Error("EXECABORT Transaction discarded because of: " +
                       (refusal.starts_with(kErr) ? refusal.substr(kErr.size()) : refusal));
    }
    if (s.in_multi) refuse_queued();
    return out.Error(refusal);
  }
  if (name == "multi") {
    if (s.in_multi) return out.Error("ERR MULTI calls can not be nested");
    s.in_multi = true;
    s.multi_refused = false;
    s.queued.clear();
    s.queued_bytes = 0;
    return out.SimpleString("OK");
  }
  if (name == "exec" || name == "discard") {
    if (!s.in_multi) return out.Error("ERR " + Upper(name) + " without MULTI");
    std::vector<RespCommand> queued = std::move(s.queued);
    const bool refused = s.multi_refused;
    discard();
    if (name == "discard") return out.SimpleString("OK");
    if (refused) return out.Error("EXECABORT Transaction discarded because of previous errors.");
    auto run_queue = [&] {
      out.ArrayHeader(queued.size());
      for (size_t i = 0; i < queued.size(); ++i) {
        // An HSET and the EXPIRE of its key after it (LangChain's RedisCache queues them so)
        // as one write here too.
        if (i + 1 < queued.size() && RunWithExpiry(s, queued[i], queued[i + 1], out)) {
          ++i;
          continue;
        }
        Run(s, queued[i], out);
      }
    };
    // An admin session has no org and queues no writes (those are refused in MULTI).
    if (s.session.admin) return run_queue();
    // The queued writes are one atomic write, made when the last command has run; their
    // replies go out only then, and none does if it is not made.
    const size_t mark = out.buffer().size();
    Status written = service_->Transact(s.session, run_queue);
    if (!written.ok()) {
      out.buffer().resize(mark);
      if (written.code() == Status::Code::kUnauthenticated) s.session = Session{};
      return ReplyError(out, written, "exec");
    }
    return;
  }
  if (s.in_multi && name != "quit" && name != "reset") {
    const CommandSpec* spec = nullptr;
    std::string refusal = Refusal(args, &spec);
    if (refusal.empty() && !service_->CheckSession(s.session).ok()) refusal = kNoAuth;
    if (refusal.empty() && spec->admin_only && !s.session.admin) {
      refusal = "NOPERM this user has no permissions to run the '" + name + "' command";
    }
    if (refusal.empty() && !AllowedInTransaction(name, *spec)) {
      refusal = "ERR Command not allowed inside a transaction";
    }
    // A transaction is held in memory until EXEC and then written at once: it is bounded
    // as one request is (max_frame_bytes).
    size_t bytes = 0;
    for (const std::string& arg : args) bytes += arg.size() + kQueuedArgumentOverhead;
    if (refusal.empty() && s.queued_bytes + bytes > facts_->max_transaction_bytes) {
      refusal = "ERR the commands queued since MULTI exceed " +
                std::to_string(facts_->max_transaction_bytes) +
                " bytes (max_frame_bytes): the transaction is discarded";
    }
    if (!refusal.empty()) {
      refuse_queued();
      return out.Error(refusal);
    }
    if (!s.multi_refused) {
      s.queued.push_back(args);
      s.queued_bytes += bytes;
    }
    return out.SimpleString("QUEUED");
  }
  if (name == "reset") discard();
  Run(s, args, out);
}

bool RespCommands::IsGet(const RespCommand& args) {
  return args.size() == 2 && args[0].size() == 3 && (args[0][0] | 0x20) == 'g' &&
         (args[0][1] | 0x20) == 'e' && (args[0][2] | 0x20) == 't';
}

void RespCommands::ExecuteGets(RespSession& s, std::span<const RespCommand> gets, RespWriter& out) {
  // Queued by MULTI, or refused (no session, the admin's): each as on its own.
  if (s.in_multi || !s.session.authenticated || s.session.admin) {
    for (const RespCommand& get : gets) Execute(s, get, out);
    return;
  }
  std::vector<std::string_view> names;
  names.reserve(gets.size());
  for (const RespCommand& get : gets) names.push_back(get[1]);
  // Each value is written into the reply as it is read (from the table of hot values, under
  // its lock), not copied out first.
  Status read =
      service_->ReadEachName(s.session, names, [&](size_t i, const Result<storage::ValueView>& v) {
        ReplyGet(out, v, gets[i][1], gets[i][0]);
      });
  if (!read.ok()) {
    // Failed before any read (the session's check, most likely): each answers as on its own.
    for (const RespCommand& get : gets) Execute(s, get, out);
    return;
  }
  facts_->commands_processed.fetch_add(gets.size(), std::memory_order_relaxed);
}

bool RespCommands::IsHashSet(const RespCommand& args) {
  return !args.empty() && (EqualsIgnoreCase(args[0], "hset") || EqualsIgnoreCase(args[0], "hmset"));
}

bool RespCommands::ExecuteWithExpiry(RespSession& s, const RespCommand& write,
                                     const RespCommand& next, RespWriter& out) {
  return !s.in_multi && RunWithExpiry(s, write, next, out);
}

bool RespCommands::RunWithExpiry(RespSession& s, const RespCommand& write, const RespCommand& next,
                                 RespWriter& out) {
  if (!s.session.authenticated || s.session.admin) return false;
  if (!IsHashSet(write) || write.size() < 2 || next.size() != 3 || next[1] != write[1]) {
    return false;
  }
  const std::string command = Lower(next[0]);
  const int64_t unit_ms = command == "expire" ? kMsPerSecond : command == "pexpire" ? 1 : 0;
  if (unit_ms == 0) return false;
  // A time the EXPIRE would set on the key the write leaves: after now, at most max_ttl_ms
  // ahead (else it runs on its own and answers as it does).
  const auto time = ParseRedisInteger(next[2]);
  if (!time || *time <= 0 || *time > facts_->max_ttl_ms / unit_ms) return false;
  WriteExpiry expiry{*time * unit_ms};
  Run(s, write, out, &expiry);
  if (!expiry.applied) {
    Run(s, next, out);
    return true;
  }
  facts_->commands_processed.fetch_add(1, std::memory_order_relaxed);
  out.Integer(1);  // the key exists (just written) and its expiry was set
  return true;
}

void RespCommands::Run(RespSession& s, const RespCommand& args, RespWriter& out,
                       WriteExpiry* expiry) {
  const CommandSpec* found = nullptr;
  if (std::string refusal = Refusal(args, &found); !refusal.empty()) return out.Error(refusal);
  const CommandSpec& spec = *found;
  if (spec.needs_auth && !service_->CheckSession(s.session).ok()) {
    s.session = Session{};  // revoked or dropped since: authenticate again
    return out.Error(kNoAuth);
  }
  if (spec.admin_only && !s.session.admin) {
    return out.Error("NOPERM this user has no permissions to run the '" + Lower(args[0]) +
                     "' command");
  }
  facts_->commands_processed.fetch_add(1, std::memory_order_relaxed);
  Context c{service_, facts_, s, args, out, expiry};
  spec.handler(c);
}

}  // namespace sealcache::server::internal
