// Key lifecycle under crash: sealcached_faults (the test-only build) is SIGKILLed at each
// named fault point of key creation, rotation, retirement by the reaper and DropOrg, keystore
// writes included, while one scenario drives the server through all of them. Restarted
// without the fault, the server must show that every step was all or nothing:
//   - it starts, and its keystore authenticates under the master key;
//   - every acknowledged entry reads back with its payload and is found by its vector;
//   - the rotation happened fully (a second version, ACTIVE) or not at all, and a rotation
//     that was acknowledged is there;
//   - a version seen DESTROYED stays destroyed, and once destroyed its wrapped material is in
//     neither keys/keystore nor a leftover keys/keystore.tmp;
//   - the dropped org is either whole (data readable, key ACTIVE) or gone with every key
//     version destroyed and its token refused; an acknowledged drop is gone;
//   - retirement and drops that a crash interrupted finish after the restart;
//   - an online master-key rotation left the keystore under the old key or the new one (an
//     acknowledged one: the new), and under the new one the old key is no longer needed.
// The points come from storage::KeyLifecycleFaultPoints(), so a new point is run here
// without a change to this file; a trace run checks that the scenario reaches exactly the
// listed points.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <regex>
#include <set>
#include <thread>

#include "crash_support.h"
#include "sealcache/crypto/keystore.h"
#include "sealcache/crypto/master_key.h"
#include "sealcache/storage/data_layout.h"
#include "sealcache/storage/fault_points.h"
#include "sealcached_process.h"

namespace sealcache::crash {
namespace {

using test::SealcachedProcess;

constexpr uint32_t kDim = 8;
constexpr char kAcme[] = "acme";
constexpr char kDoomed[] = "doomed";
constexpr uint64_t kAcmeSalt = 1, kDoomedSalt = 2;
constexpr int kEntries = 12;
// Entries of acme written before the rotation expire soon, so the reaper may compact their
// file away and destroy version 1 within the scenario.
constexpr int64_t kShortTtlMs = 1500;
constexpr int64_t kLongTtlMs = int64_t{24} * 3600 * 1000;
constexpr uint64_t kLongIdBase = 1000;
constexpr std::chrono::seconds kRetirementWait(20);
constexpr std::chrono::seconds kExitWait(10);
constexpr int kSigkillExit = 128 + SIGKILL;
constexpr char kTraceLine[] = "sealcached: fault point ";

std::vector<std::string> ServerFlags() { return {"--reaper-period-ms", "50"}; }

// What the scenario did and what the server acknowledged before it died.
struct History {
  std::string acme_token, doomed_token;
  bool acme_created = false, doomed_created = false;
  std::vector<uint64_t> short_acked, long_acked, doomed_acked;
  bool drop_sent = false, drop_acked = false;
  bool rotate_sent = false, rotate_acked = false;
  bool v1_destroyed_seen = false;
  bool master_rotate_sent = false, master_rotate_acked = false;
  std::optional<std::vector<uint8_t>> acme_v1_material, doomed_v1_material;
};

// True once the process has exited; it stays waitable, so SealcachedProcess::Wait still
// collects its status.
bool ExitedWithin(const SealcachedProcess& s, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  do {
    siginfo_t info{};
    if (waitid(P_PID, s.pid(), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == s.pid())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

std::string KeystorePath(const SealcachedProcess& s) {
  return storage::DataLayout(s.data_dir()).keystore_path();
}

// The key file the scenario rotates the master key to, at its end.
std::string NextMasterKeyPath(const SealcachedProcess& s) { return s.master_key_path() + ".next"; }

crypto::SecretBytes MasterKey(const SealcachedProcess& s) {
  auto provider = crypto::MasterKeyProviderFromSpec(s.master_key_spec());
  EXPECT_TRUE(provider.ok());
  auto loaded = (*provider)->Load();
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
  return std::move(loaded->key);
}

std::optional<std::vector<uint8_t>> CurrentMaterial(const SealcachedProcess& s,
                                                    const std::string& org, uint32_t version) {
  auto bytes = crypto::ReadWholeFile(KeystorePath(s));
  if (!bytes.ok()) return std::nullopt;
  return WrappedMaterialInKeystore(*bytes, org, version);
}

class KeyLifecycleScenario {
 public:
  KeyLifecycleScenario(SealcachedProcess& server, History& h) : s_(server), h_(h) {}

  // Runs the scenario until its end or the server's death. Returns false if it died.
  bool Run(const std::vector<std::string>& env) {
    if (!s_.Start(ServerFlags(), env)) return false;
    admin_ = s_.ConnectAs(s_.AdminToken());
    if (admin_ == nullptr) return Died("admin Hello");
    if (!CreateOrgs() ||
        !PutAll(kDoomed, h_.doomed_token, kDoomedSalt, 0, kLongTtlMs, &h_.doomed_acked) ||
        !PutAll(kAcme, h_.acme_token, kAcmeSalt, 0, kShortTtlMs, &h_.short_acked)) {
      return false;
    }
    h_.acme_v1_material = CurrentMaterial(s_, kAcme, 1);
    h_.doomed_v1_material = CurrentMaterial(s_, kDoomed, 1);
    EXPECT_TRUE(h_.acme_v1_material && h_.doomed_v1_material) << "no key material on disk";
    h_.drop_sent = true;
    if (Status st = admin_->DropOrg(kDoomed); !st.ok()) return Died("DropOrg: " + st.ToString());
    h_.drop_acked = true;
    // The rotation flushes acme: its short-lived entries land in a file under v1, which the
    // reaper can compact away once they expire; the long-lived ones are written under v2.
    h_.rotate_sent = true;
    auto v = admin_->RotateKey(kAcme);
    if (!v.ok()) return Died("RotateKey: " + v.status().ToString());
    EXPECT_EQ(*v, 2u);
    h_.rotate_acked = true;
    if (!PutAll(kAcme, h_.acme_token, kAcmeSalt, kLongIdBase, kLongTtlMs, &h_.long_acked)) {
      return false;
    }
    return WaitForRetirement() && RotateMasterKey();
  }

 private:
  // An operation failed: that is only right if the server is dying at its fault point.
  bool Died(const std::string& what) {
    EXPECT_TRUE(ExitedWithin(s_, kExitWait)) << what << " failed but the server lives on";
    return false;
  }

  bool CreateOrgs() {
    for (auto [org, token, created] : {std::tuple{kAcme, &h_.acme_token, &h_.acme_created},
                                       std::tuple{kDoomed, &h_.doomed_token, &h_.doomed_created}}) {
      auto r = admin_->CreateOrg(org, kDim, "flat");
      if (!r.ok()) return Died(std::string("CreateOrg ") + org + ": " + r.status().ToString());
      *token = r->token;
      *created = true;
    }
    return true;
  }

  bool PutAll(const std::string& org, const std::string& token, uint64_t salt, uint64_t first,
              int64_t ttl_ms, std::vector<uint64_t>* acked) {
    auto c = s_.ConnectAs(token);
    if (c == nullptr) return Died("Hello as " + org);
    for (uint64_t id = first; id < first + kEntries; ++id) {
      const std::string payload = PayloadOf(salt, id);
      const auto vector = VectorOf(kDim, salt, id);
      auto r = c->Put({DigestOf(salt, id), vector, Bytes(payload), ttl_ms, ""});
      if (!r.ok()) return Died("Put to " + org + ": " + r.status().ToString());
      acked->push_back(id);
    }
    return true;
  }

  // The short-lived entries expire, the reaper compacts their file away and destroys v1.
  // Until then the retiring version must still decrypt what was written under it.
  bool WaitForRetirement() {
    auto acme = s_.ConnectAs(h_.acme_token);
    if (acme == nullptr) return Died("Hello as acme");
    const auto deadline = std::chrono::steady_clock::now() + kRetirementWait;
    while (std::chrono::steady_clock::now() < deadline) {
      const uint64_t id = h_.short_acked.front();
      auto e = acme->Get(DigestOf(kAcmeSalt, id));
      if (!e.ok() && e.status().code() == Status::Code::kIOError) return Died("Get");
      if (e.ok()) {
        EXPECT_EQ(Text(e->payload), PayloadOf(kAcmeSalt, id));
      } else {
        EXPECT_TRUE(e.status().IsNotFound())
            << "an entry written under the retiring version is unreadable before it expired: "
            << e.status().ToString();
      }
      auto versions = KeyVersions(*admin_, kAcme);
      if (!versions.ok()) return Died("KeyStatus: " + versions.status().ToString());
      if (!versions->empty() && (*versions)[0].state == "DESTROYED") {
        h_.v1_destroyed_seen = true;
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "version 1 of acme was not destroyed within " << kRetirementWait.count()
                  << " s of its data expiring";
    return !ExitedWithin(s_, std::chrono::milliseconds(0));
  }

  // Online, from the master key file to a new one.
  bool RotateMasterKey() {
    const std::string next = NextMasterKeyPath(s_);
    EXPECT_TRUE(crypto::CreateMasterKeyFile(next).ok());
    h_.master_rotate_sent = true;
    auto fingerprint = admin_->RotateMasterKey("file:" + next);
    if (!fingerprint.ok()) return Died("RotateMasterKey: " + fingerprint.status().ToString());
    h_.master_rotate_acked = true;
    return true;
  }

  SealcachedProcess& s_;
  History& h_;
  std::unique_ptr<client::Client> admin_;
};

// After a crash during a master-key rotation the keystore is under the old key or the new
// one (the new one if the rotation was acknowledged); restarts with that one, and under the
// new key without the old key file, which is then no longer needed.
void FollowMasterKeyRotation(SealcachedProcess& s, const History& h) {
  if (!h.master_rotate_sent) return;
  auto meta = crypto::Keystore::ReadMetadata(KeystorePath(s));
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  auto next = crypto::MasterKeyProviderFromSpec("file:" + NextMasterKeyPath(s));
  ASSERT_TRUE(next.ok());
  auto next_key = (*next)->Load();
  ASSERT_TRUE(next_key.ok()) << next_key.status().ToString();
  if (meta->master_key_fingerprint == *crypto::Keystore::Fingerprint(next_key->key)) {
    std::filesystem::remove(s.master_key_path());
    s.set_master_key_spec("file:" + NextMasterKeyPath(s));
    return;
  }
  EXPECT_FALSE(h.master_rotate_acked) << "acknowledged master-key rotation lost";
  EXPECT_EQ(meta->master_key_fingerprint, *crypto::Keystore::Fingerprint(MasterKey(s)))
      << "the keystore is under neither the old master key nor the new one";
}

// Checks a restarted server against what the scenario saw before the crash.
class RecoveryCheck {
 public:
  RecoveryCheck(SealcachedProcess& server, const History& h) : s_(server), h_(h) {}

  void Run() {
    EXPECT_TRUE(crypto::Keystore::Verify(KeystorePath(s_), MasterKey(s_)).ok())
        << "the keystore does not authenticate after the crash";
    admin_ = s_.ConnectAs(s_.AdminToken());
    ASSERT_NE(admin_, nullptr);
    auto orgs = ListOrgNames(*admin_);
    CheckAcme(orgs.count(kAcme) > 0);
    CheckDoomed(orgs.count(kDoomed) > 0);
    CheckNoLiveRingWithoutOrg(orgs);
  }

 private:
  void CheckAcme(bool present) {
    if (h_.acme_created) {
      ASSERT_TRUE(present) << "acknowledged CreateOrg acme was lost";
    }
    if (!present) return;  // created in flight and rolled back: checked with the rings
    auto versions = KeyVersions(*admin_, kAcme);
    ASSERT_TRUE(versions.ok()) << versions.status().ToString();
    const uint32_t n = ExpectWellFormedRing(*versions, kAcme);
    if (h_.rotate_acked) {
      EXPECT_EQ(n, 2u) << "acknowledged rotation lost";
    }
    if (!h_.rotate_sent) {
      EXPECT_EQ(n, 1u) << "a rotation nobody asked for";
    }
    EXPECT_LE(n, 2u);
    if (h_.v1_destroyed_seen) {
      EXPECT_EQ((*versions)[0].state, "DESTROYED") << "destroyed version 1 came back";
    }
    if (h_.acme_created) CheckEntries(kAcme, h_.acme_token, kAcmeSalt, h_.long_acked);
    if (n == 1) {
      if (h_.acme_v1_material) {
        EXPECT_EQ(CurrentMaterial(s_, kAcme, 1), h_.acme_v1_material);
      }
      return;
    }
    // Rotated: retirement must finish after the restart (the short entries expire).
    ASSERT_TRUE(WaitUntilDestroyed(kAcme, 1)) << "version 1 of acme never got destroyed";
    ExpectMaterialGone(h_.acme_v1_material, "acme version 1");
    if (h_.acme_created) CheckEntries(kAcme, h_.acme_token, kAcmeSalt, h_.long_acked);
  }

  void CheckDoomed(bool present) {
    if (h_.drop_acked) {
      EXPECT_FALSE(present) << "acknowledged DropOrg came undone";
    }
    if (h_.doomed_created && !h_.drop_sent) {
      EXPECT_TRUE(present) << "org doomed was lost";
    }
    if (present) {
      auto versions = KeyVersions(*admin_, kDoomed);
      ASSERT_TRUE(versions.ok()) << versions.status().ToString();
      EXPECT_EQ(ExpectWellFormedRing(*versions, kDoomed), 1u);
      if (h_.doomed_created) CheckEntries(kDoomed, h_.doomed_token, kDoomedSalt, h_.doomed_acked);
      return;
    }
    if (!h_.doomed_token.empty()) {
      EXPECT_EQ(s_.ConnectAs(h_.doomed_token), nullptr) << "a dropped org's token still works";
    }
    ExpectMaterialGone(h_.doomed_v1_material, "doomed version 1");
  }

  // An org that does not exist has no usable key version.
  void CheckNoLiveRingWithoutOrg(const std::map<std::string, bool>& orgs) {
    auto meta = crypto::Keystore::ReadMetadata(KeystorePath(s_));
    ASSERT_TRUE(meta.ok()) << meta.status().ToString();
    for (const auto& k : meta->keys) {
      if (k.ring.scope != crypto::KeyScope::kOrg || orgs.count(k.ring.org)) continue;
      EXPECT_EQ(k.state, crypto::KeyState::kDestroyed)
          << "org " << k.ring.org << " is gone but its version " << k.version << " is "
          << crypto::KeyStateName(k.state);
    }
  }

  void CheckEntries(const std::string& org, const std::string& token, uint64_t salt,
                    const std::vector<uint64_t>& ids) {
    auto c = s_.ConnectAs(token);
    ASSERT_NE(c, nullptr) << "the token of " << org << " no longer works";
    for (uint64_t id : ids) {
      auto e = c->Get(DigestOf(salt, id));
      ASSERT_TRUE(e.ok()) << org << ": acknowledged entry " << id
                          << " lost: " << e.status().ToString();
      EXPECT_EQ(Text(e->payload), PayloadOf(salt, id));
      const auto vector = VectorOf(kDim, salt, id);
      auto hits = c->Lookup({vector, 1, 0.99f});
      ASSERT_TRUE(hits.ok()) << hits.status().ToString();
      ASSERT_EQ(hits->size(), 1u) << org << ": entry " << id << " is missing from the index";
      EXPECT_EQ((*hits)[0].entry.digest, DigestOf(salt, id));
      EXPECT_GE((*hits)[0].score, kSelfMatchScore);
    }
  }

  bool WaitUntilDestroyed(const std::string& org, uint32_t version) {
    const auto deadline = std::chrono::steady_clock::now() + kRetirementWait;
    while (std::chrono::steady_clock::now() < deadline) {
      auto versions = KeyVersions(*admin_, org);
      if (versions.ok() && versions->size() >= version &&
          (*versions)[version - 1].state == "DESTROYED") {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  void ExpectMaterialGone(const std::optional<std::vector<uint8_t>>& material,
                          const std::string& what) {
    if (!material) return;  // the crash came before the scenario saw it on disk
    const std::string path = KeystorePath(s_);
    EXPECT_FALSE(FileContains(path, *material)) << what << " material is still in " << path;
    EXPECT_FALSE(FileContains(path + ".tmp", *material))
        << what << " material is still in " << path << ".tmp";
  }

  SealcachedProcess& s_;
  const History& h_;
  std::unique_ptr<client::Client> admin_;
};

class KeyLifecycleCrashTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = test::MakeTempDir("sealcache-keycrash");
    server_ = std::make_unique<SealcachedProcess>(SEALCACHED_FAULTS_PATH, dir_);
  }
  void TearDown() override {
    server_.reset();
    if (!HasFailure()) {
      std::filesystem::remove_all(dir_);
    } else {
      std::printf("data directory kept for inspection: %s\n", dir_.c_str());
    }
  }

  std::string dir_;
  std::unique_ptr<SealcachedProcess> server_;
};

TEST_P(KeyLifecycleCrashTest, CrashAtPointLeavesKeysAndDataConsistent) {
  const std::string& point = GetParam();
  History h;
  const bool completed =
      KeyLifecycleScenario(*server_, h).Run({std::string("SEALCACHE_CRASH_AT=") + point});
  ASSERT_FALSE(HasFailure());
  ASSERT_FALSE(completed) << "the scenario never reached fault point " << point;
  ASSERT_EQ(server_->Wait(), kSigkillExit) << "not killed at the fault point; log:\n"
                                           << server_->Log();
  ASSERT_NE(server_->Log().find("crashing at fault point " + point), std::string::npos)
      << server_->Log();

  FollowMasterKeyRotation(*server_, h);
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(server_->Start(ServerFlags()))
      << "no restart after a crash at " << point << "; log:\n"
      << server_->Log();
  RecoveryCheck(*server_, h).Run();
  EXPECT_EQ(server_->Kill(SIGTERM), 0);
}

std::string TestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(
    EveryPoint, KeyLifecycleCrashTest,
    ::testing::ValuesIn(std::vector<std::string>(storage::KeyLifecycleFaultPoints().begin(),
                                                 storage::KeyLifecycleFaultPoints().end())),
    TestName);

// The scenario, run to its end with tracing on, passes through every listed point and
// through no point that is missing from the list.
TEST(KeyLifecycleFaultPoints, ScenarioReachesExactlyTheListedPoints) {
  const std::string dir = test::MakeTempDir("sealcache-keytrace");
  std::set<std::string> reached;
  {
    SealcachedProcess server(SEALCACHED_FAULTS_PATH, dir);
    History h;
    ASSERT_TRUE(KeyLifecycleScenario(server, h).Run({"SEALCACHE_FAULT_TRACE=1"})) << server.Log();
    EXPECT_EQ(server.Kill(SIGTERM), 0);
    const std::string log = server.Log();
    std::regex line(std::string(kTraceLine) + "(\\S+)");
    for (std::sregex_iterator it(log.begin(), log.end(), line), end; it != end; ++it) {
      reached.insert((*it)[1].str());
    }
  }
  const auto listed = storage::KeyLifecycleFaultPoints();
  const std::set<std::string> expected(listed.begin(), listed.end());
  EXPECT_EQ(expected.size(), listed.size()) << "a fault point is listed twice";
  for (const auto& p : reached) EXPECT_TRUE(expected.count(p)) << p << " is not listed";
  for (const auto& p : expected) EXPECT_TRUE(reached.count(p)) << p << " is never reached";
  std::filesystem::remove_all(dir);
}

// The shipped binary has no crash points: the variable changes nothing.
TEST(KeyLifecycleFaultPoints, ShippedServerIgnoresCrashAt) {
  const std::string dir = test::MakeTempDir("sealcache-keyship");
  {
    SealcachedProcess server(SEALCACHED_PATH, dir);
    const std::string point(storage::kFaultRotateAfterKeystore);
    ASSERT_TRUE(server.Start(ServerFlags(), {"SEALCACHE_CRASH_AT=" + point}));
    auto admin = server.ConnectAs(server.AdminToken());
    ASSERT_NE(admin, nullptr);
    ASSERT_TRUE(admin->CreateOrg(kAcme, kDim, "flat").ok());
    auto v = admin->RotateKey(kAcme);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(*v, 2u);
    EXPECT_EQ(server.Log().find("fault point"), std::string::npos);
    EXPECT_EQ(server.Kill(SIGTERM), 0);
  }
  std::filesystem::remove_all(dir);
}

// An unknown point is refused at start rather than silently never firing.
TEST(KeyLifecycleFaultPoints, FaultServerRefusesAnUnknownPoint) {
  const std::string dir = test::MakeTempDir("sealcache-keyunknown");
  {
    SealcachedProcess server(SEALCACHED_FAULTS_PATH, dir);
    EXPECT_FALSE(server.Start(ServerFlags(), {"SEALCACHE_CRASH_AT=keystore.no_such_step"}));
    EXPECT_EQ(server.exit_status(), 1);
    EXPECT_NE(server.Log().find("unknown fault point"), std::string::npos) << server.Log();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sealcache::crash
