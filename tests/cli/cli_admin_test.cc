// sealcache-cli admin commands against a live server: create-org, list-orgs, drop-org,
// rotate-key, key-status, issue-token, revoke-token.
#include "cli_fixture.h"

namespace sealcache::cli::testing {
namespace {

bool ListsOrg(const Json& doc, const std::string& org) {
  for (const Json& o : doc["orgs"].array()) {
    if (o["org"].string() == org) return true;
  }
  return false;
}

TEST_F(CliTest, CreateOrgPrintsATokenThatOpensAnOrgSession) {
  CliRun created = Admin({"--json", "create-org", "acme", "--dim", "8", "--index", "flat"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  Json doc = created.json();
  EXPECT_EQ(doc["org"].string(), "acme");
  EXPECT_EQ(doc["index"].string(), "flat");
  ASSERT_TRUE(doc["token"].string().starts_with("sc_"));
  EXPECT_FALSE(doc["token_id"].string().empty());
  WriteFile(dir_ + "/acme.token", doc["token"].string());

  CliRun ping = Cli(dir_ + "/acme.token", {"--json", "ping"});
  ASSERT_EQ(ping.exit_code, 0) << ping.err;
  EXPECT_EQ(ping.json()["org"].string(), "acme");
  EXPECT_FALSE(ping.json()["admin"].boolean());
  EXPECT_GT(ping.json()["server_time_ms"].number(), 0);
}

TEST_F(CliTest, CreateOrgTextShowsTheTokenOnceWithANoticeOnStderr) {
  CliRun r = Admin({"create-org", "acme", "--dim", "8"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("org:      acme"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("token:    sc_"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("shown once"), std::string::npos) << r.err;
  EXPECT_EQ(Admin({"create-org", "acme", "--dim", "8"}).exit_code, 1);  // already exists
}

TEST_F(CliTest, ListOrgsShowsOrgsAndDropOrgRemovesThem) {
  CreateOrg("alpha");
  CreateOrg("beta");
  CliRun listed = Admin({"--json", "list-orgs"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_TRUE(ListsOrg(listed.json(), "alpha"));
  EXPECT_TRUE(ListsOrg(listed.json(), "beta"));
  EXPECT_EQ(listed.json()["orgs"].array()[0]["dimension"].number(), kDim);

  CliRun dropped = Admin({"--json", "drop-org", "alpha"});
  ASSERT_EQ(dropped.exit_code, 0) << dropped.err;
  EXPECT_TRUE(dropped.json()["dropped"].boolean());
  CliRun after = Admin({"--json", "list-orgs"});
  EXPECT_FALSE(ListsOrg(after.json(), "alpha"));
  EXPECT_TRUE(ListsOrg(after.json(), "beta"));
  CliRun again = Admin({"drop-org", "alpha"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("NOT_FOUND"), std::string::npos) << again.err;
}

TEST_F(CliTest, CapacityLimitsAreSetAtCreateChangedLaterAndShownEverywhere) {
  CliRun created = Admin({"--json", "create-org", "capped", "--dim", "8", "--max-entries", "3",
                          "--eviction-policy", "noeviction"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const std::string token = dir_ + "/capped.token";
  WriteFile(token, created.json()["token"].string());
  for (int i = 0; i < 3; ++i) {
    CliRun put = Cli(token,
                     {"put", "--digest-of", "q" + std::to_string(i), "--payload-text", "a",
                      "--vector", "-", "--ttl", "1h"},
                     "1 2 3 4 5 6 7 8");
    ASSERT_EQ(put.exit_code, 0) << put.err;
  }
  CliRun refused = Cli(
      token, {"put", "--digest-of", "q3", "--payload-text", "a", "--vector", "-", "--ttl", "1h"},
      "1 2 3 4 5 6 7 8");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("RESOURCE_EXHAUSTED"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("capacity limit"), std::string::npos) << refused.err;

  EXPECT_EQ(Admin({"set-org-limits", "capped", "--eviction-policy", "fifo"}).exit_code, 2);
  CliRun set = Admin({"--json", "set-org-limits", "capped", "--max-entries", "1"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_EQ(set.json()["evicted"].number(), 2);
  CliRun listed = Admin({"--json", "list-orgs"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  const Json doc = listed.json();
  const Json& org = doc["orgs"].array()[0];
  EXPECT_EQ(org["max_entries"].number(), 1);
  EXPECT_EQ(org["entries"].number(), 1);
  EXPECT_EQ(org["eviction_policy"].string(), "lru");  // the server's default
  CliRun stats = Cli(token, {"--json", "stats"});
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_EQ(stats.json()["evictions_org_limit"].number(), 2);
  EXPECT_EQ(stats.json()["max_entries"].number(), 1);
  EXPECT_NE(Admin({"list-orgs"}).out.find("max_entries=1 lru"), std::string::npos);
}

TEST_F(CliTest, RotateKeyMakesANewVersionActiveAndKeyStatusShowsBoth) {
  CreateOrg("acme");
  CliRun rotated = Admin({"--json", "rotate-key", "acme"});
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  EXPECT_EQ(rotated.json()["active_version"].number(), 2);

  CliRun status = Admin({"--json", "key-status", "acme"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const Json doc = status.json();
  const auto& versions = doc["versions"].array();
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0]["version"].number(), 1);
  EXPECT_NE(versions[0]["state"].string(), "ACTIVE");
  EXPECT_EQ(versions[1]["state"].string(), "ACTIVE");
  CliRun text = Admin({"key-status", "acme"});
  EXPECT_NE(text.out.find("version 2"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("ACTIVE"), std::string::npos) << text.out;
}

TEST_F(CliTest, IssuedTokenWorksUntilRevokedById) {
  CreateOrg("acme");
  CliRun issued = Admin({"--json", "issue-token", "acme"});
  ASSERT_EQ(issued.exit_code, 0) << issued.err;
  const std::string token = issued.json()["token"].string();
  const std::string id = issued.json()["token_id"].string();
  // The new token, given through the environment.
  const std::string port = std::to_string(server_->port());
  auto ping = [&] {
    return RunCli(dir_, {"--port", port, "--json", "ping"}, "", {"SEALCACHE_TOKEN=" + token});
  };
  CliRun before = ping();
  ASSERT_EQ(before.exit_code, 0) << before.err;
  EXPECT_EQ(before.json()["org"].string(), "acme");

  CliRun revoked = Admin({"--json", "revoke-token", "acme", "--id", id});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  EXPECT_EQ(revoked.json()["revoked"].number(), 1);
  CliRun after = ping();
  EXPECT_EQ(after.exit_code, 1);
  EXPECT_NE(after.err.find("UNAUTHENTICATED"), std::string::npos) << after.err;
  // The org's first token was not revoked.
  EXPECT_EQ(Cli(dir_ + "/acme.token", {"ping"}).exit_code, 0);
}

TEST_F(CliTest, RevokeTokenWithoutIdRevokesEveryTokenOfTheOrg) {
  const std::string first = CreateOrg("acme");
  ASSERT_EQ(Admin({"issue-token", "acme"}).exit_code, 0);
  CliRun revoked = Admin({"--json", "revoke-token", "acme"});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  EXPECT_EQ(revoked.json()["revoked"].number(), 2);
  EXPECT_EQ(Cli(first, {"ping"}).exit_code, 1);
}

TEST_F(CliTest, IssueTokenAdminGivesAWorkingAdminToken) {
  CliRun issued = Admin({"--json", "issue-token", "--admin"});
  ASSERT_EQ(issued.exit_code, 0) << issued.err;
  WriteFile(dir_ + "/admin2.token", issued.json()["token"].string());
  CliRun ping = Cli(dir_ + "/admin2.token", {"--json", "ping"});
  ASSERT_EQ(ping.exit_code, 0) << ping.err;
  EXPECT_TRUE(ping.json()["admin"].boolean());
}

}  // namespace
}  // namespace sealcache::cli::testing
