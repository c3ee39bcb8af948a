#include "cluster.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <set>

#include "sealcache/client/client.h"
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
constexpr char kStateMoving[] = "moving";
// A planned move streams files in pieces of this size (well under the frame limit).
constexpr size_t kMoveChunkBytes = 512u << 10;
// A peer that stops answering during a move fails it after this long.
constexpr int64_t kMoveCallTimeoutMs = 30'000;
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
      .Set("target", r.target)
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
  r.target = Str((*j)["target"]);
  r.uid = Str((*j)["uid"]);
  r.config = ConfigOf((*j)["config"]);
  r.mod_revision = kv.mod_revision;
  return r;
}

// A node record as the node writes it (Register); nullopt if it is not one.
std::optional<NodeRecord> DecodeNode(const std::string& value) {
  auto j = Json::Parse(value);
  if (!j.ok() || Str((*j)["id"]).empty()) return std::nullopt;
  return NodeRecord{Str((*j)["id"]), Str((*j)["native"]), Str((*j)["resp"]),
                    (*j)["draining"].is_bool() && (*j)["draining"].boolean()};
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
                                 .Set("draining", draining_.load())
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
  SC_ASSIGN_OR_RETURN(auto nodes, ReadNodes());
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
      // A copy moved here, kept until the owner hands it over (or gives up: then the
      // record no longer names this node, and the next pass deletes it).
      if (it != orgs.end() && it->second.state == kStateMoving && it->second.target == node_id_) {
        continue;
      }
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
  const auto placeable = Placeable(nodes);
  std::map<std::string, size_t> owned;
  for (const auto& [org, r] : orgs) ++owned[r.owner];
  for (const auto& [org, record] : orgs) {
    if (nodes.contains(record.owner)) continue;
    OrgRecord moved = record;
    moved.owner = PlaceOrg(org, placeable, owned);
    if (moved.state == kStateMoving) {
      // The owner died while moving it: the copy it was streaming is not complete.
      moved.state = kStateActive;
      moved.target.clear();
    }
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
  line("sealcache_cluster_moves_out_total", "counter",
       "Orgs this node handed over to another node in a planned move.", moves_out_.load());
  line("sealcache_cluster_moves_in_total", "counter",
       "Orgs moved to this node whose copy it committed.", moves_in_.load());
  line("sealcache_cluster_moves_failed_total", "counter",
       "Planned moves from this node that failed and were undone.", moves_failed_.load());
  line("sealcache_cluster_move_bytes_total", "counter",
       "Bytes of org files this node streamed out in planned moves.", move_bytes_.load());
  return out;
}

// ---- the serving rule ------------------------------------------------------------------------

Status ClusterNode::CheckServing(std::string_view org, std::string_view org_uid) {
  // The view is at most one reconcile period old. An org it does not know (created a
  // moment ago), an incarnation it does not know (created again) or an owner it does not
  // know (a node that just joined) is read from etcd once before the answer.
  Status answer = ServingFromView(org, org_uid, /*final_answer=*/false);
  if (answer.ok() || !answer.IsNotFound()) return answer;
  auto record = ReadOrg(std::string(org));
  if (!record.ok()) return record.status().IsNotFound() ? answer : record.status();
  std::optional<NodeRecord> owner;
  if (auto node = etcd_.Get(NodeKey(record->owner)); node.ok()) owner = DecodeNode(node->value);
  if (owner) {
    std::lock_guard<std::mutex> lock(mu_);
    nodes_.try_emplace(owner->id, *owner);
  }
  RememberOrg(std::string(org), std::move(record).value());
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
  if (record.owner == node_id_ && record.state == kStateMoving) {
    return Status::Unavailable("org " + std::string(org) + " is moving to node " + record.target +
                               "; retry");
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
    // The nodes as etcd has them now, not as of the last reconcile: a node that joined or
    // started draining a moment ago counts (creates are rare).
    SC_ASSIGN_OR_RETURN(auto nodes, ReadNodes());
    std::map<std::string, size_t> owned;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [id, node] : nodes) nodes_.insert_or_assign(id, node);
      for (const auto& [o, r] : orgs_) ++owned[r.owner];
    }
    nodes.try_emplace(node_id_,
                      NodeRecord{node_id_, native_address_, resp_address_, draining_.load()});
    record.owner = PlaceOrg(org, Placeable(std::move(nodes)), owned);
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
  SC_ASSIGN_OR_RETURN(OrgRecord record, ReadOrg(org));
  if (record.state == kStateActive) return Status::Ok();
  record.state = kStateActive;
  bool written = false;
  SC_RETURN_IF_ERROR(WriteOrg(org, record, record.mod_revision, &written));
  if (!written) return Status::Unavailable("org " + org + " changed while it was created; retry");
  std::lock_guard<std::mutex> lock(mu_);
  orgs_[org] = record;
  return Status::Ok();
}

Status ClusterNode::RemoveOrg(std::string_view org_view) {
  const std::string org(org_view);
  SC_ASSIGN_OR_RETURN(OrgRecord record, ReadOrg(org));
  if (record.owner != node_id_) return Status::Unavailable("org " + org + " moved; retry");
  SC_ASSIGN_OR_RETURN(bool deleted, etcd_.DeleteIf(OrgKey(org), record.mod_revision));
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

// ---- planned moves ---------------------------------------------------------------------------

std::map<std::string, NodeRecord> ClusterNode::Placeable(std::map<std::string, NodeRecord> nodes) {
  std::map<std::string, NodeRecord> open;
  for (const auto& [id, node] : nodes) {
    if (!node.draining) open.emplace(id, node);
  }
  return open.empty() ? nodes : open;
}

Result<std::map<std::string, NodeRecord>> ClusterNode::ReadNodes() const {
  SC_ASSIGN_OR_RETURN(auto node_kvs, etcd_.GetPrefix(options_.prefix + "nodes/"));
  std::map<std::string, NodeRecord> nodes;
  for (const auto& kv : node_kvs) {
    if (auto node = DecodeNode(kv.value)) nodes.emplace(node->id, std::move(*node));
  }
  return nodes;
}

Result<OrgRecord> ClusterNode::ReadOrg(const std::string& org) const {
  auto kv = etcd_.Get(OrgKey(org));
  if (!kv.ok()) {
    return kv.status().IsNotFound() ? Status::NotFound("unknown org " + org) : kv.status();
  }
  return DecodeOrg(*kv);
}

void ClusterNode::RememberOrg(const std::string& org, OrgRecord record) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = orgs_.find(org);
  if (it == orgs_.end() || it->second.mod_revision < record.mod_revision) {
    orgs_.insert_or_assign(org, std::move(record));
  }
}

Result<bool> ClusterNode::SwapOrg(const std::string& org, OrgRecord record, int64_t mod_revision) {
  bool written = false;
  SC_RETURN_IF_ERROR(WriteOrg(org, record, mod_revision, &written));
  if (!written) return false;
  SC_ASSIGN_OR_RETURN(OrgRecord stored, ReadOrg(org));
  RememberOrg(org, std::move(stored));
  return true;
}

Result<std::pair<std::string, uint64_t>> ClusterNode::MoveOrg(std::string_view org_view,
                                                              std::string_view to_view) {
  const std::string org(org_view), to_id(to_view);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!joined_ || !LeaseAlive(Clock::now())) {
      return Status::Unavailable("this node's cluster lease is not known to be alive; retry");
    }
  }
  std::lock_guard<std::mutex> one_move(move_mu_);
  SC_ASSIGN_OR_RETURN(OrgRecord record, ReadOrg(org));
  SC_ASSIGN_OR_RETURN(auto nodes, ReadNodes());
  if (record.owner != node_id_) {
    auto owner = nodes.find(record.owner);
    if (owner == nodes.end()) {
      return Status::Unavailable("the node of org " + org + " is down; retry");
    }
    return Status::Moved(owner->second.native_address + " " + owner->second.resp_address);
  }
  if (record.state != kStateActive) {
    return Status::FailedPrecondition("org " + org + " is " + record.state + "; retry later");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto copy = copies_.find(org);
    if (copy == copies_.end() || copy->second.uid != record.uid ||
        copy->second.epoch != record.epoch) {
      return Status::Unavailable("org " + org + " is being loaded on this node; retry");
    }
  }
  nodes.erase(node_id_);
  std::string target = to_id;
  if (target.empty()) {
    std::map<std::string, size_t> owned;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [o, r] : orgs_) ++owned[r.owner];
    }
    target = PlaceOrg(org, Placeable(nodes), owned);
    if (target.empty())
      return Status::FailedPrecondition("no other live node to move org " + org + " to");
  } else if (target == node_id_) {
    return Status::InvalidArgument("org " + org + " is on node " + target + " already");
  }
  auto to = nodes.find(target);
  if (to == nodes.end()) return Status::NotFound("no live node " + target);

  // From here on the org answers Unavailable (retry) until the hand-over or the undo.
  OrgRecord moving = record;
  moving.state = kStateMoving;
  moving.target = target;
  SC_ASSIGN_OR_RETURN(bool marked, SwapOrg(org, moving, record.mod_revision));
  if (!marked) return Status::Unavailable("org " + org + " changed while it was moved; retry");
  {
    std::lock_guard<std::mutex> lock(mu_);
    moving.mod_revision = orgs_.at(org).mod_revision;
  }
  std::fprintf(stderr, "sealcached: cluster: moving org %s to node %s\n", org.c_str(),
               target.c_str());
  auto bytes = StreamAndHandOver(org, moving, to->second);
  if (!bytes.ok()) {
    moves_failed_.fetch_add(1, std::memory_order_relaxed);
    std::fprintf(stderr, "sealcached: cluster: move of org %s to node %s failed: %s\n", org.c_str(),
                 target.c_str(), bytes.status().ToString().c_str());
    return bytes.status().WithContext("moving org " + org + " to node " + target);
  }
  moves_out_.fetch_add(1, std::memory_order_relaxed);
  move_bytes_.fetch_add(*bytes, std::memory_order_relaxed);
  std::fprintf(stderr, "sealcached: cluster: org %s handed over to node %s (%llu bytes)\n",
               org.c_str(), target.c_str(), static_cast<unsigned long long>(*bytes));
  return std::make_pair(target, *bytes);
}

Result<uint64_t> ClusterNode::StreamAndHandOver(const std::string& org, OrgRecord moving,
                                                const NodeRecord& to) {
  namespace P = ::sealcache::protocol;
  const int64_t next_epoch = moving.epoch + 1;
  std::unique_ptr<PeerSession> peer;
  bool exported = false;
  // Undoes what was done when the move cannot finish: the new node drops what it staged (a
  // copy it committed goes with its next reconcile, as the record no longer names it), the
  // org reopens here and its record is active here again.
  auto undo = [&](Status why) -> Status {
    if (peer != nullptr) {
      (void)peer->client->Call([&](flatbuffers::FlatBufferBuilder& fbb) {
        auto o = fbb.CreateString(org);
        P::ImportOrgRequestBuilder b(fbb);
        b.add_phase(P::ImportPhase::ABANDON);
        b.add_org(o);
        return std::make_pair(P::RequestBody::ImportOrgRequest, b.Finish().Union());
      });
    }
    if (exported) {
      if (Status s = service_->UndoExport(org); !s.ok()) why = why.WithContext(s.ToString());
    }
    OrgRecord active = moving;
    active.state = kStateActive;
    active.target.clear();
    auto back = SwapOrg(org, active, moving.mod_revision);
    if (!back.ok() || !*back) {
      std::fprintf(stderr,
                   "sealcached: cluster: org %s: the record changed during the move; the "
                   "reconcile follows it\n",
                   org.c_str());
    }
    return why;
  };

  auto exp = service_->ExportOrg(org);
  if (!exp.ok()) return undo(exp.status());
  exported = true;
  const storage::OrgExport& e = *exp;

  auto connected = ConnectPeer(to, kMoveCallTimeoutMs);
  if (!connected.ok()) return undo(connected.status());
  peer = std::move(connected).value();

  auto import =
      [&](P::ImportPhase phase,
          const std::function<void(flatbuffers::FlatBufferBuilder&, P::ImportOrgRequestBuilder&)>&
              fill,
          const std::function<void(flatbuffers::FlatBufferBuilder&)>& pre = {}) -> Status {
    auto f = peer->client->Call([&](flatbuffers::FlatBufferBuilder& fbb) {
      // Strings and vectors first (flatbuffers builds children before their table).
      auto o = fbb.CreateString(org);
      auto u = fbb.CreateString(moving.uid);
      if (pre) pre(fbb);
      P::ImportOrgRequestBuilder b(fbb);
      b.add_phase(phase);
      b.add_org(o);
      b.add_uid(u);
      b.add_epoch(next_epoch);
      if (fill) fill(fbb, b);
      return std::make_pair(P::RequestBody::ImportOrgRequest, b.Finish().Union());
    });
    if (!f.ok()) return f.status();
    if ((*f)->status() != P::StatusCode::OK) {
      const auto* m = (*f)->message();
      return Status::Unavailable(
          "node " + to.id + " refused the import: " + (m != nullptr ? m->str() : std::string("?")));
    }
    return Status::Ok();
  };

  if (Status s = import(P::ImportPhase::BEGIN, {}); !s.ok()) return undo(s);
  uint64_t total = 0;
  // What was streamed, for the audit log: each file's SHA-256, so that an operator (and the
  // tests) can check the new owner holds the same bytes.
  std::string streamed;
  crypto::Sha256Hasher hasher;
  for (const std::string& file : e.files) {
    for (uint64_t offset = 0;;) {
      auto piece = service_->store().ReadExportedFile(org, file, offset, kMoveChunkBytes);
      if (!piece.ok()) return undo(piece.status());
      // The first piece is sent even when empty, so that an empty file exists there too.
      if (piece->empty() && offset > 0) break;
      flatbuffers::Offset<flatbuffers::String> name;
      flatbuffers::Offset<flatbuffers::Vector<uint8_t>> data;
      Status sent = import(
          P::ImportPhase::CHUNK,
          [&](flatbuffers::FlatBufferBuilder&, P::ImportOrgRequestBuilder& b) {
            b.add_file(name);
            b.add_offset(offset);
            b.add_data(data);
          },
          [&](flatbuffers::FlatBufferBuilder& fbb) {
            name = fbb.CreateString(file);
            data = fbb.CreateVector(piece->data(), piece->size());
          });
      if (!sent.ok()) return undo(sent);
      hasher.Update(*piece);
      offset += piece->size();
      total += piece->size();
      if (piece->size() < kMoveChunkBytes) break;
    }
    streamed += (streamed.empty() ? "" : " ") + file + "=" + ToText(hasher.Finish());
  }
  {
    flatbuffers::Offset<P::CreateOrgRequest> config;
    flatbuffers::Offset<flatbuffers::Vector<uint8_t>> ring, name_key;
    flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>> files;
    Status s = import(
        P::ImportPhase::COMMIT,
        [&](flatbuffers::FlatBufferBuilder&, P::ImportOrgRequestBuilder& b) {
          b.add_config(config);
          b.add_created_ms(e.config.created_ms);
          b.add_ring(ring);
          b.add_sealed_name_key(name_key);
          b.add_name_key_version(e.name_key_version);
          b.add_files(files);
        },
        [&](flatbuffers::FlatBufferBuilder& fbb) {
          const storage::OrgConfig& c = e.config;
          config = P::CreateCreateOrgRequest(
              fbb, 0, c.dimension, fbb.CreateString(c.metric), fbb.CreateString(c.index_kind),
              c.hnsw_m, c.ef_construction, c.ef_search, c.seal_threshold, c.limits.max_bytes,
              c.limits.max_entries, fbb.CreateString(c.limits.eviction_policy));
          ring = fbb.CreateVector(e.ring);
          name_key = fbb.CreateVector(e.sealed_name_key);
          files = fbb.CreateVectorOfStrings(e.files);
        });
    if (!s.ok()) return undo(s);
  }

  // The hand-over: one compare-and-set from the moving record this node wrote.
  OrgRecord handed = moving;
  handed.owner = to.id;
  handed.epoch = next_epoch;
  handed.state = kStateActive;
  handed.target.clear();
  auto swapped = SwapOrg(org, handed, moving.mod_revision);
  if (!swapped.ok() || !*swapped) {
    return undo(swapped.ok() ? Status::Unavailable("org " + org + " changed during the move")
                             : swapped.status());
  }
  // The new owner reads the record now rather than at its next reconcile.
  if (Status s = import(P::ImportPhase::ACTIVATE, {}); !s.ok()) {
    std::fprintf(stderr, "sealcached: cluster: org %s: %s (the new owner's reconcile follows)\n",
                 org.c_str(), s.ToString().c_str());
  }
  peer.reset();  // its token goes with it
  (void)service_->store().AuditEvent("org_moved_out", {{"org", org},
                                                       {"to", to.id},
                                                       {"epoch", next_epoch},
                                                       {"bytes", static_cast<int64_t>(total)},
                                                       {"files", streamed}});
  // This node's copy goes: files and every key version.
  std::lock_guard<std::mutex> copies(copies_mu_);
  if (Status s = DropCopy(org); !s.ok()) {
    std::fprintf(stderr, "sealcached: cluster: org %s moved; deleting the old copy: %s\n",
                 org.c_str(), s.ToString().c_str());
  }
  return total;
}

ClusterNode::PeerSession::~PeerSession() {
  client.reset();
  if (!token_key.empty()) (void)etcd->Delete(token_key);
}

Result<std::unique_ptr<ClusterNode::PeerSession>> ClusterNode::ConnectPeer(const NodeRecord& to,
                                                                           int64_t timeout_ms) {
  auto session = std::make_unique<PeerSession>();
  session->etcd = &etcd_;
  SC_ASSIGN_OR_RETURN(std::string secret, RandomHex(32));
  const std::string token = "scpeer_" + secret;
  const auto hash = crypto::Sha256({reinterpret_cast<const uint8_t*>(token.data()), token.size()});
  int64_t lease = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    lease = lease_;
  }
  const std::string record = Json::MakeObject()
                                 .Set("org", "")
                                 .Set("token_id", "peer-" + node_id_)
                                 .Set("created_ms", int64_t{0})
                                 .Set("org_uid", "")
                                 .Set("scope", "peer")
                                 .Dump();
  SC_RETURN_IF_ERROR(etcd_.Put(TokenKey(hash), record, lease));
  session->token_key = TokenKey(hash);
  client::ClientOptions options;
  const size_t colon = to.native_address.rfind(':');
  if (colon == std::string::npos) {
    return Status::Internal("node " + to.id + " has no host:port address");
  }
  options.host = to.native_address.substr(0, colon);
  uint16_t port = 0;
  const std::string port_text = to.native_address.substr(colon + 1);
  if (std::from_chars(port_text.data(), port_text.data() + port_text.size(), port).ec !=
          std::errc() ||
      port == 0) {
    return Status::Internal("node " + to.id + " has a bad address " + to.native_address);
  }
  options.port = port;
  options.tls = options_.peer_tls;
  options.tls_ca_file = options_.peer_ca_file;
  options.timeout_ms = timeout_ms;
  SC_ASSIGN_OR_RETURN(session->client, client::Client::Connect(options));
  SC_RETURN_IF_ERROR(session->client->Hello(token).status());
  return session;
}

Result<std::vector<std::pair<std::string, client::ResponseFrame>>> ClusterNode::ListOrgsOfPeers() {
  constexpr int64_t kListTimeoutMs = 10'000;
  SC_ASSIGN_OR_RETURN(auto nodes, ReadNodes());
  std::vector<std::pair<std::string, client::ResponseFrame>> out;
  for (const auto& entry : nodes) {
    // Not a structured binding: clang 14 (the sanitizer trees) cannot capture one.
    const std::string& id = entry.first;
    const NodeRecord& node = entry.second;
    if (id == node_id_) continue;
    auto listed = [&]() -> Result<client::ResponseFrame> {
      SC_ASSIGN_OR_RETURN(auto peer, ConnectPeer(node, kListTimeoutMs));
      SC_ASSIGN_OR_RETURN(
          client::ResponseFrame f, peer->client->Call([](flatbuffers::FlatBufferBuilder& fbb) {
            return std::make_pair(
                protocol::RequestBody::ListOrgsRequest,
                protocol::CreateListOrgsRequest(fbb, /*this_node_only=*/true).Union());
          }));
      SC_RETURN_IF_ERROR(f.status());
      return f;
    }();
    if (!listed.ok()) {
      return Status::Unavailable("node " + id +
                                 " did not list its orgs: " + listed.status().ToString());
    }
    out.emplace_back(id, std::move(listed).value());
  }
  return out;
}

Result<uint64_t> ClusterNode::Rebalance() {
  SC_ASSIGN_OR_RETURN(auto nodes, ReadNodes());
  SC_ASSIGN_OR_RETURN(auto orgs, ReadOrgs());
  // The plan: the fewest moves that leave every open (not draining) node within one org of
  // every other, taking orgs from the most loaded node to the least loaded in turn.
  std::map<std::string, std::vector<std::string>> owned;
  for (const auto& [id, node] : nodes) {
    if (!node.draining) owned[id];
  }
  for (const auto& [org, record] : orgs) {
    auto it = owned.find(record.owner);
    if (it != owned.end() && record.state == kStateActive) it->second.push_back(org);
  }
  if (owned.size() < 2) return uint64_t{0};
  std::vector<std::pair<std::string, std::string>> plan;  // (org, to)
  std::map<std::string, size_t> count;
  for (const auto& [id, list] : owned) count[id] = list.size();
  for (;;) {
    auto [lo, hi] =
        std::minmax_element(count.begin(), count.end(),
                            [](const auto& a, const auto& b) { return a.second < b.second; });
    if (hi->second <= lo->second + 1) break;
    auto& from = owned[hi->first];
    plan.emplace_back(from.back(), lo->first);
    from.pop_back();
    --hi->second;
    ++lo->second;
  }
  uint64_t moved = 0;
  for (const auto& [org, to] : plan) {
    const std::string owner = orgs.at(org).owner;
    if (owner == node_id_) {
      SC_RETURN_IF_ERROR(MoveOrg(org, to).status());
    } else {
      // The owner runs the move; it may take as long as its files take to stream.
      SC_ASSIGN_OR_RETURN(auto peer, ConnectPeer(nodes.at(owner), /*timeout_ms=*/0));
      SC_RETURN_IF_ERROR(peer->client->MoveOrg(org, to).status());
    }
    ++moved;
  }
  return moved;
}

Result<uint64_t> ClusterNode::DrainNode(std::string_view node_view) {
  const std::string node(node_view);
  if (!node.empty() && node != node_id_) {
    SC_ASSIGN_OR_RETURN(auto nodes, ReadNodes());
    auto it = nodes.find(node);
    if (it == nodes.end()) return Status::NotFound("no live node " + node);
    return Status::Moved(it->second.native_address + " " + it->second.resp_address);
  }
  if (!draining_.exchange(true)) {
    // Published in this node's record (under its lease): placement skips it from now on.
    int64_t lease = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      lease = lease_;
    }
    const std::string record = Json::MakeObject()
                                   .Set("id", node_id_)
                                   .Set("native", native_address_)
                                   .Set("resp", resp_address_)
                                   .Set("draining", true)
                                   .Dump();
    if (Status s = etcd_.Put(NodeKey(node_id_), record, lease); !s.ok()) {
      draining_.store(false);
      return s;
    }
    std::fprintf(stderr, "sealcached: cluster: node %s is draining\n", node_id_.c_str());
  }
  SC_ASSIGN_OR_RETURN(auto orgs, ReadOrgs());
  uint64_t moved = 0;
  for (const auto& [org, record] : orgs) {
    if (record.owner != node_id_) continue;
    SC_RETURN_IF_ERROR(MoveOrg(org, "").status());
    ++moved;
  }
  return moved;
}

Status ClusterNode::CheckImport(std::string_view org_view, std::string_view uid, int64_t epoch) {
  const std::string org(org_view);
  SC_ASSIGN_OR_RETURN(OrgRecord record, ReadOrg(org));
  if (record.state != kStateMoving || record.target != node_id_ || record.uid != uid ||
      record.epoch + 1 != epoch) {
    return Status::FailedPrecondition("org " + org + " is not moving to node " + node_id_ +
                                      " at epoch " + std::to_string(epoch));
  }
  return Status::Ok();
}

Status ClusterNode::NoteImportedCopy(std::string_view org_view, std::string_view uid,
                                     int64_t epoch) {
  const std::string org(org_view);
  std::lock_guard<std::mutex> copies(copies_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    copies_[org] = {std::string(uid), epoch};
  }
  moves_in_.fetch_add(1, std::memory_order_relaxed);
  std::fprintf(stderr, "sealcached: cluster: holding org %s (epoch %lld), moved here\n",
               org.c_str(), static_cast<long long>(epoch));
  return SaveState();
}

Status ClusterNode::RefreshOrg(std::string_view org_view) {
  const std::string org(org_view);
  SC_ASSIGN_OR_RETURN(OrgRecord record, ReadOrg(org));
  RememberOrg(org, std::move(record));
  return Status::Ok();
}

// ---- tokens -------------------------------------------------------------------------------------

Status ClusterNode::AddToken(std::span<const uint8_t> token_hash, const ClusterToken& token) {
  const std::string value = Json::MakeObject()
                                .Set("org", token.record.org)
                                .Set("token_id", token.record.token_id)
                                .Set("created_ms", token.record.created_ms)
                                .Set("org_uid", token.org_uid)
                                .Set("scope", token.peer ? "peer" : "")
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
  t.peer = Str((*j)["scope"]) == "peer";
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
