// The PKCS#11 master key provider against a real token: each test makes its own SoftHSM2
// token (softhsm2-util) and AES-256 key (pkcs11-tool, sensitive), and a real sealcached
// started with the provider creates an org, writes, restarts and reads back. Skipped, with
// the reason, only where softhsm2 or opensc is not installed (tools/setup.sh installs them).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "../../crypto/src/pkcs11_provider.h"
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

constexpr const char* kModule = test::SoftHsmToken::kModule;
constexpr const char* kPin = test::SoftHsmToken::kPin;
using test::RunCommand;

int EnvelopesIn(const std::string& dir) { return test::EnvelopesIn(dir, ".pkcs11"); }

TEST(Pkcs11Uri, ParsesTheRfc7512FormsItUses) {
  auto uri = crypto::internal::ParsePkcs11Uri(
      "pkcs11:token=my%20hsm;object=sealcache-master;id=%01%02;type=secret-key"
      "?module-path=/usr/lib/x.so&pin-source=file:/etc/pin");
  ASSERT_TRUE(uri.ok()) << uri.status().ToString();
  EXPECT_EQ(uri->token, "my hsm");
  EXPECT_EQ(uri->object, "sealcache-master");
  EXPECT_EQ(uri->id, (std::vector<uint8_t>{1, 2}));
  EXPECT_EQ(uri->module_path, "/usr/lib/x.so");
  EXPECT_EQ(uri->pin_source, "file:/etc/pin");
}

TEST(Pkcs11Uri, RefusesAPinOnTheCommandLineAndIncompleteUris) {
  auto pin = crypto::internal::ParsePkcs11Uri(
      "pkcs11:token=t;object=o?module-path=/m.so&pin-value=123456");
  ASSERT_FALSE(pin.ok());
  EXPECT_NE(pin.status().message().find("pin-source"), std::string::npos);
  EXPECT_EQ(pin.status().message().find("123456"), std::string::npos);
  for (const char* bad : {"pkcs11:object=o?module-path=/m.so", "pkcs11:token=t?module-path=/m.so",
                          "pkcs11:token=t;object=o", "pkcs11:token=t;object=o;type=private",
                          "pkcs11:token=t;object=o;colour=red?module-path=/m.so",
                          "pkcs11:token=%zz;object=o?module-path=/m.so"}) {
    EXPECT_FALSE(crypto::internal::ParsePkcs11Uri(bad).ok()) << bad;
  }
}

class SoftHsm : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::SoftHsmToken::Installed()) {
      GTEST_SKIP() << "softhsm2 or opensc is not installed (tools/setup.sh installs them)";
    }
    dir_ = test::MakeTempDir("sealcache-keys");
    ASSERT_TRUE(hsm_.Init(dir_)) << hsm_.Log();
    log_ = hsm_.log_path();
    conf_env_ = hsm_.conf_env();
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  int Keygen(const std::string& label, const std::string& type) { return hsm_.Keygen(label, type); }
  std::string Tool() const { return hsm_.Tool(); }
  std::string Uri(const std::string& object = "sealcache-master",
                  const std::string& pin_source = "") const {
    return hsm_.Uri(object, pin_source);
  }
  std::string Log() const { return hsm_.Log(); }
  Result<crypto::LoadedMasterKey> Load(const std::string& spec, bool create = true) {
    return test::LoadMasterKeyIn(dir_, spec, create);
  }

  void MakeKeystore(const crypto::SecretBytes& key) { test::MakeKeystoreIn(dir_, key); }

  test::SoftHsmToken hsm_;
  std::string dir_, log_, conf_env_;
};

TEST_F(SoftHsm, TheMasterKeyIsSealedByTheTokenAtFirstStartAndOpenedByItAfter) {
  auto first = Load(Uri(), /*create=*/false);
  EXPECT_EQ(first.status().code(), Status::Code::kNotFound) << "read-only tools create nothing";
  auto created = Load(Uri());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  ASSERT_EQ(created->key.size(), 32u);
  // The keystore the server would write under it names the envelope by its fingerprint.
  MakeKeystore(created->key);
  const std::string envelope =
      dir_ + "/keys/master-key-" + *crypto::Keystore::Fingerprint(created->key) + ".pkcs11";
  ASSERT_TRUE(fs::exists(envelope));
  EXPECT_EQ(fs::status(envelope).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  std::ifstream in(envelope, std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), {}};
  const std::string key(reinterpret_cast<const char*>(created->key.data()), 32);
  EXPECT_EQ(bytes.find(key), std::string::npos) << "the master key is in the clear";
  for (int i = 0; i < 2; ++i) {
    auto again = Load(Uri(), /*create=*/i == 0);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(again->key.data()), 32), key);
  }
}

TEST_F(SoftHsm, TheTokensKeyCannotBeReadOutOfIt) {
  ASSERT_NE(
      RunCommand(Tool() + " --login --pin " + kPin +
                     " --read-object --type secrkey --label sealcache-master -o " + dir_ + "/out",
                 log_),
      0)
      << Log();
  EXPECT_FALSE(fs::exists(dir_ + "/out") && fs::file_size(dir_ + "/out") == 32);
}

TEST_F(SoftHsm, FailuresSayWhichProviderAndWhyAndNeverThePin) {
  auto first = Load(Uri());
  ASSERT_TRUE(first.ok());
  MakeKeystore(first->key);
  std::ofstream(dir_ + "/wrong-pin") << "999999\n";
  struct Case {
    std::string spec;
    Status::Code code;
    std::string says;
  };
  ASSERT_EQ(RunCommand(Tool() + " --login --pin " + kPin +
                           " --keypairgen --key-type EC:prime256v1 --label an-ec-key",
                       log_),
            0)
      << Log();
  const std::vector<Case> cases = {
      {Uri("sealcache-master", "file:" + dir_ + "/wrong-pin"), Status::Code::kPermissionDenied,
       "PIN"},
      {Uri("sealcache-master", "env:SEALCACHE_TEST_NO_SUCH_PIN_VAR"), Status::Code::kNotFound,
       "SEALCACHE_TEST_NO_SUCH_PIN_VAR"},
      {Uri("no-such-key"), Status::Code::kNotFound, "no-such-key"},
      {Uri("an-ec-key"), Status::Code::kInvalidArgument, "wrong type"},
      {"pkcs11:token=no-such-token;object=k?module-path=" + std::string(kModule) +
           "&pin-source=file:" + dir_ + "/pin",
       Status::Code::kNotFound, "no-such-token"},
      {"pkcs11:token=sealcache;object=k?module-path=/nonexistent/module.so&pin-source=file:" +
           dir_ + "/pin",
       Status::Code::kIOError, "/nonexistent/module.so"},
  };
  for (const auto& c : cases) {
    auto r = Load(c.spec);
    ASSERT_FALSE(r.ok()) << c.spec;
    EXPECT_EQ(r.status().code(), c.code) << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.says), std::string::npos) << r.status().ToString();
    EXPECT_EQ(r.status().message().find("999999"), std::string::npos);
    EXPECT_EQ(r.status().message().find(kPin), std::string::npos) << r.status().ToString();
  }
  // An envelope sealed by another key of the token does not open.
  ASSERT_EQ(Keygen("other-key", "AES:32"), 0) << Log();
  auto other = Load(Uri("other-key"));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), Status::Code::kCorruption) << other.status().ToString();
}

TEST_F(SoftHsm, ASealcachedOnTheTokenCreatesWritesRestartsAndReadsBack) {
  fs::create_directories(dir_ + "/server");
  test::SealcachedProcess proc(SEALCACHED_PATH, dir_ + "/server");
  proc.set_master_key_spec(Uri());
  ASSERT_TRUE(proc.Start({}, {conf_env_})) << proc.Log();
  auto admin = proc.ConnectAs(proc.AdminToken());
  ASSERT_TRUE(admin);
  auto org = admin->CreateOrg("acme", 8, "flat");
  ASSERT_TRUE(org.ok()) << org.status().ToString();
  const std::string token = org->token;
  {
    auto c = proc.ConnectAs(token);
    ASSERT_TRUE(c);
    ASSERT_TRUE(test::PutText(*c, 7, "sealed by the token").ok());
  }
  ASSERT_EQ(proc.Kill(SIGTERM), 0) << proc.Log();
  EXPECT_EQ(EnvelopesIn(proc.data_dir() + "/keys"), 1);
  ASSERT_TRUE(proc.Start({}, {conf_env_})) << proc.Log();
  auto c = proc.ConnectAs(token);
  ASSERT_TRUE(c);
  EXPECT_EQ(test::GetText(*c, 7), "sealed by the token");
  ASSERT_EQ(proc.Kill(SIGTERM), 0);
  // The operator's dump tool opens the same envelope through the token (read-only).
  EXPECT_EQ(RunCommand(conf_env_ + " " + DUMP_PATH + " " + proc.data_dir() +
                           " verify --master-key '" + Uri() + "'",
                       log_),
            0)
      << Log();

  // Without the token's PIN the server does not start, and says why in one line.
  proc.set_master_key_spec(Uri("sealcache-master", "env:SEALCACHE_TEST_NO_SUCH_PIN_VAR"));
  EXPECT_FALSE(proc.Start({}, {conf_env_}, std::chrono::seconds(20)));
  EXPECT_NE(proc.exit_status(), 0);
  EXPECT_NE(proc.Log().find("SEALCACHE_TEST_NO_SUCH_PIN_VAR"), std::string::npos) << proc.Log();
}

// Online master-key rotation: file -> PKCS#11 -> file, each while the server serves, each
// followed by a restart with only the new key (the old one removed), data intact.
TEST_F(SoftHsm, MasterKeyRotatesOnlineFromAFileToTheTokenAndBackWithoutTheOldKey) {
  fs::create_directories(dir_ + "/server");
  test::SealcachedProcess proc(SEALCACHED_PATH, dir_ + "/server");  // file: master key
  ASSERT_TRUE(proc.Start({}, {conf_env_})) << proc.Log();
  std::string token;
  auto put = [&](uint8_t id, const std::string& payload) {
    auto c = proc.ConnectAs(token);
    ASSERT_TRUE(c);
    ASSERT_TRUE(test::PutText(*c, id, payload).ok());
  };
  auto expect = [&](uint8_t id, const std::string& payload) {
    auto c = proc.ConnectAs(token);
    ASSERT_TRUE(c);
    EXPECT_EQ(test::GetText(*c, id), payload);
  };
  {
    auto admin = proc.ConnectAs(proc.AdminToken());
    auto org = admin->CreateOrg("acme", 8, "flat");
    ASSERT_TRUE(org.ok()) << org.status().ToString();
    token = org->token;
    put(1, "before any rotation");
    // A spec that does not load changes nothing.
    EXPECT_FALSE(admin->RotateMasterKey("env:SEALCACHE_TEST_NO_SUCH_KEY_VAR").ok());
    auto bad = admin->RotateMasterKey(Uri("no-such-key"));
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("no-such-key"), std::string::npos);
    auto fp = admin->RotateMasterKey(Uri());
    ASSERT_TRUE(fp.ok()) << fp.status().ToString();
    EXPECT_EQ(fp->size(), 32u);
    EXPECT_EQ(EnvelopesIn(proc.data_dir() + "/keys"), 1);
    expect(1, "before any rotation");
    put(2, "after the rotation to the token");
    ASSERT_TRUE(admin->RotateKey("acme").ok());  // the keystore keeps working under it
  }
  ASSERT_EQ(proc.Kill(SIGTERM), 0) << proc.Log();
  fs::remove(proc.master_key_path());  // the old master key is no longer needed
  proc.set_master_key_spec(Uri());
  ASSERT_TRUE(proc.Start({}, {conf_env_})) << proc.Log();
  expect(1, "before any rotation");
  expect(2, "after the rotation to the token");

  ASSERT_TRUE(crypto::CreateMasterKeyFile(dir_ + "/new.key").ok());
  {
    auto admin = proc.ConnectAs(proc.AdminToken());
    auto fp = admin->RotateMasterKey("file:" + dir_ + "/new.key");
    ASSERT_TRUE(fp.ok()) << fp.status().ToString();
    EXPECT_EQ(EnvelopesIn(proc.data_dir() + "/keys"), 0);
    put(3, "after the rotation back to a file");
  }
  ASSERT_EQ(proc.Kill(SIGTERM), 0) << proc.Log();
  // The token's key is gone too: only the new file opens the store now.
  ASSERT_EQ(RunCommand(Tool() + " --login --pin " + kPin +
                           " --delete-object --type secrkey --label sealcache-master",
                       log_),
            0)
      << Log();
  proc.set_master_key_spec("file:" + dir_ + "/new.key");
  ASSERT_TRUE(proc.Start({}, {conf_env_})) << proc.Log();
  expect(1, "before any rotation");
  expect(2, "after the rotation to the token");
  expect(3, "after the rotation back to a file");
  EXPECT_NE(proc.Log().find("master key rotated to"), std::string::npos);
  // Every provider use is in the audit log, with the provider and never a secret.
  std::ifstream in(proc.data_dir() + "/audit.log");
  const std::string audit{std::istreambuf_iterator<char>(in), {}};
  for (const char* needle :
       {"\"master_key_provider\":\"pkcs11:token=sealcache;object=sealcache-master",
        "\"event\":\"master_key_rotated\"",
        "\"provider\":\"file:", "\"event\":\"master_key_rotation_failed\""}) {
    EXPECT_NE(audit.find(needle), std::string::npos) << needle << "\n" << audit;
  }
  EXPECT_EQ(audit.find(kPin), std::string::npos);
}

}  // namespace
}  // namespace sealcache
