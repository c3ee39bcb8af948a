// The KMIP master key provider against a real KMS: each test starts its own PyKMIP server
// (Debian's python3-pykmip) on a loopback port with mutual TLS and certificates made for it,
// creates keys with PyKMIP's own client as an operator would, and runs a real sealcached on
// them. Skipped, with the reason, only where python3-pykmip is not installed (tools/setup.sh
// installs it).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "../../crypto/src/kmip_provider.h"
#include "key_servers.h"
#include "sealcache/clock.h"
#include "sealcache/crypto/keystore.h"
#include "sealcache/crypto/master_key.h"
#include "sealcached_process.h"
#include "test_support.h"

namespace sealcache {
namespace {

namespace fs = std::filesystem;
using crypto::MasterKeyOptions;
using crypto::MasterKeyProviderFromSpec;

TEST(KmipUri, ParsesHostPortKeyAndTheTlsFiles) {
  MasterKeyOptions defaults;
  defaults.kmip_client_cert = "/etc/sc/client.pem";
  defaults.kmip_client_key = "/etc/sc/client.key";
  defaults.kmip_ca = "/etc/sc/ca.pem";
  auto uri = crypto::internal::ParseKmipUri("kmip://kms.example:5696/key%2F7", defaults);
  ASSERT_TRUE(uri.ok()) << uri.status().ToString();
  EXPECT_EQ(uri->host, "kms.example");
  EXPECT_EQ(uri->port, 5696);
  EXPECT_EQ(uri->key_id, "key/7");
  EXPECT_EQ(uri->client_cert, "/etc/sc/client.pem");
  EXPECT_EQ(uri->ca, "/etc/sc/ca.pem");
  EXPECT_EQ(uri->ToString(), "kmip://kms.example:5696/key/7");

  auto own = crypto::internal::ParseKmipUri(
      "kmip://[::1]:15696/3?client-cert=/c.pem&client-key=/c.key&ca=/ca.pem&server-name=kms",
      defaults);
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  EXPECT_EQ(own->host, "::1");
  EXPECT_EQ(own->client_key, "/c.key");
  EXPECT_EQ(own->ca, "/ca.pem");
  EXPECT_EQ(own->server_name, "kms");
  EXPECT_EQ(own->ToString().find("/c.key"), std::string::npos);
}

TEST(KmipUri, RefusesIncompleteOrUnknownForms) {
  for (const char* bad :
       {"kmip://host:5696", "kmip://host:5696/", "kmip://host/1", "kmip://host:0/1",
        "kmip://host:70000/1", "kmip://host:56x6/1", "kmip://:5696/1", "kmip://h:5696/1?pin=1",
        "kmip://h:5696/1?ca", "kmip://h:5696/%zz", "kmip:h:5696/1"}) {
    EXPECT_FALSE(crypto::internal::ParseKmipUri(bad, {}).ok()) << bad;
  }
}

class Kmip : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::PyKmipServer::Installed()) {
      GTEST_SKIP() << "python3-pykmip is not installed (tools/setup.sh installs it)";
    }
    dir_ = test::MakeTempDir("sealcache-kmip");
    ASSERT_TRUE(kms_.Init(dir_ + "/kms")) << kms_.Log();
    key_ = kms_.Admin("create-aes 256");
    ASSERT_FALSE(key_.empty()) << kms_.Log();
  }
  void TearDown() override {
    kms_.Stop();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  Result<crypto::LoadedMasterKey> Load(const std::string& spec, bool create = true) {
    return test::LoadMasterKeyIn(dir_, spec, create);
  }
  void MakeKeystore(const crypto::SecretBytes& key) { test::MakeKeystoreIn(dir_, key); }
  std::vector<std::string> TlsFlags() const {
    return {"--kmip-client-cert", kms_.file("client.pem"),
            "--kmip-client-key",  kms_.file("client.key"),
            "--kmip-ca",          kms_.file("ca.pem")};
  }

  test::PyKmipServer kms_;
  std::string dir_, key_;
};

TEST_F(Kmip, TheMasterKeyIsSealedByTheKmsAtFirstStartAndOpenedByItAfter) {
  auto first = Load(kms_.Uri(key_), /*create=*/false);
  EXPECT_EQ(first.status().code(), Status::Code::kNotFound) << "read-only tools create nothing";
  auto created = Load(kms_.Uri(key_));
  ASSERT_TRUE(created.ok()) << created.status().ToString() << kms_.Log();
  ASSERT_EQ(created->key.size(), 32u);
  MakeKeystore(created->key);
  const std::string envelope =
      dir_ + "/keys/master-key-" + *crypto::Keystore::Fingerprint(created->key) + ".kmip";
  ASSERT_TRUE(fs::exists(envelope));
  EXPECT_EQ(fs::status(envelope).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  const std::string bytes = test::ReadFile(envelope);
  const std::string key(reinterpret_cast<const char*>(created->key.data()), 32);
  EXPECT_EQ(bytes.find(key), std::string::npos) << "the master key is in the clear";
  for (int i = 0; i < 2; ++i) {
    auto again = Load(kms_.Uri(key_), /*create=*/i == 0);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(again->key.data()), 32), key);
  }
  // The envelope is bound to the KMS key that sealed it: another key of the same KMS, even
  // one the same client owns, does not open it.
  const std::string other = kms_.Admin("create-aes 256");
  ASSERT_FALSE(other.empty());
  auto opened = Load(kms_.Uri(other));
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Status::Code::kCorruption) << opened.status().ToString();
}

TEST_F(Kmip, FailuresSayWhichProviderAndWhy) {
  auto first = Load(kms_.Uri(key_));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  MakeKeystore(first->key);
  const std::string aes128 = kms_.Admin("create-aes 128");
  const std::string rsa = kms_.Admin("create-rsa");
  const std::string inactive = kms_.Admin("create-inactive-aes");
  ASSERT_FALSE(aes128.empty() || rsa.empty() || inactive.empty()) << kms_.Log();
  // A client key others may read is refused before it is used.
  fs::copy_file(kms_.file("client.key"), dir_ + "/open.key");
  chmod((dir_ + "/open.key").c_str(), 0644);
  struct Case {
    std::string spec;
    Status::Code code;
    std::string says;
  };
  const std::string tls_of =
      "?client-cert=" + kms_.file("client.pem") + "&client-key=" + kms_.file("client.key") + "&ca=";
  const std::vector<Case> cases = {
      {kms_.Uri("99999"), Status::Code::kNotFound, "99999"},
      {kms_.Uri(aes128), Status::Code::kInvalidArgument, "wrong type"},
      {kms_.Uri(rsa), Status::Code::kInvalidArgument, "wrong type"},
      {kms_.Uri(inactive), Status::Code::kFailedPrecondition, "not active"},
      // Nobody listens there: the KMS is unavailable, not the key wrong.
      {"kmip://127.0.0.1:" + std::to_string(test::FreePort()) + "/" + key_ + tls_of +
           kms_.file("ca.pem"),
       Status::Code::kUnavailable, "cannot reach"},
      // The server's certificate does not chain to the CA we trust.
      {kms_.Uri(key_, true) + tls_of + kms_.file("rogue-ca.pem"), Status::Code::kPermissionDenied,
       "certificate of the KMIP server"},
      // Our certificate is not signed by a CA the server trusts.
      {kms_.Uri(key_, true) + "?client-cert=" + kms_.file("rogue-client.pem") +
           "&client-key=" + kms_.file("rogue-client.key") + "&ca=" + kms_.file("ca.pem"),
       Status::Code::kPermissionDenied, "refused this client's certificate"},
      {kms_.Uri(key_, true) + "?client-cert=" + kms_.file("client.pem") + "&client-key=" + dir_ +
           "/open.key&ca=" + kms_.file("ca.pem"),
       Status::Code::kPermissionDenied, "chmod 600"},
      {kms_.Uri(key_, true), Status::Code::kInvalidArgument, "--kmip-client-cert"},
  };
  const std::string client_key = test::ReadFile(kms_.file("client.key"));
  for (const auto& c : cases) {
    auto r = Load(c.spec);
    ASSERT_FALSE(r.ok()) << c.spec;
    EXPECT_EQ(r.status().code(), c.code) << c.spec << "\n" << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.says), std::string::npos) << r.status().ToString();
    EXPECT_NE(r.status().message().find("kmip://127.0.0.1"), std::string::npos)
        << "names the provider: " << r.status().ToString();
    EXPECT_EQ(r.status().message().find("PRIVATE KEY"), std::string::npos);
  }
  ASSERT_NE(client_key.find("PRIVATE KEY"), std::string::npos);
  // A KMS key that is revoked and destroyed leaves the envelope unopenable.
  ASSERT_EQ(kms_.Admin("destroy " + key_), "destroyed " + key_) << kms_.Log();
  auto gone = Load(kms_.Uri(key_));
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.status().message().find("KMIP key '" + key_ + "'"), std::string::npos)
      << gone.status().ToString();
}

TEST_F(Kmip, ASealcachedOnTheKmsCreatesWritesRestartsAndReadsBack) {
  fs::create_directories(dir_ + "/server");
  test::SealcachedProcess proc(SEALCACHED_PATH, dir_ + "/server");
  proc.set_master_key_spec(kms_.Uri(key_, /*bare=*/true));  // TLS files from the flags
  ASSERT_TRUE(proc.Start(TlsFlags(), {})) << proc.Log() << kms_.Log();
  std::string token;
  {
    auto admin = proc.ConnectAs(proc.AdminToken());
    ASSERT_TRUE(admin);
    auto org = admin->CreateOrg("acme", 8, "flat");
    ASSERT_TRUE(org.ok()) << org.status().ToString();
    token = org->token;
    auto c = proc.ConnectAs(token);
    ASSERT_TRUE(c);
    ASSERT_TRUE(test::PutText(*c, 7, "sealed by the KMS").ok());
  }
  ASSERT_EQ(proc.Kill(SIGTERM), 0) << proc.Log();
  EXPECT_EQ(test::EnvelopesIn(proc.data_dir() + "/keys", ".kmip"), 1);
  EXPECT_NE(proc.Log().find("made a new master key, sealed by KMIP key '" + key_ + "'"),
            std::string::npos)
      << proc.Log();
  ASSERT_TRUE(proc.Start(TlsFlags(), {})) << proc.Log();
  {
    auto c = proc.ConnectAs(token);
    ASSERT_TRUE(c);
    EXPECT_EQ(test::GetText(*c, 7), "sealed by the KMS");
  }
  ASSERT_EQ(proc.Kill(SIGTERM), 0);
  // The operator's dump tool opens the same envelope through the KMS (read-only).
  const std::string log = dir_ + "/dump.log";
  EXPECT_EQ(test::RunCommand(std::string(DUMP_PATH) + " " + proc.data_dir() +
                                 " verify --master-key '" + kms_.Uri(key_) + "'",
                             log),
            0)
      << test::ReadFile(log);

  // With the KMS down the server does not start, and says why in one line naming it.
  kms_.Stop();
  EXPECT_FALSE(proc.Start(TlsFlags(), {}, std::chrono::seconds(30)));
  EXPECT_NE(proc.exit_status(), 0);
  const std::string said = proc.Log();
  EXPECT_NE(said.find("sealcached: master key kmip://127.0.0.1:" + std::to_string(kms_.port()) +
                      "/" + key_ + ": Unavailable"),
            std::string::npos)
      << said;
  const std::string audit = test::ReadFile(proc.data_dir() + "/audit.log");
  EXPECT_NE(audit.find("\"event\":\"master_key_load_failed\",\"provider\":\"kmip://127.0.0.1"),
            std::string::npos)
      << audit;
}

// Lost while running: the server keeps serving with the rings it holds, refuses what needs
// the KMS with UNAVAILABLE (counted, audited), and works again once the KMS is back, without
// a restart.
TEST_F(Kmip, ALostKmsLeavesServingIntactAndOnlyRotationUnavailableUntilItReturns) {
  fs::create_directories(dir_ + "/server");
  test::SealcachedProcess proc(SEALCACHED_PATH, dir_ + "/server");
  proc.set_master_key_spec(kms_.Uri(key_));
  const uint16_t metrics_port = test::FreePort();
  const uint16_t resp_port = test::FreePort();
  ASSERT_TRUE(proc.Start({"--metrics-port", std::to_string(metrics_port), "--resp", "--resp-port",
                          std::to_string(resp_port)},
                         {}))
      << proc.Log();
  const std::string next = kms_.Admin("create-aes 256");
  ASSERT_FALSE(next.empty());
  kms_.Stop();

  auto admin = proc.ConnectAs(proc.AdminToken());
  ASSERT_TRUE(admin);
  auto org = admin->CreateOrg("acme", 8, "flat");  // the rings are held: no KMS needed
  ASSERT_TRUE(org.ok()) << org.status().ToString();
  ASSERT_TRUE(admin->RotateKey("acme").ok());
  auto c = proc.ConnectAs(org->token);
  ASSERT_TRUE(c);
  const std::string payload = "written while the KMS was down";
  ASSERT_TRUE(test::PutText(*c, 1, payload).ok());

  auto refused = admin->RotateMasterKey(kms_.Uri(next));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kUnavailable) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("kmip://127.0.0.1"), std::string::npos);
  EXPECT_EQ(test::EnvelopesIn(proc.data_dir() + "/keys", ".kmip"), 1) << "nothing changed";
  // The same over the Redis protocol, with a real redis-cli where it is installed.
  if (fs::exists("/usr/bin/redis-cli")) {
    const std::string out = dir_ + "/redis-cli.out";
    std::system(("/usr/bin/redis-cli -p " + std::to_string(resp_port) + " -a " + proc.AdminToken() +
                 " --no-auth-warning SEALCACHE.ROTATEMASTERKEY '" + kms_.Uri(next) + "' >" + out +
                 " 2>&1")
                    .c_str());
    const std::string said = test::ReadFile(out);
    EXPECT_EQ(said.rfind("UNAVAILABLE master key kmip://127.0.0.1", 0), 0) << said;
  }
  EXPECT_EQ(
      test::MetricValue(test::ScrapeMetrics(metrics_port), "sealcache_key_provider_errors_total"),
      fs::exists("/usr/bin/redis-cli") ? 2.0 : 1.0);

  ASSERT_TRUE(kms_.Start()) << kms_.Log();
  auto rotated = admin->RotateMasterKey(kms_.Uri(next));
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  EXPECT_EQ(test::EnvelopesIn(proc.data_dir() + "/keys", ".kmip"), 1);
  ASSERT_EQ(proc.Kill(SIGTERM), 0) << proc.Log();
  proc.set_master_key_spec(kms_.Uri(next));
  ASSERT_TRUE(proc.Start({}, {})) << proc.Log();
  auto again = proc.ConnectAs(org->token);
  ASSERT_TRUE(again);
  EXPECT_EQ(test::GetText(*again, 1), payload);
  const std::string audit = test::ReadFile(proc.data_dir() + "/audit.log");
  EXPECT_NE(audit.find("\"event\":\"master_key_rotation_failed\""), std::string::npos) << audit;
  EXPECT_NE(audit.find("\"master_key_provider\":\"kmip://127.0.0.1"), std::string::npos) << audit;
}

// Master-key rotation online across every provider: file -> PKCS#11 -> KMIP -> file, each
// while serving, each followed by a restart with only the new provider (the old key
// destroyed), data intact.
TEST_F(Kmip, MasterKeyRotatesFromAFileToAnHsmToAKmsAndBackWithoutTheOldKeys) {
  if (!test::SoftHsmToken::Installed()) {
    GTEST_SKIP() << "softhsm2 or opensc is not installed (tools/setup.sh installs them)";
  }
  test::SoftHsmToken hsm;
  ASSERT_TRUE(hsm.Init(dir_ + "/hsm")) << hsm.Log();
  fs::create_directories(dir_ + "/server");
  test::SealcachedProcess proc(SEALCACHED_PATH, dir_ + "/server");  // file: master key
  const std::vector<std::string> env = {hsm.conf_env()};
  ASSERT_TRUE(proc.Start({}, env)) << proc.Log();
  std::string token;
  {
    auto admin = proc.ConnectAs(proc.AdminToken());
    auto org = admin->CreateOrg("acme", 8, "flat");
    ASSERT_TRUE(org.ok()) << org.status().ToString();
    token = org->token;
  }
  auto put = [&](uint8_t id) {
    auto c = proc.ConnectAs(token);
    ASSERT_TRUE(c);
    ASSERT_TRUE(test::PutText(*c, id, "entry " + std::to_string(id)).ok());
  };
  auto expect_all = [&](uint8_t up_to) {
    auto c = proc.ConnectAs(token);
    ASSERT_TRUE(c);
    for (uint8_t id = 1; id <= up_to; ++id) {
      EXPECT_EQ(test::GetText(*c, id), "entry " + std::to_string(id));
    }
  };
  // Rotates to `to`, writes one more entry, restarts on `to` alone after `destroy_old`.
  auto rotate = [&](const std::string& to, uint8_t id, const std::function<void()>& destroy_old) {
    {
      auto admin = proc.ConnectAs(proc.AdminToken());
      auto fp = admin->RotateMasterKey(to);
      ASSERT_TRUE(fp.ok()) << to << ": " << fp.status().ToString();
    }
    put(id);
    ASSERT_EQ(proc.Kill(SIGTERM), 0) << proc.Log();
    destroy_old();
    proc.set_master_key_spec(to);
    ASSERT_TRUE(proc.Start({}, env)) << proc.Log();
    expect_all(id);
  };
  put(1);
  rotate(hsm.Uri(), 2, [&] { fs::remove(proc.master_key_path()); });
  EXPECT_EQ(test::EnvelopesIn(proc.data_dir() + "/keys", ".pkcs11"), 1);
  rotate(kms_.Uri(key_), 3, [&] {
    ASSERT_EQ(hsm.Run("--delete-object --type secrkey --label sealcache-master"), 0) << hsm.Log();
  });
  EXPECT_EQ(test::EnvelopesIn(proc.data_dir() + "/keys", ".pkcs11"), 0);
  EXPECT_EQ(test::EnvelopesIn(proc.data_dir() + "/keys", ".kmip"), 1);
  ASSERT_TRUE(crypto::CreateMasterKeyFile(dir_ + "/new.key").ok());
  rotate("file:" + dir_ + "/new.key", 4, [&] {
    ASSERT_EQ(kms_.Admin("destroy " + key_), "destroyed " + key_) << kms_.Log();
    kms_.Stop();
  });
  EXPECT_EQ(test::EnvelopesIn(proc.data_dir() + "/keys", ".kmip"), 0);
  ASSERT_EQ(proc.Kill(SIGTERM), 0);
}

}  // namespace
}  // namespace sealcache
