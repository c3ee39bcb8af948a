// Every request type of the native protocol against every session state a client can be
// in: none, its own org, another org, admin, a revoked org token, a revoked admin token, a
// dropped org and a recreated org (a new tenant under the old session's org name). Sessions
// are checked on every request, not only at Hello (issue 12, point 1).
#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "server_fixture.h"

namespace sealcache::server {
namespace {

using testing::Bytes;
using testing::MakeDigest;
using testing::MakeVector;
using testing::ServerTest;

enum class State {
  kNone,
  kOwnOrg,
  kOtherOrg,
  kAdmin,
  kRevokedToken,
  kRevokedAdminToken,
  kDroppedOrg,
  kRecreatedOrg,
};

constexpr std::pair<State, const char*> kStates[] = {
    {State::kNone, "none"},
    {State::kOwnOrg, "own org"},
    {State::kOtherOrg, "other org"},
    {State::kAdmin, "admin"},
    {State::kRevokedToken, "revoked token"},
    {State::kRevokedAdminToken, "revoked admin token"},
    {State::kDroppedOrg, "dropped org"},
    {State::kRecreatedOrg, "recreated org"},
};

// What one request produced: its status and every payload byte it carried back.
struct Answer {
  Status status;
  std::string payloads;
};

using Code = Status::Code;

template <typename R>
Answer StatusOf(const R& r) {
  return Answer{r.status(), ""};
}
uint64_t Revoked(const Result<uint64_t>& r) { return r.ok() ? *r : 0; }

class SessionMatrix : public ServerTest {
 protected:
  static constexpr const char* kVictim = "victim";  // the org every data request aims at
  static constexpr const char* kSecret = "victim secret";

  void SetUp() override {
    ServerTest::SetUp();
    StartServer();
    admin_ = ConnectAs(AdminToken());
    victim_ = NewOrg(kVictim);
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(Put(*victim_, i, kSecret, "ns").ok());
    ASSERT_TRUE(admin_->CreateOrg("other", kDim).ok());
  }

  // A connection in `state`. For states bound to the victim org, the org the session is bound
  // to is the victim (own org) or a dedicated org that the test then drops or re-creates.
  std::unique_ptr<client::Client> SessionIn(State state) {
    switch (state) {
      case State::kNone:
        return Connect();
      case State::kOwnOrg:
        return ConnectAs(tokens_[kVictim]);
      case State::kOtherOrg: {
        auto issued = admin_->IssueToken("other");
        EXPECT_TRUE(issued.ok());
        return ConnectAs(issued->first);
      }
      case State::kAdmin:
        return ConnectAs(AdminToken());
      case State::kRevokedToken: {
        auto issued = admin_->IssueToken(kVictim);
        EXPECT_TRUE(issued.ok());
        auto c = ConnectAs(issued->first);
        EXPECT_EQ(Revoked(admin_->RevokeToken(kVictim, issued->second)), 1u);
        return c;
      }
      case State::kRevokedAdminToken: {
        auto issued = admin_->IssueToken("");
        EXPECT_TRUE(issued.ok());
        auto c = ConnectAs(issued->first);
        EXPECT_EQ(Revoked(admin_->RevokeToken("", issued->second)), 1u);
        return c;
      }
      case State::kDroppedOrg:
      case State::kRecreatedOrg: {
        const std::string org = "doomed" + std::to_string(doomed_++);
        auto created = admin_->CreateOrg(org, kDim);
        EXPECT_TRUE(created.ok());
        auto c = ConnectAs(created->token);
        EXPECT_TRUE(Put(*c, 0, "old tenant").ok());
        EXPECT_TRUE(admin_->DropOrg(org).ok());
        if (state == State::kRecreatedOrg) {
          // The new tenant stores the very digests the old session asks for.
          auto again = admin_->CreateOrg(org, kDim);
          EXPECT_TRUE(again.ok());
          auto tenant = ConnectAs(again->token);
          for (int i = 0; i < 4; ++i) EXPECT_TRUE(Put(*tenant, i, kSecret, "ns").ok());
        }
        return c;
      }
    }
    return nullptr;
  }

  // The requests, each as a client would send it. Data requests name the victim's digests
  // and vectors; admin requests act on a scratch org so that they can succeed.
  std::vector<std::pair<std::string, std::function<Answer(client::Client&)>>> Requests() {
    const auto v = MakeVector(kDim, 1);
    std::vector<std::pair<std::string, std::function<Answer(client::Client&)>>> r;
    r.emplace_back("Ping", [this, v](client::Client& c) { return StatusOf(c.Ping()); });
    r.emplace_back("Put", [this, v](client::Client& c) {
      return StatusOf(Put(c, 100 + counter_++, "written by the session"));
    });
    r.emplace_back("PutBatch", [this, v](client::Client& c) {
      const std::string payload = "batched by the session";
      client::PutArgs a{MakeDigest(200 + counter_++), v, Bytes(payload), 60'000, ""};
      auto res = c.PutBatch({&a, 1});
      if (res.ok() && !(*res)[0].ok()) return Answer{(*res)[0], ""};
      return StatusOf(res);
    });
    r.emplace_back("GetEntry", [this, v](client::Client& c) {
      auto e = c.Get(MakeDigest(1));
      return Answer{e.status(), e.ok() ? std::string(e->payload.begin(), e->payload.end()) : ""};
    });
    r.emplace_back("Lookup", [this, v](client::Client& c) {
      auto hits = c.Lookup({.vector = v, .k = 4, .min_score = -1.0f});
      Answer a{hits.status(), ""};
      if (hits.ok()) {
        for (const auto& h : *hits)
          a.payloads.append(h.entry.payload.begin(), h.entry.payload.end());
      }
      return a;
    });
    r.emplace_back("Stats", [this, v](client::Client& c) { return StatusOf(c.Stats()); });
    r.emplace_back("Delete",
                   [this, v](client::Client& c) { return StatusOf(c.Delete(MakeDigest(3))); });
    r.emplace_back("SetExpiry", [this, v](client::Client& c) {
      return StatusOf(c.SetExpiry(MakeDigest(2), 0, /*ttl_ms=*/60'000));
    });
    r.emplace_back("Invalidate", [this, v](client::Client& c) {
      return StatusOf(c.Invalidate("no such ns", {}));
    });
    r.emplace_back("CreateOrg", [this](client::Client& c) {
      return StatusOf(c.CreateOrg("scratch" + std::to_string(counter_++), kDim));
    });
    r.emplace_back("DropOrg", [this](client::Client& c) {
      const std::string org = "scratch" + std::to_string(counter_++);
      EXPECT_TRUE(admin_->CreateOrg(org, kDim).ok());
      return Answer{c.DropOrg(org), ""};
    });
    r.emplace_back("RotateKey", [](client::Client& c) { return StatusOf(c.RotateKey("other")); });
    r.emplace_back("KeyStatus", [](client::Client& c) { return StatusOf(c.KeyStatus("other")); });
    r.emplace_back("ListOrgs", [](client::Client& c) { return StatusOf(c.ListOrgs()); });
    r.emplace_back("IssueToken", [](client::Client& c) { return StatusOf(c.IssueToken("other")); });
    r.emplace_back("RevokeToken", [](client::Client& c) {
      return StatusOf(c.RevokeToken("other", "0000000000000000"));
    });
    return r;
  }

  static bool IsAdminRequest(const std::string& name) {
    static const std::set<std::string> admin = {
        "CreateOrg", "DropOrg", "RotateKey", "KeyStatus", "ListOrgs", "IssueToken", "RevokeToken"};
    return admin.count(name) > 0;
  }

  // The answer PROTOCOL.md promises for `request` in `state`.
  static Code Expected(State state, const std::string& request) {
    const bool admin_request = IsAdminRequest(request);
    switch (state) {
      case State::kNone:
      case State::kRevokedToken:
      case State::kRevokedAdminToken:
      case State::kDroppedOrg:
      case State::kRecreatedOrg:
        return Code::kUnauthenticated;
      case State::kOwnOrg:
        return admin_request ? Code::kPermissionDenied : Code::kOk;
      case State::kOtherOrg:
        if (admin_request) return Code::kPermissionDenied;
        // The victim's digests are not in this org: a miss, never the victim's entry.
        if (request == "GetEntry" || request == "Delete" || request == "SetExpiry") {
          return Code::kNotFound;
        }
        return Code::kOk;
      case State::kAdmin:
        return admin_request || request == "Ping" ? Code::kOk : Code::kPermissionDenied;
    }
    return Code::kInternal;
  }

  std::unique_ptr<client::Client> admin_, victim_;
  int doomed_ = 0;
  inline static int counter_ = 0;
};

TEST_F(SessionMatrix, EveryRequestInEveryStateGetsWhatTheProtocolPromises) {
  std::map<std::string, int> cells_by_outcome;
  int cells = 0;
  for (const auto& [state, state_name] : kStates) {
    // A fresh session per request: a request (Delete, a revocation) must not change what
    // the next one in the same state sees.
    for (const auto& [request, run] : Requests()) {
      auto c = SessionIn(state);
      ASSERT_NE(c, nullptr);
      const Answer answer = run(*c);
      const Code want = Expected(state, request);
      EXPECT_EQ(answer.status.code(), want)
          << state_name << " / " << request << ": " << answer.status.ToString();
      if (state != State::kOwnOrg) {
        EXPECT_EQ(answer.payloads.find(kSecret), std::string::npos)
            << state_name << " / " << request << " returned the victim's payload";
      }
      cells_by_outcome[std::string(Status::CodeName(answer.status.code()))]++;
      ++cells;
    }
  }
  std::string summary;
  for (const auto& [outcome, n] : cells_by_outcome) {
    summary += " " + outcome + "=" + std::to_string(n);
  }
  std::printf("[ security ] session matrix: %zu states x %zu requests = %d cells:%s\n",
              std::size(kStates), Requests().size(), cells, summary.c_str());
  // The victim's entries are untouched by every other session (the own-org Delete took one).
  for (int i : {0, 1, 2}) {
    auto e = victim_->Get(MakeDigest(i));
    ASSERT_TRUE(e.ok()) << i << ": " << e.status().ToString();
    EXPECT_EQ(std::string(e->payload.begin(), e->payload.end()), kSecret);
  }
}

TEST_F(SessionMatrix, ARevocationReachesEveryOpenConnectionOfTheToken) {
  auto issued = admin_->IssueToken(kVictim);
  ASSERT_TRUE(issued.ok());
  std::vector<std::unique_ptr<client::Client>> open;
  for (int i = 0; i < 4; ++i) open.push_back(ConnectAs(issued->first));
  for (auto& c : open) ASSERT_TRUE(c->Get(MakeDigest(1)).ok());
  ASSERT_EQ(Revoked(admin_->RevokeToken(kVictim, issued->second)), 1u);
  for (auto& c : open) {
    EXPECT_EQ(c->Get(MakeDigest(1)).status().code(), Code::kUnauthenticated);
    EXPECT_EQ(c->Stats().status().code(), Code::kUnauthenticated);
    // A Hello with the revoked token does not bring it back.
    EXPECT_EQ(c->Hello(issued->first).status().code(), Code::kUnauthenticated);
  }
  // Other tokens of the org keep working.
  EXPECT_TRUE(victim_->Get(MakeDigest(1)).ok());
}

TEST_F(SessionMatrix, ARevokedAdminTokenCanNoLongerIssueTokens) {
  auto issued = admin_->IssueToken("");
  ASSERT_TRUE(issued.ok());
  auto second_admin = ConnectAs(issued->first);
  ASSERT_TRUE(second_admin->IssueToken(kVictim).ok());
  ASSERT_EQ(Revoked(admin_->RevokeToken("", issued->second)), 1u);
  EXPECT_EQ(second_admin->IssueToken(kVictim).status().code(), Code::kUnauthenticated);
  EXPECT_EQ(second_admin->ListOrgs().status().code(), Code::kUnauthenticated);
  EXPECT_TRUE(admin_->ListOrgs().ok());
}

TEST_F(SessionMatrix, AnOldSessionNeverReachesTheNextTenantOfItsOrgName) {
  auto created = admin_->CreateOrg("delta", kDim);
  ASSERT_TRUE(created.ok());
  auto old_session = ConnectAs(created->token);
  ASSERT_TRUE(Put(*old_session, 7, "first tenant").ok());
  ASSERT_TRUE(admin_->DropOrg("delta").ok());
  auto again = admin_->CreateOrg("delta", kDim);
  ASSERT_TRUE(again.ok());
  auto tenant = ConnectAs(again->token);
  ASSERT_TRUE(Put(*tenant, 7, "second tenant").ok());

  EXPECT_EQ(old_session->Get(MakeDigest(7)).status().code(), Code::kUnauthenticated);
  EXPECT_EQ(old_session->Stats().status().code(), Code::kUnauthenticated);
  const auto v = MakeVector(kDim, 7);
  EXPECT_EQ(old_session->Lookup({.vector = v, .k = 1}).status().code(), Code::kUnauthenticated);
  EXPECT_EQ(Put(*old_session, 8, "old session write").status().code(), Code::kUnauthenticated);
  // The old token does not authenticate against the new tenant either.
  EXPECT_EQ(old_session->Hello(created->token).status().code(), Code::kUnauthenticated);
  // The new tenant sees only its own entry, not the old session's write.
  auto got = tenant->Get(MakeDigest(7));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(std::string(got->payload.begin(), got->payload.end()), "second tenant");
  EXPECT_TRUE(tenant->Get(MakeDigest(8)).status().IsNotFound());
}

TEST_F(SessionMatrix, RequestsInFlightDuringADropNeverTouchTheNextTenant) {
  // Writers pipeline puts into org "race" while it is dropped and re-created: every put
  // acknowledged after the drop was acknowledged must be refused, and the new tenant must
  // hold none of the old session's digests.
  auto created = admin_->CreateOrg("race", kDim);
  ASSERT_TRUE(created.ok());
  auto writer = ConnectAs(created->token);
  std::atomic<bool> stop{false};
  std::atomic<int> acknowledged{0};
  std::thread t([&] {
    const std::string payload = "old tenant";
    for (uint64_t i = 1000; !stop; ++i) {
      if (Put(*writer, i, payload).ok()) acknowledged++;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(admin_->DropOrg("race").ok());
  auto again = admin_->CreateOrg("race", kDim);
  ASSERT_TRUE(again.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop = true;
  t.join();
  EXPECT_GT(acknowledged.load(), 0);
  auto tenant = ConnectAs(again->token);
  auto stats = tenant->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((*stats)->body_as_StatsResponse()->entries(), 0u);
}

}  // namespace
}  // namespace sealcache::server
