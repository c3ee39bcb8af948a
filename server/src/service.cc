#include "sealcache/server/service.h"

#include <malloc.h>
#include <omp.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <shared_mutex>
#include <thread>

#include "org_runtime.h"
#include "sealcache/crypto/atomic_file.h"
#include "sealcache/crypto/hash.h"
#include "sealcache/crypto/master_key.h"
#include "sealcache/crypto/random.h"
#include "sealcache/server/frame.h"
#include "sealcache/storage/data_layout.h"
#include "sealcache/storage/fault_points.h"

namespace sealcache::server {

// See Session. `revoked` is set (seq-cst) when the token is revoked or the org dropped;
// `runtime` is the org's incarnation at Hello: a dropped org's runtime is gone, and a new
// org of the same name has a new one, so an old session can never reach it.
struct SessionBinding {
  std::string org;  // "" for an admin token
  std::string token_id;
  // In a cluster: the incarnation of the org the token was issued for; the org may be
  // served by another node (no runtime here), and may come here later.
  std::string org_uid;
  bool clustered = false;
  // The hash of the token, kept in a cluster so that an admin session can be checked
  // against etcd on each admin request (a revocation on any node ends it).
  crypto::Sha256Digest token_hash{};
  bool peer = false;  // a node's peer-session token (ClusterToken::peer)
  std::weak_ptr<internal::OrgRuntime> runtime;
  // The org could not be loaded at start (a damaged file): requests get `unavailable`.
  Status unavailable;
  std::atomic<bool> revoked{false};
};

// A session's open transaction (CacheService::Transact): the org's writes gate held
// exclusively, the store transaction its writes go into, and what they change in the org's
// runtime (index, slot table, a front's state) once they are written, in their order.
struct SessionTransaction {
  internal::OrgLease org;
  std::unique_ptr<storage::OrgTransaction> store;
  std::vector<std::function<void()>> after_commit;
};

namespace {

using FBB = flatbuffers::FlatBufferBuilder;
using internal::OrgLease;
using internal::OrgRuntime;
namespace P = protocol;

constexpr size_t kTokenBytes = 32;
constexpr size_t kTokenIdBytes = 8;
constexpr char kTokenPrefix[] = "sc_";
constexpr char kAdminTokenFile[] = "admin.token";
// How often a damaged org's failing answers are logged (each is counted regardless).
constexpr auto kCorruptionLogInterval = std::chrono::seconds(10);

// Free heap memory the allocator keeps that makes the background loop hand it back to the
// kernel. Building HNSW graphs frees large copies (a seal extends a copy of the org's graph
// links and drops the old one; the vectors and codes are copied when their block is full) on
// many threads; glibc keeps most of that in its per-thread arenas:
// measured after loading 4 x 25k x 384, 382 of 841 MB of heap were free, and malloc_trim
// brought the RSS from 734 to 404 MB.
constexpr size_t kHeapTrimThreshold = 32u << 20;
// How often the background loop asks glibc how much free heap it holds. mallinfo2 walks
// every bin of every arena, each under its arena's lock: 10-16 ms a call with the heap of
// 100k Redis keys being served (perf probes), which mallocs on the request threads waited
// behind; asked on every 1 s pass it also cost 1% of the server's CPU.
constexpr int64_t kHeapCheckPeriodMs = 10'000;

// How often the background loop sweeps expired entries, seals idle orgs' vectors and checks
// whether a snapshot is due (and writes hit counts, if ServiceOptions::hit_flush_period_ms is
// shorter).
constexpr int64_t kBackgroundPassMs = 1000;
// A response builder's first allocation (Handle), and the most a caller's builder keeps
// between responses (HandleFrame).
constexpr size_t kResponseBuilderBytes = 1024;
constexpr size_t kMaxKeptBuilderBytes = 256u << 10;

// Returns free heap pages to the kernel once the allocator holds kHeapTrimThreshold more
// free bytes than after the last trim. glibc keeps counting trimmed chunks as free (their
// pages are released, the chunks stay in its bins), so the free count alone would trim on
// every pass; `free_after_last_trim` is the background loop's own record.
void ReleaseFreeHeap(size_t& free_after_last_trim) {
#if defined(__GLIBC__)
  const size_t free_bytes = mallinfo2().fordblks;
  free_after_last_trim = std::min(free_after_last_trim, free_bytes);
  if (free_bytes - free_after_last_trim < kHeapTrimThreshold) return;
  malloc_trim(0);
  free_after_last_trim = mallinfo2().fordblks;
#else
  (void)free_after_last_trim;
#endif
}

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// What every request of an org that could not be loaded at start gets: the cause's code
// (Corruption for damaged data) and message, naming the org.
Status UnavailableStatus(const std::string& org, const Status& cause) {
  return cause.WithContext("org " + org +
                           " is unavailable until its files are restored or it is dropped");
}

// A new random token "sc_<64 hex>" and its public id.
Result<std::pair<std::string, std::string>> NewToken() {
  SC_ASSIGN_OR_RETURN(auto secret, crypto::RandomBytes(kTokenBytes));
  SC_ASSIGN_OR_RETURN(auto id, crypto::RandomBytes(kTokenIdBytes));
  return std::make_pair(kTokenPrefix + crypto::ToHex(secret), crypto::ToHex(id));
}

crypto::Sha256Digest TokenHash(std::string_view token) {
  return crypto::Sha256({reinterpret_cast<const uint8_t*>(token.data()), token.size()});
}

Result<storage::Digest> DigestFrom(const flatbuffers::Vector<uint8_t>* v) {
  if (v == nullptr || v->size() != storage::kDigestSize) {
    return Status::InvalidArgument("digest must be exactly 32 bytes");
  }
  storage::Digest d;
  std::copy(v->begin(), v->end(), d.begin());
  return d;
}

std::span<const float> FloatsOf(const flatbuffers::Vector<float>* v) {
  if (v == nullptr) return {};
  return {v->data(), v->size()};
}

std::string_view StrOf(const flatbuffers::String* s) {
  return s == nullptr ? std::string_view() : s->string_view();
}

// An org's config as create-org (and a move's commit) carries it.
storage::OrgConfig ConfigFrom(const P::CreateOrgRequest& r) {
  storage::OrgConfig config;
  config.dimension = r.dimension();
  if (r.metric() != nullptr) config.metric = r.metric()->str();
  if (r.index_kind() != nullptr && r.index_kind()->size() > 0) {
    config.index_kind = r.index_kind()->str();
  }
  config.hnsw_m = r.hnsw_m();
  config.ef_construction = r.ef_construction();
  config.ef_search = r.ef_search();
  config.seal_threshold = r.seal_threshold();
  config.limits.max_bytes = r.max_bytes();
  config.limits.max_entries = r.max_entries();
  config.limits.eviction_policy = StrOf(r.eviction_policy());
  return config;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The entry as the caller sees it, counting this hit and those not yet written to disk.
flatbuffers::Offset<P::EntryMeta> BuildMeta(FBB& fbb, const storage::EntryMeta& m,
                                            uint64_t pending_hits, int64_t hit_ms) {
  auto d = fbb.CreateVector(m.digest.data(), m.digest.size());
  auto ns = fbb.CreateString(m.name_space);
  return P::CreateEntryMeta(fbb, d, m.created_ms, m.expires_ms, m.ttl_ms, ns, m.payload_size,
                            m.hits + pending_hits, std::max(m.last_hit_ms, hit_ms));
}

// What a handler produced: a status, and on success the body.
struct Reply {
  Reply(Status s) : status(std::move(s)) {}  // NOLINT(google-explicit-constructor): errors
  Reply(P::ResponseBody t, flatbuffers::Offset<void> b) : type(t), body(b) {}
  Status status;
  P::ResponseBody type = P::ResponseBody::NONE;
  flatbuffers::Offset<void> body;
};

template <typename T>
Reply Ok(P::ResponseBody type, flatbuffers::Offset<T> body) {
  return Reply(type, body.Union());
}

class CacheServiceImpl final : public CacheService {
 public:
  explicit CacheServiceImpl(ServiceOptions options) : options_(std::move(options)) {}
  ~CacheServiceImpl() override { StopBackground(); }

  Status Init(const crypto::SecretBytes& master_key) {
    if (!options_.store.on_event) {
      options_.store.on_event = [](const std::string& line) {
        std::fprintf(stderr, "sealcached: %s\n", line.c_str());
      };
    }
    SC_ASSIGN_OR_RETURN(store_, storage::Store::Open(options_.store, master_key));
    ReportWalRecovery(store_->RecoveryReport());
    if (options_.hnsw_m) index_params_.hnsw_m = static_cast<int>(options_.hnsw_m);
    if (options_.ef_search) index_params_.ef_search = static_cast<int>(options_.ef_search);
    SC_RETURN_IF_ERROR(LoadOrgs());
    if (options_.bootstrap_admin_token) SC_RETURN_IF_ERROR(BootstrapAdminToken());
    background_ = std::thread([this] { BackgroundLoop(); });
    return Status::Ok();
  }

  // Loads every org's runtime (index snapshot or rebuild), one org per core at a time: each
  // load is single-threaded (decrypt, checksum, decode), so orgs load side by side.
  Status LoadOrgs() {
    const std::vector<std::string> ids = store_->ListOrgs();
    std::vector<std::unique_ptr<OrgRuntime>> loaded(ids.size());
    std::vector<Status> statuses(ids.size());
    std::vector<std::string> logs(ids.size());
    std::atomic<size_t> next{0};
    auto worker = [&] {
      for (size_t i = next++; i < ids.size(); i = next++) {
        auto rt = OrgRuntime::Load(*store_, ids[i], index_params_, &logs[i]);
        if (rt.ok()) {
          loaded[i] = std::move(rt).value();
        } else {
          statuses[i] = rt.status();
        }
      }
    };
    const size_t threads =
        std::min<size_t>(ids.size(), std::max(1u, std::thread::hardware_concurrency()));
    std::vector<std::thread> pool;
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
    for (size_t i = 0; i < ids.size(); ++i) {
      if (!statuses[i].ok()) {
        // One org's damage stays that org's: the others serve, this one answers why not.
        Status why = UnavailableStatus(ids[i], statuses[i]);
        std::fprintf(stderr, "sealcached: %s\n", why.message().c_str());
        corruptions_.fetch_add(1, std::memory_order_relaxed);
        unavailable_orgs_.emplace(ids[i], std::move(why));
        continue;
      }
      std::fprintf(stderr, "sealcached: %s\n", logs[i].c_str());
      orgs_.emplace(ids[i], std::move(loaded[i]));
    }
    return Status::Ok();
  }

  std::vector<uint8_t> Handle(Session& session, std::span<const uint8_t> bytes) override {
    auto request = VerifyRequest(bytes);
    if (!request.ok()) return ErrorResponse(0, request.status());
    FBB fbb(kResponseBuilderBytes);
    std::optional<std::vector<uint8_t>> error = Respond(session, **request, fbb);
    if (error) return std::move(*error);
    return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
  }

  void HandleFrame(Session& session, const P::Request& request, FBB& scratch,
                   std::vector<uint8_t>* frames) override {
    scratch.Clear();
    std::optional<std::vector<uint8_t>> error = Respond(session, request, scratch);
    AppendFrame(error ? std::span<const uint8_t>(*error)
                      : std::span<const uint8_t>(scratch.GetBufferPointer(), scratch.GetSize()),
                frames);
    // A builder grown for a large response does not keep its memory.
    if (scratch.GetSize() > kMaxKeptBuilderBytes) scratch.Reset();
  }

  void HandleFrames(Session& session, std::span<const P::Request* const> requests, FBB& scratch,
                    std::vector<uint8_t>* frames) override {
    if (requests.size() > 1) PrefetchGets(session, requests);
    for (const P::Request* request : requests) HandleFrame(session, *request, scratch, frames);
  }

  // Store::Prefetch of the digests the GetEntry requests among `requests` read, and of their
  // hit cells.
  void PrefetchGets(const Session& session, std::span<const P::Request* const> requests) {
    auto org = OrgOf(session);
    if (!org.ok()) return;  // (each request answers why)
    std::vector<storage::Digest> digests;
    digests.reserve(requests.size());
    for (const P::Request* request : requests) {
      const auto* get = request->body_as_GetEntryRequest();
      if (get == nullptr) continue;
      if (auto digest = DigestFrom(get->digest()); digest.ok()) digests.push_back(*digest);
    }
    store_->Prefetch((*org)->id(), digests);
    (*org)->PrefetchHits(digests);
  }

  // The response to a verified request: finished in `fbb`, or an error response's body
  // returned.
  std::optional<std::vector<uint8_t>> Respond(Session& session, const P::Request& request,
                                              FBB& fbb) {
    Reply reply = Dispatch(session, request, fbb);
    if (!reply.status.ok()) {
      if (reply.status.IsCorruption()) ReportCorruption(session, request, reply.status);
      if (reply.status.code() == Status::Code::kUnauthenticated ||
          reply.status.code() == Status::Code::kPermissionDenied) {
        auth_failures_.fetch_add(1, std::memory_order_relaxed);
      }
      return ErrorResponse(request.id(), reply.status);
    }
    P::ResponseBuilder rb(fbb);
    rb.add_id(request.id());
    rb.add_status(P::StatusCode::OK);
    rb.add_body_type(reply.type);
    rb.add_body(reply.body);
    fbb.Finish(rb.Finish(), kFileIdentifier);
    return std::nullopt;
  }

  Result<storage::Digest> NameDigest(const Session& s, std::string_view name) override {
    SC_ASSIGN_OR_RETURN(OrgLease org, OrgOf(s));  // checks the session
    return store_->NameDigest(org->id(), name);
  }

  Status Update(const Session& s, const storage::Digest& digest,
                const std::function<Result<EntryChange>(const LiveEntry*)>& change) override;
  Status Transact(Session& s, const std::function<void()>& body) override;
  Result<EntryPage> Scan(const Session& s, const storage::Digest& from, size_t count) override;
  Result<std::vector<SearchHit>> Search(const Session& s, const SearchQuery& query) override;
  Result<storage::StoredValue> Read(const Session& s, const storage::Digest& digest) override;
  Result<std::vector<Result<storage::StoredValue>>> ReadMany(
      const Session& s, std::span<const storage::Digest> digests) override;
  Status ReadEachName(const Session& s, std::span<const std::string_view> names,
                      const storage::Store::TakeValue& take) override;
  Result<uint32_t> Dimension(const Session& s) override {
    SC_ASSIGN_OR_RETURN(OrgLease org, OrgOf(s));
    return org->config().dimension;
  }
  Result<std::shared_ptr<OrgAttachment>> Attachment(
      const Session& s, const std::function<std::shared_ptr<OrgAttachment>()>& make) override {
    SC_ASSIGN_OR_RETURN(OrgLease org, OrgOf(s));
    return org->Attachment(make);
  }
  Status WriteOrgFile(const Session& s, std::string_view name,
                      std::span<const uint8_t> bytes) override {
    SC_ASSIGN_OR_RETURN(OrgLease org, OrgOf(s));
    if (name == OrgRuntime::kSnapshotFile) return Status::InvalidArgument("reserved file name");
    return store_->WriteOrgFile(org->id(), name, bytes);
  }
  Result<std::vector<uint8_t>> ReadOrgFile(const Session& s, std::string_view name) override {
    SC_ASSIGN_OR_RETURN(OrgLease org, OrgOf(s));
    if (name == OrgRuntime::kSnapshotFile) return Status::InvalidArgument("reserved file name");
    return store_->ReadOrgFile(org->id(), name);
  }

  Status CheckSession(const Session& s) const override {
    if (!s.authenticated) return Status::Unauthenticated("send Hello with a token first");
    if (s.binding->revoked.load()) {
      return Status::Unauthenticated(
          "the token of this session was revoked or its org dropped; send Hello again");
    }
    return Status::Ok();
  }
  Status SetCluster(ClusterView* cluster) override;
  std::vector<std::string> LocalOrgs() override;
  Status AdoptOrg(std::string_view org, const storage::OrgConfig& config) override;
  Status ForgetOrg(std::string_view org) override;
  Result<storage::OrgExport> ExportOrg(std::string_view org) override;
  Status UndoExport(std::string_view org) override;
  std::string MetricsText() override;
  Status Flush() override;
  const std::string& admin_token_path() const override { return admin_token_path_; }
  storage::Store& store() override { return *store_; }
  void CountConnectionError() override { connection_errors_.fetch_add(1); }

 private:
  // Counts the reads of `digests` (gets, hits, misses; a hit of each entry found) and turns
  // their NotFound into "miss".
  void CountReads(OrgRuntime& rt, std::span<const storage::Digest> digests,
                  std::vector<Result<storage::StoredValue>>& values);
  // Counts one read that ended with `read` (a get, and a hit or a miss) and returns what it
  // answers: `read`, or NotFound("miss") for a miss.
  static Status CountRead(OrgRuntime& rt, const Status& read);
  Reply Dispatch(Session& s, const P::Request& req, FBB& fbb);
  Reply Hello(Session& s, const P::HelloRequest* r, FBB& fbb);
  Reply Put(const Session& s, const P::PutRequest* r, FBB& fbb);
  Reply PutBatch(const Session& s, const P::PutBatchRequest* r, FBB& fbb);
  Reply Get(const Session& s, const P::GetEntryRequest* r, FBB& fbb);
  Reply Lookup(const Session& s, const P::LookupRequest* r, FBB& fbb);
  Reply Delete(const Session& s, const P::DeleteRequest* r, FBB& fbb);
  Reply SetExpiry(const Session& s, const P::SetExpiryRequest* r, FBB& fbb);
  Reply Invalidate(const Session& s, const P::InvalidateRequest* r, FBB& fbb);
  Reply Stats(const Session& s, FBB& fbb);
  Reply CreateOrg(const P::CreateOrgRequest* r, FBB& fbb);
  Reply DropOrg(const P::DropOrgRequest* r, FBB& fbb);
  Reply MoveOrg(const P::MoveOrgRequest* r, FBB& fbb);
  Reply DrainNode(const P::DrainNodeRequest* r, FBB& fbb);
  Reply ImportOrg(const P::ImportOrgRequest* r, FBB& fbb);
  Reply Rebalance(FBB& fbb);
  // Deletes this node's copy of `org` (files, keys, runtime); `revoke_sessions` ends the
  // sessions bound to it (a drop), else they are told where the org went (a cluster move).
  Status DropLocal(const std::string& org, bool revoke_sessions);
  // OK when no cluster is set or the cluster lets this node serve `org` (any incarnation).
  Status ServedHere(std::string_view org) {
    ClusterView* cluster = cluster_.load();
    return cluster == nullptr ? Status::Ok() : cluster->CheckServing(org, "");
  }
  // Creates `org` in the store and loads its runtime, unless it is held here already.
  // REQUIRES: admin_mu_ held.
  Status AdoptOrgLocked(std::string_view org, const storage::OrgConfig& config);
  Status ForgetOrgLocked(std::string_view org);
  Reply RotateKey(const P::RotateKeyRequest* r, FBB& fbb);
  Reply RotateMasterKey(const P::RotateMasterKeyRequest* r, FBB& fbb);
  Reply SetOrgLimits(const P::SetOrgLimitsRequest* r, FBB& fbb);
  Reply KeyStatus(const P::KeyStatusRequest* r, FBB& fbb);
  Reply ListOrgs(const P::ListOrgsRequest* r, FBB& fbb);
  Reply IssueToken(const P::IssueTokenRequest* r, FBB& fbb);
  Reply RevokeToken(const P::RevokeTokenRequest* r, FBB& fbb);

  Result<OrgLease> OrgOf(const Session& s);
  // Marks revoked every live session binding `match` selects. REQUIRES: bindings_mu_ held.
  void RevokeBindings(const std::function<bool(const SessionBinding&)>& match);
  void ReportCorruption(const Session& s, const P::Request& req, const Status& status);
  struct CorruptionLog {
    bool reported = false;
    std::chrono::steady_clock::time_point last{};
    uint64_t suppressed = 0;
  };
  std::mutex corruption_log_mu_;
  std::map<std::string, CorruptionLog> corruption_log_;  // by org
  static void ReportWalRecovery(const std::vector<std::string>& report);
  Result<storage::PutResult> DoPut(const Session& s, OrgRuntime& org, const P::PutRequest* r);
  // The session's transaction if one is open (null if none); FailedPrecondition if it is
  // open on another org than `rt` (it acts on the org it began with only).
  static Result<SessionTransaction*> TransactionOf(const Session& s, OrgRuntime& rt);
  // One write's shared hold of the org's writes gate; nothing inside a transaction, which
  // holds it exclusively.
  static std::shared_lock<std::shared_mutex> WriteGate(SessionTransaction* txn, OrgRuntime& rt);
  // Runs `fn`, a write's effect on the org's runtime (index, slot table, a front's state):
  // now, under the digest's stripe lock that the caller holds, or once the transaction (if
  // any) has committed, under that lock taken then.
  static void AfterWrite(SessionTransaction* txn, OrgRuntime& rt, const storage::Digest& digest,
                         std::function<void()> fn);
  Status BootstrapAdminToken();
  Status PublishAdminToken(ClusterView& cluster);
  void BackgroundLoop();
  void StopBackground();
  std::vector<std::shared_ptr<OrgRuntime>> AllOrgs();
  // Other orgs' entries a put evicted for the server-wide limit leave their indexes.
  void OnEvictedElsewhere(const storage::PutResult& put);

  ServiceOptions options_;
  index::IndexParams index_params_;
  std::unique_ptr<storage::Store> store_;
  std::shared_mutex orgs_mu_;
  std::map<std::string, std::shared_ptr<OrgRuntime>, std::less<>> orgs_;
  // Orgs whose files could not be loaded at start, with the answer their requests get.
  std::map<std::string, Status, std::less<>> unavailable_orgs_;
  std::mutex admin_mu_;  // serialises CreateOrg / DropOrg
  // Every session binding handed out by Hello (expired ones are pruned as it grows). Hello's
  // token check and registration, and every revocation, hold bindings_mu_, so a Hello cannot
  // slip a binding in between a revocation's store write and its marking.
  std::mutex bindings_mu_;
  std::vector<std::weak_ptr<SessionBinding>> bindings_;
  size_t bindings_pruned_at_ = 0;
  std::string admin_token_path_;
  std::atomic<ClusterView*> cluster_{nullptr};
  std::atomic<uint64_t> auth_failures_{0}, connection_errors_{0}, corruptions_{0};
  std::atomic<uint64_t> key_provider_errors_{0};

  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool stopping_ = false;
  std::thread background_;
};

Result<std::unique_ptr<CacheService>> Open(ServiceOptions options,
                                           const crypto::SecretBytes& master_key) {
  auto service = std::make_unique<CacheServiceImpl>(std::move(options));
  SC_RETURN_IF_ERROR(service->Init(master_key));
  return std::unique_ptr<CacheService>(std::move(service));
}

Status CacheServiceImpl::BootstrapAdminToken() {
  const std::string path = store_->data_dir() + "/" + kAdminTokenFile;
  if (std::filesystem::exists(path)) return Status::Ok();
  SC_ASSIGN_OR_RETURN(auto token, NewToken());
  const auto hash = TokenHash(token.first);
  SC_RETURN_IF_ERROR(store_->AddToken(hash, {"", token.second, 0}));
  std::string text = token.first + "\n";
  SC_RETURN_IF_ERROR(crypto::WriteFileAtomically(
      path, {reinterpret_cast<const uint8_t*>(text.data()), text.size()}));
  admin_token_path_ = path;
  return Status::Ok();
}

void CacheServiceImpl::OnEvictedElsewhere(const storage::PutResult& put) {
  for (const auto& [org, removed] : put.evicted_elsewhere) {
    std::shared_ptr<OrgRuntime> rt;
    {
      std::shared_lock<std::shared_mutex> lock(orgs_mu_);
      if (auto it = orgs_.find(org); it != orgs_.end()) rt = it->second;
    }
    if (rt) rt->OnRemoved(removed);
  }
}

std::vector<std::shared_ptr<OrgRuntime>> CacheServiceImpl::AllOrgs() {
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  std::vector<std::shared_ptr<OrgRuntime>> out;
  for (auto& [id, rt] : orgs_) out.push_back(rt);
  return out;
}

void CacheServiceImpl::BackgroundLoop() {
  omp_set_num_threads(1);
  size_t heap_free_after_trim = 0;
  const int64_t pass_ms = std::min(options_.hit_flush_period_ms, kBackgroundPassMs);
  int64_t hits_flushed_ms = NowMs();
  int64_t heap_checked_ms = hits_flushed_ms;
  std::unique_lock<std::mutex> lock(bg_mu_);
  while (!stopping_) {
    bg_cv_.wait_for(lock, std::chrono::milliseconds(pass_ms), [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    const int64_t now = NowMs();
    const bool flush_hits = now - hits_flushed_ms >= options_.hit_flush_period_ms;
    if (flush_hits) hits_flushed_ms = now;
    for (auto& org : AllOrgs()) {
      Status s = flush_hits ? org->FlushHits(*store_) : Status::Ok();
      if (s.ok()) org->SweepExpired(now);
      org->MaybeSealIdle(now, options_.idle_seal_after_ms);
      if (s.ok()) {
        s = org->MaybeSnapshot(*store_, options_.snapshot_every_inserts,
                               options_.snapshot_period_ms, now, false);
      }
      if (!s.ok() && !s.IsNotFound()) {
        std::fprintf(stderr, "sealcached: background work for org %s: %s\n", org->id().c_str(),
                     s.ToString().c_str());
      }
    }
    if (now - heap_checked_ms >= kHeapCheckPeriodMs) {
      heap_checked_ms = now;
      ReleaseFreeHeap(heap_free_after_trim);
    }
    lock.lock();
  }
}

void CacheServiceImpl::StopBackground() {
  {
    std::lock_guard<std::mutex> lock(bg_mu_);
    stopping_ = true;
  }
  bg_cv_.notify_all();
  if (background_.joinable()) background_.join();
}

Status CacheServiceImpl::Flush() {
  Status first;
  const int64_t now = NowMs();
  for (auto& org : AllOrgs()) {
    Status s = org->FlushHits(*store_);
    if (s.ok()) s = org->MaybeSnapshot(*store_, 0, 0, now, /*force=*/true);
    if (!s.ok() && first.ok()) first = s;
  }
  Status s = store_->Flush();
  return first.ok() ? s : first;
}

// Stored data failed a check (a damaged block, a file that does not decrypt): the client
// gets the error, the operator gets a log line naming the org and the operation. Messages
// name files and offsets, never key material or payload bytes.
void CacheServiceImpl::ReportCorruption(const Session& s, const P::Request& req,
                                        const Status& status) {
  corruptions_.fetch_add(1, std::memory_order_relaxed);
  if (s.binding) {
    if (auto rt = s.binding->runtime.lock()) rt->metrics().corrupt_answers.fetch_add(1);
  }
  // One line per org per interval: a client retrying against a damaged org must not flood
  // the log (every answer is still counted).
  const std::string org = s.org.empty() ? "(admin)" : s.org;
  uint64_t suppressed = 0;
  {
    std::lock_guard<std::mutex> lock(corruption_log_mu_);
    CorruptionLog& log = corruption_log_[org];
    const auto now = std::chrono::steady_clock::now();
    if (log.reported && now - log.last < kCorruptionLogInterval) {
      ++log.suppressed;
      return;
    }
    log.reported = true;
    log.last = now;
    suppressed = std::exchange(log.suppressed, 0);
  }
  std::fprintf(stderr, "sealcached: org %s: %s failed on corrupt stored data: %s%s\n", org.c_str(),
               P::EnumNameRequestBody(req.body_type()), status.ToString().c_str(),
               suppressed == 0
                   ? ""
                   : (" (" + std::to_string(suppressed) + " more since the last report)").c_str());
}

// RocksDB's own words, without its "[source.cc:line] " prefix: which WAL, how many bytes were
// dropped and why, and the sequence number recovery stopped at.
void CacheServiceImpl::ReportWalRecovery(const std::vector<std::string>& report) {
  for (std::string line : report) {
    if (!line.empty() && line[0] == '[') {
      const size_t end = line.find("] ");
      if (end != std::string::npos) line.erase(0, end + 2);
    }
    const bool dropped = line.find("dropping") != std::string::npos;
    std::fprintf(stderr, "sealcached: WAL recovery: %s%s\n", line.c_str(),
                 dropped ? " (the writes in those bytes are lost)" : "");
  }
}

// ---- dispatch -----------------------------------------------------------------------------

Reply CacheServiceImpl::Dispatch(Session& s, const P::Request& req, FBB& fbb) {
  using B = P::RequestBody;
  const B type = req.body_type();
  if (type == B::NONE) return {Status::InvalidArgument("request has no body")};
  // The verifier accepts a union type without its table; every handler below reads it.
  if (req.body() == nullptr) {
    return {Status::InvalidArgument(std::string("request names ") + P::EnumNameRequestBody(type) +
                                    " but carries no body")};
  }
  if (type == B::HelloRequest) return Hello(s, req.body_as_HelloRequest(), fbb);
  if (Status valid = CheckSession(s); !valid.ok()) {
    s = Session{};
    return {valid};
  }
  switch (type) {
    case B::PingRequest: {
      auto now = NowMs();
      return Ok(P::ResponseBody::PingResponse, P::CreatePingResponse(fbb, now));
    }
    case B::PutRequest:
      return Put(s, req.body_as_PutRequest(), fbb);
    case B::PutBatchRequest:
      return PutBatch(s, req.body_as_PutBatchRequest(), fbb);
    case B::GetEntryRequest:
      return Get(s, req.body_as_GetEntryRequest(), fbb);
    case B::LookupRequest:
      return Lookup(s, req.body_as_LookupRequest(), fbb);
    case B::DeleteRequest:
      return Delete(s, req.body_as_DeleteRequest(), fbb);
    case B::SetExpiryRequest:
      return SetExpiry(s, req.body_as_SetExpiryRequest(), fbb);
    case B::InvalidateRequest:
      return Invalidate(s, req.body_as_InvalidateRequest(), fbb);
    case B::StatsRequest:
      return Stats(s, fbb);
    default:
      break;
  }
  if (!s.admin) return {Status::PermissionDenied("this operation needs an admin token")};
  if (ClusterView* cluster = cluster_.load(); cluster != nullptr && s.binding->clustered) {
    // Admin operations are rare and any node may revoke an admin token: ask etcd each time.
    auto still = cluster->FindToken(s.binding->token_hash);
    if (!still.ok()) {
      if (!still.status().IsNotFound()) return {still.status()};
      s.binding->revoked.store(true);
      s = Session{};
      return {Status::Unauthenticated("the token of this session was revoked; send Hello again")};
    }
    // A peer session's token does what moves and listings need, nothing else.
    if (s.binding->peer && type != B::ImportOrgRequest && type != B::ListOrgsRequest &&
        type != B::MoveOrgRequest) {
      return {Status::PermissionDenied(
          "a node's peer token may only import, move and list orgs; use an admin token")};
    }
  }
  switch (type) {
    case B::CreateOrgRequest:
      return CreateOrg(req.body_as_CreateOrgRequest(), fbb);
    case B::DropOrgRequest:
      return DropOrg(req.body_as_DropOrgRequest(), fbb);
    case B::RotateKeyRequest:
      return RotateKey(req.body_as_RotateKeyRequest(), fbb);
    case B::RotateMasterKeyRequest:
      return RotateMasterKey(req.body_as_RotateMasterKeyRequest(), fbb);
    case B::SetOrgLimitsRequest:
      return SetOrgLimits(req.body_as_SetOrgLimitsRequest(), fbb);
    case B::KeyStatusRequest:
      return KeyStatus(req.body_as_KeyStatusRequest(), fbb);
    case B::ListOrgsRequest:
      return ListOrgs(req.body_as_ListOrgsRequest(), fbb);
    case B::IssueTokenRequest:
      return IssueToken(req.body_as_IssueTokenRequest(), fbb);
    case B::RevokeTokenRequest:
      return RevokeToken(req.body_as_RevokeTokenRequest(), fbb);
    case B::MoveOrgRequest:
      return MoveOrg(req.body_as_MoveOrgRequest(), fbb);
    case B::DrainNodeRequest:
      return DrainNode(req.body_as_DrainNodeRequest(), fbb);
    case B::ImportOrgRequest:
      return ImportOrg(req.body_as_ImportOrgRequest(), fbb);
    case B::RebalanceRequest:
      return Rebalance(fbb);
    default:
      return {Status::InvalidArgument("unknown request type")};
  }
}

Reply CacheServiceImpl::Hello(Session& s, const P::HelloRequest* r, FBB& fbb) {
  s = Session{};
  std::string_view token = StrOf(r->token());
  if (token.empty()) return {Status::Unauthenticated("Hello needs a token")};
  auto binding = std::make_shared<SessionBinding>();
  {
    std::lock_guard<std::mutex> lock(bindings_mu_);
    const auto hash = TokenHash(token);
    ClusterView* cluster = cluster_.load();
    Result<storage::TokenRecord> record = Status::NotFound("no token");
    if (cluster == nullptr) {
      record = store_->FindToken(hash);
    } else {
      // In a cluster every token is the cluster's: one revoked on any node is refused on
      // all (this node's store may still hold its own first admin token).
      auto shared = cluster->FindToken(hash);
      if (!shared.ok() && !shared.status().IsNotFound()) return {shared.status()};
      if (shared.ok()) {
        record = shared->record;
        binding->org_uid = shared->org_uid;
        binding->clustered = true;
        binding->peer = shared->peer;
        binding->token_hash = hash;
      }
    }
    if (!record.ok()) return {Status::Unauthenticated("invalid or revoked token")};
    binding->org = record->org;
    binding->token_id = record->token_id;
    if (!record->org.empty()) {
      std::shared_lock<std::shared_mutex> orgs(orgs_mu_);
      auto rt = orgs_.find(record->org);
      auto down = unavailable_orgs_.find(record->org);
      if (rt != orgs_.end()) {
        binding->runtime = rt->second;
      } else if (down != unavailable_orgs_.end()) {
        binding->unavailable = down->second;
      } else if (!binding->clustered) {
        return {Status::Unauthenticated("invalid or revoked token")};
      }
      // A clustered org not held here: requests answer Moved to its owner (OrgOf).
    }
    if (bindings_.size() >= 2 * bindings_pruned_at_ + 64) {
      std::erase_if(bindings_, [](const auto& b) { return b.expired(); });
      bindings_pruned_at_ = bindings_.size();
    }
    bindings_.push_back(binding);
  }
  s.authenticated = true;
  s.admin = binding->org.empty();
  s.org = binding->org;
  s.binding = std::move(binding);
  auto org = fbb.CreateString(s.org);
  return Ok(P::ResponseBody::HelloResponse, P::CreateHelloResponse(fbb, org, s.admin));
}

void CacheServiceImpl::RevokeBindings(const std::function<bool(const SessionBinding&)>& match) {
  for (const auto& weak : bindings_) {
    auto binding = weak.lock();
    if (binding && match(*binding)) binding->revoked.store(true);
  }
}

Result<OrgLease> CacheServiceImpl::OrgOf(const Session& s) {
  if (s.admin) {
    return Status::PermissionDenied("data operations need an org token, not the admin token");
  }
  const SessionBinding& binding = *s.binding;
  std::shared_ptr<OrgRuntime> rt;
  if (ClusterView* cluster = cluster_.load(); cluster != nullptr) {
    // The serving rule: only while the cluster names this node the org's owner.
    Status serving = cluster->CheckServing(s.org, binding.org_uid);
    if (serving.IsNotFound()) {
      // Gone for good (dropped, or created again as another tenant): later requests of this
      // session stop at its check, without asking etcd again.
      s.binding->revoked.store(true);
      return Status::Unauthenticated("the org of this session no longer exists");
    }
    SC_RETURN_IF_ERROR(serving);
    if (binding.clustered) {
      // The org's copy here now, whichever node the session was opened on.
      std::shared_lock<std::shared_mutex> lock(orgs_mu_);
      if (auto it = orgs_.find(s.org); it != orgs_.end()) rt = it->second;
      if (!rt) return Status::Unavailable("org " + s.org + " is not loaded on this node yet");
    }
  }
  if (!binding.unavailable.ok()) return binding.unavailable;
  if (!rt) rt = binding.runtime.lock();
  // The org was dropped while this session was open: its token is gone too.
  if (!rt) return Status::Unauthenticated("the org of this session no longer exists");
  OrgLease lease(std::move(rt));
  // Checked again now that the lease is counted: see OrgLease.
  SC_RETURN_IF_ERROR(CheckSession(s));
  return lease;
}

// ---- data operations ----------------------------------------------------------------------

Result<storage::PutResult> CacheServiceImpl::DoPut(const Session& s, OrgRuntime& org,
                                                   const P::PutRequest* r) {
  if (r == nullptr) return Status::InvalidArgument("empty put");
  SC_ASSIGN_OR_RETURN(storage::Digest digest, DigestFrom(r->digest()));
  storage::PutRequest put;
  put.digest = digest;
  put.vector = FloatsOf(r->vector());
  if (r->payload() != nullptr) put.payload = {r->payload()->data(), r->payload()->size()};
  put.ttl_ms = r->ttl_ms();
  put.name_space = StrOf(r->name_space());
  switch (r->condition()) {
    case P::PutCondition::IfAbsent:
      put.condition = storage::PutRequest::Condition::kIfAbsent;
      break;
    case P::PutCondition::IfPresent:
      put.condition = storage::PutRequest::Condition::kIfPresent;
      break;
    case P::PutCondition::Always:
      break;
    default:
      return Status::InvalidArgument("unknown put condition");
  }
  put.keep_expiry = r->keep_expiry();
  put.return_previous = r->return_previous();
  SC_ASSIGN_OR_RETURN(SessionTransaction * txn, TransactionOf(s, org));
  auto gate = WriteGate(txn, org);
  std::lock_guard<std::mutex> stripe(org.StripeFor(digest));
  if (txn != nullptr) {
    SC_ASSIGN_OR_RETURN(storage::PutResult result, txn->store->Put(put));
    AfterWrite(
        txn, org, digest,
        [&org, digest, result, vector = std::vector<float>(put.vector.begin(), put.vector.end()),
         ns = std::string(put.name_space)] {
          org.OnPut(digest, result, vector, ns);
          org.metrics().puts.fetch_add(1, std::memory_order_relaxed);
        });
    return result;
  }
  SC_ASSIGN_OR_RETURN(storage::PutResult result, store_->Put(org.id(), put));
  org.OnPut(digest, result, put.vector, put.name_space);
  OnEvictedElsewhere(result);
  org.metrics().puts.fetch_add(1, std::memory_order_relaxed);
  return result;
}

Result<SessionTransaction*> CacheServiceImpl::TransactionOf(const Session& s, OrgRuntime& rt) {
  if (s.transaction == nullptr) return nullptr;
  if (&*s.transaction->org != &rt) {
    return Status::FailedPrecondition("a transaction acts on the org it began with only");
  }
  return s.transaction;
}

std::shared_lock<std::shared_mutex> CacheServiceImpl::WriteGate(SessionTransaction* txn,
                                                                OrgRuntime& rt) {
  if (txn != nullptr) return {};
  return std::shared_lock<std::shared_mutex>(rt.writes_gate());
}

void CacheServiceImpl::AfterWrite(SessionTransaction* txn, OrgRuntime& rt,
                                  const storage::Digest& digest, std::function<void()> fn) {
  if (txn == nullptr) return fn();
  txn->after_commit.push_back([&rt, digest, fn = std::move(fn)] {
    std::lock_guard<std::mutex> stripe(rt.StripeFor(digest));
    fn();
  });
}

Status CacheServiceImpl::Transact(Session& s, const std::function<void()>& body) {
  if (s.transaction != nullptr) {
    return Status::FailedPrecondition("a transaction is open on this session already");
  }
  SC_ASSIGN_OR_RETURN(OrgLease org, OrgOf(s));
  OrgRuntime& rt = *org;
  // Every other write of the org waits from here to the commit: what the body reads stays
  // what it wrote over.
  std::unique_lock<std::shared_mutex> gate(rt.writes_gate());
  SC_ASSIGN_OR_RETURN(std::unique_ptr<storage::OrgTransaction> store_txn,
                      store_->BeginTransaction(rt.id()));
  SessionTransaction txn{std::move(org), std::move(store_txn), {}};
  {
    struct Open {
      Session& s;
      ~Open() { s.transaction = nullptr; }
    } open{s};
    s.transaction = &txn;
    body();
  }
  SC_ASSIGN_OR_RETURN(auto evicted_elsewhere, txn.store->Commit());
  for (const auto& fn : txn.after_commit) fn();
  storage::PutResult evicted;
  evicted.evicted_elsewhere = std::move(evicted_elsewhere);
  OnEvictedElsewhere(evicted);
  return Status::Ok();
}

Reply CacheServiceImpl::Put(const Session& s, const P::PutRequest* r, FBB& fbb) {
  const auto start = std::chrono::steady_clock::now();
  auto org = OrgOf(s);
  if (!org.ok()) return {org.status()};
  auto result = DoPut(s, **org, r);
  (*org)->metrics().put_latency.Observe(SecondsSince(start));
  if (!result.ok()) return {result.status()};
  auto previous = result->previous ? fbb.CreateVector(*result->previous) : 0;
  return Ok(P::ResponseBody::PutResponse,
            P::CreatePutResponse(fbb, result->slot, result->replaced_slot.has_value(),
                                 result->expires_ms, previous));
}

Reply CacheServiceImpl::PutBatch(const Session& s, const P::PutBatchRequest* r, FBB& fbb) {
  auto org = OrgOf(s);
  if (!org.ok()) return {org.status()};
  if (r->items() == nullptr || r->items()->size() == 0) {
    return {Status::InvalidArgument("PutBatch has no items")};
  }
  if (r->items()->size() > options_.max_batch_items) {
    return {Status::InvalidArgument("PutBatch has more than " +
                                    std::to_string(options_.max_batch_items) + " items")};
  }
  std::vector<flatbuffers::Offset<P::ItemResult>> results;
  for (const P::PutRequest* item : *r->items()) {
    auto put = DoPut(s, **org, item);
    auto msg = fbb.CreateString(put.ok() ? "" : put.status().message());
    results.push_back(
        P::CreateItemResult(fbb, ToWireCode(put.status().code()), msg, put.ok() ? put->slot : 0));
  }
  auto v = fbb.CreateVector(results);
  return Ok(P::ResponseBody::PutBatchResponse, P::CreatePutBatchResponse(fbb, v));
}

Reply CacheServiceImpl::Get(const Session& s, const P::GetEntryRequest* r, FBB& fbb) {
  const auto start = std::chrono::steady_clock::now();
  auto org = OrgOf(s);
  if (!org.ok()) return {org.status()};
  auto digest = DigestFrom(r->digest());
  if (!digest.ok()) return {digest.status()};
  OrgRuntime& rt = **org;
  rt.metrics().gets.fetch_add(1, std::memory_order_relaxed);
  auto txn = TransactionOf(s, rt);
  if (!txn.ok()) return {txn.status()};
  auto entry = *txn != nullptr ? (*txn)->store->Get(*digest, r->with_payload())
                               : store_->Get(rt.id(), *digest, r->with_payload());
  rt.metrics().get_latency.Observe(SecondsSince(start));
  if (!entry.ok()) {
    if (entry.status().IsNotFound()) rt.metrics().get_misses.fetch_add(1);
    return {entry.status().IsNotFound() ? Status::NotFound("miss") : entry.status()};
  }
  rt.metrics().get_hits.fetch_add(1, std::memory_order_relaxed);
  const int64_t now = NowMs();
  const uint64_t pending = rt.CountHit(*digest, now);
  auto meta = BuildMeta(fbb, entry->meta, pending, now);
  auto payload = r->with_payload() ? fbb.CreateVector(entry->payload) : 0;
  P::GetEntryResponseBuilder b(fbb);
  b.add_meta(meta);
  if (r->with_payload()) b.add_payload(payload);
  return Ok(P::ResponseBody::GetEntryResponse, b.Finish());
}

Reply CacheServiceImpl::Lookup(const Session& s, const P::LookupRequest* r, FBB& fbb) {
  const auto start = std::chrono::steady_clock::now();
  auto org = OrgOf(s);
  if (!org.ok()) return {org.status()};
  OrgRuntime& rt = **org;
  if (r->k() == 0 || r->k() > options_.max_k) {
    return {Status::InvalidArgument("k must be between 1 and " + std::to_string(options_.max_k))};
  }
  if (!std::isfinite(r->min_score()) || r->min_score() < -1.0f || r->min_score() > 1.0f) {
    return {Status::InvalidArgument("min_score must be a number in [-1, 1]")};
  }
  std::span<const float> query = FloatsOf(r->vector());
  if (query.size() != rt.config().dimension) {
    return {Status::InvalidArgument("query vector has dimension " + std::to_string(query.size()) +
                                    ", org expects " + std::to_string(rt.config().dimension))};
  }
  std::string ns;
  if (r->name_space() != nullptr) ns = r->name_space()->str();
  const int64_t now = NowMs();
  rt.metrics().lookups.fetch_add(1, std::memory_order_relaxed);
  auto candidates = rt.Search(query, r->k(), r->min_score(), r->name_space() ? &ns : nullptr, now);
  if (!candidates.ok()) return {candidates.status()};
  std::vector<storage::Digest> digests;
  for (const auto& c : *candidates) digests.push_back(c.digest);
  auto entries = store_->MultiGet(rt.id(), digests, r->with_payload());
  std::vector<flatbuffers::Offset<P::Hit>> hits;
  for (size_t i = 0; i < candidates->size(); ++i) {
    const auto& c = (*candidates)[i];
    // The store is the authority: an entry replaced or removed since the search is skipped.
    // Any other failure (a damaged block) fails the lookup, as it fails a Get: a hit silently
    // left out would look like a miss.
    if (!entries[i].ok() && !entries[i].status().IsNotFound()) return {entries[i].status()};
    if (!entries[i].ok() || entries[i]->meta.vector_slot != c.slot) continue;
    const uint64_t pending = rt.CountHit(c.digest, now);
    auto meta = BuildMeta(fbb, entries[i]->meta, pending, now);
    auto payload = r->with_payload() ? fbb.CreateVector(entries[i]->payload) : 0;
    P::HitBuilder hb(fbb);
    hb.add_score(c.score);
    hb.add_meta(meta);
    if (r->with_payload()) hb.add_payload(payload);
    hits.push_back(hb.Finish());
  }
  (hits.empty() ? rt.metrics().lookup_misses : rt.metrics().lookup_hits).fetch_add(1);
  rt.metrics().lookup_latency.Observe(SecondsSince(start));
  auto v = fbb.CreateVector(hits);
  return Ok(P::ResponseBody::LookupResponse, P::CreateLookupResponse(fbb, v));
}

// ---- direct operations for fronts ------------------------------------------------------------

Status CacheServiceImpl::Update(
    const Session& s, const storage::Digest& digest,
    const std::function<Result<EntryChange>(const LiveEntry*)>& change) {
  SC_ASSIGN_OR_RETURN(OrgLease org, OrgOf(s));
  OrgRuntime& rt = *org;
  SC_ASSIGN_OR_RETURN(SessionTransaction * txn, TransactionOf(s, rt));
  auto gate = WriteGate(txn, rt);
  std::lock_guard<std::mutex> stripe(rt.StripeFor(digest));
  auto current = txn != nullptr ? txn->store->Get(digest, /*with_payload=*/true)
                                : store_->Get(rt.id(), digest, /*with_payload=*/true);
  if (!current.ok() && !current.status().IsNotFound()) return current.status();
  std::optional<LiveEntry> live;
  if (current.ok()) {
    live = LiveEntry{current->meta.expires_ms, current->meta.vector_slot != storage::kNoVectorSlot,
                     current->payload};
  }
  SC_ASSIGN_OR_RETURN(EntryChange c, change(live ? &*live : nullptr));
  switch (c.kind) {
    case EntryChange::Kind::kKeep:
      return Status::Ok();
    case EntryChange::Kind::kDelete: {
      SC_ASSIGN_OR_RETURN(storage::RemovedEntries removed, txn != nullptr
                                                               ? txn->store->Delete(digest)
                                                               : store_->Delete(rt.id(), digest));
      AfterWrite(txn, rt, digest, [&rt, removed, applied = std::move(c.on_applied)] {
        rt.OnRemoved(removed);
        rt.metrics().deletes.fetch_add(removed.count);
        if (applied) applied();
      });
      return Status::Ok();
    }
    case EntryChange::Kind::kPut: {
      storage::PutRequest put;
      put.digest = digest;
      put.payload = c.payload;
      put.vector = c.vector;
      put.ttl_ms = c.ttl_ms;
      put.keep_expiry = c.keep_expiry;
      SC_ASSIGN_OR_RETURN(storage::PutResult result,
                          txn != nullptr ? txn->store->Put(put) : store_->Put(rt.id(), put));
      if (txn == nullptr) OnEvictedElsewhere(result);  // (a transaction's: at its commit)
      AfterWrite(
          txn, rt, digest,
          [&rt, digest, result, vector = std::move(c.vector), applied = std::move(c.on_applied)] {
            rt.OnPut(digest, result, vector, "");
            rt.metrics().puts.fetch_add(1, std::memory_order_relaxed);
            if (applied) applied();
          });
      return Status::Ok();
    }
  }
  return Status::InvalidArgument("unknown change");
}

Result<storage::StoredValue> CacheServiceImpl::Read(const Session& s,
                                                    const storage::Digest& digest) {
  const auto start = std::chrono::steady_clock::now();
  SC_ASSIGN_OR_RETURN(OrgLease org, OrgOf(s));
  OrgRuntime& rt = *org;
  rt.metrics().gets.fetch_add(1, std::memory_order_relaxed);
  SC_ASSIGN_OR_RETURN(SessionTransaction * txn, TransactionOf(s, rt));
  auto value = txn != nullptr ? txn->store->GetValue(digest) : store_->GetValue(rt.id(), digest);
  rt.metrics().get_latency.Observe(SecondsSince(start));
  if (!value.ok()) {
    if (value.status().IsNotFound()) rt.metrics().get_misses.fetch_add(1);
    return value.status().IsNotFound() ? Status::NotFound("miss") : value.status();
  }
  rt.metrics().get_hits.fetch_add(1, std::memory_order_relaxed);
  rt.CountHit(digest, NowMs());
  return value;
}

Result<std::vector<Result<storage::StoredValue>>> CacheServiceImpl::ReadMany(
    const Session& s, std::span<const storage::Digest> digests) {
  const auto start = std::chrono::steady_clock::now();
  SC_ASSIGN_OR_RETURN(OrgLease org, OrgOf(s));
  OrgRuntime& rt = *org;
  SC_ASSIGN_OR_RETURN(SessionTransaction * txn, TransactionOf(s, rt));
  std::vector<Result<storage::StoredValue>> values;
  if (txn != nullptr) {  // (no other writer until its commit: one view already)
    for (const storage::Digest& d : digests) values.push_back(txn->store->GetValue(d));
  } else {
    values = store_->GetValues(rt.id(), digests);
  }
  CountReads(rt, digests, values);
  rt.metrics().get_latency.Observe(SecondsSince(start));
  return values;
}

Status CacheServiceImpl::ReadEachName(const Session& s, std::span<const std::string_view> names,
                                      const storage::Store::TakeValue& take) {
  const auto start = std::chrono::steady_clock::now();
  SC_ASSIGN_OR_RETURN(OrgLease org, OrgOf(s));
  OrgRuntime& rt = *org;
  SC_ASSIGN_OR_RETURN(SessionTransaction * txn, TransactionOf(s, rt));
  std::vector<storage::Digest> digests;
  digests.reserve(names.size());
  for (std::string_view name : names) {
    SC_ASSIGN_OR_RETURN(storage::Digest digest, store_->NameDigest(rt.id(), name));
    digests.push_back(digest);
  }
  // Counted as CountReads counts, the hits' digests kept, and given on.
  std::vector<storage::Digest> hits;
  hits.reserve(digests.size());
  auto count = [&](size_t i, const Result<storage::ValueView>& v) {
    Status answer = CountRead(rt, v.status());
    if (!answer.ok()) return take(i, answer);
    hits.push_back(digests[i]);
    take(i, v);
  };
  if (txn != nullptr) {
    for (size_t i = 0; i < digests.size(); ++i) {
      const auto v = txn->store->GetValue(digests[i]);
      count(i, storage::ViewOfValue(v));
    }
  } else {
    store_->GetValueEach(rt.id(), digests, count);
  }
  rt.CountHits(hits, NowMs());
  // Each read is a request of its own: observed at its share of the batch's time.
  const double each = SecondsSince(start) / static_cast<double>(std::max<size_t>(names.size(), 1));
  for (size_t i = 0; i < names.size(); ++i) rt.metrics().get_latency.Observe(each);
  return Status::Ok();
}

void CacheServiceImpl::CountReads(OrgRuntime& rt, std::span<const storage::Digest> digests,
                                  std::vector<Result<storage::StoredValue>>& values) {
  std::vector<storage::Digest> hits;
  hits.reserve(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    Status answer = CountRead(rt, values[i].status());
    if (answer.ok()) {
      hits.push_back(digests[i]);
    } else if (answer.IsNotFound()) {
      values[i] = std::move(answer);
    }
  }
  rt.CountHits(hits, NowMs());
}

Status CacheServiceImpl::CountRead(OrgRuntime& rt, const Status& read) {
  rt.metrics().gets.fetch_add(1, std::memory_order_relaxed);
  if (read.ok()) {
    rt.metrics().get_hits.fetch_add(1, std::memory_order_relaxed);
  } else if (read.IsNotFound()) {
    rt.metrics().get_misses.fetch_add(1, std::memory_order_relaxed);
    return Status::NotFound("miss");
  }
  return read;
}

Result<EntryPage> CacheServiceImpl::Scan(const Session& s, const storage::Digest& from,
                                         size_t count) {
  SC_ASSIGN_OR_RETURN(OrgLease org, OrgOf(s));
  EntryPage page;
  std::vector<storage::Digest> digests;
  SC_RETURN_IF_ERROR(store_->ScanMeta(
      org->id(),
      [&](const storage::EntryMeta& m) {
        if (digests.size() == count) {
          page.next = m.digest;
          return false;
        }
        digests.push_back(m.digest);
        return true;
      },
      from));
  auto entries = store_->MultiGet(org->id(), digests, /*with_payload=*/true);
  for (size_t i = 0; i < digests.size(); ++i) {
    if (entries[i].status().IsNotFound()) continue;  // removed since the scan saw it
    if (!entries[i].ok()) return entries[i].status();
    const storage::Entry& e = *entries[i];
    page.entries.push_back({digests[i], e.meta.expires_ms,
                            e.meta.vector_slot != storage::kNoVectorSlot, std::move(e.payload)});
  }
  return page;
}

Result<std::vector<SearchHit>> CacheServiceImpl::Search(const Session& s, const SearchQuery& q) {
  const auto start = std::chrono::steady_clock::now();
  SC_ASSIGN_OR_RETURN(OrgLease org, OrgOf(s));
  OrgRuntime& rt = *org;
  if (q.k == 0 || q.k > options_.max_k) {
    return Status::InvalidArgument("k must be between 1 and " + std::to_string(options_.max_k));
  }
  if (q.vector.size() != rt.config().dimension) {
    return Status::InvalidArgument("query vector has dimension " + std::to_string(q.vector.size()) +
                                   ", org expects " + std::to_string(rt.config().dimension));
  }
  const int64_t now = NowMs();
  rt.metrics().lookups.fetch_add(1, std::memory_order_relaxed);
  SC_ASSIGN_OR_RETURN(auto candidates,
                      rt.Search(q.vector, q.k, q.min_score, nullptr, now, &q.admit));
  std::vector<storage::Digest> digests;
  for (const auto& c : candidates) digests.push_back(c.digest);
  auto entries = store_->MultiGet(rt.id(), digests, /*with_payload=*/true);
  std::vector<SearchHit> hits;
  for (size_t i = 0; i < candidates.size(); ++i) {
    // As in Lookup: the store is the authority; a damaged entry fails the search.
    if (!entries[i].ok() && !entries[i].status().IsNotFound()) return entries[i].status();
    if (!entries[i].ok() || entries[i]->meta.vector_slot != candidates[i].slot) continue;
    rt.CountHit(candidates[i].digest, now);
    hits.push_back({candidates[i].score,
                    {candidates[i].digest, entries[i]->meta.expires_ms, true,
                     std::move(entries[i]->payload)}});
  }
  (hits.empty() ? rt.metrics().lookup_misses : rt.metrics().lookup_hits).fetch_add(1);
  rt.metrics().lookup_latency.Observe(SecondsSince(start));
  return hits;
}

Reply CacheServiceImpl::Delete(const Session& s, const P::DeleteRequest* r, FBB& fbb) {
  auto org = OrgOf(s);
  if (!org.ok()) return {org.status()};
  auto digest = DigestFrom(r->digest());
  if (!digest.ok()) return {digest.status()};
  OrgRuntime& rt = **org;
  auto txn = TransactionOf(s, rt);
  if (!txn.ok()) return {txn.status()};
  auto gate = WriteGate(*txn, rt);
  std::lock_guard<std::mutex> stripe(rt.StripeFor(*digest));
  auto removed =
      *txn != nullptr ? (*txn)->store->Delete(*digest) : store_->Delete(rt.id(), *digest);
  if (!removed.ok()) return {removed.status()};
  AfterWrite(*txn, rt, *digest, [&rt, gone = *removed] {
    rt.OnRemoved(gone);
    rt.metrics().deletes.fetch_add(gone.count);
  });
  return Ok(P::ResponseBody::DeleteResponse, P::CreateDeleteResponse(fbb, removed->count));
}

Reply CacheServiceImpl::SetExpiry(const Session& s, const P::SetExpiryRequest* r, FBB& fbb) {
  auto org = OrgOf(s);
  if (!org.ok()) return {org.status()};
  auto digest = DigestFrom(r->digest());
  if (!digest.ok()) return {digest.status()};
  if ((r->expires_ms() != 0) == (r->ttl_ms() != 0)) {
    return {Status::InvalidArgument("SetExpiry needs exactly one of expires_ms and ttl_ms")};
  }
  if (r->ttl_ms() < 0) return {Status::InvalidArgument("ttl_ms must be positive")};
  const int64_t expires_ms = r->ttl_ms() != 0 ? NowMs() + r->ttl_ms() : r->expires_ms();
  OrgRuntime& rt = **org;
  auto txn = TransactionOf(s, rt);
  if (!txn.ok()) return {txn.status()};
  auto gate = WriteGate(*txn, rt);
  std::lock_guard<std::mutex> stripe(rt.StripeFor(*digest));
  auto meta = *txn != nullptr ? (*txn)->store->SetExpiry(*digest, expires_ms)
                              : store_->SetExpiry(rt.id(), *digest, expires_ms);
  if (!meta.ok()) return {meta.status()};
  AfterWrite(*txn, rt, *digest,
             [&rt, d = *digest, slot = meta->vector_slot, at = meta->expires_ms] {
               rt.OnExpiryChanged(d, slot, at);
             });
  return Ok(P::ResponseBody::SetExpiryResponse, P::CreateSetExpiryResponse(fbb, meta->expires_ms));
}

Reply CacheServiceImpl::Invalidate(const Session& s, const P::InvalidateRequest* r, FBB& fbb) {
  auto org = OrgOf(s);
  if (!org.ok()) return {org.status()};
  if (s.transaction != nullptr) {
    return {Status::FailedPrecondition("invalidate is not one of a transaction's writes")};
  }
  storage::InvalidateFilter filter;
  if (r->name_space() != nullptr) filter.name_space = r->name_space()->str();
  if (r->older_than_ms() != 0) filter.older_than_ms = r->older_than_ms();
  auto gate = WriteGate(nullptr, **org);
  auto removed = store_->Invalidate((*org)->id(), filter);
  if (!removed.ok()) return {removed.status()};
  (*org)->OnRemoved(*removed);
  (*org)->metrics().deletes.fetch_add(removed->count);
  return Ok(P::ResponseBody::InvalidateResponse, P::CreateInvalidateResponse(fbb, removed->count));
}

Reply CacheServiceImpl::Stats(const Session& s, FBB& fbb) {
  auto org = OrgOf(s);
  if (!org.ok()) return {org.status()};
  OrgRuntime& rt = **org;
  auto st = store_->Stats(rt.id());
  if (!st.ok()) return {st.status()};
  auto& m = rt.metrics();
  auto name = fbb.CreateString(rt.id());
  auto policy = fbb.CreateString(storage::EvictionPolicyName(st->eviction_policy));
  P::StatsResponseBuilder b(fbb);
  b.add_org(name);
  b.add_entries(rt.live_slots() + rt.exact_only_entries());
  b.add_vectors(rt.index().Size());
  b.add_puts(m.puts);
  b.add_gets(m.gets);
  b.add_lookups(m.lookups);
  b.add_hits(m.get_hits + m.lookup_hits);
  b.add_misses(m.get_misses + m.lookup_misses);
  b.add_deletes(m.deletes);
  b.add_decrypt_failures(st->decrypt_failures + m.corrupt_answers.load());
  b.add_active_key_version(st->active_key_version);
  b.add_active_key_age_ms(st->active_key_age_ms);
  b.add_sst_bytes(st->live_sst_bytes);
  const auto segments = rt.index().Stats();
  b.add_flat_segments(static_cast<uint32_t>(segments.flat_segments));
  b.add_hnsw_segments(static_cast<uint32_t>(segments.hnsw_segments));
  b.add_index_build_failures(static_cast<uint32_t>(segments.background_failures));
  b.add_bytes(st->logical_bytes);
  b.add_max_bytes(st->limits.max_bytes);
  b.add_max_entries(st->limits.max_entries);
  b.add_eviction_policy(policy);
  b.add_evictions_org_limit(st->evictions_org_limit);
  b.add_evictions_server_limit(st->evictions_server_limit);
  return Ok(P::ResponseBody::StatsResponse, b.Finish());
}

// ---- admin operations ---------------------------------------------------------------------

Reply CacheServiceImpl::CreateOrg(const P::CreateOrgRequest* r, FBB& fbb) {
  std::unique_lock<std::mutex> admin(admin_mu_);
  std::string org(StrOf(r->org()));
  storage::OrgConfig config = ConfigFrom(*r);
  Status st = internal::ValidateOrgIndexParams(config, index_params_);
  if (st.ok()) st = crypto::ValidateOrgId(org);
  if (!st.ok()) return {st};
  ClusterView* cluster = cluster_.load();
  if (cluster != nullptr) {
    // The cluster places the org (server/CLUSTER.md): here, with an empty copy made through
    // AdoptOrg, or Moved to the node chosen, which then creates it.
    admin.unlock();
    auto uid = cluster->PlaceNewOrg(org, config);
    if (!uid.ok()) return {uid.status()};
    auto token = NewToken();
    if (!token.ok()) return {token.status()};
    st = cluster->AddToken(TokenHash(token->first),
                           {{org, token->second, NowMs()}, std::move(uid).value()});
    if (st.ok()) st = cluster->ActivateOrg(org);
    if (!st.ok()) return {st};
    return Ok(P::ResponseBody::CreateOrgResponse,
              P::CreateCreateOrgResponse(fbb, fbb.CreateString(org), fbb.CreateString(token->first),
                                         fbb.CreateString(token->second)));
  }
  st = store_->CreateOrg(org, config);
  if (!st.ok()) return {st};
  std::string log;
  auto rt = OrgRuntime::Load(*store_, org, index_params_, &log);
  if (!rt.ok()) return {rt.status()};
  auto token = NewToken();
  if (!token.ok()) return {token.status()};
  st = store_->AddToken(TokenHash(token->first), {org, token->second, 0});
  if (!st.ok()) return {st};
  {
    std::unique_lock<std::shared_mutex> lock(orgs_mu_);
    orgs_[org] = std::move(rt).value();
  }
  auto o = fbb.CreateString(org);
  auto t = fbb.CreateString(token->first);
  auto id = fbb.CreateString(token->second);
  return Ok(P::ResponseBody::CreateOrgResponse, P::CreateCreateOrgResponse(fbb, o, t, id));
}

Status CacheServiceImpl::AdoptOrgLocked(std::string_view org, const storage::OrgConfig& config) {
  if (store_->GetOrg(org).ok()) return Status::Ok();
  SC_RETURN_IF_ERROR(store_->CreateOrg(org, config));
  std::string log;
  auto rt = OrgRuntime::Load(*store_, std::string(org), index_params_, &log);
  if (!rt.ok()) {
    (void)store_->DropOrg(org);
    return rt.status();
  }
  {
    std::unique_lock<std::shared_mutex> lock(orgs_mu_);
    orgs_[std::string(org)] = std::move(rt).value();
    unavailable_orgs_.erase(std::string(org));
  }
  // Sessions of this org opened here while another node served it were never checked
  // against the revocations that node made: they say Hello again (and etcd is asked).
  std::lock_guard<std::mutex> lock(bindings_mu_);
  RevokeBindings([&](const SessionBinding& b) { return b.org == org; });
  return Status::Ok();
}

Status CacheServiceImpl::ForgetOrgLocked(std::string_view org) {
  Status dropped = DropLocal(std::string(org), /*revoke_sessions=*/false);
  return dropped.IsNotFound() ? Status::Ok() : dropped;
}

Status CacheServiceImpl::SetCluster(ClusterView* cluster) {
  if (cluster_.load() != nullptr) return Status::FailedPrecondition("the cluster is already set");
  if (cluster->FirstJoin()) SC_RETURN_IF_ERROR(PublishAdminToken(*cluster));
  cluster_.store(cluster);
  return Status::Ok();
}

Status CacheServiceImpl::PublishAdminToken(ClusterView& cluster) {
  // This node's first admin token works on every node of the cluster. It is read back from
  // its file rather than kept from its making: a start that made it and then stopped before
  // joining (a port taken, etcd unreachable) must not leave a token that works nowhere.
  const std::string path = store_->data_dir() + "/" + kAdminTokenFile;
  auto bytes = crypto::ReadWholeFile(path);
  if (!bytes.ok()) return bytes.status().IsNotFound() ? Status::Ok() : bytes.status();
  std::string token(bytes->begin(), bytes->end());
  OPENSSL_cleanse(bytes->data(), bytes->size());
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  const auto hash = TokenHash(token);
  OPENSSL_cleanse(token.data(), token.size());
  auto record = store_->FindToken(hash);
  // Revoked here before this node ever joined: nothing to publish.
  if (!record.ok()) return record.status().IsNotFound() ? Status::Ok() : record.status();
  if (!record->org.empty()) return Status::Ok();
  storage::TokenRecord published = *record;
  if (published.created_ms == 0) published.created_ms = NowMs();
  return cluster.AddToken(hash, {published, ""});
}

std::vector<std::string> CacheServiceImpl::LocalOrgs() {
  std::vector<std::string> out = store_->ListOrgs();
  std::shared_lock<std::shared_mutex> lock(orgs_mu_);
  for (const auto& [org, why] : unavailable_orgs_) {
    if (std::find(out.begin(), out.end(), org) == out.end()) out.push_back(org);
  }
  return out;
}

Status CacheServiceImpl::AdoptOrg(std::string_view org, const storage::OrgConfig& config) {
  std::lock_guard<std::mutex> admin(admin_mu_);
  return AdoptOrgLocked(org, config);
}

Status CacheServiceImpl::ForgetOrg(std::string_view org) {
  std::lock_guard<std::mutex> admin(admin_mu_);
  return ForgetOrgLocked(org);
}

Result<storage::OrgExport> CacheServiceImpl::ExportOrg(std::string_view org) {
  std::lock_guard<std::mutex> admin(admin_mu_);
  std::shared_ptr<OrgRuntime> rt;
  {
    std::shared_lock<std::shared_mutex> lock(orgs_mu_);
    if (auto it = orgs_.find(org); it != orgs_.end()) rt = it->second;
  }
  if (rt == nullptr) return Status::NotFound("org " + std::string(org) + " is not held here");
  // A snapshot of the index as it is now: the new owner loads it instead of rebuilding the
  // graphs from every vector.
  SC_RETURN_IF_ERROR(rt->WriteSnapshot(*store_, NowMs()));
  return store_->ExportOrg(org);
}

Status CacheServiceImpl::UndoExport(std::string_view org) {
  std::lock_guard<std::mutex> admin(admin_mu_);
  return store_->ReopenOrg(org);
}

Reply CacheServiceImpl::MoveOrg(const P::MoveOrgRequest* r, FBB& fbb) {
  ClusterView* cluster = cluster_.load();
  if (cluster == nullptr) return {Status::FailedPrecondition("this server is not in a cluster")};
  const std::string org(StrOf(r->org()));
  if (Status valid = crypto::ValidateOrgId(org); !valid.ok()) return {valid};
  auto moved = cluster->MoveOrg(org, StrOf(r->to_node()));
  if (!moved.ok()) return {moved.status()};
  return Ok(P::ResponseBody::MoveOrgResponse,
            P::CreateMoveOrgResponse(fbb, fbb.CreateString(moved->first), moved->second));
}

Reply CacheServiceImpl::DrainNode(const P::DrainNodeRequest* r, FBB& fbb) {
  ClusterView* cluster = cluster_.load();
  if (cluster == nullptr) return {Status::FailedPrecondition("this server is not in a cluster")};
  auto moved = cluster->DrainNode(StrOf(r->node()));
  if (!moved.ok()) return {moved.status()};
  return Ok(P::ResponseBody::DrainNodeResponse, P::CreateDrainNodeResponse(fbb, *moved));
}

Reply CacheServiceImpl::Rebalance(FBB& fbb) {
  ClusterView* cluster = cluster_.load();
  if (cluster == nullptr) return {Status::FailedPrecondition("this server is not in a cluster")};
  auto moved = cluster->Rebalance();
  if (!moved.ok()) return {moved.status()};
  return Ok(P::ResponseBody::RebalanceResponse, P::CreateRebalanceResponse(fbb, *moved));
}

Reply CacheServiceImpl::ImportOrg(const P::ImportOrgRequest* r, FBB& fbb) {
  ClusterView* cluster = cluster_.load();
  if (cluster == nullptr) return {Status::FailedPrecondition("this server is not in a cluster")};
  const std::string org(StrOf(r->org()));
  const std::string uid(StrOf(r->uid()));
  if (Status valid = crypto::ValidateOrgId(org); !valid.ok()) return {valid};
  auto done = [&] {
    return Ok(P::ResponseBody::ImportOrgResponse, P::CreateImportOrgResponse(fbb));
  };
  switch (r->phase()) {
    case P::ImportPhase::BEGIN: {
      if (Status ok = cluster->CheckImport(org, uid, r->epoch()); !ok.ok()) return {ok};
      std::lock_guard<std::mutex> admin(admin_mu_);
      if (Status staged = store_->StageImport(org); !staged.ok()) return {staged};
      return done();
    }
    case P::ImportPhase::CHUNK: {
      std::span<const uint8_t> data;
      if (r->data() != nullptr) data = {r->data()->data(), r->data()->size()};
      if (Status written = store_->WriteStaged(org, StrOf(r->file()), r->offset(), data);
          !written.ok()) {
        return {written};
      }
      return done();
    }
    case P::ImportPhase::COMMIT: {
      if (Status ok = cluster->CheckImport(org, uid, r->epoch()); !ok.ok()) return {ok};
      const P::CreateOrgRequest* c = r->config();
      if (c == nullptr || r->ring() == nullptr || r->sealed_name_key() == nullptr) {
        return {Status::InvalidArgument("an import commit needs the config, ring and name key")};
      }
      storage::OrgExport from;
      from.config = ConfigFrom(*c);
      from.config.created_ms = r->created_ms();
      from.ring.assign(r->ring()->begin(), r->ring()->end());
      from.sealed_name_key.assign(r->sealed_name_key()->begin(), r->sealed_name_key()->end());
      from.name_key_version = r->name_key_version();
      if (r->files() != nullptr) {
        for (const auto* f : *r->files()) from.files.push_back(f->str());
      }
      {
        std::lock_guard<std::mutex> admin(admin_mu_);
        if (Status imported = store_->ImportOrg(org, from); !imported.ok()) return {imported};
        std::string log;
        auto rt = OrgRuntime::Load(*store_, org, index_params_, &log);
        if (!rt.ok()) {
          (void)store_->DropOrg(org);
          return {rt.status()};
        }
        {
          std::unique_lock<std::shared_mutex> lock(orgs_mu_);
          orgs_[org] = std::move(rt).value();
          unavailable_orgs_.erase(org);
        }
        std::fprintf(stderr, "sealcached: moved here: %s\n", log.c_str());
        // Sessions of this org opened here while another node served it say Hello again.
        std::lock_guard<std::mutex> lock(bindings_mu_);
        RevokeBindings([&](const SessionBinding& b) { return b.org == org; });
      }
      if (Status noted = cluster->NoteImportedCopy(org, uid, r->epoch()); !noted.ok()) {
        return {noted};
      }
      return done();
    }
    case P::ImportPhase::ABANDON: {
      // A committed copy that is not handed over goes with the next reconcile (no record
      // gives it to this node); staged files go now.
      std::lock_guard<std::mutex> admin(admin_mu_);
      if (Status gone = store_->AbandonImport(org); !gone.ok()) return {gone};
      return done();
    }
    case P::ImportPhase::ACTIVATE: {
      if (Status fresh = cluster->RefreshOrg(org); !fresh.ok()) return {fresh};
      return done();
    }
  }
  return {Status::InvalidArgument("unknown import phase")};
}

Reply CacheServiceImpl::SetOrgLimits(const P::SetOrgLimitsRequest* r, FBB& fbb) {
  std::lock_guard<std::mutex> admin(admin_mu_);
  const std::string org(StrOf(r->org()));
  if (Status here = ServedHere(org); !here.ok()) return {here};
  storage::OrgLimits limits;
  limits.max_bytes = r->max_bytes();
  limits.max_entries = r->max_entries();
  limits.eviction_policy = StrOf(r->eviction_policy());
  auto evicted = store_->SetOrgLimits(org, limits);
  if (!evicted.ok()) return {evicted.status()};
  std::shared_ptr<OrgRuntime> rt;
  {
    std::shared_lock<std::shared_mutex> lock(orgs_mu_);
    if (auto it = orgs_.find(org); it != orgs_.end()) rt = it->second;
  }
  if (rt) rt->OnRemoved(*evicted);
  return Ok(P::ResponseBody::SetOrgLimitsResponse,
            P::CreateSetOrgLimitsResponse(fbb, evicted->count));
}

Reply CacheServiceImpl::DropOrg(const P::DropOrgRequest* r, FBB& fbb) {
  std::string org(StrOf(r->org()));
  if (ClusterView* cluster = cluster_.load(); cluster != nullptr) {
    // The owner drops it: first from the cluster (record and tokens: no node serves it from
    // now on, a node that was down deletes its copy on return), then its files and keys.
    // Not under admin_mu_: the cluster calls into this service with its own lock held.
    if (Status here = ServedHere(org); !here.ok()) return {here};
    if (Status removed = cluster->RemoveOrg(org); !removed.ok()) return {removed};
    std::lock_guard<std::mutex> admin(admin_mu_);
    Status dropped = DropLocal(org, /*revoke_sessions=*/true);
    if (dropped.IsNotFound()) {
      // The reconcile loop deleted the copy first (its record was gone): end the sessions.
      std::lock_guard<std::mutex> lock(bindings_mu_);
      RevokeBindings([&](const SessionBinding& b) { return b.org == org; });
    } else if (!dropped.ok()) {
      return {dropped};
    }
  } else {
    std::lock_guard<std::mutex> admin(admin_mu_);
    if (Status dropped = DropLocal(org, /*revoke_sessions=*/true); !dropped.ok()) return {dropped};
  }
  return Ok(P::ResponseBody::DropOrgResponse, P::CreateDropOrgResponse(fbb));
}

Status CacheServiceImpl::DropLocal(const std::string& org, bool revoke_sessions) {
  SC_RETURN_IF_ERROR(store_->DropOrg(org));
  std::shared_ptr<OrgRuntime> dropped;
  {
    std::unique_lock<std::shared_mutex> lock(orgs_mu_);
    if (auto it = orgs_.find(org); it != orgs_.end()) {
      dropped = std::move(it->second);
      orgs_.erase(it);
    }
    unavailable_orgs_.erase(org);
  }
  if (revoke_sessions) {
    std::lock_guard<std::mutex> lock(bindings_mu_);
    RevokeBindings([&](const SessionBinding& b) { return b.org == org; });
  }
  // Requests that passed their session check before the revocation finish before the drop
  // is acknowledged (and so before an org of the same name can be created).
  while (dropped && dropped->requests_in_flight() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Status::Ok();
}

Reply CacheServiceImpl::RotateKey(const P::RotateKeyRequest* r, FBB& fbb) {
  if (Status here = ServedHere(StrOf(r->org())); !here.ok()) return {here};
  auto v = store_->RotateKey(StrOf(r->org()));
  if (!v.ok()) return {v.status()};
  return Ok(P::ResponseBody::RotateKeyResponse, P::CreateRotateKeyResponse(fbb, *v));
}

// The new key first (an HSM's envelope is written beside the old one), then the keystore's
// atomic re-wrap (the commit point), then the envelopes of other keys go. A crash at any
// step leaves a keystore that opens under the old provider or the new one.
Reply CacheServiceImpl::RotateMasterKey(const P::RotateMasterKeyRequest* r, FBB& fbb) {
  std::lock_guard<std::mutex> admin(admin_mu_);
  const storage::DataLayout layout(store_->data_dir());
  crypto::MasterKeyOptions options;
  options.envelope_dir = layout.keys_dir();
  options.keystore_path = layout.keystore_path();
  options.kmip_client_cert = options_.kmip_client_cert;
  options.kmip_client_key = options_.kmip_client_key;
  options.kmip_ca = options_.kmip_ca;
  const std::string to(StrOf(r->to()));
  auto provider = crypto::MasterKeyProviderFromSpec(to, options);
  if (!provider.ok()) return {provider.status()};
  auto created = (*provider)->Create();
  if (!created.ok()) {
    key_provider_errors_.fetch_add(1, std::memory_order_relaxed);
    Status failed = created.status().WithContext("master key " + (*provider)->Describe());
    (void)store_->AuditEvent("master_key_rotation_failed",
                             {{"provider", (*provider)->Describe()}, {"error", failed.message()}});
    std::fprintf(stderr, "sealcached: master-key rotation refused: %s\n",
                 failed.ToString().c_str());
    return {failed};
  }
  for (const auto& w : created->warnings)
    std::fprintf(stderr, "sealcached: WARNING: %s\n", w.c_str());
  const crypto::FaultHook& fault = options_.store.fault_hook;
  if (Status s = crypto::ReachFaultPoint(fault, storage::kFaultMasterKeyAfterNewKey); !s.ok()) {
    return {s};
  }
  auto fingerprint = store_->RotateMasterKey(created->key, (*provider)->Describe());
  if (!fingerprint.ok()) return {fingerprint.status()};
  if (Status s = crypto::ReachFaultPoint(fault, storage::kFaultMasterKeyAfterKeystore); !s.ok()) {
    return {s};
  }
  if (Status s = crypto::RemoveMasterKeyEnvelopesExcept(layout.keys_dir(), *fingerprint); !s.ok()) {
    std::fprintf(stderr, "sealcached: master key rotated; %s\n", s.ToString().c_str());
  }
  std::fprintf(stderr, "sealcached: master key rotated to %s (fingerprint %s)\n",
               (*provider)->Describe().c_str(), fingerprint->c_str());
  return Ok(P::ResponseBody::RotateMasterKeyResponse,
            P::CreateRotateMasterKeyResponse(fbb, fbb.CreateString(*fingerprint)));
}

Reply CacheServiceImpl::KeyStatus(const P::KeyStatusRequest* r, FBB& fbb) {
  if (Status here = ServedHere(StrOf(r->org())); !here.ok()) return {here};
  auto status = store_->KeyStatus(StrOf(r->org()));
  if (!status.ok()) return {status.status()};
  std::vector<flatbuffers::Offset<P::KeyVersion>> versions;
  for (const auto& v : *status) {
    auto state = fbb.CreateString(crypto::KeyStateName(v.state));
    versions.push_back(P::CreateKeyVersion(fbb, v.version, state, v.created_ms, v.rotated_ms,
                                           v.destroyed_ms, v.live_files, v.live_bytes,
                                           v.max_expiry_ms));
  }
  auto org = fbb.CreateString(StrOf(r->org()));
  auto vv = fbb.CreateVector(versions);
  return Ok(P::ResponseBody::KeyStatusResponse, P::CreateKeyStatusResponse(fbb, org, vv));
}

Reply CacheServiceImpl::ListOrgs(const P::ListOrgsRequest* r, FBB& fbb) {
  ClusterView* cluster = cluster_.load();
  const std::string here = cluster != nullptr ? cluster->node_id() : "";
  // (org, node) -> summary: one list in a stable order across the nodes.
  std::map<std::pair<std::string, std::string>, flatbuffers::Offset<P::OrgSummary>> orgs;
  if (cluster != nullptr && !(r != nullptr && r->this_node_only())) {
    // Every other node's, as it answers for itself.
    auto peers = cluster->ListOrgsOfPeers();
    if (!peers.ok()) return {peers.status()};
    for (const auto& [node, frame] : *peers) {
      const auto* listed = frame->body_as_ListOrgsResponse();
      if (listed == nullptr || listed->orgs() == nullptr) continue;
      for (const P::OrgSummary* o : *listed->orgs()) {
        orgs[{std::string(StrOf(o->org())), node}] = P::CreateOrgSummary(
            fbb, fbb.CreateString(StrOf(o->org())), o->dimension(),
            fbb.CreateString(StrOf(o->metric())), fbb.CreateString(StrOf(o->index_kind())),
            o->created_ms(), o->hnsw_m(), o->ef_construction(), o->ef_search(), o->seal_threshold(),
            o->max_bytes(), o->max_entries(), fbb.CreateString(StrOf(o->eviction_policy())),
            o->entries(), o->bytes(), fbb.CreateString(node));
      }
    }
  }
  for (const std::string& id : store_->ListOrgs()) {
    auto c = store_->GetOrg(id);
    if (!c.ok()) continue;
    auto o = fbb.CreateString(id);
    auto m = fbb.CreateString(c->metric);
    auto k = fbb.CreateString(c->index_kind);
    auto st = store_->Stats(id);
    const std::string policy(storage::EvictionPolicyName(
        st.ok() ? st->eviction_policy : options_.store.default_eviction_policy));
    auto p = fbb.CreateString(policy);
    auto n = here.empty() ? flatbuffers::Offset<flatbuffers::String>() : fbb.CreateString(here);
    orgs[{id, here}] = P::CreateOrgSummary(
        fbb, o, c->dimension, m, k, c->created_ms, c->hnsw_m, c->ef_construction, c->ef_search,
        c->seal_threshold, c->limits.max_bytes, c->limits.max_entries, p,
        st.ok() ? st->live_entries : 0, st.ok() ? st->logical_bytes : 0, n);
  }
  std::vector<flatbuffers::Offset<P::OrgSummary>> ordered;
  for (const auto& [key, summary] : orgs) ordered.push_back(summary);
  auto v = fbb.CreateVector(ordered);
  return Ok(P::ResponseBody::ListOrgsResponse, P::CreateListOrgsResponse(fbb, v));
}

Reply CacheServiceImpl::IssueToken(const P::IssueTokenRequest* r, FBB& fbb) {
  std::string org(StrOf(r->org()));
  if (!org.empty()) {
    if (Status valid = crypto::ValidateOrgId(org); !valid.ok()) return {valid};
    if (Status here = ServedHere(org); !here.ok()) return {here};
    if (!store_->GetOrg(org).ok()) return {Status::NotFound("unknown org " + org)};
  }
  auto token = NewToken();
  if (!token.ok()) return {token.status()};
  Status st;
  if (ClusterView* cluster = cluster_.load(); cluster != nullptr) {
    std::string uid;
    if (!org.empty()) {
      auto owner = cluster->OrgUid(org);
      if (!owner.ok()) return {owner.status()};
      uid = *owner;
    }
    st = cluster->AddToken(TokenHash(token->first), {{org, token->second, NowMs()}, uid});
  } else {
    st = store_->AddToken(TokenHash(token->first), {org, token->second, 0});
  }
  if (!st.ok()) return {st};
  auto t = fbb.CreateString(token->first);
  auto id = fbb.CreateString(token->second);
  return Ok(P::ResponseBody::IssueTokenResponse, P::CreateIssueTokenResponse(fbb, t, id));
}

Reply CacheServiceImpl::RevokeToken(const P::RevokeTokenRequest* r, FBB& fbb) {
  const std::string org(StrOf(r->org())), token_id(StrOf(r->token_id()));
  if (!org.empty()) {
    if (Status valid = crypto::ValidateOrgId(org); !valid.ok()) return {valid};
    if (Status here = ServedHere(org); !here.ok()) return {here};
    if (!store_->GetOrg(org).ok()) return {Status::NotFound("unknown org " + org)};
  }
  std::lock_guard<std::mutex> lock(bindings_mu_);
  auto n = store_->RevokeTokens(org, token_id);
  if (!n.ok()) return {n.status()};
  if (ClusterView* cluster = cluster_.load(); cluster != nullptr) {
    auto shared = cluster->RevokeTokens(org, token_id);
    if (!shared.ok()) return {shared.status()};
    *n += *shared;
  }
  RevokeBindings([&](const SessionBinding& b) {
    return b.org == org && (token_id.empty() || b.token_id == token_id);
  });
  return Ok(P::ResponseBody::RevokeTokenResponse, P::CreateRevokeTokenResponse(fbb, *n));
}

// ---- metrics ------------------------------------------------------------------------------

std::string CacheServiceImpl::MetricsText() {
  std::string out;
  auto counter = [&](const std::string& name, const std::string& help) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " counter\n";
  };
  auto orgs = AllOrgs();
  auto each = [&](const std::string& name, const std::string& help, auto field) {
    counter(name, help);
    for (auto& o : orgs) {
      out += name + "{org=\"" + o->id() + "\"} " + std::to_string(field(o->metrics())) + "\n";
    }
  };
  each("sealcache_puts_total", "Entries stored.", [](auto& m) { return m.puts.load(); });
  each("sealcache_gets_total", "Exact lookups.", [](auto& m) { return m.gets.load(); });
  each("sealcache_lookups_total", "Semantic lookups.", [](auto& m) { return m.lookups.load(); });
  each("sealcache_hits_total", "Gets and lookups that returned an entry.",
       [](auto& m) { return m.get_hits.load() + m.lookup_hits.load(); });
  each("sealcache_misses_total", "Gets and lookups that returned nothing.",
       [](auto& m) { return m.get_misses.load() + m.lookup_misses.load(); });
  each("sealcache_deletes_total", "Entries deleted or invalidated.",
       [](auto& m) { return m.deletes.load(); });
  counter("sealcache_decrypt_failures_total",
          "File opens whose key or header failed, and requests answered CORRUPTION.");
  out +=
      "# HELP sealcache_key_rotation_age_seconds Age of the active key of each org.\n"
      "# TYPE sealcache_key_rotation_age_seconds gauge\n";
  std::string decrypt, age, key_age, evictions, bytes, entries, max_bytes, max_entries;
  for (auto& o : orgs) {
    auto st = store_->Stats(o->id());
    if (!st.ok()) continue;
    const std::string org = "org=\"" + o->id() + "\"";
    evictions += "sealcache_evictions_total{" + org + ",reason=\"org_limit\"} " +
                 std::to_string(st->evictions_org_limit) + "\n";
    evictions += "sealcache_evictions_total{" + org + ",reason=\"server_limit\"} " +
                 std::to_string(st->evictions_server_limit) + "\n";
    bytes += "sealcache_org_bytes{" + org + "} " + std::to_string(st->logical_bytes) + "\n";
    entries += "sealcache_org_entries{" + org + "} " + std::to_string(st->live_entries) + "\n";
    max_bytes +=
        "sealcache_org_max_bytes{" + org + "} " + std::to_string(st->limits.max_bytes) + "\n";
    max_entries +=
        "sealcache_org_max_entries{" + org + "} " + std::to_string(st->limits.max_entries) + "\n";
    decrypt += "sealcache_decrypt_failures_total{org=\"" + o->id() + "\"} " +
               std::to_string(st->decrypt_failures + o->metrics().corrupt_answers.load()) + "\n";
    age += "sealcache_key_rotation_age_seconds{org=\"" + o->id() + "\"} " +
           std::to_string(st->active_key_age_ms / 1000) + "\n";
    key_age += "sealcache_key_age_seconds{org=\"" + o->id() + "\"} " +
               std::to_string(st->active_key_age_ms / 1000) + "\n";
  }
  // Keep each family's lines together as the format requires.
  auto split = out.rfind("# HELP sealcache_key_rotation_age_seconds");
  out.insert(split, decrypt);
  out += age;
  out +=
      "# HELP sealcache_key_age_seconds Age of the active key version of each org.\n"
      "# TYPE sealcache_key_age_seconds gauge\n" +
      key_age;
  counter("sealcache_evictions_total",
          "Entries evicted to stay within a capacity limit (the org's own, or the server's).");
  out += evictions;
  auto gauge = [&](const std::string& name, const std::string& help, const std::string& lines) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n" + lines;
  };
  gauge("sealcache_org_bytes",
        "Logical bytes of the org's live entries (payload, vector, metadata).", bytes);
  gauge("sealcache_org_entries", "Live entries of the org.", entries);
  gauge("sealcache_org_max_bytes", "The org's max_bytes limit (0 = none).", max_bytes);
  gauge("sealcache_org_max_entries", "The org's max_entries limit (0 = none).", max_entries);
  gauge("sealcache_data_bytes", "Logical bytes of every org's live entries.",
        "sealcache_data_bytes " + std::to_string(store_->TotalLogicalBytes()) + "\n");
  gauge("sealcache_max_data_bytes", "The server-wide limit on sealcache_data_bytes (0 = none).",
        "sealcache_max_data_bytes " + std::to_string(options_.store.max_data_bytes) + "\n");
  counter("sealcache_key_provider_errors_total",
          "Master key provider operations that failed (a rotation that could not load or seal).");
  out +=
      "sealcache_key_provider_errors_total " + std::to_string(key_provider_errors_.load()) + "\n";
  counter("sealcache_decrypt_operations_total", "File decryption streams opened (file opens).");
  out += "sealcache_decrypt_operations_total " + std::to_string(store_->DecryptOperations()) + "\n";
  counter("sealcache_auth_failures_total", "Requests refused for a missing or wrong token.");
  out += "sealcache_auth_failures_total " + std::to_string(auth_failures_.load()) + "\n";
  counter("sealcache_connection_errors_total", "Connections closed for bad framing.");
  out += "sealcache_connection_errors_total " + std::to_string(connection_errors_.load()) + "\n";
  counter("sealcache_corruption_errors_total", "Requests that failed on corrupt stored data.");
  out += "sealcache_corruption_errors_total " + std::to_string(corruptions_.load()) + "\n";
  for (auto [name, pick] : {std::pair<const char*, int>{"sealcache_put_duration_seconds", 0},
                            {"sealcache_get_duration_seconds", 1},
                            {"sealcache_lookup_duration_seconds", 2}}) {
    out += std::string("# HELP ") + name + " Request latency.\n# TYPE " + name + " histogram\n";
    for (auto& o : orgs) {
      auto& m = o->metrics();
      auto& h = pick == 0 ? m.put_latency : pick == 1 ? m.get_latency : m.lookup_latency;
      h.Render(out, name, "org=\"" + o->id() + "\"");
    }
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<CacheService>> CacheService::Open(ServiceOptions options,
                                                         const crypto::SecretBytes& master_key) {
  return server::Open(std::move(options), master_key);
}

std::vector<uint8_t> CacheService::ErrorResponse(uint64_t id, const Status& status) {
  FBB fbb(128);
  auto msg = fbb.CreateString(status.message());
  P::ResponseBuilder rb(fbb);
  rb.add_id(id);
  rb.add_status(ToWireCode(status.code()));
  rb.add_message(msg);
  fbb.Finish(rb.Finish(), kFileIdentifier);
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

}  // namespace sealcache::server
