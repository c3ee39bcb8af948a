// One org's damage stays that org's (issue 12, point 2), for the damage a shared RocksDB
// instance can contain: a damaged data block, the last one included (RocksDB's table open
// never reads it, the org's load does), with and without the org's index snapshot. The
// server starts, the damaged org answers CORRUPTION for what is damaged (or, when it cannot
// be loaded at all, for everything, with the reason), counted in its decrypt_failures, and
// the other org serves reads and writes throughout.
#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/sst_file_reader.h>
#include <rocksdb/table_properties.h>

#include <filesystem>
#include <fstream>

#include "encrypted_file_system.h"
#include "sealcache/clock.h"
#include "sealcache/crypto/keystore.h"
#include "sealcache/storage/data_layout.h"
#include "sealcache/storage/file_header.h"
#include "server_fixture.h"

namespace sealcache::server {
namespace {

using testing::MakeDigest;
using testing::ServerTest;
using Code = Status::Code;

constexpr int kEntries = 200;

class Damage : public ServerTest {
 protected:
  std::string DataDir() { return dir_ + "/data"; }

  void LoadTwoOrgs() {
    StartServer();
    auto acme = NewOrg("acme", kDim, "flat");
    auto globex = NewOrg("globex", kDim, "flat");
    for (int i = 0; i < kEntries; ++i) {
      ASSERT_TRUE(Put(*acme, i, "acme payload " + std::to_string(i)).ok());
      ASSERT_TRUE(Put(*globex, i, "globex payload " + std::to_string(i)).ok());
    }
    ASSERT_TRUE(server_->Shutdown().ok());  // flushes memtables, writes snapshots
    server_.reset();
  }

  // Logical size of the data blocks of an org SST (RocksDB's rocksdb.data.size), read through
  // the store's own encrypted file system.
  uint64_t DataBytesOf(const std::string& sst) {
    FakeClock clock;
    crypto::KeystoreOptions ko;
    ko.clock = &clock;
    ko.read_only = true;
    auto keystore = crypto::Keystore::Open(DataDir() + "/keys/keystore", master_, ko);
    EXPECT_TRUE(keystore.ok()) << keystore.status().ToString();
    auto fs = storage::internal::NewRoutingFileSystem(
        storage::DataLayout(DataDir()), keystore->get(), rocksdb::FileSystem::Default(), {});
    auto env = rocksdb::NewCompositeEnv(fs);
    rocksdb::Options options;
    options.env = env.get();
    rocksdb::SstFileReader reader(options);
    EXPECT_TRUE(reader.Open(sst).ok());
    return reader.GetTableProperties()->data_size;
  }

  // Flips one byte in the last data block of acme's largest SST.
  void DamageLastDataBlockOfAcme() {
    std::string largest;
    uint64_t largest_size = 0;
    for (const auto& e : std::filesystem::directory_iterator(DataDir() + "/db/orgs/acme")) {
      if (e.path().extension() == ".sst" && e.file_size() > largest_size) {
        largest = e.path().string();
        largest_size = e.file_size();
      }
    }
    ASSERT_FALSE(largest.empty());
    const uint64_t data_bytes = DataBytesOf(largest);
    ASSERT_GT(data_bytes, 64u);
    // Inside the last block's contents: its 5-byte trailer (type, checksum) ends data_bytes.
    const uint64_t offset = storage::kFileHeaderSize + data_bytes - 32;
    std::fstream f(largest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    f.read(&c, 1);
    c ^= 0x5a;
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(&c, 1);
  }

  // Reads back every entry of `org`; counts those intact and those answered CORRUPTION.
  void ReadBack(client::Client& c, const std::string& org, int* intact, int* corrupt,
                std::string* message) {
    for (int i = 0; i < kEntries; ++i) {
      auto e = c.Get(MakeDigest(i));
      if (e.ok()) {
        EXPECT_EQ(std::string(e->payload.begin(), e->payload.end()),
                  org + " payload " + std::to_string(i));
        ++*intact;
      } else {
        EXPECT_EQ(e.status().code(), Code::kCorruption) << e.status().ToString();
        ++*corrupt;
        *message = e.status().message();
      }
    }
  }

  uint64_t DecryptFailures(client::Client& c) {
    auto st = c.Stats();
    return st.ok() ? (*st)->body_as_StatsResponse()->decrypt_failures() : 0;
  }

  void ExpectGlobexServes() {
    auto globex = ConnectAs(tokens_["globex"]);
    int intact = 0, corrupt = 0;
    std::string message;
    ReadBack(*globex, "globex", &intact, &corrupt, &message);
    EXPECT_EQ(intact, kEntries);
    EXPECT_EQ(corrupt, 0) << message;
    EXPECT_TRUE(Put(*globex, kEntries + 1, "globex after the damage").ok());
    auto hits = globex->Lookup({.vector = testing::MakeVector(kDim, 3), .k = 1});
    ASSERT_TRUE(hits.ok()) << hits.status().ToString();
    ASSERT_EQ(hits->size(), 1u);
  }
};

TEST_F(Damage, ADamagedLastDataBlockFailsOnlyThatOrgsDamagedReads) {
  ASSERT_NO_FATAL_FAILURE(LoadTwoOrgs());
  ASSERT_NO_FATAL_FAILURE(DamageLastDataBlockOfAcme());

  StartServer();  // before the fix: the store's open read that block, failed and aborted
  auto acme = ConnectAs(tokens_["acme"]);
  int intact = 0, corrupt = 0;
  std::string message;
  ReadBack(*acme, "acme", &intact, &corrupt, &message);
  EXPECT_GT(intact, kEntries / 2);
  std::printf("[ security ] last data block of acme damaged: %d intact, %d corrupt (%s)\n", intact,
              corrupt, message.c_str());
  // The block holds the last vectors: the slot counter carries the org, and lookups of
  // entries whose vectors are intact still work; writes go on.
  EXPECT_TRUE(Put(*acme, kEntries + 1, "acme after the damage").ok());
  EXPECT_GE(DecryptFailures(*acme), 1u);
  ExpectGlobexServes();
}

TEST_F(Damage, AnOrgThatCannotBeLoadedAnswersWhyAndTheOthersServe) {
  ASSERT_NO_FATAL_FAILURE(LoadTwoOrgs());
  ASSERT_NO_FATAL_FAILURE(DamageLastDataBlockOfAcme());
  // Without its snapshot the org's index is rebuilt from its vectors, which meets the block.
  std::filesystem::remove_all(DataDir() + "/index/acme");

  StartServer();
  auto acme = ConnectAs(tokens_["acme"]);
  auto got = acme->Get(MakeDigest(1));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kCorruption) << got.status().ToString();
  EXPECT_NE(got.status().message().find("org acme is unavailable"), std::string::npos)
      << got.status().ToString();
  EXPECT_EQ(acme->Stats().status().code(), Code::kCorruption);
  std::printf("[ security ] acme without a snapshot: %s\n", got.status().ToString().c_str());
  ExpectGlobexServes();
  // The operator can drop it; a new org of that name starts clean.
  auto admin = ConnectAs(AdminToken());
  ASSERT_TRUE(admin->DropOrg("acme").ok());
  auto again = NewOrg("acme", kDim, "flat");
  EXPECT_TRUE(Put(*again, 1, "a new acme").ok());
}

}  // namespace
}  // namespace sealcache::server
