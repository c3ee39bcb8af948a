#include "cluster.h"

#include <cmath>
#include <cstdio>
#include <set>

#include "sealcache/crypto/atomic_file.h"
#include "sealcache/crypto/hash.h"
#include "sealcache/crypto/master_key.h"
#include "sealcache/crypto/random.h"
#include "sealcache/json.h"

namespace sealcache::server::cluster {
namespace {

constexpr char kStateFile[] = "cluster.json";
constexpr char kElection[] = "rebalancer";
constexpr char kStateCreating[] = "creating";
constexpr char kStateActive[] = "active";
constexpr size_t kNodeIdBytes = 8;
constexpr size_t kOrgUidBytes = 16;
constexpr size_t kMaxNodeId = 64;

std::string ToText(std::span<const uint8_t> b) { return crypto::ToHex(b); }

Result<std::string> RandomHex(size_t bytes) {
  SC_ASSIGN_OR_RETURN(auto b, crypto::RandomBytes(bytes));
  return ToText(b);
}

Status ValidateNodeId(std::string_view id) {
  if (id.empty() || id.size() > kMaxNodeId) {
    return Status::InvalidArgument("node id must be 1 to 64 characters");
  }
  for (char c : id) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return Status::InvalidArgument("node id may hold only [a-z0-9._-]");
  }
  return Status::Ok();
}

int64_t Int(const Json& v) { return v.is_number() ? static_cast<int64_t>(v.number()) : 0; }
std::string Str(const Json& v) { return v.is_string() ? v.string() : std::string(); }

Json ConfigJson(const storage::OrgConfig& c) {
  Json j = Json::MakeObject();
  j.Set("dimension", c.dimension)
      .Set("metric", c.metric)
      .Set("index_kind", c.index_kind)
      .Set("hnsw_m", c.hnsw_m)
      .Set("ef_construction", c.ef_construction)
      .Set("ef_search", c.ef_search)
      .Set("seal_threshold", c.seal_threshold)
      .Set("max_bytes", c.limits.max_bytes)
      .Set("max_entries", c.limits.max_entries)
      .Set("eviction_policy", c.limits.eviction_policy);
  return j;
}

storage::OrgConfig ConfigOf(const Json& j) {
  storage::OrgConfig c;
  c.dimension = static_cast<uint32_t>(Int(j["dimension"]));
  c.metric = Str(j["metric"]);
  c.index_kind = Str(j["index_kind"]);
  c.hnsw_m = static_cast<uint32_t>(Int(j["hnsw_m"]));
  c.ef_construction = static_cast<uint32_t>(Int(j["ef_construction"]));
  c.ef_search = static_cast<uint32_t>(Int(j["ef_search"]));
  c.seal_threshold = static_cast<uint32_t>(Int(j["seal_threshold"]));
  c.limits.max_bytes = static_cast<uint64_t>(Int(j["max_bytes"]));
  c.limits.max_entries = static_cast<uint64_t>(Int(j["max_entries"]));
  c.limits.eviction_policy = Str(j["eviction_policy"]);
  return c;
}

std::string EncodeOrg(const OrgRecord& r) {
  Json j = Json::MakeObject();
  j.Set("owner", r.owner)
      .Set("epoch", r.epoch)
      .Set("state", r.state)
      .Set("uid", r.uid)
      .Set("config", ConfigJson(r.config));
  return j.Dump();
}

Result<OrgRecord> DecodeOrg(const EtcdKeyValue& kv) {
  auto j = Json::Parse(kv.value);
  if (!j.ok() || !j->is_object() || Str((*j)["owner"]).empty()) {
    return Status::Corruption("cluster record " + kv.key + " is not an org record");
  }
  OrgRecord r;
  r.owner = Str((*j)["owner"]);
  r.epoch = Int((*j)["epoch"]);
  r.state = Str((*j)["state"]);
  r.uid = Str((*j)["uid"]);
  r.config = ConfigOf((*j)["config"]);
  r.mod_revision = kv.mod_revision;
  return r;
}

// A 53-bit uniform draw in (0, 1) from SHA-256(node "/" org).
double Draw(std::string_view node, std::string_view org) {
  std::string key(node);
  key += '/';
  key += org;
  const auto h = crypto::Sha256({reinterpret_cast<const uint8_t*>(key.data()), key.size()});
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | h[i];
  return (static_cast<double>(v >> 11) + 0.5) / 9007199254740992.0;  // 2^53
}

}  // namespace

std::string PlaceOrg(std::string_view org, const std::map<std::string, NodeRecord>& nodes,
                     const std::map<std::string, size_t>& owned) {
  std::string best;
  double best_score = 0;
  for (const auto& [id, node] : nodes) {
    auto it = owned.find(id);
    const double weight = 1.0 / (1.0 + static_cast<double>(it == owned.end() ? 0 : it->second));
    const double score = -weight / std::log(Draw(id, org));
    if (best.empty() || score > best_score) {
      best = id;
      best_score = score;
    }
  }
  return best;
}

// ---- construction, state file ---------------------------------------------------------------

ClusterNode::ClusterNode(const ClusterOptions& options, EtcdClient etcd, std::string state_path,
                         CacheService* service)
    : options_(options),
      etcd_(std::move(etcd)),
      state_path_(std::move(state_path)),
      service_(service) {}

ClusterNode::~ClusterNode() { Leave(); }

Result<std::unique_ptr<ClusterNode>> ClusterNode::Create(const ClusterOptions& options,
                                                         const std::string& data_dir,
                                                         CacheService* service) {
  if (options.lease_ttl_s < 2) return Status::InvalidArgument("cluster lease must be >= 2 s");
  if (options.reconcile_period_ms < 100) {
    return Status::InvalidArgument("cluster reconcile period must be >= 100 ms");
  }
  if (options.prefix.empty() || options.prefix.back() != '/') {
    return Status::InvalidArgument("cluster prefix must end with '/'");
  }
  SC_ASSIGN_OR_RETURN(EtcdClient etcd,
                      EtcdClient::Create(options.etcd_endpoint,
                                         std::chrono::milliseconds(options.etcd_timeout_ms)));
  std::unique_ptr<ClusterNode> node(
      new ClusterNode(options, std::move(etcd), data_dir + "/" + kStateFile, service));
  SC_RETURN_IF_ERROR(node->LoadState());
  return node;
}

Status ClusterNode::LoadState() {
  auto bytes = crypto::ReadWholeFile(state_path_);
  std::string stored_id;
  if (bytes.ok()) {
    auto j = Json::Parse({reinterpret_cast<const char*>(bytes->data()), bytes->size()});
    if (!j.ok() || !j->is_object()) {
      return Status::Corruption(state_path_ + " is not a cluster state file");
    }
    stored_id = Str((*j)["node_id"]);
    if ((*j)["copies"].is_object()) {
      for (const auto& [org, copy] : (*j)["copies"].object()) {
        copies_[org] = {Str(copy["uid"]), Int(copy["epoch"])};
      }
    }
  } else if (bytes.status().IsNotFound()) {
    first_join_ = true;
  } else {
    return bytes.status();
  }
  if (!options_.node_id.empty() && !stored_id.empty() && options_.node_id != stored_id) {
    return Status::InvalidArgument("--node-id " + options_.node_id + " differs from " + stored_id +
                                   ", the id this data directory joined with (" + state_path_ +
                                   ")");
  }
  node_id_ = !options_.node_id.empty() ? options_.node_id : stored_id;
  if (node_id_.empty()) {
    SC_ASSIGN_OR_RETURN(node_id_, RandomHex(kNodeIdBytes));
  }
  return ValidateNodeId(node_id_);
}

Status ClusterNode::SaveState() {
  Json copies = Json::MakeObject();
  for (const auto& [org, copy] : copies_) {
    copies.Set(org, Json::MakeObject().Set("uid", copy.uid).Set("epoch", copy.epoch));
  }
  const std::string text =
      Json::MakeObject().Set("node_id", node_id_).Set("copies", std::move(copies)).Dump() + "\n";
  return crypto::WriteFileAtomically(state_path_,
                                     {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

std::string ClusterNode::OrgKey(std::string_view org) const {
  return options_.prefix + "orgs/" + std::string(org);
}
std::string ClusterNode::NodeKey(std::string_view node) const {
  return options_.prefix + "nodes/" + std::string(node);
}
std::string ClusterNode::TokenKey(std::span<const uint8_t> hash) const {
  return options_.prefix + "tokens/" + ToText(hash);
}

// ---- membership ------------------------------------------------------------------------------

Status ClusterNode::Register() {
  const auto sent = Clock::now();
  SC_ASSIGN_OR_RETURN(auto lease, etcd_.GrantLease(options_.lease_ttl_s));
  const std::string record = Json::MakeObject()
                                 .Set("id", node_id_)
                                 .Set("native", native_address_)
                                 .Set("resp", resp_address_)
                                 .Dump();
  SC_RETURN_IF_ERROR(etcd_.Put(NodeKey(node_id_), record, lease.first));
  std::lock_guard<std::mutex> lock(mu_);
  lease_ = lease.first;
  // Counted from before the grant was sent: etcd's own clock starts later, so this node
  // stops serving before etcd can let the lease go.
  lease_alive_until_ = sent + std::chrono::seconds(lease.second);
  view_fresh_ = false;
  return Status::Ok();
}

Status ClusterNode::CheckCanJoin() {
  if (first_join_) {
    // Joining deletes every copy no record gives this node: a data directory that already
    // holds orgs is not silently emptied.
    const auto held = service_->LocalOrgs();
    if (!held.empty()) {
      std::string names;
      for (const auto& org : held) names += (names.empty() ? "" : ", ") + org;
      return Status::FailedPrecondition(
          "this data directory holds orgs (" + names +
          ") and has never been part of a cluster; joining would delete them. Start the node "
          "with an empty data directory (server/CLUSTER.md)");
    }
  }
  return Status::Ok();
}

Status ClusterNode::Join(const std::string& native_address, const std::string& resp_address) {
  native_address_ = native_address;
  resp_address_ = resp_address;
  SC_RETURN_IF_ERROR(CheckCanJoin());
  {
    std::lock_guard<std::mutex> lock(copies_mu_);
    SC_RETURN_IF_ERROR(SaveState());
  }
  SC_RETURN_IF_ERROR(Register());
  SC_RETURN_IF_ERROR(Reconcile());
  {
    std::lock_guard<std::mutex> lock(mu_);
    joined_ = true;
    first_join_ = false;
  }
  std::fprintf(stderr, "sealcached: cluster: joined as node %s through etcd at %s\n",
               node_id_.c_str(), etcd_.Describe().c_str());
  lease_thread_ = std::thread([this] { LeaseLoop(); });
  reconcile_thread_ = std::thread([this] { ReconcileLoop(); });
  return Status::Ok();
}

void ClusterNode::Leave() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  stop_cv_.notify_all();
  for (std::thread* t : {&lease_thread_, &reconcile_thread_}) {
    if (t->joinable()) t->join();
  }
  int64_t lease = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    lease = lease_;
    joined_ = false;
  }
  if (lease != 0) (void)etcd_.RevokeLease(lease);
}

bool ClusterNode::Sleep(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(stop_mu_);
  return !stop_cv_.wait_for(lock, d, [this] { return stopping_; });
}

bool ClusterNode::LeaseAlive(Clock::time_point now) const {
  return lease_ != 0 && now < lease_alive_until_;
}

void ClusterNode::LeaseLoop() {
  const auto period = std::chrono::milliseconds(options_.lease_ttl_s * 1000 / 3);
  while (Sleep(period)) {
    int64_t lease = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      lease = lease_;
    }
    const auto sent = Clock::now();
    auto ttl = etcd_.KeepAlive(lease);
    if (ttl.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (lease_ == lease) lease_alive_until_ = sent + std::chrono::seconds(*ttl);
      continue;
    }
    if (!ttl.status().IsNotFound()) continue;  // etcd unreachable: retry; serving stops in time
    // The lease is gone (this process was paused, or cut off, past its TTL): its orgs may
    // have moved. Register again; nothing is served until the records are read again.
    leases_lost_.fetch_add(1, std::memory_order_relaxed);
    std::fprintf(stderr, "sealcached: cluster: lease lost; registering again\n");
    if (Status s = Register(); !s.ok()) {
      std::fprintf(stderr, "sealcached: cluster: %s\n", s.ToString().c_str());
    }
  }
}

void ClusterNode::ReconcileLoop() {
  while (Sleep(std::chrono::milliseconds(options_.reconcile_period_ms))) {
    if (Status s = Reconcile(); !s.ok()) {
      std::fprintf(stderr, "sealcached: cluster: reconcile: %s\n", s.ToString().c_str());
    }
  }
}

bool ClusterNode::StandForRebalancer(int64_t lease) {
  // Asked at every reconcile, so a node acts as rebalancer only on an answer from etcd
  // newer than one reconcile period (a leader keeps leading until its lease ends).
  auto won = etcd_.Stand(options_.prefix + kElection, lease, node_id_);
  std::lock_guard<std::mutex> lock(mu_);
  const bool was = leader_lease_ == lease && lease != 0;
  if (!won.ok() || lease != lease_ || !LeaseAlive(Clock::now())) {
    leader_lease_ = 0;
  } else {
    leader_lease_ = *won ? lease : 0;
  }
  const bool leading = leader_lease_ != 0;
  if (leading != was) {
    std::fprintf(stderr, "sealcached: cluster: node %s %s the rebalancer\n", node_id_.c_str(),
                 leading ? "leads" : "no longer leads");
  }
  return leading;
}

// ---- reconcile -------------------------------------------------------------------------------

Result<std::map<std::string, OrgRecord>> ClusterNode::ReadOrgs() const {
  SC_ASSIGN_OR_RETURN(auto kvs, etcd_.GetPrefix(options_.prefix + "orgs/"));
  std::map<std::string, OrgRecord> orgs;
  const size_t skip = options_.prefix.size() + 5;  // "orgs/"
  for (const auto& kv : kvs) {
    auto record = DecodeOrg(kv);
    if (!record.ok()) {
      std::fprintf(stderr, "sealcached: cluster: %s\n", record.status().ToString().c_str());
      continue;
    }
    orgs.emplace(kv.key.substr(skip), std::move(record).value());
  }
  return orgs;
}

Status ClusterNode::WriteOrg(const std::string& org, const OrgRecord& record, int64_t mod_revision,
                             bool* written) const {
  SC_ASSIGN_OR_RETURN(*written, etcd_.PutIf(OrgKey(org), EncodeOrg(record), mod_revision));
  return Status::Ok();
}

Status ClusterNode::HoldCopy(const std::string& org, const OrgRecord& record, bool here) {
  auto it = copies_.find(org);
  if (here && it != copies_.end() && it->second.uid == record.uid &&
      it->second.epoch == record.epoch) {
    return Status::Ok();
  }
  // Another incarnation, or an earlier epoch of this one (entries written elsewhere since
  // would be stale here): deleted, keys and all, and held again empty under new keys.
  if (here) SC_RETURN_IF_ERROR(service_->ForgetOrg(org));
  {
    std::lock_guard<std::mutex> lock(mu_);
    copies_.erase(org);
  }
  SC_RETURN_IF_ERROR(service_->AdoptOrg(org, record.config));
  {
    std::lock_guard<std::mutex> lock(mu_);
    copies_[org] = {record.uid, record.epoch};
  }
  SC_RETURN_IF_ERROR(SaveState());
  std::fprintf(stderr, "sealcached: cluster: holding org %s (epoch %lld), empty\n", org.c_str(),
               static_cast<long long>(record.epoch));
  return Status::Ok();
}

Status ClusterNode::DropCopy(const std::string& org) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    copies_.erase(org);
  }
  SC_RETURN_IF_ERROR(service_->ForgetOrg(org));
  copies_deleted_.fetch_add(1, std::memory_order_relaxed);
  SC_RETURN_IF_ERROR(SaveState());
  std::fprintf(stderr, "sealcached: cluster: deleted this node's copy of org %s (not its owner)\n",
               org.c_str());
  return Status::Ok();
}

Status ClusterNode::Reconcile() {
  // Held from before the records are read: a create-org placed here meanwhile would
  // otherwise look like a copy no record names, and be deleted.
  std::lock_guard<std::mutex> copies(copies_mu_);
  int64_t lease = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    lease = lease_;
  }
  SC_ASSIGN_OR_RETURN(auto node_kvs, etcd_.GetPrefix(options_.prefix + "nodes/"));
  std::map<std::string, NodeRecord> nodes;
  for (const auto& kv : node_kvs) {
    auto j = Json::Parse(kv.value);
    if (!j.ok() || Str((*j)["id"]).empty()) continue;
    NodeRecord n{Str((*j)["id"]), Str((*j)["native"]), Str((*j)["resp"])};
    nodes.emplace(n.id, std::move(n));
  }
  SC_ASSIGN_OR_RETURN(auto orgs, ReadOrgs());

  if (lease != 0 && StandForRebalancer(lease)) {
    Reassign(nodes, orgs);
    SC_ASSIGN_OR_RETURN(orgs, ReadOrgs());
  }

  Status first;
  {
    // Listed once: only this loop (under copies_mu_) adds or deletes copies meanwhile.
    const auto listed = service_->LocalOrgs();
    const std::set<std::string> held(listed.begin(), listed.end());
    for (const auto& [org, record] : orgs) {
      if (record.owner != node_id_) continue;
      if (Status s = HoldCopy(org, record, held.contains(org)); !s.ok() && first.ok()) first = s;
    }
    for (const std::string& org : held) {
      auto it = orgs.find(org);
      if (it != orgs.end() && it->second.owner == node_id_) continue;
      if (Status s = DropCopy(org); !s.ok() && first.ok()) first = s;
    }
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(copies_, [&](const auto& c) { return !orgs.contains(c.first); });
  }
  std::lock_guard<std::mutex> lock(mu_);
  nodes_ = std::move(nodes);
  orgs_.clear();
  for (auto& [org, record] : orgs) orgs_.emplace(org, std::move(record));
  // Fresh only when read entirely under the lease this node still has.
  if (lease_ == lease) view_fresh_ = first.ok();
  return first;
}

void ClusterNode::Reassign(const std::map<std::string, NodeRecord>& nodes,
                           const std::map<std::string, OrgRecord>& orgs) {
  if (nodes.empty()) return;
  std::map<std::string, size_t> owned;
  for (const auto& [org, r] : orgs) ++owned[r.owner];
  for (const auto& [org, record] : orgs) {
    if (nodes.contains(record.owner)) continue;
    OrgRecord moved = record;
    moved.owner = PlaceOrg(org, nodes, owned);
    moved.epoch = record.epoch + 1;
    bool written = false;
    Status s = WriteOrg(org, moved, record.mod_revision, &written);
    if (!s.ok()) {
      std::fprintf(stderr, "sealcached: cluster: failover of org %s: %s\n", org.c_str(),
                   s.ToString().c_str());
      continue;
    }
    if (!written) continue;  // changed meanwhile: the next pass sees it
    ++owned[moved.owner];
    failovers_.fetch_add(1, std::memory_order_relaxed);
    std::fprintf(stderr,
                 "sealcached: cluster: org %s failed over from node %s to node %s (epoch %lld)\n",
                 org.c_str(), record.owner.c_str(), moved.owner.c_str(),
                 static_cast<long long>(moved.epoch));
  }
}

std::string ClusterNode::MetricsText() const {
  bool alive = false, leading = false;
  uint64_t owned = 0, nodes = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    alive = joined_ && LeaseAlive(Clock::now());
    leading = alive && leader_lease_ == lease_;
    nodes = nodes_.size();
    for (const auto& [org, record] : orgs_) owned += record.owner == node_id_ ? 1 : 0;
  }
  std::string out;
  auto line = [&out](const char* name, const char* type, const char* help, uint64_t value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
           name + " " + std::to_string(value) + "\n";
  };
  line("sealcache_cluster_lease_alive", "gauge",
       "1 while this node's etcd lease is known to be alive (it serves only then).", alive);
  line("sealcache_cluster_rebalancer", "gauge", "1 while this node leads the rebalancer.", leading);
  line("sealcache_cluster_orgs_owned", "gauge", "Orgs the records name this node the owner of.",
       owned);
  line("sealcache_cluster_nodes", "gauge", "Live nodes in this node's view of the records.", nodes);
  line("sealcache_cluster_failovers_total", "counter",
       "Orgs this node reassigned from a node whose lease ended, as rebalancer.",
       failovers_.load());
  line("sealcache_cluster_redirects_total", "counter",
       "Requests answered MOVED: the org is served by another node.", redirects_.load());
  line("sealcache_cluster_copies_deleted_total", "counter",
       "Copies of orgs deleted here because no record gives them to this node.",
       copies_deleted_.load());
  line("sealcache_cluster_leases_lost_total", "counter",
       "Times this node found its lease gone (paused or cut off past its TTL).",
       leases_lost_.load());
  return out;
}

// ---- the serving rule ------------------------------------------------------------------------

Status ClusterNode::CheckServing(std::string_view org, std::string_view org_uid) {
  // The view is at most one reconcile period old. An org it does not know (created a
  // moment ago), an incarnation it does not know (created again) or an owner it does not
  // know (a node that just joined) is read from etcd once before the answer.
  Status answer = ServingFromView(org, org_uid, /*final_answer=*/false);
  if (answer.ok() || !answer.IsNotFound()) return answer;
  auto kv = etcd_.Get(OrgKey(org));
  if (!kv.ok()) return kv.status().IsNotFound() ? answer : kv.status();
  SC_ASSIGN_OR_RETURN(OrgRecord record, DecodeOrg(*kv));
  std::optional<NodeRecord> owner;
  if (auto node = etcd_.Get(NodeKey(record.owner)); node.ok()) {
    auto j = Json::Parse(node->value);
    if (j.ok()) owner = NodeRecord{record.owner, Str((*j)["native"]), Str((*j)["resp"])};
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = orgs_.find(org);
    if (it == orgs_.end() || it->second.mod_revision < record.mod_revision) {
      orgs_.insert_or_assign(std::string(org), record);
    }
    if (owner) nodes_.try_emplace(owner->id, *owner);
  }
  return ServingFromView(org, org_uid, /*final_answer=*/true);
}

Status ClusterNode::ServingFromView(std::string_view org, std::string_view org_uid,
                                    bool final_answer) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!joined_) return Status::Unavailable("this node is joining the cluster; retry");
  if (!LeaseAlive(Clock::now()) || !view_fresh_) {
    return Status::Unavailable("this node's cluster lease is not known to be alive; retry");
  }
  auto it = orgs_.find(org);
  if (it == orgs_.end()) return Status::NotFound("unknown org " + std::string(org));
  const OrgRecord& record = it->second;
  if (!org_uid.empty() && record.uid != org_uid) {
    return Status::NotFound("org " + std::string(org) + " was dropped");
  }
  if (record.owner != node_id_) {
    auto node = nodes_.find(record.owner);
    if (node == nodes_.end()) {
      if (!final_answer) return Status::NotFound("the owner of org " + std::string(org));
      return Status::Unavailable("the node of org " + std::string(org) +
                                 " is down; it moves to another node within the lease time");
    }
    redirects_.fetch_add(1, std::memory_order_relaxed);
    return Status::Moved(node->second.native_address + " " + node->second.resp_address);
  }
  auto copy = copies_.find(std::string(org));
  if (copy == copies_.end() || copy->second.uid != record.uid ||
      copy->second.epoch != record.epoch) {
    return Status::Unavailable("org " + std::string(org) + " is being loaded on this node; retry");
  }
  return Status::Ok();
}

Result<std::string> ClusterNode::OrgUid(std::string_view org) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = orgs_.find(org);
  if (it == orgs_.end()) return Status::NotFound("unknown org " + std::string(org));
  return it->second.uid;
}

// ---- admin ------------------------------------------------------------------------------------

Result<std::string> ClusterNode::PlaceNewOrg(std::string_view org_view,
                                             const storage::OrgConfig& config) {
  const std::string org(org_view);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!joined_ || !LeaseAlive(Clock::now()) || !view_fresh_) {
      return Status::Unavailable("this node's cluster lease is not known to be alive; retry");
    }
  }
  auto existing = etcd_.Get(OrgKey(org));
  if (!existing.ok() && !existing.status().IsNotFound()) return existing.status();
  OrgRecord record;
  if (existing.ok()) {
    SC_ASSIGN_OR_RETURN(record, DecodeOrg(*existing));
    if (record.state != kStateCreating) return Status::AlreadyExists("org " + org + " exists");
  } else {
    std::map<std::string, NodeRecord> nodes;
    std::map<std::string, size_t> owned;
    {
      std::lock_guard<std::mutex> lock(mu_);
      nodes = nodes_;
      for (const auto& [o, r] : orgs_) ++owned[r.owner];
    }
    nodes.try_emplace(node_id_, NodeRecord{node_id_, native_address_, resp_address_});
    record.owner = PlaceOrg(org, nodes, owned);
    record.epoch = 1;
    record.state = kStateCreating;
    SC_ASSIGN_OR_RETURN(record.uid, RandomHex(kOrgUidBytes));
    record.config = config;
    bool written = false;
    SC_RETURN_IF_ERROR(WriteOrg(org, record, 0, &written));
    if (!written) return Status::AlreadyExists("org " + org + " exists");
    SC_ASSIGN_OR_RETURN(auto stored, etcd_.Get(OrgKey(org)));
    record.mod_revision = stored.mod_revision;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    orgs_[org] = record;
    if (record.owner != node_id_) {
      auto node = nodes_.find(record.owner);
      if (node == nodes_.end()) {
        return Status::Unavailable("the node chosen for org " + org + " is down; retry");
      }
      return Status::Moved(node->second.native_address + " " + node->second.resp_address);
    }
  }
  std::lock_guard<std::mutex> copies(copies_mu_);
  const auto held = service_->LocalOrgs();
  SC_RETURN_IF_ERROR(HoldCopy(org, record, std::find(held.begin(), held.end(), org) != held.end()));
  return record.uid;
}

Status ClusterNode::ActivateOrg(std::string_view org_view) {
  const std::string org(org_view);
  SC_ASSIGN_OR_RETURN(auto kv, etcd_.Get(OrgKey(org)));
  SC_ASSIGN_OR_RETURN(OrgRecord record, DecodeOrg(kv));
  if (record.state == kStateActive) return Status::Ok();
  record.state = kStateActive;
  bool written = false;
  SC_RETURN_IF_ERROR(WriteOrg(org, record, kv.mod_revision, &written));
  if (!written) return Status::Unavailable("org " + org + " changed while it was created; retry");
  std::lock_guard<std::mutex> lock(mu_);
  orgs_[org] = record;
  return Status::Ok();
}

Status ClusterNode::RemoveOrg(std::string_view org_view) {
  const std::string org(org_view);
  auto kv = etcd_.Get(OrgKey(org));
  if (!kv.ok()) {
    return kv.status().IsNotFound() ? Status::NotFound("unknown org " + org) : kv.status();
  }
  SC_ASSIGN_OR_RETURN(OrgRecord record, DecodeOrg(*kv));
  if (record.owner != node_id_) return Status::Unavailable("org " + org + " moved; retry");
  SC_ASSIGN_OR_RETURN(bool deleted, etcd_.DeleteIf(OrgKey(org), kv->mod_revision));
  if (!deleted) return Status::Unavailable("org " + org + " changed while it was dropped; retry");
  SC_RETURN_IF_ERROR(RevokeTokens(org, "").status());
  std::lock_guard<std::mutex> copies(copies_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    orgs_.erase(org);
    copies_.erase(org);
  }
  return SaveState();
}

// ---- tokens -------------------------------------------------------------------------------------

Status ClusterNode::AddToken(std::span<const uint8_t> token_hash, const ClusterToken& token) {
  const std::string value = Json::MakeObject()
                                .Set("org", token.record.org)
                                .Set("token_id", token.record.token_id)
                                .Set("created_ms", token.record.created_ms)
                                .Set("org_uid", token.org_uid)
                                .Dump();
  return etcd_.Put(TokenKey(token_hash), value);
}

Result<ClusterToken> ClusterNode::FindToken(std::span<const uint8_t> token_hash) {
  auto kv = etcd_.Get(TokenKey(token_hash));
  if (!kv.ok()) {
    return kv.status().IsNotFound() ? Status::NotFound("invalid or revoked token") : kv.status();
  }
  auto j = Json::Parse(kv->value);
  if (!j.ok() || !j->is_object()) return Status::Corruption("cluster token record is unreadable");
  ClusterToken t;
  t.record.org = Str((*j)["org"]);
  t.record.token_id = Str((*j)["token_id"]);
  t.record.created_ms = Int((*j)["created_ms"]);
  t.org_uid = Str((*j)["org_uid"]);
  return t;
}

Result<uint64_t> ClusterNode::RevokeTokens(std::string_view org, std::string_view token_id) {
  SC_ASSIGN_OR_RETURN(auto kvs, etcd_.GetPrefix(options_.prefix + "tokens/"));
  uint64_t revoked = 0;
  for (const auto& kv : kvs) {
    auto j = Json::Parse(kv.value);
    if (!j.ok() || Str((*j)["org"]) != org) continue;
    if (!token_id.empty() && Str((*j)["token_id"]) != token_id) continue;
    SC_RETURN_IF_ERROR(etcd_.Delete(kv.key));
    ++revoked;
  }
  return revoked;
}

}  // namespace sealcache::server::cluster
