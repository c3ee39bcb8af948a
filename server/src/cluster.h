// ClusterNode: this sealcached as a member of a cluster whose membership, placement and
// tokens live in etcd (server/CLUSTER.md). It registers under a lease, keeps the lease alive,
// reads the org records every reconcile period and makes this node's copies match them
// (holds what it owns at the owner's epoch, deletes what it does not), and, while etcd's
// election names it the rebalancer, reassigns the orgs of nodes whose lease ended. The
// service asks it, on every request, whether this node may serve an org (CheckServing).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "etcd_client.h"
#include "sealcache/client/client.h"
#include "sealcache/server/server.h"
#include "sealcache/server/service.h"

namespace sealcache::server::cluster {

// An org's record in etcd: changed only by compare-and-set on its revision.
struct OrgRecord {
  std::string owner;          // node id
  int64_t epoch = 0;          // + 1 at each change of owner
  std::string state;          // "creating", "active" or "moving" (to `target`)
  std::string target;         // while moving: the node it moves to
  std::string uid;            // the incarnation: a new one for each create-org
  storage::OrgConfig config;  // to create the org's empty copy on a new owner
  int64_t mod_revision = 0;   // etcd's, for the compare-and-set
};

struct NodeRecord {
  std::string id;
  std::string native_address;  // host:port of the native protocol
  std::string resp_address;    // host:port of the Redis protocol, or "" when off
  bool draining = false;       // takes no new orgs (DrainNode)
};

// Weighted rendezvous hashing: the node of `nodes` that `org` goes to, each node's weight
// 1 / (1 + the orgs it owns now). Empty if there is no node.
std::string PlaceOrg(std::string_view org, const std::map<std::string, NodeRecord>& nodes,
                     const std::map<std::string, size_t>& owned);

class ClusterNode final : public ClusterView {
 public:
  // Reads (or creates) this node's cluster state file in `data_dir`; talks to no one yet.
  static Result<std::unique_ptr<ClusterNode>> Create(const ClusterOptions& options,
                                                     const std::string& data_dir,
                                                     CacheService* service);
  ~ClusterNode() override;

  // FailedPrecondition if this data directory holds orgs and has never joined a cluster:
  // joining would delete them. Join checks it too; call it before anything is published.
  Status CheckCanJoin();
  // Registers this node with its addresses, reconciles its copies once (deleting those it
  // does not own before anything is served) and starts the lease and reconcile
  // threads. Until it returns OK, CheckServing answers Unavailable.
  Status Join(const std::string& native_address, const std::string& resp_address);
  // Stops the threads and revokes the lease (the rebalancer then moves this node's orgs).
  void Leave();

  const std::string& node_id() const override { return node_id_; }
  // Prometheus text: lease, leadership, orgs owned, live nodes, and counters of failovers
  // made, redirects answered, copies deleted and leases lost.
  std::string MetricsText() const;

  // ClusterView.
  Status CheckServing(std::string_view org, std::string_view org_uid) override;
  Result<std::string> PlaceNewOrg(std::string_view org, const storage::OrgConfig& config) override;
  Result<std::string> OrgUid(std::string_view org) override;
  Status ActivateOrg(std::string_view org) override;
  Status RemoveOrg(std::string_view org) override;
  Status AddToken(std::span<const uint8_t> token_hash, const ClusterToken& token) override;
  Result<ClusterToken> FindToken(std::span<const uint8_t> token_hash) override;
  Result<uint64_t> RevokeTokens(std::string_view org, std::string_view token_id) override;
  bool FirstJoin() const override { return first_join_; }
  Result<std::pair<std::string, uint64_t>> MoveOrg(std::string_view org,
                                                   std::string_view to_node) override;
  Result<uint64_t> DrainNode(std::string_view node) override;
  Result<uint64_t> Rebalance() override;
  Status CheckImport(std::string_view org, std::string_view uid, int64_t epoch) override;
  Status NoteImportedCopy(std::string_view org, std::string_view uid, int64_t epoch) override;
  Status RefreshOrg(std::string_view org) override;
  Result<std::vector<std::pair<std::string, client::ResponseFrame>>> ListOrgsOfPeers() override;

 private:
  using Clock = std::chrono::steady_clock;
  struct LocalCopy {
    std::string uid;
    int64_t epoch = 0;
  };

  ClusterNode(const ClusterOptions& options, EtcdClient etcd, std::string state_path,
              CacheService* service);
  Status LoadState();
  Status SaveState();  // REQUIRES: copies_mu_ held
  Status Register();
  // Reads every node and org record, makes this node's copies match, and (as rebalancer)
  // reassigns the orgs of nodes that are gone.
  Status Reconcile();
  // Makes this node's copy of `org` the record's incarnation and epoch (an empty copy under
  // new keys when it differs); `here`: the service holds a copy of it now.
  // REQUIRES: copies_mu_ held.
  Status HoldCopy(const std::string& org, const OrgRecord& record, bool here);
  Status DropCopy(const std::string& org);  // REQUIRES: copies_mu_ held
  void Reassign(const std::map<std::string, NodeRecord>& nodes,
                const std::map<std::string, OrgRecord>& orgs);
  Result<std::map<std::string, OrgRecord>> ReadOrgs() const;
  Status WriteOrg(const std::string& org, const OrgRecord& record, int64_t mod_revision,
                  bool* written) const;
  bool LeaseAlive(Clock::time_point now) const;  // REQUIRES: mu_ held
  // The serving rule against the view alone. Unless `final_answer`, NotFound also when the
  // view lacks the owner's node (so that the caller reads it from etcd first).
  Status ServingFromView(std::string_view org, std::string_view org_uid, bool final_answer);
  void LeaseLoop();
  void ReconcileLoop();
  // Makes or keeps this node's candidacy in the rebalancer election under `lease` and
  // answers whether it leads now.
  bool StandForRebalancer(int64_t lease);
  bool Sleep(std::chrono::milliseconds d);  // false once stopping
  // The nodes new or moved orgs may go to: those not draining (all of them if every one is).
  static std::map<std::string, NodeRecord> Placeable(std::map<std::string, NodeRecord> nodes);
  // The live nodes as etcd has them now.
  Result<std::map<std::string, NodeRecord>> ReadNodes() const;
  // The org's record as etcd has it now (NotFound: no such org).
  Result<OrgRecord> ReadOrg(const std::string& org) const;
  // Puts `record` in the view unless the view has it at a later revision.
  void RememberOrg(const std::string& org, OrgRecord record);
  // Compare-and-set of an org record; on success the view holds it with its new revision.
  Result<bool> SwapOrg(const std::string& org, OrgRecord record, int64_t mod_revision);
  // A connection to another node as an admin of this one use: the token is made for it,
  // under this node's lease (so it goes if this node dies), and deleted with the session.
  struct PeerSession {
    ~PeerSession();
    std::unique_ptr<client::Client> client;
    std::string token_key;
    const EtcdClient* etcd = nullptr;
  };
  // `timeout_ms` bounds each call on the connection (0: none).
  Result<std::unique_ptr<PeerSession>> ConnectPeer(const NodeRecord& to, int64_t timeout_ms);
  // The streaming and hand-over of one move, after the record says moving. REQUIRES:
  // move_mu_ held.
  Result<uint64_t> StreamAndHandOver(const std::string& org, OrgRecord moving,
                                     const NodeRecord& to);

  std::string OrgKey(std::string_view org) const;
  std::string NodeKey(std::string_view node) const;
  std::string TokenKey(std::span<const uint8_t> hash) const;

  const ClusterOptions options_;
  const EtcdClient etcd_;
  const std::string state_path_;
  CacheService* const service_;
  std::string node_id_;
  std::string native_address_, resp_address_;
  bool first_join_ = false;  // no state file yet: this data directory never joined

  // The lease and the view of the records the serving rule reads. Lock order: copies_mu_,
  // then the service's own locks (HoldCopy and DropCopy call AdoptOrg and ForgetOrg), then
  // mu_; so the service never calls a method that takes copies_mu_ (PlaceNewOrg, RemoveOrg)
  // with its admin lock held.
  mutable std::mutex mu_;
  int64_t lease_ = 0;
  Clock::time_point lease_alive_until_{};
  bool joined_ = false;
  bool view_fresh_ = false;  // the view was read under the current lease
  std::map<std::string, NodeRecord> nodes_;
  std::map<std::string, OrgRecord, std::less<>> orgs_;
  int64_t leader_lease_ = 0;  // the lease this node leads the rebalancer election with

  // This node's copies, kept in the state file: changed under copies_mu_ (which serialises
  // every change to them, and is held across the service's AdoptOrg/ForgetOrg) and mu_;
  // read under either.
  std::mutex copies_mu_;
  std::map<std::string, LocalCopy> copies_;

  std::atomic<uint64_t> failovers_{0}, redirects_{0}, copies_deleted_{0}, leases_lost_{0};
  std::atomic<uint64_t> moves_out_{0}, moves_in_{0}, moves_failed_{0}, move_bytes_{0};
  // One planned move at a time from this node; draining_ is published in its node record.
  std::mutex move_mu_;
  std::atomic<bool> draining_{false};

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread lease_thread_, reconcile_thread_;
};

}  // namespace sealcache::server::cluster
