// The routing, encrypting file system on its own, below RocksDB.
#include <gtest/gtest.h>

#include <filesystem>

#include "fs_fixture.h"

namespace sealcache::storage {
namespace {

using testing::FileSystemTest;
using testing::ReadFile;

TEST_F(FileSystemTest, ReopenForAppendContinuesTheFileInItsOwnFormat) {
  const std::string path = layout_->org_data_dir("acme") + "/000007.sst";
  Write(path, "hello ");
  Write(path, "world", /*reopen=*/true);
  auto back = Read(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, "hello world");
  // One final chunk of 11 bytes: nonce and tag added.
  EXPECT_EQ(std::filesystem::file_size(path), kFileHeaderSize + 12 + 11 + 16);
  uint64_t logical = 0;
  ASSERT_TRUE(fs_->GetFileSize(path, {}, &logical, nullptr).ok());
  EXPECT_EQ(logical, 11u);
}

TEST_F(FileSystemTest, NewFilesGetTheActiveVersionOfTheRingTheirPathBelongsTo) {
  Write(layout_->org_data_dir("acme") + "/000001.sst", "a");
  ASSERT_TRUE(keystore_->Rotate(kAcme).ok());
  Write(layout_->org_data_dir("acme") + "/000002.sst", "b");
  Write(layout_->org_dir("acme") + "/000003.log", "wal");
  Write(layout_->org_dir("acme") + "/MANIFEST-000004", "manifest");
  Write(layout_->org_meta_dir("acme") + "/000005.sst", "plain meta");
  auto h1 = ReadFileHeader(layout_->org_data_dir("acme") + "/000001.sst");
  auto h2 = ReadFileHeader(layout_->org_data_dir("acme") + "/000002.sst");
  auto wal = ReadFileHeader(layout_->org_dir("acme") + "/000003.log");
  auto manifest = ReadFile(layout_->org_dir("acme") + "/MANIFEST-000004");
  ASSERT_TRUE(h1.ok() && h2.ok() && wal.ok());
  EXPECT_EQ(h1->key_version, 1u);
  EXPECT_EQ(h2->key_version, 2u);
  EXPECT_EQ(h1->kind, FileKind::kSst);
  EXPECT_EQ(wal->ring.scope, crypto::KeyScope::kNode);
  EXPECT_EQ(wal->kind, FileKind::kWal);
  EXPECT_EQ(std::string(manifest.begin(), manifest.end()), "manifest");  // plaintext by design
  EXPECT_NE(h1->file_id, h2->file_id);
  EXPECT_EQ(h1->format_version, kFileFormatV2);
  EXPECT_EQ(h1->layout, BodyLayout::kChunks);
  EXPECT_EQ(h1->chunk_size, kDefaultChunkSize);
  EXPECT_EQ(wal->format_version, kFileFormatV2);
  EXPECT_EQ(wal->layout, BodyLayout::kFrames);
  auto meta = ReadFile(layout_->org_meta_dir("acme") + "/000005.sst");
  EXPECT_EQ(std::string(meta.begin(), meta.end()), "plain meta");
  // Both versions still decrypt: the key comes from each file's header.
  EXPECT_EQ(*Read(layout_->org_data_dir("acme") + "/000001.sst"), "a");
  EXPECT_EQ(*Read(layout_->org_data_dir("acme") + "/000002.sst"), "b");
}

TEST_F(FileSystemTest, FileUnderADestroyedVersionCannotBeOpenedAndSaysWhy) {
  const std::string path = layout_->org_data_dir("acme") + "/000001.sst";
  Write(path, "shredded");
  ASSERT_TRUE(keystore_->Rotate(kAcme).ok());
  ASSERT_TRUE(keystore_->Destroy(kAcme, 1).ok());
  auto r = Read(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("destroyed"), std::string::npos) << r.status().message();
  EXPECT_EQ(failures_, 1);
}

TEST_F(FileSystemTest, AnOrgsFileMovedUnderAnotherOrgIsRefused) {
  const std::string a = layout_->org_data_dir("acme") + "/000001.sst";
  const std::string b = layout_->org_data_dir("globex") + "/000001.sst";
  Write(a, "acme secret");
  std::filesystem::copy_file(a, b);
  auto r = Read(b);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption());
  EXPECT_NE(r.status().message().find("org acme"), std::string::npos);
}

TEST_F(FileSystemTest, LinksAndRenamesAcrossEncryptionDomainsAreRefused) {
  const std::string plain = layout_->org_meta_dir("acme") + "/000009.sst";
  const std::string acme = layout_->org_data_dir("acme") + "/000009.sst";
  const std::string globex = layout_->org_data_dir("globex") + "/000010.sst";
  Write(plain, "plaintext");
  EXPECT_TRUE(fs_->LinkFile(plain, acme, {}, nullptr).IsNotSupported());
  EXPECT_TRUE(fs_->RenameFile(plain, acme, {}, nullptr).IsNotSupported());
  Write(acme, "acme");
  EXPECT_TRUE(fs_->LinkFile(acme, globex, {}, nullptr).IsNotSupported());
  EXPECT_TRUE(fs_->RenameFile(acme, plain, {}, nullptr).IsNotSupported());
  EXPECT_FALSE(std::filesystem::exists(globex));
  // Within one domain both work and keep the header.
  const std::string acme2 = layout_->org_data_dir("acme") + "/000011.sst";
  EXPECT_TRUE(fs_->LinkFile(acme, acme2, {}, nullptr).ok());
  EXPECT_EQ(*Read(acme2), "acme");
}

TEST_F(FileSystemTest, TruncatedOrTamperedHeadersFailClosed) {
  const std::string path = layout_->org_data_dir("acme") + "/000001.sst";
  Write(path, "data");
  auto good = ReadFile(path);
  for (size_t offset :
       {size_t{0}, size_t{9}, size_t{20}, size_t{80}, size_t{100}, size_t{130}, size_t{4000}}) {
    auto bad = good;
    bad[offset] ^= 0x01;
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bad.data()), bad.size());
    EXPECT_FALSE(Read(path).ok()) << "flip at header offset " << offset;
  }
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(good.data()), 100);
  EXPECT_FALSE(Read(path).ok());
}

TEST_F(FileSystemTest, DirectoryListingsReportLogicalSizesOnlyForEncryptedFiles) {
  Write(layout_->org_data_dir("acme") + "/000001.sst", "12345");
  Write(layout_->org_meta_dir("acme") + "/000002.sst", "123");
  std::vector<rocksdb::FileAttributes> attrs;
  ASSERT_TRUE(
      fs_->GetChildrenFileAttributes(layout_->org_data_dir("acme"), {}, &attrs, nullptr).ok());
  ASSERT_EQ(attrs.size(), 1u);
  EXPECT_EQ(attrs[0].size_bytes, 5u);
  attrs.clear();
  ASSERT_TRUE(
      fs_->GetChildrenFileAttributes(layout_->org_meta_dir("acme"), {}, &attrs, nullptr).ok());
  ASSERT_EQ(attrs.size(), 1u);
  EXPECT_EQ(attrs[0].size_bytes, 3u);
}

}  // namespace
}  // namespace sealcache::storage
