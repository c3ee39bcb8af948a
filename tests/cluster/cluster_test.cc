// The cluster on one machine (server/CLUSTER.md): a real etcd and real sealcached nodes.
#include "cluster.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "cluster_fixture.h"
#include "sealcache/crypto/hash.h"

namespace sealcache::test {
namespace {

using client::Client;
using client::Digest;
using server::cluster::EtcdClient;
using server::cluster::NodeRecord;
using server::cluster::PlaceOrg;

Digest DigestOf(std::string_view name) {
  return crypto::Sha256({reinterpret_cast<const uint8_t*>(name.data()), name.size()});
}

std::vector<uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }

Status PutText(Client& c, std::string_view name, std::string_view text, uint64_t seed) {
  const auto vector = MakeVector(8, seed);
  const auto payload = Bytes(text);
  return c
      .Put({.digest = DigestOf(name),
            .vector = vector,
            .payload = payload,
            .ttl_ms = 600'000,
            .name_space = {}})
      .status();
}

std::string GetText(Client& c, std::string_view name) {
  auto e = c.Get(DigestOf(name));
  if (!e.ok()) return "<" + e.status().ToString() + ">";
  return std::string(e->payload.begin(), e->payload.end());
}

// The status of one Get sent on `c` as it is answered, redirects not followed.
Status RawGet(Client& c, std::string_view name) {
  auto id = c.Send([&](flatbuffers::FlatBufferBuilder& fbb) {
    const Digest d = DigestOf(name);
    auto v = fbb.CreateVector(d.data(), d.size());
    return std::make_pair(protocol::RequestBody::GetEntryRequest,
                          protocol::CreateGetEntryRequest(fbb, v, true).Union());
  });
  if (!id.ok()) return id.status();
  auto f = c.Receive();
  return f.ok() ? f->status() : f.status();
}

// The standard output of a shell command (its exit status is not looked at).
std::string Output(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  pclose(pipe);
  return out;
}

// ---- etcd and placement, below the nodes -------------------------------------------------------

TEST(ClusterPlacement, RendezvousIsStableMovesOnlyTheLostNodesOrgsAndPrefersTheLessLoaded) {
  std::map<std::string, NodeRecord> three = {
      {"a", {"a", "h:1", ""}}, {"b", {"b", "h:2", ""}}, {"c", {"c", "h:3", ""}}};
  std::map<std::string, size_t> none;
  std::map<std::string, std::string> placed;
  std::map<std::string, int> count;
  for (int i = 0; i < 300; ++i) {
    const std::string org = "org" + std::to_string(i);
    placed[org] = PlaceOrg(org, three, none);
    EXPECT_EQ(PlaceOrg(org, three, none), placed[org]) << "placement is deterministic";
    ++count[placed[org]];
  }
  for (const auto& [node, n] : count) EXPECT_GT(n, 60) << node << " gets its share";
  auto two = three;
  two.erase("c");
  for (const auto& [org, node] : placed) {
    if (node != "c") {
      EXPECT_EQ(PlaceOrg(org, two, none), node) << "only c's orgs move";
    }
  }
  // A node that owns far more gets far fewer of the new orgs.
  int to_loaded = 0;
  for (int i = 0; i < 300; ++i) {
    if (PlaceOrg("new" + std::to_string(i), three, {{"a", 50}}) == "a") ++to_loaded;
  }
  EXPECT_LT(to_loaded, 20);
  EXPECT_EQ(PlaceOrg("x", {}, none), "");
}

// Whether `node` itself serves the org of `token` now (a hit or a miss, not a redirect or a
// refusal): the record can name a new owner a moment before that owner has read it.
bool Serves(const SealcachedProcess& node, const std::string& token) {
  auto c = node.ConnectAs(token);
  if (c == nullptr) return false;
  const Status s = RawGet(*c, "probe");
  return s.ok() || s.IsNotFound();
}

class EtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!EtcdProcess::Installed()) GTEST_SKIP() << "etcd is not installed";
    dir_ = MakeTempDir("sealcache-etcd");
    etcd_ = std::make_unique<EtcdProcess>(dir_);
    ASSERT_TRUE(etcd_->Start());
  }
  void TearDown() override {
    etcd_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string dir_;
  std::unique_ptr<EtcdProcess> etcd_;
};

TEST_F(EtcdTest, CompareAndSetWritesOnlyAtTheRevisionItRead) {
  EtcdClient etcd = etcd_->Client();
  ASSERT_TRUE(*etcd.PutIf("/k", std::string("v1\0\xff", 4), 0));
  EXPECT_FALSE(*etcd.PutIf("/k", "again", 0)) << "create only if absent";
  auto kv = etcd.Get("/k");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->value, std::string("v1\0\xff", 4)) << "bytes round-trip through base64";
  EXPECT_FALSE(*etcd.PutIf("/k", "v2", kv->mod_revision + 1));
  EXPECT_TRUE(*etcd.PutIf("/k", "v2", kv->mod_revision));
  EXPECT_FALSE(*etcd.DeleteIf("/k", kv->mod_revision)) << "the revision moved on";
  auto now = etcd.Get("/k");
  EXPECT_TRUE(*etcd.DeleteIf("/k", now->mod_revision));
  EXPECT_TRUE(etcd.Get("/k").status().IsNotFound());
  ASSERT_TRUE(etcd.Put("/p/1", "a").ok());
  ASSERT_TRUE(etcd.Put("/p/2", "b").ok());
  ASSERT_TRUE(etcd.Put("/q", "c").ok());
  auto range = etcd.GetPrefix("/p/");
  ASSERT_TRUE(range.ok());
  ASSERT_EQ(range->size(), 2u);
  EXPECT_EQ((*range)[1].value, "b");
}

TEST_F(EtcdTest, AKeyUnderALeaseGoesWithItAndTheElectionHasOneLeader) {
  EtcdClient etcd = etcd_->Client();
  auto lease = etcd.GrantLease(2);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  ASSERT_TRUE(etcd.Put("/node", "x", lease->first).ok());
  EXPECT_TRUE(etcd.KeepAlive(lease->first).ok());
  auto other = etcd.GrantLease(2);
  ASSERT_TRUE(other.ok());
  auto third = etcd.GrantLease(2);
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(*etcd.Stand("/election", lease->first, "first"));
  EXPECT_FALSE(*etcd.Stand("/election", other->first, "second"))
      << "one leader while its lease lives";
  EXPECT_FALSE(*etcd.Stand("/election", third->first, "third"));
  // Standing again keeps a candidate's place: the leader still leads, the others still wait.
  EXPECT_TRUE(*etcd.Stand("/election", lease->first, "first"));
  EXPECT_FALSE(*etcd.Stand("/election", other->first, "second"));
  ASSERT_TRUE(etcd.RevokeLease(lease->first).ok());
  EXPECT_TRUE(etcd.Get("/node").status().IsNotFound());
  EXPECT_TRUE(etcd.KeepAlive(lease->first).status().IsNotFound());
  // The next candidate in the order they stood leads, and only it.
  EXPECT_FALSE(*etcd.Stand("/election", third->first, "third"));
  EXPECT_TRUE(*etcd.Stand("/election", other->first, "second"));
  // The candidates' keys are the ones etcd's election service makes: name/lease-in-hex.
  auto keys = etcd.GetPrefix("/election/");
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 2u);
  for (const auto& kv : *keys) {
    std::ostringstream hex;
    hex << "/election/" << std::hex << kv.lease;
    EXPECT_EQ(kv.key, hex.str());
  }
  EXPECT_FALSE(EtcdClient::Create("https://127.0.0.1:1", std::chrono::seconds(1)).ok());
  EXPECT_FALSE(EtcdClient::Create("", std::chrono::seconds(1)).ok());
  EXPECT_FALSE(EtcdClient::Create("http://127.0.0.1:1,nohost", std::chrono::seconds(1)).ok());
  auto down = EtcdClient::Create("http://127.0.0.1:1", std::chrono::seconds(1));
  ASSERT_TRUE(down.ok());
  EXPECT_EQ(down->Get("/k").status().code(), Status::Code::kUnavailable);
}

TEST_F(EtcdTest, AMemberThatCannotBeReachedIsSkippedForTheNext) {
  // The members of an etcd cluster, the first one down: every call goes to the next, and
  // later calls start there.
  const std::string dead = "http://127.0.0.1:" + std::to_string(FreePort());
  auto etcd = EtcdClient::Create(dead + "," + etcd_->endpoint(), std::chrono::seconds(2));
  ASSERT_TRUE(etcd.ok());
  EXPECT_EQ(etcd->Describe().find("127.0.0.1:"), 0u);
  ASSERT_TRUE(etcd->Put("/k", "v").ok());
  auto kv = etcd->Get("/k");
  ASSERT_TRUE(kv.ok()) << kv.status().ToString();
  EXPECT_EQ(kv->value, "v");
  auto lease = etcd->GrantLease(2);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_TRUE(etcd->KeepAlive(lease->first).ok());
  // With no member reachable the call is Unavailable, naming the last one tried.
  etcd_->Stop();
  const Status down = etcd->Get("/k").status();
  EXPECT_EQ(down.code(), Status::Code::kUnavailable);
  EXPECT_NE(down.message().find("cannot reach etcd"), std::string::npos) << down.ToString();
}

// ---- the nodes ----------------------------------------------------------------------------

TEST_F(ClusterTest, OrgsArePlacedAcrossNodesAndEveryNodeRedirectsToTheOwner) {
  std::map<std::string, std::string> tokens;
  std::set<int> owners;
  for (int i = 0; i < 6; ++i) {
    const std::string org = "org" + std::to_string(i);
    tokens[org] = CreateOrg(i % 3, org);
    ASSERT_FALSE(tokens[org].empty());
    const int owner = Owner(org);
    ASSERT_GE(owner, 0) << org;
    owners.insert(owner);
    EXPECT_EQ(Epoch(org), 1);
    EXPECT_EQ(Record(org)["state"].string(), "active");
    for (int n = 0; n < 3; ++n) EXPECT_EQ(HoldsCopy(n, org), n == owner) << org << " on " << n;
  }
  EXPECT_GE(owners.size(), 2u) << "six orgs do not all land on one of three nodes";

  for (const auto& [org, token] : tokens) {
    const int owner = Owner(org);
    for (int n = 0; n < 3; ++n) {
      // The client follows the redirect: a put through any node is read through any other.
      auto c = nodes_[n]->ConnectAs(token);
      ASSERT_NE(c, nullptr);
      ASSERT_TRUE(PutText(*c, "q" + std::to_string(n), org + "-answer", n).ok());
      auto d = nodes_[(n + 1) % 3]->ConnectAs(token);
      EXPECT_EQ(GetText(*d, "q" + std::to_string(n)), org + "-answer");
      // As answered: the owner serves, the others name it.
      auto raw = nodes_[n]->ConnectAs(token);
      Status s = RawGet(*raw, "q" + std::to_string(n));
      if (n == owner) {
        EXPECT_TRUE(s.ok()) << s.ToString();
      } else {
        EXPECT_EQ(s.code(), Status::Code::kMoved);
        EXPECT_EQ(s.message(), "127.0.0.1:" + std::to_string(nodes_[owner]->port()) +
                                   " 127.0.0.1:" + std::to_string(resp_ports_[owner]));
      }
      // The Redis protocol answers Redis Cluster's redirect, to the owner's RESP port.
      RespLine resp(resp_ports_[n]);
      EXPECT_EQ(resp.Command({"AUTH", org, token}), "+OK");
      const std::string reply = resp.Command({"SET", "k", "v"});
      if (n == owner) {
        EXPECT_EQ(reply, "+OK");
      } else {
        EXPECT_EQ(reply, "-MOVED 0 127.0.0.1:" + std::to_string(resp_ports_[owner]));
      }
    }
  }
  // A real Redis client in cluster mode follows the redirect: redis-cli -c, sent to a node
  // that does not own the org, re-authenticates at the owner and gets its answer there.
  if (access("/usr/bin/redis-cli", X_OK) == 0) {
    const std::string org = tokens.begin()->first;
    const int owner = Owner(org);
    const int other = (owner + 1) % 3;
    const std::string cli = "/usr/bin/redis-cli -c -p " + std::to_string(resp_ports_[other]) +
                            " --user " + org + " --pass " + tokens[org] + " --no-auth-warning ";
    EXPECT_EQ(Output(cli + "SET greeting hello"), "OK\n");
    EXPECT_EQ(Output(cli + "GET greeting"), "hello\n");
    RespLine at_owner(resp_ports_[owner]);
    ASSERT_EQ(at_owner.Command({"AUTH", org, tokens[org]}), "+OK");
    EXPECT_EQ(at_owner.Command({"GET", "greeting"}), "hello") << "written at the owner";
  } else {
    ADD_FAILURE() << "redis-cli is not installed (tools/setup.sh installs redis-tools)";
  }
  // An admin operation on a non-owner follows the redirect too (every node's admin token
  // is the cluster's), and creating an existing org is refused everywhere.
  auto admin = nodes_[0]->ConnectAs(nodes_[2]->AdminToken());
  ASSERT_NE(admin, nullptr);
  for (const auto& [org, token] : tokens) {
    auto rotated = admin->RotateKey(org);
    EXPECT_TRUE(rotated.ok()) << org << ": " << rotated.status().ToString();
    EXPECT_EQ(admin->CreateOrg(org, 8).status().code(), Status::Code::kAlreadyExists);
  }
}

TEST_F(ClusterTest, AKilledNodesOrgsServeAgainElsewhereEmptyUnderANewKeyGeneration) {
  std::map<std::string, std::string> tokens;
  for (int i = 0; i < 6; ++i)
    tokens["org" + std::to_string(i)] = CreateOrg(0, "org" + std::to_string(i));
  const int victim = Owner("org0");
  std::vector<std::string> moved;
  for (const auto& [org, token] : tokens) {
    if (Owner(org) == victim) moved.push_back(org);
    auto c = nodes_[(victim + 1) % 3]->ConnectAs(token);
    ASSERT_TRUE(PutText(*c, "before", org + "-old", 1).ok());
  }
  const auto killed_at = std::chrono::steady_clock::now();
  nodes_[victim]->Kill(SIGKILL);
  const int survivor = (victim + 1) % 3;
  for (const std::string& org : moved) {
    ASSERT_TRUE(Eventually(
        [&] {
          const int owner = Owner(org);
          return owner >= 0 && owner != victim;
        },
        FailoverBound()))
        << org << " was not reassigned";
    EXPECT_EQ(Epoch(org), 2);
    ASSERT_TRUE(
        Eventually([&] { return Serves(*nodes_[Owner(org)], tokens[org]); }, FailoverBound()));
    // Served again through any live node: empty (its entries died with the node's keys),
    // and new writes work.
    std::string got;
    ASSERT_TRUE(Eventually(
        [&] {
          auto fresh = nodes_[survivor]->ConnectAs(tokens[org]);
          got = fresh == nullptr ? "<no session>" : GetText(*fresh, "before");
          return got.find("Unavailable") == std::string::npos &&
                 got.find("IO error") == std::string::npos;
        },
        FailoverBound()));
    EXPECT_EQ(got, "<Not found: miss>");
    auto c = nodes_[survivor]->ConnectAs(tokens[org]);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(PutText(*c, "after", org + "-new", 2).ok());
    EXPECT_EQ(GetText(*c, "after"), org + "-new");
    EXPECT_TRUE(HoldsCopy(Owner(org), org));
  }
  const auto took = std::chrono::steady_clock::now() - killed_at;
  EXPECT_LT(took, FailoverBound())
      << "failover took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
      << " ms";
  // One rebalancer among the live nodes made the failovers; the metrics say so.
  double leaders = 0, failovers = 0;
  for (int n = 0; n < 3; ++n) {
    if (n == victim) continue;
    leaders += Metric(n, "sealcache_cluster_rebalancer");
    failovers += Metric(n, "sealcache_cluster_failovers_total");
    EXPECT_EQ(Metric(n, "sealcache_cluster_lease_alive"), 1) << n;
    EXPECT_TRUE(Eventually([&] { return Metric(n, "sealcache_cluster_nodes") == 2; },
                           std::chrono::seconds(5)))
        << n;
  }
  EXPECT_EQ(leaders, 1);
  EXPECT_EQ(failovers, static_cast<double>(moved.size()));
  // The orgs that lived elsewhere kept their entries.
  for (const auto& [org, token] : tokens) {
    if (std::find(moved.begin(), moved.end(), org) != moved.end()) continue;
    auto c = nodes_[survivor]->ConnectAs(token);
    EXPECT_EQ(GetText(*c, "before"), org + "-old");
  }
}

TEST_F(ClusterTest, ANodePausedPastItsLeaseRefusesWhenItWakesAndThenPointsToTheNewOwner) {
  const std::string token = CreateOrg(0, "acme");
  const int paused = Owner("acme");
  auto direct = nodes_[paused]->ConnectAs(token);
  ASSERT_NE(direct, nullptr);
  ASSERT_TRUE(PutText(*direct, "q", "old-answer", 1).ok());

  kill(nodes_[paused]->pid(), SIGSTOP);
  {
    // A client with a timeout gives up on the stopped node instead of waiting for it.
    client::ClientOptions o;
    o.port = nodes_[paused]->port();
    o.timeout_ms = 300;
    auto stuck = Client::Connect(o);
    ASSERT_TRUE(stuck.ok());
    auto hello = (*stuck)->Hello(token);
    EXPECT_EQ(hello.status().code(), Status::Code::kIOError) << hello.status().ToString();
  }
  ASSERT_TRUE(Eventually(
      [&] {
        const int owner = Owner("acme");
        return owner >= 0 && owner != paused;
      },
      FailoverBound()));
  const int owner = Owner("acme");
  ASSERT_TRUE(Eventually([&] { return Serves(*nodes_[owner], token); }, FailoverBound()));
  auto c = nodes_[owner]->ConnectAs(token);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(PutText(*c, "q", "new-answer", 2).ok());
  // The paused node's session sends a request now; the node reads it when it wakes.
  auto id = direct->Send([&](flatbuffers::FlatBufferBuilder& fbb) {
    const Digest d = DigestOf("q");
    auto v = fbb.CreateVector(d.data(), d.size());
    return std::make_pair(protocol::RequestBody::GetEntryRequest,
                          protocol::CreateGetEntryRequest(fbb, v, true).Union());
  });
  ASSERT_TRUE(id.ok());
  kill(nodes_[paused]->pid(), SIGCONT);
  auto woke = direct->Receive();
  ASSERT_TRUE(woke.ok()) << woke.status().ToString();
  const Status answer = woke->status();
  EXPECT_FALSE(answer.ok()) << "a node past its lease served the org it lost";
  EXPECT_TRUE(answer.code() == Status::Code::kUnavailable || answer.code() == Status::Code::kMoved)
      << answer.ToString();
  // Once it has registered again it names the new owner, and its copy is gone.
  ASSERT_TRUE(Eventually([&] { return RawGet(*direct, "q").code() == Status::Code::kMoved; },
                         FailoverBound()));
  EXPECT_FALSE(HoldsCopy(paused, "acme"));
  EXPECT_GE(Metric(paused, "sealcache_cluster_leases_lost_total"), 1);
  EXPECT_GE(Metric(paused, "sealcache_cluster_copies_deleted_total"), 1);
  EXPECT_GE(Metric(paused, "sealcache_cluster_redirects_total"), 1);
  EXPECT_EQ(GetText(*direct, "q"), "new-answer") << "the client follows to the new owner";
}

TEST_F(ClusterTest, ANodeThatWasDownDeletesWhatItNoLongerOwnsBeforeServing) {
  const std::string acme = CreateOrg(0, "acme");
  const int down = Owner("acme");
  // A second org on the same node, dropped while it is down.
  std::string dropped_token;
  for (int i = 0; dropped_token.empty() && i < 40; ++i) {
    const std::string org = "other" + std::to_string(i);
    const std::string token = CreateOrg(0, org);
    if (Owner(org) == down) {
      dropped_token = token;
      ASSERT_TRUE(PutText(*nodes_[down]->ConnectAs(token), "q", "secret", 1).ok());
    }
  }
  ASSERT_FALSE(dropped_token.empty()) << "no second org landed on node " << down;
  std::string dropped_org;
  for (int i = 0; i < 40; ++i) {
    if (Owner("other" + std::to_string(i)) == down) dropped_org = "other" + std::to_string(i);
  }
  nodes_[down]->Kill(SIGKILL);
  ASSERT_TRUE(Eventually([&] { return Owner(dropped_org) != down && Owner(dropped_org) >= 0; },
                         FailoverBound()));
  const int live = (down + 1) % 3;
  Status drop;
  ASSERT_TRUE(Eventually(
      [&] {
        // A fresh session each time: a node whose view is a moment old may still name the
        // dead node, and a redirect there ends the session.
        auto admin = nodes_[live]->ConnectAs(nodes_[live]->AdminToken());
        drop = admin->DropOrg(dropped_org);
        return drop.code() != Status::Code::kUnavailable && drop.code() != Status::Code::kIOError;
      },
      FailoverBound()));
  ASSERT_TRUE(drop.ok()) << drop.ToString();
  EXPECT_TRUE(Record(dropped_org).is_null());
  ASSERT_TRUE(HoldsCopy(down, dropped_org)) << "the dead node's files are still on its disk";

  ASSERT_TRUE(StartNode(down)) << nodes_[down]->Log();
  // Before it served anything, both copies were deleted: the dropped org's, and acme's
  // (owned elsewhere now).
  EXPECT_FALSE(HoldsCopy(down, dropped_org));
  EXPECT_FALSE(HoldsCopy(down, "acme"));
  const std::string log = nodes_[down]->Log();
  EXPECT_LT(log.rfind("deleted this node's copy of org " + dropped_org),
            log.rfind("joined as node"));
  // The dropped org's token is refused on every node; acme serves from its new owner.
  for (int n = 0; n < 3; ++n) {
    EXPECT_EQ(nodes_[n]->ConnectAs(dropped_token), nullptr) << "node " << n;
  }
  auto c = nodes_[down]->ConnectAs(acme);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(GetText(*c, "q"), "<Not found: miss>");
}

TEST_F(ClusterTest, TenantsStayIsolatedAcrossNodesAndARecreatedOrgIsAnotherTenant) {
  const std::string a = CreateOrg(0, "alpha");
  std::string b, beta;
  for (int i = 0; b.empty() && i < 40; ++i) {
    const std::string org = "beta" + std::to_string(i);
    const std::string token = CreateOrg(1, org);
    if (Owner(org) != Owner("alpha")) {
      b = token;
      beta = org;
    }
  }
  ASSERT_FALSE(b.empty());
  ASSERT_TRUE(PutText(*nodes_[0]->ConnectAs(a), "shared-prompt", "alpha-only", 1).ok());
  // Beta's token, through alpha's own node, never sees alpha's entry.
  auto beta_client = nodes_[Owner("alpha")]->ConnectAs(b);
  ASSERT_NE(beta_client, nullptr);
  EXPECT_EQ(GetText(*beta_client, "shared-prompt"), "<Not found: miss>");
  // Drop alpha and create it again: the old token is another tenant's and is refused, also
  // by a session opened before the drop.
  auto old_session = nodes_[2]->ConnectAs(a);
  ASSERT_NE(old_session, nullptr);
  auto admin = nodes_[1]->ConnectAs(nodes_[1]->AdminToken());
  ASSERT_TRUE(admin->DropOrg("alpha").ok());
  const std::string a2 = CreateOrg(2, "alpha");
  for (int n = 0; n < 3; ++n) EXPECT_EQ(nodes_[n]->ConnectAs(a), nullptr);
  // Wherever the old session is sent, the token it proves no longer opens a session.
  auto stale = old_session->Get(DigestOf("shared-prompt"));
  EXPECT_EQ(stale.status().code(), Status::Code::kUnauthenticated) << stale.status().ToString();
  EXPECT_EQ(GetText(*nodes_[0]->ConnectAs(a2), "shared-prompt"), "<Not found: miss>");
}

TEST_F(ClusterTest, ARevokedTokenIsRefusedOnEveryNodeAlsoInSessionsOpenedBefore) {
  const std::string acme = CreateOrg(0, "acme");
  const int owner = Owner("acme");
  const int other = (owner + 1) % 3;
  // A session of acme on a node that does not own it, opened before the revocation.
  auto before = nodes_[other]->ConnectAs(acme);
  ASSERT_NE(before, nullptr);
  auto admin_a = nodes_[owner]->ConnectAs(nodes_[owner]->AdminToken());
  // A second admin token, with a session open on another node.
  auto issued = admin_a->IssueToken("");
  ASSERT_TRUE(issued.ok()) << issued.status().ToString();
  auto admin_b = nodes_[other]->ConnectAs(issued->first);
  ASSERT_NE(admin_b, nullptr);
  ASSERT_TRUE(admin_b->RotateKey("acme").ok());

  ASSERT_TRUE(admin_a->RevokeToken("", issued->second).ok());
  EXPECT_EQ(admin_b->RotateKey("acme").status().code(), Status::Code::kUnauthenticated)
      << "an admin session on another node ends at its next admin request";
  ASSERT_EQ(*admin_a->RevokeToken("acme", ""), 1u);
  for (int n = 0; n < 3; ++n) {
    EXPECT_EQ(nodes_[n]->ConnectAs(issued->first), nullptr) << n;
    EXPECT_EQ(nodes_[n]->ConnectAs(acme), nullptr) << n;
  }
  // The org's owner dies; wherever acme lands, the session opened before the revocation
  // is refused, also when acme lands on the very node it is open on.
  nodes_[owner]->Kill(SIGKILL);
  ASSERT_TRUE(
      Eventually([&] { return Owner("acme") >= 0 && Owner("acme") != owner; }, FailoverBound()));
  ASSERT_TRUE(Eventually([&] { return HoldsCopy(Owner("acme"), "acme"); }, FailoverBound()));
  // Every live node has read the new record by the end of its next reconcile period.
  std::this_thread::sleep_for(std::chrono::milliseconds(3 * kReconcileMs));
  auto after = before->Get(DigestOf("q"));
  EXPECT_EQ(after.status().code(), Status::Code::kUnauthenticated) << after.status().ToString();
}

TEST_F(ClusterTest, ADataDirectoryWithOrgsThatNeverJoinedIsNotEmptiedByJoining) {
  const std::string dir = dir_ + "/standalone";
  std::filesystem::create_directories(dir);
  SealcachedProcess single(SEALCACHED_PATH, dir);
  ASSERT_TRUE(single.Start());
  auto admin = single.ConnectAs(single.AdminToken());
  ASSERT_TRUE(admin->CreateOrg("kept", 8).ok());
  admin.reset();
  ASSERT_EQ(single.Kill(SIGTERM), 0);
  EXPECT_FALSE(single.Start({"--etcd", etcd_->endpoint()}, {}, std::chrono::seconds(20)));
  EXPECT_NE(single.Log().find("holds orgs (kept) and has never been part of a cluster"),
            std::string::npos)
      << single.Log();
  EXPECT_TRUE(std::filesystem::exists(single.data_dir() + "/orgs/kept"));
  EXPECT_FALSE(std::filesystem::exists(single.data_dir() + "/cluster.json"));
  EXPECT_TRUE(Record("kept").is_null());
  // Nothing of it was published either: the three nodes' admin tokens are all etcd holds.
  auto tokens = etcd_->Client().GetPrefix("/sealcache/tokens/");
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ(tokens->size(), 3u);
}

TEST_F(ClusterTest, AFirstStartThatStoppedBeforeJoiningStillGetsAWorkingAdminToken) {
  // The first start makes the admin token, then cannot listen (the port is etcd's) and exits
  // before it joined; the next start joins, and the token made by the first works on every
  // node. (A CI run lost a node's admin token this way when a port was taken meanwhile.)
  const std::string dir = dir_ + "/late";
  std::filesystem::create_directories(dir);
  SealcachedProcess late(SEALCACHED_PATH, dir);
  late.set_port(etcd_->port());
  EXPECT_FALSE(
      late.Start({"--etcd", etcd_->endpoint(), "--node-id", "late"}, {}, std::chrono::seconds(20)));
  const std::string token = late.AdminToken();
  ASSERT_FALSE(token.empty()) << late.Log();
  EXPECT_FALSE(std::filesystem::exists(dir + "/cluster.json"));
  late.set_port(FreePort());
  ASSERT_TRUE(
      late.Start({"--etcd", etcd_->endpoint(), "--node-id", "late"}, {}, std::chrono::seconds(20)))
      << late.Log();
  EXPECT_EQ(late.AdminToken(), token);
  for (SealcachedProcess* node : {&late, nodes_[0].get()}) {
    auto admin = node->ConnectAs(token);
    ASSERT_NE(admin, nullptr) << "the first start's admin token is refused";
    EXPECT_TRUE(admin->ListOrgs().ok());
  }
}

// ---- planned moves -------------------------------------------------------------------------

// Every node serves TLS (one self-signed certificate, trusted by the nodes and the tests):
// planned moves stream over it.
class ClusterTlsTest : public ClusterTest {
 protected:
  void SetUp() override {
    tls_ = true;
    ClusterTest::SetUp();
  }
};

// The last "org_moved_out" audit event of `node` for `org`: file name -> SHA-256 hex.
std::map<std::string, std::string> StreamedFiles(const SealcachedProcess& node,
                                                 const std::string& org) {
  std::ifstream in(node.data_dir() + "/audit.log");
  std::map<std::string, std::string> files;
  for (std::string line; std::getline(in, line);) {
    auto j = Json::Parse(line);
    if (!j.ok() || (*j)["event"].string() != "org_moved_out" || (*j)["org"].string() != org) {
      continue;
    }
    files.clear();
    std::istringstream list((*j)["files"].string());
    for (std::string item; list >> item;) {
      const size_t eq = item.find('=');
      files[item.substr(0, eq)] = item.substr(eq + 1);
    }
  }
  return files;
}

std::string FileSha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), {}};
  return crypto::ToHex(
      crypto::Sha256({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}));
}

TEST_F(ClusterTlsTest, ADrainMovesEveryOrgOverTlsWithItsEntriesAndTheSameCiphertext) {
  const std::vector<std::string> orgs = {"acme", "globex", "initech", "umbrella", "hooli", "stark"};
  std::map<std::string, std::string> tokens;
  for (const auto& org : orgs) tokens[org] = CreateOrg(0, org);
  std::map<int, int> owned;
  for (const auto& org : orgs) ++owned[Owner(org)];
  int victim = 0;
  for (const auto& [node, n] : owned) {
    if (n > owned[victim]) victim = node;
  }
  ASSERT_GT(owned[victim], 0);
  constexpr int kEntries = 150;
  auto name = [](const std::string& org, int i) { return org + "/q" + std::to_string(i); };
  auto seed = [](const std::string& org, int i) {
    return static_cast<uint64_t>(std::hash<std::string>{}(org)) % 100'000 * 1000 + i;
  };
  for (const auto& org : orgs) {
    auto c = nodes_[0]->ConnectAs(tokens[org]);  // follows MOVED to the owner (over TLS)
    ASSERT_NE(c, nullptr);
    for (int i = 0; i < kEntries; ++i) {
      ASSERT_TRUE(
          PutText(*c, name(org, i), org + " answer " + std::to_string(i), seed(org, i)).ok());
    }
  }
  std::vector<std::string> drained_orgs;
  for (const auto& org : orgs) {
    if (Owner(org) == victim) drained_orgs.push_back(org);
  }

  auto admin = nodes_[0]->ConnectAs(nodes_[0]->AdminToken());
  ASSERT_NE(admin, nullptr);
  auto moved = admin->DrainNode(NodeId(victim));  // node 0 redirects to the victim if need be
  ASSERT_TRUE(moved.ok()) << moved.status().ToString() << "\n" << nodes_[victim]->Log();
  EXPECT_EQ(*moved, drained_orgs.size());
  EXPECT_EQ(Metric(victim, "sealcache_cluster_moves_out_total"), drained_orgs.size());
  double moved_in = 0;
  for (int n = 0; n < 3; ++n) moved_in += Metric(n, "sealcache_cluster_moves_in_total");
  EXPECT_EQ(moved_in, drained_orgs.size());

  for (const auto& org : drained_orgs) {
    const int owner = Owner(org);
    ASSERT_NE(owner, victim) << org;
    EXPECT_EQ(Epoch(org), 2) << org;
    EXPECT_EQ(Record(org)["state"].string(), "active");
    EXPECT_FALSE(HoldsCopy(victim, org)) << "the source deleted its copy of " << org;
    EXPECT_TRUE(HoldsCopy(owner, org));
    // Its index came along as the snapshot written at the move: nothing was rebuilt.
    EXPECT_NE(nodes_[owner]->Log().find("moved here: org " + org +
                                        ": loaded snapshot; replayed 0 vectors"),
              std::string::npos)
        << nodes_[owner]->Log();
    // The new owner holds the bytes the source streamed: its SSTs and index snapshot are the
    // source's ciphertext, byte for byte (MANIFEST, OPTIONS and CURRENT are rewritten at
    // every open).
    const auto streamed = StreamedFiles(*nodes_[victim], org);
    ASSERT_FALSE(streamed.empty()) << org;
    int data_ssts = 0, snapshots = 0;
    for (const auto& [file, sha] : streamed) {
      if (file.rfind("MANIFEST", 0) == 0 || file.rfind("OPTIONS", 0) == 0 || file == "CURRENT") {
        continue;
      }
      const std::string there = nodes_[owner]->data_dir() + "/orgs/" + org + "/" + file;
      if (!std::filesystem::exists(there) && file.ends_with(".sst")) continue;  // compacted since
      EXPECT_EQ(FileSha256(there), sha) << org << "/" << file;
      data_ssts += file.rfind("data/", 0) == 0 ? 1 : 0;
      snapshots += file.rfind("index/", 0) == 0 ? 1 : 0;
    }
    EXPECT_GT(data_ssts, 0) << org;
    EXPECT_GT(snapshots, 0) << org;
    // Still ciphertext: no payload in the clear in any file of the new copy.
    const std::string clear = org + " answer 1";
    for (const auto& f : std::filesystem::recursive_directory_iterator(nodes_[owner]->data_dir() +
                                                                       "/orgs/" + org)) {
      if (!f.is_regular_file()) continue;
      std::ifstream in(f.path(), std::ios::binary);
      const std::string bytes{std::istreambuf_iterator<char>(in), {}};
      EXPECT_EQ(bytes.find(clear), std::string::npos) << f.path();
    }
  }
  // Every entry of every org is still served, by Get and by Lookup, through any node.
  for (const auto& org : orgs) {
    for (int via = 0; via < 3; ++via) {
      auto c = nodes_[via]->ConnectAs(tokens[org]);
      ASSERT_NE(c, nullptr) << org << " via " << via;
      for (int i = 0; i < kEntries; i += (via == 0 ? 1 : 37)) {
        EXPECT_EQ(GetText(*c, name(org, i)), org + " answer " + std::to_string(i))
            << org << " via node " << via;
      }
      const auto probe = MakeVector(8, seed(org, 5));
      auto hits = c->Lookup({.vector = probe, .k = 1});
      ASSERT_TRUE(hits.ok()) << hits.status().ToString();
      ASSERT_EQ(hits->size(), 1u);
      EXPECT_EQ((*hits)[0].entry.digest, DigestOf(name(org, 5)));
    }
  }
  // The drained node takes no new orgs.
  for (int i = 0; i < 6; ++i) {
    const std::string org = "later" + std::to_string(i);
    ASSERT_FALSE(CreateOrg(0, org).empty());
    EXPECT_NE(Owner(org), victim) << org;
  }
}

TEST_F(ClusterTest, AMovedOrgKeepsItsRedisKeysAndTokensAndAFailedMoveChangesNothing) {
  const std::string token = CreateOrg(0, "acme");
  const int source = Owner("acme");
  const int target = (source + 1) % 3, other = (source + 2) % 3;
  {
    RespLine resp(resp_ports_[source]);
    ASSERT_EQ(resp.Command({"AUTH", "acme", token}), "+OK");
    ASSERT_EQ(resp.Command({"SET", "user:1", "alice"}), "+OK");
    auto c = nodes_[source]->ConnectAs(token);
    ASSERT_TRUE(PutText(*c, "q1", "a1", 1).ok());
  }
  auto admin = nodes_[other]->ConnectAs(nodes_[other]->AdminToken());
  ASSERT_NE(admin, nullptr);

  // Refused moves change nothing: an unknown node, the node it is on, a node that died.
  EXPECT_EQ(admin->MoveOrg("acme", "nobody").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(admin->MoveOrg("acme", NodeId(source)).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(admin->MoveOrg("ghost", "").status().code(), Status::Code::kNotFound);
  nodes_[other]->Kill(SIGKILL);  // its lease lives on for a moment: still listed as live
  admin = nodes_[target]->ConnectAs(nodes_[target]->AdminToken());
  auto failed = admin->MoveOrg("acme", NodeId(other));
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(Owner("acme"), source);
  EXPECT_EQ(Epoch("acme"), 1);
  EXPECT_EQ(Record("acme")["state"].string(), "active");
  EXPECT_EQ(Metric(source, "sealcache_cluster_moves_failed_total"), 1);
  {
    auto c = nodes_[target]->ConnectAs(token);
    EXPECT_EQ(GetText(*c, "q1"), "a1") << "served again after the failed move";
  }

  // A move: the org's Redis keys (named under its moved name key) and its tokens work at
  // the new owner; the old owner points there.
  auto moved = admin->MoveOrg("acme", NodeId(target));
  ASSERT_TRUE(moved.ok()) << moved.status().ToString() << "\n" << nodes_[source]->Log();
  EXPECT_EQ(moved->first, NodeId(target));
  EXPECT_GT(moved->second, 0u);
  EXPECT_EQ(Owner("acme"), target);
  EXPECT_EQ(Epoch("acme"), 2);
  EXPECT_FALSE(HoldsCopy(source, "acme"));
  RespLine resp(resp_ports_[target]);
  ASSERT_EQ(resp.Command({"AUTH", "acme", token}), "+OK");
  EXPECT_EQ(resp.Command({"GET", "user:1"}), "alice");
  RespLine old(resp_ports_[source]);
  ASSERT_EQ(old.Command({"AUTH", "acme", token}), "+OK");
  EXPECT_EQ(old.Command({"GET", "user:1"}).rfind("-MOVED 0 127.0.0.1:", 0), 0u);
  auto c = nodes_[source]->ConnectAs(token);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(GetText(*c, "q1"), "a1");
  // The move's own admin token is gone: etcd holds the nodes' admin tokens and acme's.
  auto tokens = etcd_->Client().GetPrefix("/sealcache/tokens/");
  ASSERT_TRUE(tokens.ok());
  for (const auto& kv : *tokens) EXPECT_EQ(kv.value.find("peer-"), std::string::npos);

  // A peer token (as a node makes for one session) can list and move orgs, nothing else.
  const std::string peer_token = "scpeer_for_this_test";
  const auto hash = crypto::Sha256(Bytes(peer_token));
  ASSERT_TRUE(etcd_->Client()
                  .Put("/sealcache/tokens/" + crypto::ToHex(hash),
                       R"({"org":"","token_id":"peer-test","created_ms":0,"org_uid":"",)"
                       R"("scope":"peer"})")
                  .ok());
  auto peer = nodes_[target]->ConnectAs(peer_token);
  ASSERT_NE(peer, nullptr);
  // (A listing asks every live node: it answers once the killed node's lease has ended.)
  EXPECT_TRUE(Eventually([&] { return peer->ListOrgs().ok(); }, FailoverBound()));
  EXPECT_EQ(peer->CreateOrg("other", 8).status().code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(peer->IssueToken("acme").status().code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(peer->DropOrg("acme").code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(Owner("acme"), target);
}

TEST_F(ClusterTest, RebalanceEvensOutTheOrgsAndKeepsTheirEntries) {
  const std::vector<std::string> orgs = {"a1", "a2", "a3", "a4", "a5", "a6", "a7"};
  std::map<std::string, std::string> tokens;
  for (const auto& org : orgs) tokens[org] = CreateOrg(0, org);
  auto admin = nodes_[1]->ConnectAs(nodes_[1]->AdminToken());
  ASSERT_NE(admin, nullptr);
  // Everything on node 0 first, with an entry each.
  for (const auto& org : orgs) {
    if (Owner(org) != 0) {
      ASSERT_TRUE(admin->MoveOrg(org, NodeId(0)).ok()) << org;
    }
    auto c = nodes_[0]->ConnectAs(tokens[org]);
    ASSERT_TRUE(PutText(*c, "q", org + "'s answer", 7).ok());
  }
  auto moved = admin->Rebalance();  // sent to node 1; node 0 runs the moves
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*moved, 4u) << "7 orgs over 3 nodes: 3/2/2 takes 4 moves from 7/0/0";
  std::map<int, int> owned;
  for (const auto& org : orgs) ++owned[Owner(org)];
  for (int n = 0; n < 3; ++n) EXPECT_GE(owned[n], 2) << n;
  for (const auto& org : orgs) {
    auto c = nodes_[2]->ConnectAs(tokens[org]);
    EXPECT_EQ(GetText(*c, "q"), org + "'s answer") << org;
    EXPECT_TRUE(HoldsCopy(Owner(org), org));
  }
  auto again = admin->Rebalance();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u) << "balanced already";
  // list-orgs through any node lists every node's orgs, each with its node and entries.
  auto listed = admin->ListOrgs();
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  const auto* summaries = (*listed)->body_as_ListOrgsResponse()->orgs();
  ASSERT_NE(summaries, nullptr);
  ASSERT_EQ(summaries->size(), orgs.size());
  for (const protocol::OrgSummary* o : *summaries) {
    const std::string org = o->org()->str();
    EXPECT_EQ(o->node()->str(), NodeId(Owner(org))) << org;
    EXPECT_EQ(o->entries(), 1u) << org;
  }
  // The move's admin tokens are gone with their sessions.
  auto kept = etcd_->Client().GetPrefix("/sealcache/tokens/");
  ASSERT_TRUE(kept.ok());
  for (const auto& kv : *kept) EXPECT_EQ(kv.value.find("peer-"), std::string::npos);
}

}  // namespace
}  // namespace sealcache::test
