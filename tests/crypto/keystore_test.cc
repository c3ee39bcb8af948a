#include "sealcache/crypto/keystore.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "sealcache/crypto/aead.h"
#include "sealcache/crypto/random.h"
#include "test_util.h"

namespace sealcache::crypto {
namespace {

const RingId kAcme{KeyScope::kOrg, "acme"};
const RingId kGlobex{KeyScope::kOrg, "globex"};
const RingId kNode{KeyScope::kNode, ""};

class KeystoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("sealcache-ks");
    path_ = dir_ + "/keystore";
    master_ = testing::FilledKey(0x10);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Keystore> OpenOk(const SecretBytes& master, AtomicWriteFaultHook hook = {}) {
    KeystoreOptions opts;
    opts.clock = &clock_;
    opts.fault_hook = std::move(hook);
    auto ks = Keystore::Open(path_, master, std::move(opts));
    EXPECT_TRUE(ks.ok()) << ks.status().ToString();
    return ks.ok() ? std::move(ks).value() : nullptr;
  }
  Result<std::unique_ptr<Keystore>> TryOpen(const SecretBytes& master) {
    KeystoreOptions opts;
    opts.clock = &clock_;
    opts.create_if_missing = false;
    return Keystore::Open(path_, master, std::move(opts));
  }
  std::vector<uint8_t> FileBytes() { return std::move(ReadWholeFile(path_)).value(); }
  void WriteBytes(const std::vector<uint8_t>& b) {
    ASSERT_TRUE(WriteFileAtomically(path_, b).ok());
  }

  static bool SameKey(const SecretBytes& a, const SecretBytes& b) {
    return std::ranges::equal(a.span(), b.span());
  }
  static bool Contains(const std::vector<uint8_t>& hay, const SecretBytes& needle) {
    return std::search(hay.begin(), hay.end(), needle.data(), needle.data() + needle.size()) !=
           hay.end();
  }

  FakeClock clock_;
  std::string dir_, path_;
  SecretBytes master_;
};

TEST_F(KeystoreTest, KeysSurviveReopenWithStatesAndTimes) {
  std::shared_ptr<const SecretBytes> v1, v2, node;
  {
    auto ks = OpenOk(master_);
    ASSERT_EQ(*ks->CreateRing(kAcme), 1u);
    ASSERT_EQ(*ks->CreateRing(kNode), 1u);
    clock_.Advance(5000);
    ASSERT_EQ(*ks->Rotate(kAcme), 2u);
    v1 = *ks->Key(kAcme, 1);
    v2 = *ks->Key(kAcme, 2);
    node = ks->Active(kNode)->key;
  }
  auto ks = OpenOk(master_);
  EXPECT_TRUE((*ks->Key(kAcme, 1))->Equals(*v1));
  EXPECT_TRUE((*ks->Key(kAcme, 2))->Equals(*v2));
  EXPECT_TRUE(ks->Active(kNode)->key->Equals(*node));
  EXPECT_EQ(ks->Active(kAcme)->version, 2u);
  auto versions = *ks->Versions(kAcme);
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0].state, KeyState::kRetiring);
  EXPECT_EQ(versions[0].rotated_ms, versions[1].created_ms);
  EXPECT_EQ(versions[1].created_ms - versions[0].created_ms, 5000);
}

TEST_F(KeystoreTest, MetadataIsReadableWithoutTheMasterKey) {
  {
    auto ks = OpenOk(master_);
    ASSERT_TRUE(ks->CreateRing(kAcme).ok());
    ASSERT_TRUE(ks->Rotate(kAcme).ok());
  }
  auto meta = Keystore::ReadMetadata(path_);
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(meta->format_version, Keystore::kFormatVersion);
  ASSERT_EQ(meta->keys.size(), 2u);
  EXPECT_EQ(meta->keys[0].ring.org, "acme");
  EXPECT_EQ(meta->keys[0].state, KeyState::kRetiring);
  EXPECT_EQ(meta->keys[1].state, KeyState::kActive);
  EXPECT_EQ(meta->master_key_fingerprint, *Keystore::Fingerprint(master_));
  EXPECT_TRUE(Keystore::Verify(path_, master_).ok());
}

TEST_F(KeystoreTest, AnyFlippedByteIsAClearErrorAndLoadsNothing) {
  {
    auto ks = OpenOk(master_);
    ASSERT_TRUE(ks->CreateRing(kAcme).ok());
    ASSERT_TRUE(ks->CreateRing(kNode).ok());
    ASSERT_TRUE(ks->Rotate(kAcme).ok());
  }
  const auto good = FileBytes();
  for (size_t i = 0; i < good.size(); ++i) {
    auto bad = good;
    bad[i] ^= 0x20;
    WriteBytes(bad);
    auto ks = TryOpen(master_);
    ASSERT_FALSE(ks.ok()) << "flipped byte " << i << " was not detected";
    auto code = ks.status().code();
    EXPECT_TRUE(code == Status::Code::kCorruption || code == Status::Code::kPermissionDenied)
        << ks.status().ToString();
    EXPECT_FALSE(Keystore::Verify(path_, master_).ok());
  }
  WriteBytes(good);
  EXPECT_TRUE(TryOpen(master_).ok());
}

TEST_F(KeystoreTest, TruncatedFileIsReportedAsTruncatedOrTampered) {
  {
    auto ks = OpenOk(master_);
    ASSERT_TRUE(ks->CreateRing(kAcme).ok());
  }
  const auto good = FileBytes();
  for (size_t n = 0; n < good.size(); ++n) {
    WriteBytes({good.begin(), good.begin() + n});
    auto ks = TryOpen(master_);
    ASSERT_FALSE(ks.ok()) << n;
    EXPECT_EQ(ks.status().code(), Status::Code::kCorruption) << ks.status().ToString();
  }
  WriteBytes({good.begin(), good.begin() + 20});
  EXPECT_NE(TryOpen(master_).status().message().find("truncated"), std::string::npos);
}

TEST_F(KeystoreTest, WrongMasterKeyIsAClearErrorAndModifiesNothing) {
  {
    auto ks = OpenOk(master_);
    ASSERT_TRUE(ks->CreateRing(kAcme).ok());
  }
  const auto before = FileBytes();
  auto ks = TryOpen(testing::FilledKey(0x99));
  ASSERT_FALSE(ks.ok());
  EXPECT_EQ(ks.status().code(), Status::Code::kPermissionDenied);
  EXPECT_NE(ks.status().message().find("wrong master key"), std::string::npos);
  EXPECT_EQ(FileBytes(), before);
}

TEST_F(KeystoreTest, CrashBeforeRenameLeavesTheOldKeystoreIntact) {
  std::shared_ptr<const SecretBytes> v1;
  {
    // A committed keystore with one ring; then a crash while rotating.
    auto ks = OpenOk(master_);
    ASSERT_TRUE(ks->CreateRing(kAcme).ok());
    v1 = *ks->Key(kAcme, 1);
  }
  const auto committed = FileBytes();
  {
    bool crash = true;
    auto ks = OpenOk(master_, [&](std::string_view step) {
      return crash && step == KeystoreFaultPoint(kKeystoreRotate, kBeforeRename)
                 ? Status::IOError("injected crash")
                 : Status::Ok();
    });
    EXPECT_FALSE(ks->Rotate(kAcme).ok());
    // The failed write changed nothing in memory either.
    EXPECT_EQ(ks->Active(kAcme)->version, 1u);
    crash = false;
  }
  EXPECT_TRUE(std::filesystem::exists(path_ + ".tmp"));
  EXPECT_EQ(FileBytes(), committed);
  auto ks = OpenOk(master_);
  EXPECT_EQ(ks->Active(kAcme)->version, 1u);
  EXPECT_TRUE(ks->Active(kAcme)->key->Equals(*v1));
  // The next write replaces the stray temp file.
  ASSERT_EQ(*ks->Rotate(kAcme), 2u);
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
}

TEST_F(KeystoreTest, DestroyedVersionMaterialIsAbsentFromTheFile) {
  auto ks = OpenOk(master_);
  ASSERT_TRUE(ks->CreateRing(kAcme).ok());
  ASSERT_TRUE(ks->Rotate(kAcme).ok());
  const auto before = FileBytes();
  ASSERT_TRUE(ks->Destroy(kAcme, 1).ok());
  const auto after = FileBytes();
  // The wrapped form of version 1 (whatever its bytes) was in the file and is gone: find it
  // by looking for every 61-byte window of `before` that is not in `after`.
  EXPECT_LT(after.size(), before.size());
  EXPECT_EQ(before.size() - after.size(), Aead::kOverhead + kDataKeySize);
  auto key = ks->Key(kAcme, 1);
  EXPECT_EQ(key.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(key.status().message().find("destroyed"), std::string::npos);
  // After reopen it is still destroyed, with its record kept for audit.
  ks.reset();
  ks = OpenOk(master_);
  auto versions = *ks->Versions(kAcme);
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0].state, KeyState::kDestroyed);
  EXPECT_GT(versions[0].destroyed_ms, 0);
  EXPECT_EQ(ks->Key(kAcme, 1).status().code(), Status::Code::kFailedPrecondition);
}

TEST_F(KeystoreTest, NoKeyMaterialAppearsInTheClear) {
  auto ks = OpenOk(master_);
  ASSERT_TRUE(ks->CreateRing(kAcme).ok());
  ASSERT_TRUE(ks->CreateRing(kNode).ok());
  auto bytes = FileBytes();
  EXPECT_FALSE(Contains(bytes, **ks->Key(kAcme, 1)));
  EXPECT_FALSE(Contains(bytes, **ks->Key(kNode, 1)));
  EXPECT_FALSE(Contains(bytes, master_));
}

TEST(KeyWrapper, WrappedKeyOpensOnlyAsItsOwnScopeOrgAndVersion) {
  auto wrapper = std::move(KeyWrapper::New(testing::FilledKey(0x10))).value();
  auto key = std::move(RandomSecret(kDataKeySize)).value();
  auto blob = wrapper->Wrap(kAcme, 1, key);
  ASSERT_TRUE(blob.ok());
  auto back = wrapper->Unwrap(kAcme, 1, *blob);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->Equals(key));
  EXPECT_TRUE(wrapper->Unwrap(kGlobex, 1, *blob).status().IsCorruption());
  EXPECT_TRUE(wrapper->Unwrap(kAcme, 2, *blob).status().IsCorruption());
  EXPECT_TRUE(wrapper->Unwrap(kNode, 1, *blob).status().IsCorruption());
  auto other_master = std::move(KeyWrapper::New(testing::FilledKey(0x11))).value();
  EXPECT_TRUE(other_master->Unwrap(kAcme, 1, *blob).status().IsCorruption());
}

TEST_F(KeystoreTest, ErrorsNameUnknownOrgsAndVersions) {
  auto ks = OpenOk(master_);
  ASSERT_TRUE(ks->CreateRing(kAcme).ok());
  auto unknown_org = ks->Active(kGlobex);
  EXPECT_TRUE(unknown_org.status().IsNotFound());
  EXPECT_NE(unknown_org.status().message().find("globex"), std::string::npos);
  auto unknown_version = ks->Key(kAcme, 7);
  EXPECT_TRUE(unknown_version.status().IsNotFound());
  EXPECT_NE(unknown_version.status().message().find("version 7"), std::string::npos);
  EXPECT_EQ(ks->CreateRing(kAcme).status().code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(ks->CreateRing({KeyScope::kOrg, "../etc"}).status().code(),
            Status::Code::kInvalidArgument);
}

TEST_F(KeystoreTest, DroppedRingHasNoUsableKeysAndCanBeCreatedAgain) {
  auto ks = OpenOk(master_);
  ASSERT_TRUE(ks->CreateRing(kAcme).ok());
  ASSERT_TRUE(ks->Rotate(kAcme).ok());
  ASSERT_TRUE(ks->DestroyRing(kAcme).ok());
  EXPECT_FALSE(ks->IsLive(kAcme));
  EXPECT_FALSE(ks->Active(kAcme).ok());
  EXPECT_FALSE(ks->Key(kAcme, 1).ok());
  EXPECT_FALSE(ks->Key(kAcme, 2).ok());
  EXPECT_EQ(ks->Rotate(kAcme).status().code(), Status::Code::kFailedPrecondition);
  ASSERT_EQ(*ks->CreateRing(kAcme), 3u);
}

TEST_F(KeystoreTest, MasterKeyRotationRewrapsEverything) {
  auto ks = OpenOk(master_);
  ASSERT_TRUE(ks->CreateRing(kAcme).ok());
  auto v1 = *ks->Key(kAcme, 1);
  auto new_master = testing::FilledKey(0x77);
  ASSERT_TRUE(ks->RotateMasterKey(new_master).ok());
  ks.reset();
  EXPECT_EQ(TryOpen(master_).status().code(), Status::Code::kPermissionDenied);
  auto reopened = TryOpen(new_master);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_TRUE((*(*reopened)->Key(kAcme, 1))->Equals(*v1));
}

// A crash at each step of a master-key rotation leaves a keystore that opens under exactly
// one of the two keys, with every key version intact: the old key before the rename, the
// new one after it.
TEST_F(KeystoreTest, MasterKeyRotationCrashedAtEachStepOpensUnderTheOldOrTheNewKey) {
  std::shared_ptr<const SecretBytes> v1;
  {
    auto ks = OpenOk(master_);
    ASSERT_TRUE(ks->CreateRing(kAcme).ok());
    v1 = *ks->Key(kAcme, 1);
  }
  SecretBytes current = SecretBytes::CopyFrom(master_.span());
  uint8_t fill = 0x40;
  for (std::string_view step : kAtomicWriteSteps) {
    const SecretBytes next = testing::FilledKey(++fill);
    {
      auto ks = OpenOk(current, [&](std::string_view point) {
        return point == KeystoreFaultPoint(kKeystoreRotateMasterKey, step)
                   ? Status::IOError("injected crash")
                   : Status::Ok();
      });
      ASSERT_TRUE(ks);
      EXPECT_FALSE(ks->RotateMasterKey(next).ok()) << step;
    }
    auto under_old = TryOpen(current), under_new = TryOpen(next);
    ASSERT_NE(under_old.ok(), under_new.ok()) << step;
    const bool renamed = under_new.ok();
    EXPECT_EQ(renamed, step == kAfterRename) << step;
    auto& ks = renamed ? *under_new : *under_old;
    EXPECT_TRUE((*ks->Key(kAcme, 1))->Equals(*v1)) << step;
    if (renamed) current = SecretBytes::CopyFrom(next.span());
  }
}

TEST_F(KeystoreTest, SecondOpenWhileHeldIsRefused) {
  auto ks = OpenOk(master_);
  auto second = TryOpen(master_);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("in use"), std::string::npos);
}

TEST_F(KeystoreTest, ReadOnlyOpenWorksBesideTheWriterAndRefusesChanges) {
  auto ks = OpenOk(master_);
  ASSERT_TRUE(ks->CreateRing(kAcme).ok());
  const auto before = FileBytes();
  KeystoreOptions opts;
  opts.clock = &clock_;
  opts.read_only = true;
  auto reader = Keystore::Open(path_, master_, opts);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_TRUE((*(*reader)->Key(kAcme, 1))->Equals(**ks->Key(kAcme, 1)));
  EXPECT_EQ((*reader)->Rotate(kAcme).status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ((*reader)->RotateMasterKey(testing::FilledKey(1)).code(),
            Status::Code::kFailedPrecondition);
  EXPECT_EQ(FileBytes(), before);
  std::filesystem::remove_all(dir_ + "/none");
  EXPECT_TRUE(Keystore::Open(dir_ + "/missing", master_, opts).status().IsNotFound());
}

TEST_F(KeystoreTest, FileIsPrivate) {
  auto ks = OpenOk(master_);
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
}

TEST_F(KeystoreTest, ARingMovesToAnotherKeystoreUnderTheSameMasterKeyAsWrappedKeysOnly) {
  auto source = OpenOk(master_);
  ASSERT_TRUE(source->CreateRing(kAcme).ok());
  ASSERT_TRUE(source->Rotate(kAcme).ok());  // v1 RETIRING, v2 ACTIVE
  ASSERT_TRUE(source->CreateRing(kGlobex).ok());
  auto v1 = std::move(source->Key(kAcme, 1)).value();
  auto v2 = std::move(source->Key(kAcme, 2)).value();
  auto exported = source->ExportRing(kAcme);
  ASSERT_TRUE(exported.ok()) << exported.status().ToString();
  EXPECT_FALSE(Contains(*exported, *v1));
  EXPECT_FALSE(Contains(*exported, *v2));

  // The destination once held an earlier acme (dropped: destroyed versions 1..3).
  const std::string other_path = dir_ + "/other";
  KeystoreOptions opts;
  opts.clock = &clock_;
  auto dest = std::move(Keystore::Open(other_path, master_, std::move(opts))).value();
  ASSERT_TRUE(dest->CreateRing(kAcme).ok());
  ASSERT_TRUE(dest->Rotate(kAcme).ok());
  ASSERT_TRUE(dest->Rotate(kAcme).ok());
  ASSERT_TRUE(dest->DestroyRing(kAcme).ok());
  ASSERT_TRUE(dest->ImportRing(kAcme, *exported).ok());
  EXPECT_TRUE(SameKey(*std::move(dest->Key(kAcme, 1)).value(), *v1));
  EXPECT_TRUE(SameKey(*std::move(dest->Key(kAcme, 2)).value(), *v2));
  EXPECT_EQ(dest->Active(kAcme)->version, 2u);
  EXPECT_EQ((*dest->Versions(kAcme)).size(), 2u) << "the earlier incarnation's records went";
  // Durable, and the keystore stays authentic.
  dest.reset();
  EXPECT_TRUE(Keystore::Verify(other_path, master_).ok());
  KeystoreOptions again;
  again.clock = &clock_;
  dest = std::move(Keystore::Open(other_path, master_, std::move(again))).value();
  EXPECT_TRUE(SameKey(*std::move(dest->Key(kAcme, 2)).value(), *v2));

  // A live ring is never overwritten; another org's name, another master key, a changed
  // byte or a dropped ring: refused, and nothing changes.
  EXPECT_EQ(dest->ImportRing(kAcme, *exported).code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(dest->ImportRing(kGlobex, *exported).code(), Status::Code::kInvalidArgument);
  auto flipped = *exported;
  flipped[flipped.size() - 5] ^= 1;
  EXPECT_FALSE(dest->ImportRing({KeyScope::kOrg, "initech"}, flipped).ok());
  EXPECT_FALSE(dest->IsLive({KeyScope::kOrg, "initech"}));
  const std::string foreign_path = dir_ + "/foreign";
  KeystoreOptions foreign_opts;
  foreign_opts.clock = &clock_;
  auto foreign =
      std::move(Keystore::Open(foreign_path, testing::FilledKey(0x77), std::move(foreign_opts)))
          .value();
  EXPECT_EQ(foreign->ImportRing(kAcme, *exported).code(), Status::Code::kPermissionDenied);
  EXPECT_FALSE(foreign->IsLive(kAcme));
  ASSERT_TRUE(source->DestroyRing(kAcme).ok());
  EXPECT_EQ(source->ExportRing(kAcme).status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(source->ExportRing({KeyScope::kOrg, "nobody"}).status().code(),
            Status::Code::kNotFound);
}

}  // namespace
}  // namespace sealcache::crypto
