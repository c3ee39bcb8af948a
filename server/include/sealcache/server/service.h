// CacheService: every protocol operation, independent of the transport. A connection owns
// a Session and passes each verified frame body to Handle(); the returned bytes are the
// response body. Thread-safe: any number of sessions may call Handle concurrently.
//
// Isolation: a session is bound by Hello to one org (or to admin) and every operation acts
// on that org only; admin operations need an admin session. Errors are responses, never
// exceptions; bad input changes nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sealcache/client/client.h"
#include "sealcache/crypto/secret_bytes.h"
#include "sealcache/status.h"
#include "sealcache/storage/store.h"

namespace sealcache::server {

struct ServiceOptions {
  storage::StoreOptions store;
  // Largest k a Lookup may ask for. Default 100.
  uint32_t max_k = 100;
  // Largest number of items in one PutBatch. Default 1000.
  uint32_t max_batch_items = 1000;
  // How often accumulated hit counts are written to the store, in ms (a crash loses the
  // counts of at most this long). Default 5000: each write reads and rewrites the metadata of
  // every entry hit since the last, a burst that lookups queue behind; once a second it put
  // the p99 of lookups paced at 10,150 /s at 2.15-2.52 ms, every 5 s at 1.81-2.14 ms.
  int64_t hit_flush_period_ms = 5000;
  // Write an org's index snapshot after this many inserts since the last one. Default 50000.
  uint64_t snapshot_every_inserts = 50'000;
  // ... or after this long with any insert since the last one, in ms. Default 10 minutes.
  int64_t snapshot_period_ms = 600'000;
  // An org with no vector inserts for this long, in ms, has the vectors still waiting in its
  // mutable index segment (if at least 256) sealed into its graph, so lookups stop scanning
  // them exactly. Default 5 s; 0 disables it.
  int64_t idle_seal_after_ms = 5'000;
  // Index build parameters (0 = the index's defaults).
  uint32_t hnsw_m = 0;
  uint32_t ef_search = 0;
  // Write <data>/admin.token on first start. Default true.
  bool bootstrap_admin_token = true;
  // Mutual-TLS files for a kmip:// master key that names none (crypto/master_key.h), also
  // used by a master-key rotation to one.
  std::string kmip_client_cert;
  std::string kmip_client_key;
  std::string kmip_ca;
};

// What Hello bound a session to: its token and, for an org token, the one incarnation of
// the org that existed at Hello. Defined by the service; transports only copy the pointer.
struct SessionBinding;
struct SessionTransaction;  // an open CacheService::Transact

// A connection's session. Checked on every request, not only at Hello: once a revoke-token,
// drop-org (or an admin token's revocation) is acknowledged, every session opened with that
// token or bound to that org gets UNAUTHENTICATED from its next request on, and a new org of
// the same name is a different tenant to every old session.
struct Session {
  bool authenticated = false;
  bool admin = false;
  std::string org;  // set when bound to an org
  std::shared_ptr<SessionBinding> binding;
  SessionTransaction* transaction = nullptr;  // set by Transact while its body runs
};

// A live entry as a front sees it.
struct LiveEntry {
  int64_t expires_ms = 0;
  bool has_vector = false;
  std::span<const uint8_t> payload;
};

// What an Update writes: nothing, a new value (payload and optional vector, with a TTL or
// the current expiry kept), or a delete.
struct EntryChange {
  enum class Kind { kKeep, kPut, kDelete };
  Kind kind = Kind::kKeep;
  std::vector<uint8_t> payload;
  std::vector<float> vector;  // empty: an exact-only entry
  int64_t ttl_ms = 0;         // for kPut, unless keep_expiry
  bool keep_expiry = false;   // for kPut over a live entry
  // Runs after the change is written, still under the digest's lock (so a front's own
  // view of the entry is updated in the order of the writes).
  std::function<void()> on_applied;
};

struct PagedEntry {
  storage::Digest digest{};
  int64_t expires_ms = 0;
  bool has_vector = false;
  std::vector<uint8_t> payload;
};
struct EntryPage {
  std::vector<PagedEntry> entries;
  std::optional<storage::Digest> next;
};

struct SearchQuery {
  std::span<const float> vector;
  size_t k = 1;
  float min_score = -1.0f;
  std::function<bool(const storage::Digest&)> admit;  // may be empty: every live entry
};
struct SearchHit {
  float score = 0;  // cosine similarity
  PagedEntry entry;
};

// State a front keeps per org incarnation (see CacheService::Attachment).
class OrgAttachment {
 public:
  virtual ~OrgAttachment() = default;
};

// An org token as the cluster keeps it: the record, and the incarnation of the org it was
// issued for (an org dropped and created again under the same name is another tenant).
struct ClusterToken {
  storage::TokenRecord record;
  std::string org_uid;  // empty for an admin token
  // A node's token for one peer session (a move's import, a listing, a rebalance's move): an
  // admin token that may do only those.
  bool peer = false;
};

// What the cluster (server/CLUSTER.md) tells the service; absent on a single node. Every
// call is safe from any thread.
class ClusterView {
 public:
  virtual ~ClusterView() = default;
  // OK: this node serves `org` now. Moved: another node owns it; the message is its
  // addresses, "NATIVE_HOST:PORT RESP_HOST:PORT". Unavailable: this node may not serve now
  // (its lease is not known to be alive, or it has not joined yet). Unauthenticated: the
  // org is gone, or `org_uid` (when not empty) names an earlier incarnation of it.
  virtual Status CheckServing(std::string_view org, std::string_view org_uid) = 0;
  // Placement of a new org: OK when this node is to hold it (its record names this node
  // and an empty copy is held here, made through AdoptOrg), Moved to the node chosen,
  // AlreadyExists if the org exists. Returns the org's uid. Called without the service's
  // locks held.
  virtual Result<std::string> PlaceNewOrg(std::string_view org,
                                          const storage::OrgConfig& config) = 0;
  // The uid of the org's current incarnation; NotFound if the cluster has no such org.
  virtual Result<std::string> OrgUid(std::string_view org) = 0;
  // The org is created here and its first token issued: its record becomes active.
  virtual Status ActivateOrg(std::string_view org) = 0;
  // Drops the org from the cluster: its record and every token of it. Called without the
  // service's locks held.
  virtual Status RemoveOrg(std::string_view org) = 0;
  // Tokens, cluster-wide, by the SHA-256 hash of the token (never the token itself).
  virtual Status AddToken(std::span<const uint8_t> token_hash, const ClusterToken& token) = 0;
  // NotFound for an unknown or revoked token.
  virtual Result<ClusterToken> FindToken(std::span<const uint8_t> token_hash) = 0;
  virtual Result<uint64_t> RevokeTokens(std::string_view org, std::string_view token_id) = 0;
  // True while this data directory has never completed a join (SetCluster then publishes
  // the node's first admin token, also when an earlier start stopped before joining).
  virtual bool FirstJoin() const = 0;

  // Planned moves. MoveOrg: Moved to the owner unless this node owns `org`; else streams
  // the org to `to_node` (empty: placement picks among the other live nodes that are not
  // draining) and hands it over. Returns the new owner and the bytes streamed. DrainNode:
  // Moved to `node` if that is another node; else this node takes no new orgs from now on
  // and moves every org it owns. Returns how many moved. Called without service locks.
  virtual Result<std::pair<std::string, uint64_t>> MoveOrg(std::string_view org,
                                                           std::string_view to_node) = 0;
  virtual Result<uint64_t> DrainNode(std::string_view node) = 0;
  // Moves orgs between the nodes that are not draining until each owns within one org of
  // every other (the fewest moves, most loaded to least loaded; each run by its org's
  // owner). Returns how many moved.
  virtual Result<uint64_t> Rebalance() = 0;
  // The receiving side of a move: OK while the record says `org` (incarnation `uid`) moves
  // to this node, to be at `epoch` here. NoteImportedCopy: a committed import is this
  // node's copy at that incarnation and epoch. RefreshOrg: reads the org's record (after
  // the hand-over) into the view the serving rule reads. Called without service locks.
  virtual Status CheckImport(std::string_view org, std::string_view uid, int64_t epoch) = 0;
  virtual Status NoteImportedCopy(std::string_view org, std::string_view uid, int64_t epoch) = 0;
  virtual Status RefreshOrg(std::string_view org) = 0;
  // This node's id, and the ListOrgs answers (this_node_only) of every other live node, by
  // node id; Unavailable naming a node that does not answer.
  virtual const std::string& node_id() const = 0;
  virtual Result<std::vector<std::pair<std::string, client::ResponseFrame>>> ListOrgsOfPeers() = 0;
};

class CacheService {
 public:
  static Result<std::unique_ptr<CacheService>> Open(ServiceOptions options,
                                                    const crypto::SecretBytes& master_key);
  virtual ~CacheService() = default;

  // One request frame body in, one response frame body out (a malformed frame gets an
  // error response with id 0).
  virtual std::vector<uint8_t> Handle(Session& session, std::span<const uint8_t> body) = 0;
  // Handle for a request the transport has verified already (VerifyRequest, to choose where
  // it runs), with the response appended to `frames` as a whole frame (its length, then the
  // body) and built in `scratch`, a builder the caller keeps so that its memory serves the
  // next call: a transport that answers many requests at once copies each response once.
  virtual void HandleFrame(Session& session, const protocol::Request& request,
                           flatbuffers::FlatBufferBuilder& scratch,
                           std::vector<uint8_t>* frames) = 0;
  // HandleFrame of each request in order, for a transport that has several at once: the
  // entries its GetEntry requests read are asked for together first, so that their cache
  // misses overlap (a client's pipelined Gets).
  virtual void HandleFrames(Session& session, std::span<const protocol::Request* const> requests,
                            flatbuffers::FlatBufferBuilder& scratch,
                            std::vector<uint8_t>* frames) = 0;
  // OK if `session` is authenticated and its binding still holds (not revoked, its org not
  // dropped); else Unauthenticated. For transports whose commands do not all reach Handle.
  virtual Status CheckSession(const Session& session) const = 0;
  // The digest a key named by a client of the session's org maps to (Store::NameDigest):
  // for fronts whose clients name keys instead of sending digests.
  virtual Result<storage::Digest> NameDigest(const Session& session, std::string_view name) = 0;
  // ---- Direct operations for fronts whose clients name keys (the Redis front). Each checks
  // the session exactly as Handle does and acts on the session's org only.

  // One atomic read-modify-write of the entry at `digest`: `change` runs under the digest's
  // lock with the live entry (nullptr if none) and says what to write; nothing else writes
  // that digest in between. An error from `change` is returned and nothing is written.
  virtual Status Update(const Session& session, const storage::Digest& digest,
                        const std::function<Result<EntryChange>(const LiveEntry*)>& change) = 0;
  // Runs `body` as one transaction of the session's org (the Redis front's EXEC): the
  // session's writes in it (Update, and Put, SetExpiry and Delete requests through Handle)
  // are held back and made as one atomic write when `body` returns, and its reads (Read,
  // GetEntry requests, Update's own) see them; no other write of the org runs from its
  // start to its end. Scan, Search and Lookup see what was written before it. Not OK: none
  // of its writes was made (nor is any later). FailedPrecondition if one is open already.
  virtual Status Transact(Session& session, const std::function<void()>& body) = 0;
  // A live entry's payload and expiry, in one store read (Store::GetValue); NotFound if
  // absent or expired. Counted as a Get, and as a hit of the entry.
  virtual Result<storage::StoredValue> Read(const Session& session,
                                            const storage::Digest& digest) = 0;
  // Read of each digest, all from one view of the store (Store::GetValues): a
  // transaction's writes are seen all or none.
  virtual Result<std::vector<Result<storage::StoredValue>>> ReadMany(
      const Session& session, std::span<const storage::Digest> digests) = 0;
  // Read of the key of each name (NameDigest), each as Read reads it (not from one view: a
  // client's pipelined GETs), with one check of the session and the reads' cache misses
  // taken together, each value given to `take` as Store::GetValueEach gives it (in order,
  // once each; valid during the call only; `take` must not call the service). A failed
  // check fails the whole batch, before any value is given.
  virtual Status ReadEachName(const Session& session, std::span<const std::string_view> names,
                              const storage::Store::TakeValue& take) = 0;
  // The dimension of the session's org's vectors.
  virtual Result<uint32_t> Dimension(const Session& session) = 0;
  // Live entries (with payloads) in digest order from `from` on, at most `count`; `next` is
  // the digest to continue from, or nullopt at the end.
  virtual Result<EntryPage> Scan(const Session& session, const storage::Digest& from,
                                 size_t count) = 0;
  // Nearest live vectors of the session's org (cosine similarity >= min_score), filtered
  // inside the search by `admit` on each candidate's digest, with payloads.
  virtual Result<std::vector<SearchHit>> Search(const Session& session,
                                                const SearchQuery& query) = 0;
  // The front state attached to the session's org: made by `make` on first use, dropped
  // with the org (a later org of the same name starts without it).
  virtual Result<std::shared_ptr<OrgAttachment>> Attachment(
      const Session& session, const std::function<std::shared_ptr<OrgAttachment>()>& make) = 0;
  // Encrypted side files of the session's org (Store::WriteOrgFile), for a front's own
  // definitions. Names: [a-z0-9._-], not the index snapshot's.
  virtual Status WriteOrgFile(const Session& session, std::string_view name,
                              std::span<const uint8_t> bytes) = 0;
  virtual Result<std::vector<uint8_t>> ReadOrgFile(const Session& session,
                                                   std::string_view name) = 0;

  // An error response for a frame that never reached Handle (e.g. too large).
  static std::vector<uint8_t> ErrorResponse(uint64_t id, const Status& status);

  // ---- Cluster membership (server/CLUSTER.md). SetCluster is called once, before serving;
  // from then on tokens, placement and the serving rule are the cluster's, and a request for
  // an org this node does not serve answers Moved with the owner's address.
  virtual Status SetCluster(ClusterView* cluster) = 0;
  // This node's copies of orgs, for the cluster's reconcile loop: the orgs held here; hold
  // `org` empty under a new key generation (nothing is done if a copy is held); delete this
  // node's copy of `org`, its files and every key version (crypto-shredding), touching no
  // token and no cluster record. Sessions bound to a deleted copy stop working.
  virtual std::vector<std::string> LocalOrgs() = 0;
  virtual Status AdoptOrg(std::string_view org, const storage::OrgConfig& config) = 0;
  virtual Status ForgetOrg(std::string_view org) = 0;
  // The source side of a move: writes the org's index snapshot, then closes its database
  // (Store::ExportOrg; every request on the org answers Unavailable until UndoExport or
  // ForgetOrg) and answers what a copy needs besides the files.
  virtual Result<storage::OrgExport> ExportOrg(std::string_view org) = 0;
  virtual Status UndoExport(std::string_view org) = 0;

  // Prometheus text exposition of every metric.
  virtual std::string MetricsText() = 0;
  // Writes pending hit counts, index snapshots and memtables. Called at shutdown.
  virtual Status Flush() = 0;
  // Where the admin token was written on first start ("" if it already existed).
  virtual const std::string& admin_token_path() const = 0;
  virtual storage::Store& store() = 0;
  // Records an authentication failure seen by the transport (counted in metrics).
  virtual void CountConnectionError() = 0;
};

}  // namespace sealcache::server
