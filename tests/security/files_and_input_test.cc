// Files and input (issue 12, points 3, 6 and 7): every encrypted file is accounted to its key
// version, bad input gets a clear error and changes nothing, and everything under the data
// directory is private to the server's user.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "sealcache/storage/data_layout.h"
#include "sealcache/storage/file_check.h"
#include "sealcache/storage/file_header.h"
#include "server_fixture.h"

namespace sealcache::server {
namespace {

using testing::MakeDigest;
using testing::ServerTest;
using Code = Status::Code;

class FilesAndInput : public ServerTest {
 protected:
  std::string DataDir() { return dir_ + "/data"; }
  std::string SnapshotPath(const std::string& org) {
    return DataDir() + "/orgs/" + org + "/index/index.snapshot";
  }
  uint64_t Entries(client::Client& c) {
    auto st = c.Stats();
    return st.ok() ? (*st)->body_as_StatsResponse()->entries() : ~0ull;
  }
};

TEST_F(FilesAndInput, AnIndexSnapshotNeverKeepsARetiredKeyAliveNorOutlivesIt) {
  StartServer();
  auto admin = ConnectAs(AdminToken());
  auto acme = NewOrg("acme", kDim, "flat");
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(Put(*acme, i, "short lived", "", 1'000).ok());
  ASSERT_TRUE(server_->service().Flush().ok());  // SSTs and the snapshot, under version 1
  auto header = storage::ReadFileHeader(SnapshotPath("acme"));
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  ASSERT_EQ(header->key_version, 1u);

  ASSERT_EQ(admin->RotateKey("acme").value(), 2u);
  std::this_thread::sleep_for(std::chrono::milliseconds(1'200));  // every entry expired
  auto reaped = server_->service().store().RunKeyReaper();
  ASSERT_TRUE(reaped.ok()) << reaped.status().ToString();
  ASSERT_EQ(reaped->destroyed.size(), 1u) << "version 1 should be destroyed";

  // The snapshot was re-encrypted under the active version before version 1 went.
  header = storage::ReadFileHeader(SnapshotPath("acme"));
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  EXPECT_EQ(header->key_version, 2u);
  // And the store verifies: no file under a destroyed key.
  auto verify = storage::VerifyDataFiles(storage::DataLayout(DataDir()), master_);
  ASSERT_TRUE(verify.ok()) << verify.status().ToString();
  for (const auto& p : verify->problems) ADD_FAILURE() << p.path << ": " << p.error;

  // A restart reads the re-encrypted snapshot; the org works.
  auto o = Options();
  acme.reset();
  admin.reset();
  Restart(o);
  acme = ConnectAs(tokens_["acme"]);
  EXPECT_TRUE(Put(*acme, 100, "after the restart").ok());
}

TEST_F(FilesAndInput, AdminCommandsRefuseBadOrgNamesAndUnknownOrgs) {
  StartServer();
  auto admin = ConnectAs(AdminToken());
  auto acme = NewOrg("acme");
  for (const char* bad : {"../acme", "ACME", "a/b", "", "-x"}) {
    SCOPED_TRACE(bad);
    if (std::string(bad).empty()) {
      // The empty org names the admin tokens for issue and revoke; elsewhere it is invalid.
      EXPECT_EQ(admin->RotateKey(bad).status().code(), Code::kInvalidArgument);
      continue;
    }
    EXPECT_EQ(admin->RevokeToken(bad, "").status().code(), Code::kInvalidArgument);
    EXPECT_EQ(admin->IssueToken(bad).status().code(), Code::kInvalidArgument);
    EXPECT_EQ(admin->RotateKey(bad).status().code(), Code::kInvalidArgument);
    EXPECT_EQ(admin->KeyStatus(bad).status().code(), Code::kInvalidArgument);
    EXPECT_EQ(admin->DropOrg(bad).code(), Code::kInvalidArgument);
  }
  EXPECT_EQ(admin->RevokeToken("nosuch", "").status().code(), Code::kNotFound);
  EXPECT_EQ(admin->IssueToken("nosuch").status().code(), Code::kNotFound);
  EXPECT_EQ(admin->RotateKey("nosuch").status().code(), Code::kNotFound);
  EXPECT_EQ(admin->KeyStatus("nosuch").status().code(), Code::kNotFound);
  EXPECT_EQ(admin->DropOrg("nosuch").code(), Code::kNotFound);
  // Nothing changed: acme's token still works, its key is still version 1.
  EXPECT_TRUE(acme->Ping().ok());
  auto status = admin->KeyStatus("acme");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ((*status)->body_as_KeyStatusResponse()->versions()->size(), 1u);
}

TEST_F(FilesAndInput, AnEmptyPayloadIsRefusedAndStoresNothing) {
  StartServer();
  auto acme = NewOrg("acme");
  auto put = Put(*acme, 1, "");
  EXPECT_EQ(put.status().code(), Code::kInvalidArgument) << put.status().ToString();
  EXPECT_NE(put.status().message().find("payload is empty"), std::string::npos);
  EXPECT_TRUE(acme->Get(MakeDigest(1)).status().IsNotFound());
  EXPECT_EQ(Entries(*acme), 0u);
}

TEST_F(FilesAndInput, EveryFileAndDirectoryUnderTheDataDirectoryIsPrivate) {
  const mode_t old_umask = umask(022);  // a permissive umask: the store must not rely on it
  StartServer();
  auto admin = ConnectAs(AdminToken());
  auto acme = NewOrg("acme");
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Put(*acme, i, "private").ok());
  ASSERT_EQ(admin->RotateKey("acme").value(), 2u);
  ASSERT_TRUE(server_->service().Flush().ok());  // SSTs, snapshots, WAL, MANIFEST, LOG
  ASSERT_TRUE(server_->service().store().CompactOrg("acme").ok());
  umask(old_umask);

  int files = 0, dirs = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(DataDir())) {
    struct stat st {};
    ASSERT_EQ(lstat(entry.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 077, 0u)
        << entry.path() << " has mode " << std::oct << (st.st_mode & 0777);
    (S_ISDIR(st.st_mode) ? dirs : files)++;
  }
  EXPECT_GT(files, 10);
  std::printf("[ security ] %d files and %d directories under the data directory, all private\n",
              files, dirs);
}

}  // namespace
}  // namespace sealcache::server
