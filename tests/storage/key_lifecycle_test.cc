// Rotation, retirement by expiry (crypto-shredding), DropOrg and the audit trail.
#include <gtest/gtest.h>

#include <thread>

#include "sealcache/crypto/keystore.h"
#include "sealcache/storage/data_layout.h"
#include "store_fixture.h"

namespace sealcache::storage {
namespace {

using testing::Bytes;
using testing::Contains;
using testing::FilesUnder;
using testing::MakeDigest;
using testing::ReadFile;
using testing::StoreTest;

constexpr int64_t kMinute = 60'000;

const KeyVersionStatus* Version(const std::vector<KeyVersionStatus>& all, uint32_t v) {
  for (const auto& s : all) {
    if (s.version == v) return &s;
  }
  return nullptr;
}

TEST_F(StoreTest, RotationMakesANewActiveVersionAndNewFilesUseIt) {
  Open();
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "before").ok());
  ASSERT_TRUE(store_->Flush().ok());
  auto v2 = store_->RotateKey("acme");
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(*v2, 2u);
  ASSERT_TRUE(Put("acme", 2, "after").ok());
  ASSERT_TRUE(store_->Flush().ok());
  auto status = store_->KeyStatus("acme");
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  ASSERT_EQ(status->size(), 2u);
  EXPECT_EQ(Version(*status, 1)->state, crypto::KeyState::kRetiring);
  EXPECT_EQ(Version(*status, 1)->live_files, 1u);
  EXPECT_EQ(Version(*status, 2)->state, crypto::KeyState::kActive);
  EXPECT_EQ(Version(*status, 2)->live_files, 1u);
  EXPECT_GT(Version(*status, 1)->live_bytes, 0u);
  EXPECT_EQ(PayloadOf("acme", 1), "before");  // retiring keys still decrypt
  EXPECT_EQ(PayloadOf("acme", 2), "after");
}

TEST_F(StoreTest, RetiredKeyIsDestroyedOnceEverythingWrittenUnderItExpired) {
  Open();
  CreateOrg("acme");
  // Before rotation: TTLs of 10, 20 and 30 minutes, spread over several files.
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(Put("acme", i, "old " + std::to_string(i), (1 + i % 3) * 10 * kMinute).ok());
    if (i % 10 == 9) {
      ASSERT_TRUE(store_->Flush().ok());
    }
  }
  ASSERT_TRUE(store_->RotateKey("acme").ok());
  const int64_t rotated_at = clock_.NowMillis();
  // After rotation: long-lived entries that must stay readable.
  for (int i = 100; i < 110; ++i)
    ASSERT_TRUE(Put("acme", i, "new " + std::to_string(i), 600 * kMinute).ok());
  ASSERT_TRUE(store_->Flush().ok());

  // Before the longest pre-rotation TTL has run out, a pass may destroy the old key only if
  // no file needs it any more (a background compaction may already have rewritten every
  // file under the new key): every unexpired entry must still read.
  clock_.Set(rotated_at + 29 * kMinute);
  auto early = store_->RunKeyReaper();
  ASSERT_TRUE(early.ok()) << early.status().ToString();
  for (int i = 2; i < 30; i += 3) EXPECT_EQ(PayloadOf("acme", i), "old " + std::to_string(i));
  for (int i = 100; i < 110; ++i) EXPECT_EQ(PayloadOf("acme", i), "new " + std::to_string(i));

  // The longest TTL plus one reaper pass later it is gone, whichever pass destroyed it.
  clock_.Set(rotated_at + 30 * kMinute + 1);
  auto report = store_->RunKeyReaper();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(early->destroyed.size() + report->destroyed.size(), 1u);
  for (const auto& d : early->destroyed) EXPECT_EQ(d, std::make_pair(std::string("acme"), 1u));
  for (const auto& d : report->destroyed) EXPECT_EQ(d, std::make_pair(std::string("acme"), 1u));
  auto status = *store_->KeyStatus("acme");
  EXPECT_EQ(Version(status, 1)->state, crypto::KeyState::kDestroyed);
  EXPECT_EQ(Version(status, 1)->live_files, 0u);
  for (int i = 100; i < 110; ++i) EXPECT_EQ(PayloadOf("acme", i), "new " + std::to_string(i));
  for (int i = 0; i < 30; ++i)
    EXPECT_TRUE(store_->Get("acme", MakeDigest(i)).status().IsNotFound());

  // Durable: after reopen the version is still destroyed and everything live still reads.
  Open();
  EXPECT_EQ(Version(*store_->KeyStatus("acme"), 1)->state, crypto::KeyState::kDestroyed);
  for (int i = 100; i < 110; ++i) EXPECT_EQ(PayloadOf("acme", i), "new " + std::to_string(i));
  auto meta = crypto::Keystore::ReadMetadata(DataLayout(dir_).keystore_path());
  ASSERT_TRUE(meta.ok());
  for (const auto& k : meta->keys) {
    if (k.ring.org == "acme" && k.version == 1) {
      EXPECT_EQ(k.state, crypto::KeyState::kDestroyed);
    }
  }
}

// A rotation first flushes what was written before it, so those writes are accounted to the
// retiring version (not carried under the next one by a later flush); a version nothing
// was written under is destroyed at the first pass.
TEST_F(StoreTest, RetiringVersionWithNoFilesIsDestroyedAtOnce) {
  Open();
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "written under version 1").ok());
  ASSERT_EQ(store_->RotateKey("acme").value(), 2u);  // the put is flushed under version 1
  ASSERT_EQ(store_->RotateKey("acme").value(), 3u);  // nothing was written under version 2
  auto status = store_->KeyStatus("acme");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ((*status)[0].live_files, 1u);
  auto report = store_->RunKeyReaper();
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->destroyed.size(), 1u);
  EXPECT_EQ(report->destroyed[0].second, 2u);
  EXPECT_EQ(PayloadOf("acme", 1), "written under version 1");
}

// A flush or compaction that opened its output before a rotation writes it under the old
// version, and that file is not live until RocksDB installs it. Stand-in: a copy of an SST
// under version 1 that is on disk but not live, named so that RocksDB does not manage it (a
// real output in progress is protected from RocksDB's obsolete-file purge as a pending
// output; a copy under a RocksDB file number would be purged by the reaper's purge like
// any obsolete file). While it is there the version must stay.
TEST_F(StoreTest, RetiringVersionStaysWhileAFileNotYetLiveUsesIt) {
  Open();
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "old", kMinute).ok());
  ASSERT_TRUE(store_->Flush().ok());
  std::string under_v1;
  for (const auto& f : FilesUnder(DataLayout(dir_).org_data_dir("acme"))) {
    if (f.ends_with(".sst")) under_v1 = f;
  }
  ASSERT_FALSE(under_v1.empty());
  const std::string in_flight = DataLayout(dir_).org_data_dir("acme") + "/output-in-progress.sst";
  std::filesystem::copy_file(under_v1, in_flight);
  ASSERT_TRUE(store_->RotateKey("acme").ok());
  clock_.Advance(kMinute + 1);  // everything in the live file under version 1 has expired

  auto first = store_->RunKeyReaper();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->destroyed.empty());
  EXPECT_EQ(Version(*store_->KeyStatus("acme"), 1)->state, crypto::KeyState::kRetiring);

  std::filesystem::remove(in_flight);  // installed and compacted away, or deleted
  auto second = store_->RunKeyReaper();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->destroyed.size(), 1u);
}

TEST_F(StoreTest, BackgroundReaperDestroysRetiredKeysOnItsOwn) {
  auto options = Options();
  options.reaper_period_ms = 20;
  Open(options);
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "x", kMinute).ok());
  ASSERT_TRUE(store_->Flush().ok());
  ASSERT_TRUE(store_->RotateKey("acme").ok());
  clock_.Advance(kMinute + 1);
  crypto::KeyState state = crypto::KeyState::kRetiring;
  for (int i = 0; i < 500 && state != crypto::KeyState::kDestroyed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    state = Version(*store_->KeyStatus("acme"), 1)->state;
  }
  EXPECT_EQ(state, crypto::KeyState::kDestroyed);
}

TEST_F(StoreTest, DropOrgRemovesDataMetaAndEveryKeyVersion) {
  Open();
  CreateOrg("acme");
  CreateOrg("globex");
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(Put("acme", i, "acme data").ok());
    ASSERT_TRUE(Put("globex", 100 + i, "globex data").ok());
  }
  ASSERT_TRUE(store_->Flush().ok());
  ASSERT_TRUE(store_->RotateKey("acme").ok());
  ASSERT_TRUE(store_->DropOrg("acme").ok());
  EXPECT_TRUE(store_->GetOrg("acme").status().IsNotFound());
  EXPECT_TRUE(store_->Get("acme", MakeDigest(1)).status().IsNotFound());
  EXPECT_EQ(store_->ListOrgs(), std::vector<std::string>{"globex"});
  Open();
  EXPECT_TRUE(store_->GetOrg("acme").status().IsNotFound());
  EXPECT_EQ(PayloadOf("globex", 105), "globex data");
  store_.reset();
  auto meta = crypto::Keystore::ReadMetadata(DataLayout(dir_).keystore_path());
  ASSERT_TRUE(meta.ok());
  int acme_versions = 0;
  for (const auto& k : meta->keys) {
    if (k.ring.org != "acme") continue;
    ++acme_versions;
    EXPECT_EQ(k.state, crypto::KeyState::kDestroyed);
  }
  EXPECT_EQ(acme_versions, 2);
  // No SST of the dropped org is left behind.
  for (const auto& f : FilesUnder(DataLayout(dir_).org_data_dir("acme"))) {
    EXPECT_EQ(f.find(".sst"), std::string::npos) << f;
  }
}

TEST_F(StoreTest, DroppedOrgCanBeCreatedAgainEmptyUnderANewKeyVersion) {
  Open();
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "old life").ok());
  ASSERT_TRUE(store_->DropOrg("acme").ok());
  CreateOrg("acme");
  EXPECT_TRUE(store_->Get("acme", MakeDigest(1)).status().IsNotFound());
  EXPECT_EQ(CountVectors("acme"), 0u);
  auto status = store_->KeyStatus("acme");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->back().version, 2u);
  EXPECT_EQ(status->back().state, crypto::KeyState::kActive);
}

TEST_F(StoreTest, AuditLogRecordsKeyEventsWithoutSecrets) {
  Open();
  CreateOrg("acme");
  const std::string secret = "PAYLOAD-SECRET-7f3a";
  ASSERT_TRUE(Put("acme", 1, secret, kMinute).ok());
  ASSERT_TRUE(store_->Flush().ok());
  ASSERT_TRUE(store_->RotateKey("acme").ok());
  clock_.Advance(kMinute + 1);
  ASSERT_TRUE(store_->RunKeyReaper().ok());
  ASSERT_TRUE(store_->DropOrg("acme").ok());
  store_.reset();
  auto log = ReadFile(DataLayout(dir_).audit_log_path());
  std::string text(log.begin(), log.end());
  for (const char* event : {"\"store_opened\"", "\"org_created\"", "\"key_rotated\"",
                            "\"key_destroyed\"", "\"org_dropped\""}) {
    EXPECT_NE(text.find(event), std::string::npos) << event << " missing from\n" << text;
  }
  EXPECT_EQ(text.find(secret), std::string::npos);
  EXPECT_FALSE(Contains(log, master_.span()));
}

}  // namespace
}  // namespace sealcache::storage

namespace sealcache::storage {
namespace {

// --rotation-interval: a reaper pass rotates every org whose active version is at least the
// interval old, and only those; the retired version is then destroyed as usual once nothing
// written under it is alive.
using testing::StoreTest;

TEST_F(StoreTest, ScheduledRotationRotatesOnlyOrgsWhoseActiveKeyIsOldEnough) {
  constexpr int64_t kDay = int64_t{24} * 3600 * 1000;
  StoreOptions o = Options();
  o.rotation_interval_ms = 90 * kDay;
  Open(o);
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "written under version 1", /*ttl_ms=*/kDay).ok());
  clock_.Advance(30 * kDay);
  CreateOrg("globex");  // 60 days younger
  auto none = store_->RunKeyReaper();
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->rotated.empty());

  clock_.Advance(60 * kDay);  // acme's key is 90 days old, globex's 60
  auto report = store_->RunKeyReaper();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->rotated.size(), 1u);
  EXPECT_EQ(report->rotated[0], (std::pair<std::string, uint32_t>{"acme", 2}));
  // Version 1's only entry expired long ago: the same pass destroyed it.
  EXPECT_EQ(report->destroyed, (std::vector<std::pair<std::string, uint32_t>>{{"acme", 1}}));
  auto status = store_->KeyStatus("globex");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->size(), 1u);  // globex untouched
  ASSERT_TRUE(Put("acme", 2, "under version 2").ok());
  EXPECT_EQ(PayloadOf("acme", 2), "under version 2");

  clock_.Advance(30 * kDay);  // globex now 90 days old; acme's new key 30
  report = store_->RunKeyReaper();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->rotated, (std::vector<std::pair<std::string, uint32_t>>{{"globex", 2}}));
}

TEST_F(StoreTest, ScheduledRotationIsOffAtZero) {
  Open();  // rotation_interval_ms = 0
  CreateOrg("acme");
  clock_.Advance(int64_t{3650} * 24 * 3600 * 1000);
  auto report = store_->RunKeyReaper();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->rotated.empty());
}

}  // namespace
}  // namespace sealcache::storage
