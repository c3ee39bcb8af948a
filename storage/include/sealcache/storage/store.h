// Store: the encrypted storage engine. One RocksDB instance under <data>/db with a plaintext
// column family "meta" and one column family per org whose files are encrypted under that
// org's key ring (layout in data_layout.h, formats in storage/FORMAT.md).
//
// Every Put is one atomic WriteBatch (meta record + payload + vector) and is acknowledged
// after the write returns (in a LogFlushGroup: after the group's Commit); a process crash
// loses no acknowledged write (with StoreOptions::sync_writes, neither does a machine
// crash).
//
// Thread-safe. Errors are values: InvalidArgument (bad input, nothing changed), NotFound
// (unknown org, missing or expired entry), Corruption (a damaged or tampered file),
// FailedPrecondition (e.g. a destroyed key), IOError / ResourceExhausted (disk). A write
// that fails for the disk while its log is written (after it reached the memtable, as the
// log buffer is written last) may be readable until a restart and lost at a crash: like any
// failed write, it is not acknowledged; further writes fail until the disk recovers.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sealcache/clock.h"
#include "sealcache/crypto/fault_hook.h"
#include "sealcache/crypto/key_ring.h"
#include "sealcache/crypto/secret_bytes.h"
#include "sealcache/status.h"
#include "sealcache/storage/audit_log.h"

namespace sealcache::storage {

inline constexpr size_t kDigestSize = 32;
inline constexpr size_t kMaxNamespaceBytes = 128;
inline constexpr uint32_t kMaxDimension = 4096;
using Digest = std::array<uint8_t, kDigestSize>;

// Hashes digests for hash tables. A native put names its own digest, so a client can choose
// digests that share any prefix; a table that hashed a prefix would put them all into one
// bucket (or one probe run) and spend quadratic time on them. All 32 bytes are mixed with a
// seed each hasher draws when it is made, so no fixed set of digests collides in every
// table. Copies keep the seed.
class DigestHash {
 public:
  DigestHash();
  size_t operator()(const Digest& d) const;

 private:
  uint64_t seed_;
};

// How an org at its capacity limit makes room for a write (Redis's maxmemory-policy words).
enum class EvictionPolicy : uint8_t {
  kLru,         // the least recently written or read entry goes first
  kLfu,         // the least often read entry (then the least recent) goes first
  kTtl,         // the entry closest to its expiry goes first
  kNoEviction,  // nothing goes: the write is refused with ResourceExhausted
};
std::string_view EvictionPolicyName(EvictionPolicy policy);  // "lru", "lfu", "ttl", "noeviction"
Result<EvictionPolicy> ParseEvictionPolicy(std::string_view name);

// An org's capacity limits. Bytes are logical (EntryLogicalBytes), not the files' size.
struct OrgLimits {
  uint64_t max_bytes = 0;    // 0 = none
  uint64_t max_entries = 0;  // 0 = none
  // "lru", "lfu", "ttl" or "noeviction"; empty = the store's default_eviction_policy.
  std::string eviction_policy;
};

// Every ResourceExhausted a capacity limit causes says these words (fronts map it to their
// protocol's out-of-memory error, e.g. Redis's -OOM).
inline constexpr std::string_view kCapacityLimitWords = "capacity limit";

// What capacity limits count for one live entry: its payload, its vector (the org's
// dimension x 4 bytes, if it has one), its namespace and a fixed metadata overhead.
inline constexpr uint64_t kEntryOverheadBytes = 64;
struct EntryMeta;
uint64_t EntryLogicalBytes(const EntryMeta& meta, uint32_t dimension);

struct StoreOptions {
  // Root of all data (keys/, db/, index/, audit.log). Created if missing. Required.
  std::string data_dir;
  // Source of "now" for expiry and key events. Not owned. Default: the system clock.
  const Clock* clock = nullptr;
  // fsync the WAL before acknowledging each write. Default false: a process crash loses
  // nothing either way; a power failure can lose the last writes without it.
  bool sync_writes = false;
  // Create a new store when data_dir holds none. Default true.
  bool create_if_missing = true;
  // Largest payload accepted by Put, in bytes. Default 4 MiB.
  size_t max_payload_bytes = 4u << 20;
  // Longest TTL accepted by Put, in ms. Default 365 days. Bounds how long a retired key
  // can be kept alive by data written before its rotation.
  int64_t max_ttl_ms = int64_t{365} * 24 * 3600 * 1000;
  // How often the background key reaper runs, in ms; 0 disables the thread (tests call
  // RunKeyReaper()). Default 60 s.
  int64_t reaper_period_ms = 60'000;
  // Scheduled org-key rotation: each reaper pass rotates every org whose ACTIVE key version
  // is at least this old, in ms (the retired version is then destroyed by the reaper as
  // usual). 0 (the library default) disables it; sealcached's --rotation-interval-days sets
  // it (default 90 days).
  int64_t rotation_interval_ms = 0;
  // Shared block cache for all column families, in bytes. Default 256 MiB.
  size_t block_cache_bytes = 256u << 20;
  // Payloads of entries read again and again, kept in front of the block cache, every
  // org's together, in bytes (with 272 bytes of bookkeeping an entry): a Get of one of them
  // skips RocksDB's read path. 0 turns it off. Default 64 MiB.
  size_t value_cache_bytes = 64u << 20;
  // Memtables of all column families together, in bytes (RocksDB db_write_buffer_size):
  // a full budget flushes the largest memtable. Each family's memtable is at most
  // min(32 MiB, this). Default 256 MiB.
  size_t memtable_budget_bytes = 256u << 20;
  // Receives one line for each storage event an operator must see: a background error
  // that stops writes (a full disk) and the recovery from it. Called from RocksDB's
  // threads; must be thread-safe. Default: none.
  std::function<void(const std::string&)> on_event;
  // BENCHMARKS ONLY: keep every file in plaintext, to measure what encryption costs.
  // Recorded in the audit log at every open. A data directory created this way carries the
  // marker db/PLAINTEXT-BENCHMARK-ONLY and refuses to open with encryption, and an
  // encrypted one refuses to open without it. Default false.
  bool insecure_plaintext_for_benchmarks = false;
  // Where the master key came from (MasterKeyProvider::Describe(), nothing secret), for the
  // audit log's store_opened event. Default: empty.
  std::string master_key_provider;
  // BENCHMARKS AND TESTS ONLY: write new encrypted files in format v1 (AES-256-CTR, not
  // authenticated) instead of v2, to compare the two on one code path and to test that v1
  // files stay readable. sealcached never sets it. Default false.
  bool legacy_v1_files_for_benchmarks = false;
  // Server-wide limit on the logical bytes of every org's live entries together; 0 = none.
  // A put that would cross it evicts from the orgs furthest over their fair share
  // (max_data_bytes / number of orgs) first. Default 0.
  uint64_t max_data_bytes = 0;
  // The eviction policy of orgs that name none. Default lru.
  EvictionPolicy default_eviction_policy = EvictionPolicy::kLru;
  // TESTS ONLY: called at every crash point of key rotation, retirement, CreateOrg and
  // DropOrg, keystore writes included (the names are in fault_points.h); a non-OK status
  // aborts the operation there. Default null: every point is a no-op.
  crypto::FaultHook fault_hook;
};

struct OrgConfig {
  uint32_t dimension = 0;           // 1..4096
  std::string metric = "cosine";    // the only metric so far
  std::string index_kind = "hnsw";  // "hnsw" or "flat" (exact)
  int64_t created_ms = 0;           // set by CreateOrg
  // Index parameters of this org; 0 = the server's default. Checked by the server.
  uint32_t hnsw_m = 0;
  uint32_t ef_construction = 0;
  uint32_t ef_search = 0;
  uint32_t seal_threshold = 0;
  OrgLimits limits = {};
};

// The vector_slot of an exact-only entry: stored without a vector, found by its digest and
// never by a lookup (the Redis-protocol front's strings).
inline constexpr uint64_t kNoVectorSlot = std::numeric_limits<uint64_t>::max();

struct PutRequest {
  Digest digest{};
  std::span<const uint8_t> payload;
  std::span<const float> vector;  // the org's dimension, or empty for an exact-only entry
  int64_t ttl_ms = 0;             // > 0 and <= max_ttl_ms
  std::string_view name_space;    // <= 128 bytes of UTF-8; may be empty
  // Decided under the digest's lock, so concurrent puts cannot both pass a condition.
  enum class Condition { kAlways, kIfAbsent, kIfPresent };
  // kIfAbsent: AlreadyExists if a live entry has the digest; kIfPresent: NotFound if none.
  Condition condition = Condition::kAlways;
  // Keep the expiry of the live entry it replaces (ttl_ms applies if there is none).
  bool keep_expiry = false;
  // Return the payload of the live entry it replaces in PutResult::previous.
  bool return_previous = false;
};

struct RemovedEntries {
  uint64_t count = 0;
  std::vector<uint64_t> slots;     // vector slots that left the store
  std::vector<Digest> exact_only;  // digests of removed entries that had no vector
};

struct PutResult {
  uint64_t slot = 0;                      // vector slot of the new entry, or kNoVectorSlot
  std::optional<uint64_t> replaced_slot;  // slot of the entry this one replaced
  int64_t expires_ms = 0;
  std::optional<std::vector<uint8_t>> previous;  // with return_previous, if one was live
  // Entries evicted to make room, in the same atomic write as the put (the org's limits,
  // or the server-wide one when this org was furthest over its share).
  RemovedEntries evicted;
  // Entries of other orgs evicted for the server-wide limit (their own writes), by org.
  std::vector<std::pair<std::string, RemovedEntries>> evicted_elsewhere;
};

// The plaintext metadata of an entry (what lives in "meta").
struct EntryMeta {
  Digest digest{};
  int64_t created_ms = 0;
  int64_t expires_ms = 0;
  int64_t ttl_ms = 0;
  std::string name_space;
  uint32_t payload_size = 0;
  uint64_t vector_slot = 0;
  uint64_t hits = 0;
  int64_t last_hit_ms = 0;
};

struct Entry {
  EntryMeta meta;
  std::vector<uint8_t> payload;  // empty unless asked for
};

struct StoredValue {
  int64_t expires_ms = 0;
  std::vector<uint8_t> payload;
};

// A value as GetValueEach gives it: its bytes are valid only during the call they are given to.
struct ValueView {
  int64_t expires_ms = 0;
  std::span<const uint8_t> payload;
};

// A read value as a view (valid while `value` lives), and a viewed value copied.
inline Result<ValueView> ViewOfValue(const Result<StoredValue>& value) {
  if (!value.ok()) return value.status();
  return ValueView{value->expires_ms, value->payload};
}
inline Result<StoredValue> CopyOfValue(const Result<ValueView>& value) {
  if (!value.ok()) return value.status();
  return StoredValue{value->expires_ms, {value->payload.begin(), value->payload.end()}};
}

struct InvalidateFilter {
  std::optional<std::string> name_space;  // entries in this namespace
  std::optional<int64_t> older_than_ms;   // entries created before this time
};

struct HitUpdate {
  Digest digest{};
  uint64_t hits = 0;        // added to the stored count
  int64_t last_hit_ms = 0;  // kept if newer than the stored one
};

struct KeyVersionStatus {
  uint32_t version = 0;
  crypto::KeyState state = crypto::KeyState::kActive;
  int64_t created_ms = 0;
  int64_t rotated_ms = 0;
  int64_t destroyed_ms = 0;
  uint64_t live_files = 0;
  uint64_t live_bytes = 0;
  int64_t max_expiry_ms = 0;  // latest expiry of any entry in those files (0 if none)
};

struct OrgStats {
  uint64_t estimated_entries = 0;
  // Exact, for capacity limits: live (unexpired) entries and their logical bytes.
  uint64_t live_entries = 0;
  uint64_t logical_bytes = 0;
  OrgLimits limits;  // as configured (empty policy: the default)
  EvictionPolicy eviction_policy = EvictionPolicy::kLru;  // in effect
  uint64_t evictions_org_limit = 0, evictions_server_limit = 0;
  uint64_t live_sst_bytes = 0;
  uint64_t puts = 0, gets = 0, hits = 0, misses = 0, deletes = 0;
  uint64_t decrypt_failures = 0;
  uint32_t active_key_version = 0;
  int64_t active_key_age_ms = 0;
};

// An access token's record, stored under the SHA-256 hash of the token.
struct TokenRecord {
  std::string org;       // empty: an admin token
  std::string token_id;  // public handle, safe to print
  int64_t created_ms = 0;
};

struct ReaperReport {
  std::vector<std::pair<std::string, uint32_t>> rotated;    // (org, new version), by schedule
  std::vector<std::pair<std::string, uint32_t>> destroyed;  // (org, version)
  uint64_t files_compacted = 0;
};

// What moving an org to another node carries besides its files (server/CLUSTER.md). No
// plain key: the ring is wrapped under the master key the nodes of a cluster share, and the
// name key is sealed under the org's active key version.
struct OrgExport {
  OrgConfig config;
  std::vector<uint8_t> ring;  // crypto::Keystore::ExportRing
  std::vector<uint8_t> sealed_name_key;
  uint32_t name_key_version = 0;  // the ring version the name key is sealed under
  // The files of the org's directory a copy needs, relative to it, in a stable order: its
  // SSTs (encrypted data, plaintext metadata), MANIFEST, CURRENT, OPTIONS, IDENTITY and
  // index snapshots; never its WAL (flushed first, and sealed under the node's own key),
  // lock or info log.
  std::vector<std::string> files;
};

// Writes of one org held back and made as one (the Redis front's MULTI/EXEC): Put, Delete
// and SetExpiry through it check and answer as the Store's own do, but nothing is written
// until Commit writes them all in one atomic write: all of them or none, across a crash
// too, and no reader sees some without the others. Its own reads see its writes. Used by
// one thread at a time; keeping other writers of the same entries out until Commit is the
// caller's (the service holds back every other write of the org). Destroyed without a
// successful Commit, it writes nothing and gives back the room and victims it reserved.
class OrgTransaction {
 public:
  virtual ~OrgTransaction() = default;
  virtual Result<PutResult> Put(const PutRequest& request) = 0;
  virtual Result<RemovedEntries> Delete(const Digest& digest) = 0;
  virtual Result<EntryMeta> SetExpiry(const Digest& digest, int64_t expires_ms) = 0;
  virtual Result<Entry> Get(const Digest& digest, bool with_payload = true) = 0;
  virtual Result<StoredValue> GetValue(const Digest& digest) = 0;
  // Writes everything (nothing to write is OK) and counts it; once only. Returns the
  // entries of other orgs that the puts' server-wide limit evicted afterwards, by org.
  virtual Result<std::vector<std::pair<std::string, RemovedEntries>>> Commit() = 0;
};

// Writes answered together: see Store::OpenLogFlushGroup.
class LogFlushGroup {
 public:
  // Commits what Commit() has not (a failure is reported through StoreOptions::on_event),
  // and closes the group: this thread's later writes flush their log as they are made.
  virtual ~LogFlushGroup() = default;
  // Writes the log of every org this thread wrote since the group opened or last
  // committed to the file system. OK: those writes survive a process crash and may be
  // acknowledged. An error: they may be lost at a crash (and are visible until then), so
  // none of them may be acknowledged.
  virtual Status Commit() = 0;
};

class Store {
 public:
  // Opens (or creates) the store. Loads the keystore with `master_key` first: a wrong key
  // fails here with PermissionDenied and no file is modified.
  static Result<std::unique_ptr<Store>> Open(StoreOptions options,
                                             const crypto::SecretBytes& master_key);
  virtual ~Store() = default;

  // Orgs.
  virtual Status CreateOrg(std::string_view org, OrgConfig config) = 0;
  // Drops the org's column family and meta records and destroys every key version.
  virtual Status DropOrg(std::string_view org) = 0;
  virtual Result<OrgConfig> GetOrg(std::string_view org) const = 0;
  // Moving an org to another node. ExportOrg flushes the org's database, closes it (its
  // files stop changing; every operation on the org answers Unavailable) and answers what a
  // copy needs; the files are then read from org_dir(). After a failed move ReopenOrg opens
  // the database again; after a move DropOrg deletes the copy and its keys.
  virtual Result<OrgExport> ExportOrg(std::string_view org) = 0;
  virtual Status ReopenOrg(std::string_view org) = 0;
  // Up to `max` bytes at `offset` of one of the files an ExportOrg listed (the org must be
  // exported and not reopened); empty at the end of the file.
  virtual Result<std::vector<uint8_t>> ReadExportedFile(std::string_view org, std::string_view file,
                                                        uint64_t offset, size_t max) = 0;
  // The receiving side. StageImport makes an empty private staging directory for the org
  // (AlreadyExists if the org exists here); WriteStaged appends to a staged file (`offset`
  // must be its size so far; the name is one ExportOrg could list); ImportOrg then adds the
  // org: every listed file must be staged, the ring enters the keystore (checked under this
  // node's master key), the files are synced and become the org's directory, its database
  // opens, and the catalog record (with the name key) commits. On any failure nothing of
  // the org is left; AbandonImport removes the staged files, and so does the next Open.
  virtual Status StageImport(std::string_view org) = 0;
  virtual Status WriteStaged(std::string_view org, std::string_view file, uint64_t offset,
                             std::span<const uint8_t> bytes) = 0;
  virtual Status ImportOrg(std::string_view org, const OrgExport& from) = 0;
  virtual Status AbandonImport(std::string_view org) = 0;
  // Changes the org's capacity limits, durably, and at once: an org over a lower limit is
  // evicted down to it (unless its policy is noeviction: then only new writes are refused).
  // Returns what was evicted, for the caller's index.
  virtual Result<RemovedEntries> SetOrgLimits(std::string_view org, const OrgLimits& limits) = 0;
  // Logical bytes of every org's live entries (what max_data_bytes bounds).
  virtual uint64_t TotalLogicalBytes() const = 0;
  virtual std::vector<std::string> ListOrgs() const = 0;

  // Entries.
  virtual Result<PutResult> Put(std::string_view org, const PutRequest& request) = 0;
  // NotFound if absent or expired.
  virtual Result<Entry> Get(std::string_view org, const Digest& digest,
                            bool with_payload = true) = 0;
  virtual std::vector<Result<Entry>> MultiGet(std::string_view org, std::span<const Digest> digests,
                                              bool with_payload = true) = 0;
  // A live entry's payload and expiry in one read (the payload record carries its expiry):
  // for readers that need no other metadata. NotFound if absent or expired.
  virtual Result<StoredValue> GetValue(std::string_view org, const Digest& digest) = 0;
  // Asks the CPU for the memory that reads of `digests` touch first (the table of hot
  // values' slots and the values in them), so that a batch of reads made right after takes
  // its cache misses together instead of one after another. A hint: changes nothing.
  virtual void Prefetch(std::string_view org, std::span<const Digest> digests) = 0;
  // GetValue of each digest, each read as GetValue reads it (not from one view: for reads
  // that are independent of each other, such as a client's pipelined GETs), the memory the
  // reads touch asked for together first so that their cache misses overlap. Each value is
  // given to `take` instead of copied out: take(i, value of digests[i]), in order, once each.
  // A value's bytes may be the table of hot values', given under its lock: `take` must copy
  // what it keeps and must not call the store.
  using TakeValue = std::function<void(size_t, const Result<ValueView>&)>;
  virtual void GetValueEach(std::string_view org, std::span<const Digest> digests,
                            const TakeValue& take) = 0;
  // GetValue of each digest, all read from one view of the store: entries written in one
  // batch (a transaction) are read all as written or all as before.
  virtual std::vector<Result<StoredValue>> GetValues(std::string_view org,
                                                     std::span<const Digest> digests) = 0;
  // Meta and payload of the entry whose vector is at `slot`, if it is still live.
  virtual Result<Entry> GetBySlot(std::string_view org, uint64_t slot,
                                  bool with_payload = true) = 0;
  virtual Result<RemovedEntries> Delete(std::string_view org, const Digest& digest) = 0;
  virtual Result<RemovedEntries> Invalidate(std::string_view org,
                                            const InvalidateFilter& filter) = 0;
  virtual Status RecordHits(std::string_view org, std::span<const HitUpdate> hits) = 0;
  // Moves a live entry's expiry to `expires_ms` (after now, at most max_ttl_ms ahead), in
  // its metadata, payload and vector records at once. NotFound if there is no live entry.
  // Returns the updated metadata.
  virtual Result<EntryMeta> SetExpiry(std::string_view org, const Digest& digest,
                                      int64_t expires_ms) = 0;
  // A transaction on the org's entries (OrgTransaction).
  virtual Result<std::unique_ptr<OrgTransaction>> BeginTransaction(std::string_view org) = 0;
  // Opens a LogFlushGroup on the calling thread, for a server that answers pipelined
  // requests together (as Redis writes its append-only file once per turn of its event
  // loop, before the replies): until the group closes, the writes this thread makes to
  // this store leave their log records in memory, and Commit() writes them to the file
  // system at once, one write for the batch instead of one per write. The writes are
  // visible to readers as they are made; a process crash before Commit() returns OK can
  // lose them, so none may be acknowledged before it does. With sync_writes every write
  // is synced as it is made and a group changes nothing. FailedPrecondition if the thread
  // has a group open already.
  virtual Result<std::unique_ptr<LogFlushGroup>> OpenLogFlushGroup() = 0;
  // The digest a client-named key of the org maps to (the Redis front's key names):
  // HMAC-SHA256 of the name under the org's name key, a random key kept sealed in the
  // catalog and made at the first use. The same name gives the same digest across restarts
  // and key rotations; in another org, or a later org of the same name, another one; and
  // nobody who reads the plaintext metadata can test a guessed name against it.
  virtual Result<Digest> NameDigest(std::string_view org, std::string_view name) = 0;
  // Plaintext metadata of every live entry with digest >= `from`, in digest order (no
  // payloads, no keys needed); `fn` returns false to stop.
  virtual Status ScanMeta(std::string_view org, const std::function<bool(const EntryMeta&)>& fn,
                          const Digest& from = Digest{}) = 0;
  // Every live vector with slot >= from_slot, in slot order; `fn` returns false to stop.
  virtual Status ScanVectors(
      std::string_view org, uint64_t from_slot,
      const std::function<bool(uint64_t slot, const Digest& digest, int64_t expires_ms,
                               std::span<const float> vector)>& fn) = 0;

  // Tokens (by SHA-256 hash; the store never sees a token itself).
  virtual Status AddToken(std::span<const uint8_t> token_hash, const TokenRecord& record) = 0;
  // NotFound for an unknown or revoked token.
  virtual Result<TokenRecord> FindToken(std::span<const uint8_t> token_hash) = 0;
  // Revokes the tokens of `org` ("" = admin tokens) with `token_id`, or all of them when
  // token_id is empty. Returns how many were revoked.
  virtual Result<uint64_t> RevokeTokens(std::string_view org, std::string_view token_id) = 0;

  // Keys.
  virtual Result<uint32_t> RotateKey(std::string_view org) = 0;
  // Re-wraps every key version under `new_master_key` in one atomic replacement of the
  // keystore: a crash leaves it under the old key or the new. No data file changes. Returns
  // the new key's fingerprint.
  virtual Result<std::string> RotateMasterKey(const crypto::SecretBytes& new_master_key,
                                              std::string_view provider) = 0;
  // Appends an event to the audit log (e.g. a key provider's failure outside the store).
  virtual Status AuditEvent(std::string_view event, const AuditLog::Fields& fields) = 0;
  virtual Result<std::vector<KeyVersionStatus>> KeyStatus(std::string_view org) = 0;
  // One pass of the key reaper (also run periodically in the background).
  virtual Result<ReaperReport> RunKeyReaper() = 0;

  // Encrypted side files of an org (index snapshots), written atomically under the org's
  // active key through the same file format as its SSTs.
  virtual Status WriteOrgFile(std::string_view org, std::string_view name,
                              std::span<const uint8_t> bytes) = 0;
  virtual Result<std::vector<uint8_t>> ReadOrgFile(std::string_view org, std::string_view name) = 0;

  virtual Result<OrgStats> Stats(std::string_view org) = 0;
  // Encrypted file opens (data keys unwrapped) since Open, all orgs and the WAL.
  virtual uint64_t DecryptOperations() const = 0;
  // Flushes memtables of every column family to SSTs.
  virtual Status Flush() = 0;
  // Compacts one org's data (and meta) fully; used by tests and the reaper.
  virtual Status CompactOrg(std::string_view org) = 0;
  virtual const std::string& data_dir() const = 0;
  // The longest TTL a write may set (StoreOptions::max_ttl_ms).
  virtual int64_t max_ttl_ms() const = 0;
  // What WAL recovery reported when the store opened: one line per stretch of a WAL that
  // was dropped (a damaged or torn tail: the writes in it are lost) and where recovery
  // stopped. Empty when every WAL replayed cleanly.
  virtual std::vector<std::string> RecoveryReport() const = 0;
};

}  // namespace sealcache::storage
