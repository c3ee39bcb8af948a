// The routing, encrypting file system on its own, below RocksDB: a data directory with orgs
// acme and globex (and the node ring) in a keystore, and helpers to write and read files.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "encrypted_file_system.h"
#include "rocksdb_status.h"
#include "sealcache/storage/data_layout.h"
#include "store_fixture.h"

namespace sealcache::storage::testing {

class FileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("sealcache-fs");
    layout_ = std::make_unique<DataLayout>(dir_);
    for (auto d : {layout_->keys_dir(), layout_->org_data_dir("acme"),
                   layout_->org_data_dir("globex"), layout_->org_meta_dir("acme")}) {
      std::filesystem::create_directories(d);
    }
    crypto::KeystoreOptions o;
    o.clock = &clock_;
    keystore_ = std::move(crypto::Keystore::Open(layout_->keystore_path(),
                                                 std::move(crypto::RandomSecret(32)).value(), o))
                    .value();
    ASSERT_TRUE(keystore_->CreateRing(kAcme).ok());
    ASSERT_TRUE(keystore_->CreateRing(kGlobex).ok());
    ASSERT_TRUE(keystore_->CreateRing({crypto::KeyScope::kNode, ""}).ok());
    internal::EncryptionEvents events;
    events.on_decrypt_failure = [this](const std::string&, const Status&) { ++failures_; };
    events.on_log_tail_dropped = [this](const std::string&, const std::string& what) {
      dropped_tails_.push_back(what);
    };
    routing_.events = events;
    fs_ = NewFs(routing_);
    ASSERT_NE(fs_, nullptr);
  }
  // Another file system over the same directory and keystore (e.g. one writing format v1).
  std::shared_ptr<rocksdb::FileSystem> NewFs(const internal::RoutingOptions& routing) {
    return internal::NewRoutingFileSystem(*layout_, keystore_.get(), rocksdb::FileSystem::Default(),
                                          routing);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& path, std::string_view data, bool reopen = false) {
    Write(*fs_, path, data, reopen);
  }
  static void Write(rocksdb::FileSystem& fs, const std::string& path, std::string_view data,
                    bool reopen = false) {
    std::unique_ptr<rocksdb::FSWritableFile> f;
    auto s = reopen ? fs.ReopenWritableFile(path, {}, &f, nullptr)
                    : fs.NewWritableFile(path, {}, &f, nullptr);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_TRUE(f->Append(data, {}, nullptr).ok());
    ASSERT_TRUE(f->Close({}, nullptr).ok());
  }
  Result<std::string> Read(const std::string& path) { return Read(*fs_, path); }
  static Result<std::string> Read(rocksdb::FileSystem& fs, const std::string& path) {
    std::unique_ptr<rocksdb::FSSequentialFile> f;
    auto s = fs.NewSequentialFile(path, {}, &f, nullptr);
    if (!s.ok()) return internal::FromRocks(s);
    std::string out, buf(1 << 16, '\0');
    for (;;) {
      rocksdb::Slice chunk;
      s = f->Read(buf.size(), {}, &chunk, buf.data(), nullptr);
      if (!s.ok()) return internal::FromRocks(s);
      if (chunk.empty()) break;
      out.append(chunk.data(), chunk.size());
    }
    return out;
  }

  const crypto::RingId kAcme{crypto::KeyScope::kOrg, "acme"};
  const crypto::RingId kGlobex{crypto::KeyScope::kOrg, "globex"};
  FakeClock clock_;
  std::string dir_;
  std::unique_ptr<DataLayout> layout_;
  std::unique_ptr<crypto::Keystore> keystore_;
  internal::RoutingOptions routing_;
  std::shared_ptr<rocksdb::FileSystem> fs_;
  int failures_ = 0;
  std::vector<std::string> dropped_tails_;
};

}  // namespace sealcache::storage::testing
