// The per-org layout: each org is one RocksDB instance in its own directory, with the
// catalog (orgs and tokens) sealed under the node key beside them, and a store written by an
// earlier sealcache (one instance shared by every org, in db/) is migrated at open.
//
// fixtures/shared_instance_store.tgz was written by sealcached at commit 0710c14 (the last
// shared-instance layout) through sealcache-cli: orgs acme (dim 4, flat; 3 entries, a key
// rotation, a 4th entry, a second token) and globex (dim 4, hnsw; 2 entries), a clean
// shutdown, a restart, a 3rd globex entry and a SIGKILL, so that entry is only in the WAL.
// Its master key, tokens and creation time are in the archive.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "sealcache/crypto/hash.h"
#include "sealcache/crypto/master_key.h"
#include "sealcache/storage/data_layout.h"
#include "store_fixture.h"

namespace sealcache::storage {
namespace {

using testing::MakeDigest;
using testing::StoreTest;

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The value of "token" in a one-line JSON object written by sealcache-cli --json.
std::string TokenIn(const std::string& json) {
  const std::string key = "\"token\":\"";
  const size_t at = json.find(key) + key.size();
  return json.substr(at, json.find('"', at) - at);
}

Digest DigestOf(std::string_view text) {
  return crypto::Sha256({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

std::span<const uint8_t> HashOf(const std::string& token, crypto::Sha256Digest* storage) {
  *storage = crypto::Sha256({reinterpret_cast<const uint8_t*>(token.data()), token.size()});
  return *storage;
}

class SharedInstanceMigration : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    const std::string archive =
        std::string(SEALCACHE_STORAGE_FIXTURES) + "/shared_instance_store.tgz";
    ASSERT_EQ(std::system(("tar xzf '" + archive + "' -C '" + dir_ + "'").c_str()), 0);
    auto provider = crypto::MasterKeyProviderFromSpec("file:" + dir_ + "/master.key");
    ASSERT_TRUE(provider.ok()) << provider.status().ToString();
    auto key = (*provider)->Load();
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    master_ = std::move(key->key);
    clock_.Set(std::stoll(ReadText(dir_ + "/created_ms")) + 1000);
    data_ = dir_ + "/data";
  }
  StoreOptions Migrating() {
    StoreOptions o = Options();
    o.data_dir = data_;
    o.on_event = [this](const std::string& line) { events_.push_back(line); };
    return o;
  }
  std::string PayloadFor(const std::string& org, std::string_view prompt) {
    auto e = store_->Get(org, DigestOf(prompt));
    if (!e.ok()) return "<" + e.status().ToString() + ">";
    return std::string(e->payload.begin(), e->payload.end());
  }
  std::string OrgOfToken(const std::string& token) {
    crypto::Sha256Digest h;
    auto t = store_->FindToken(HashOf(token, &h));
    return t.ok() ? "org:" + t->org : "<" + t.status().ToString() + ">";
  }
  void ExpectEverythingMigrated() {
    EXPECT_EQ(store_->ListOrgs(), (std::vector<std::string>{"acme", "globex"}));
    auto acme = store_->GetOrg("acme");
    ASSERT_TRUE(acme.ok());
    EXPECT_EQ(acme->dimension, 4u);
    EXPECT_EQ(acme->index_kind, "flat");
    EXPECT_EQ(store_->GetOrg("globex")->index_kind, "hnsw");
    for (int i = 1; i <= 4; ++i) {
      EXPECT_EQ(PayloadFor("acme", "acme prompt " + std::to_string(i)),
                "acme answer " + std::to_string(i));
    }
    auto ns = store_->Get("acme", DigestOf("acme prompt 2"), false);
    ASSERT_TRUE(ns.ok());
    EXPECT_EQ(ns->meta.name_space, "ns2");
    EXPECT_EQ(PayloadFor("globex", "globex prompt 1"), "globex answer 1");
    EXPECT_EQ(PayloadFor("globex", "globex prompt 2"), "globex answer 2");
    // Acknowledged before the SIGKILL, so only in the shared WAL: migrated too.
    EXPECT_EQ(PayloadFor("globex", "globex prompt 3"), "globex answer 3 (only in the WAL)");
    EXPECT_EQ(CountVectors("acme"), 4u);
    EXPECT_EQ(CountVectors("globex"), 3u);
    EXPECT_EQ(OrgOfToken(TokenIn(ReadText(dir_ + "/acme.json"))), "org:acme");
    EXPECT_EQ(OrgOfToken(TokenIn(ReadText(dir_ + "/acme2.json"))), "org:acme");
    EXPECT_EQ(OrgOfToken(TokenIn(ReadText(dir_ + "/globex.json"))), "org:globex");
    EXPECT_EQ(OrgOfToken(Trim(ReadText(data_ + "/admin.token"))), "org:");
    // New slots continue after the migrated ones.
    PutRequest r;
    const std::vector<float> v{0, 0, 0, 1};
    const std::string payload = "acme answer 5";
    r.digest = DigestOf("acme prompt 5");
    r.payload = {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()};
    r.vector = v;
    r.ttl_ms = 60'000;
    auto put = store_->Put("acme", r);
    ASSERT_TRUE(put.ok()) << put.status().ToString();
    EXPECT_GE(put->slot, 4u);
  }
  std::string data_;
  std::vector<std::string> events_;
};

TEST_F(SharedInstanceMigration, EveryOrgEntryAndTokenMovesToItsOwnInstance) {
  Open(Migrating());
  ASSERT_NO_FATAL_FAILURE(ExpectEverythingMigrated());
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_NE(events_[0].find("migrated 2 orgs"), std::string::npos) << events_[0];
  EXPECT_FALSE(std::filesystem::exists(data_ + "/db"));
  EXPECT_FALSE(std::filesystem::exists(data_ + "/index"));
  EXPECT_TRUE(std::filesystem::exists(data_ + "/orgs/acme/index/index.snapshot"));
  EXPECT_TRUE(store_->ReadOrgFile("acme", "index.snapshot").ok());
  EXPECT_NE(ReadText(data_ + "/audit.log").find("store_migrated"), std::string::npos);

  // Everything of acme's version 1 was rewritten under version 2: the reaper destroys it.
  auto reaped = store_->RunKeyReaper();
  ASSERT_TRUE(reaped.ok()) << reaped.status().ToString();
  ASSERT_EQ(reaped->destroyed.size(), 1u);
  EXPECT_EQ(reaped->destroyed[0], (std::pair<std::string, uint32_t>{"acme", 1}));
  EXPECT_EQ(PayloadFor("acme", "acme prompt 1"), "acme answer 1");

  // A second open finds the new layout and migrates nothing.
  events_.clear();
  Open(Migrating());
  EXPECT_TRUE(events_.empty());
  EXPECT_EQ(PayloadFor("acme", "acme prompt 5"), "acme answer 5");
  EXPECT_EQ(PayloadFor("globex", "globex prompt 3"), "globex answer 3 (only in the WAL)");
}

TEST_F(SharedInstanceMigration, AMigrationInterruptedBeforeItsCommitIsRedone) {
  // What a crash half-way leaves: a partial instance of acme, no catalog, db/ untouched.
  std::filesystem::create_directories(data_ + "/orgs/acme/data");
  std::ofstream(data_ + "/orgs/acme/CURRENT") << "MANIFEST-000099\n";
  std::ofstream(data_ + "/orgs/acme/data/000099.sst") << "half-written";
  Open(Migrating());
  ASSERT_NO_FATAL_FAILURE(ExpectEverythingMigrated());
  EXPECT_FALSE(std::filesystem::exists(data_ + "/orgs/acme/data/000099.sst"));
}

TEST_F(SharedInstanceMigration, AMigrationInterruptedAfterItsCommitOnlyFinishesTheCleanup) {
  Open(Migrating());
  store_.reset();
  // What a crash after the catalog was written leaves: the old files still there.
  std::filesystem::create_directories(data_ + "/db/orgs/acme");
  std::ofstream(data_ + "/db/CURRENT") << "MANIFEST-000024\n";
  events_.clear();
  Open(Migrating());
  EXPECT_TRUE(events_.empty());
  EXPECT_FALSE(std::filesystem::exists(data_ + "/db"));
  EXPECT_EQ(PayloadFor("acme", "acme prompt 4"), "acme answer 4");
}

// ---- The per-org layout -------------------------------------------------------------------

TEST_F(StoreTest, EachOrgIsOneInstanceInItsOwnDirectoryAndTheCatalogIsSealed) {
  Open();
  CreateOrg("acme");
  CreateOrg("globex");
  ASSERT_TRUE(Put("acme", 1, "acme payload").ok());
  ASSERT_TRUE(Put("globex", 1, "globex payload").ok());
  const DataLayout layout(dir_);
  for (const char* org : {"acme", "globex"}) {
    EXPECT_TRUE(std::filesystem::exists(layout.org_dir(org) + "/CURRENT")) << org;
    EXPECT_TRUE(std::filesystem::is_directory(layout.org_meta_dir(org))) << org;
    EXPECT_TRUE(std::filesystem::is_directory(layout.org_data_dir(org))) << org;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/db"));
  // The catalog names orgs and token hashes, but only under the node key.
  crypto::Sha256Digest h;
  TokenRecord t;
  t.org = "acme";
  t.token_id = "visible-id";
  ASSERT_TRUE(store_->AddToken(HashOf("secret", &h), t).ok());
  const std::string catalog = ReadText(layout.catalog_path());
  EXPECT_EQ(catalog.find("acme"), std::string::npos);
  EXPECT_EQ(catalog.find("visible-id"), std::string::npos);
  EXPECT_EQ(catalog.rfind("SCCATALG", 0), 0u);

  // A changed byte of the catalog refuses the open with its name, and nothing is created.
  store_.reset();
  std::string bytes = catalog;
  bytes[bytes.size() / 2] ^= 0x01;
  std::ofstream(layout.catalog_path(), std::ios::binary | std::ios::trunc) << bytes;
  auto refused = Store::Open(Options(), master_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kCorruption);
  EXPECT_NE(refused.status().message().find("catalog"), std::string::npos)
      << refused.status().ToString();
  std::ofstream(layout.catalog_path(), std::ios::binary | std::ios::trunc) << catalog;
  Open();
  EXPECT_EQ(PayloadOf("acme", 1), "acme payload");
}

TEST_F(StoreTest, AnOrgWhoseInstanceDoesNotOpenAnswersWhyAndTheOthersServe) {
  Open();
  CreateOrg("acme");
  CreateOrg("globex");
  ASSERT_TRUE(Put("acme", 1, "acme payload").ok());
  ASSERT_TRUE(Put("globex", 1, "globex payload").ok());
  store_.reset();
  const DataLayout layout(dir_);
  std::filesystem::remove(layout.org_dir("acme") + "/CURRENT");
  std::vector<std::string> events;
  StoreOptions o = Options();
  o.on_event = [&](const std::string& line) { events.push_back(line); };
  Open(o);
  EXPECT_EQ(store_->ListOrgs(), (std::vector<std::string>{"acme", "globex"}));
  auto got = store_->Get("acme", MakeDigest(1));
  EXPECT_EQ(got.status().code(), Status::Code::kCorruption) << got.status().ToString();
  EXPECT_NE(got.status().message().find("acme"), std::string::npos);
  EXPECT_EQ(Put("acme", 2, "refused").status().code(), Status::Code::kCorruption);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(PayloadOf("globex", 1), "globex payload");
  ASSERT_TRUE(Put("globex", 2, "still taking writes").ok());
  // Dropping it needs nothing of its files.
  ASSERT_TRUE(store_->DropOrg("acme").ok());
  EXPECT_FALSE(std::filesystem::exists(layout.org_dir("acme")));
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "a new acme").ok());
}

TEST_F(StoreTest, KeyNamesMapToDigestsUnderEachOrgsOwnSealedKey) {
  Open();
  CreateOrg("acme");
  CreateOrg("globex");
  auto a1 = store_->NameDigest("acme", "user:alice");
  ASSERT_TRUE(a1.ok()) << a1.status().ToString();
  EXPECT_EQ(*store_->NameDigest("acme", "user:alice"), *a1);
  EXPECT_NE(*store_->NameDigest("acme", "user:bob"), *a1);
  EXPECT_NE(*store_->NameDigest("globex", "user:alice"), *a1);
  // Not a hash anyone can compute from the name.
  const std::string tagged = std::string("sealcache/key-name/v1") + '\0' + "user:alice";
  for (const std::string& plain : {std::string("user:alice"), tagged}) {
    EXPECT_NE(DigestOf(plain), *a1);
  }
  EXPECT_TRUE(store_->NameDigest("nosuch", "x").status().IsNotFound());
  // The same after a restart and a key rotation; another for a later org of the same name.
  ASSERT_TRUE(store_->RotateKey("acme").ok());
  Open();
  EXPECT_EQ(*store_->NameDigest("acme", "user:alice"), *a1);
  ASSERT_TRUE(store_->DropOrg("acme").ok());
  CreateOrg("acme");
  EXPECT_NE(*store_->NameDigest("acme", "user:alice"), *a1);
}

}  // namespace
}  // namespace sealcache::storage
