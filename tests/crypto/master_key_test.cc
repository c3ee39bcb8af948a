#include "sealcache/crypto/master_key.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace sealcache::crypto {
namespace {

constexpr char kHexKey[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

class MasterKeyTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("sealcache-mk"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string WriteKeyFile(std::string_view name, std::string_view contents, mode_t mode) {
    std::string path = dir_ + "/" + std::string(name);
    std::ofstream(path, std::ios::binary) << contents;
    chmod(path.c_str(), mode);
    return path;
  }
  Result<LoadedMasterKey> Load(const std::string& spec) {
    auto provider = MasterKeyProviderFromSpec(spec);
    if (!provider.ok()) return provider.status();
    return (*provider)->Load();
  }
  std::string dir_;
};

TEST_F(MasterKeyTest, FileWithHexKeyAndNewlineLoads) {
  auto path = WriteKeyFile("hex", std::string(kHexKey) + "\n", 0600);
  auto key = Load("file:" + path);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_TRUE(key->key.Equals(testing::SecretHex(kHexKey)));
  EXPECT_TRUE(key->warnings.empty());
}

TEST_F(MasterKeyTest, FileWithRawKeyLoads) {
  auto raw = testing::Hex(kHexKey);
  auto path = WriteKeyFile("raw", std::string(raw.begin(), raw.end()), 0400);
  auto key = Load("file:" + path);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_TRUE(key->key.Equals(testing::SecretHex(kHexKey)));
}

TEST_F(MasterKeyTest, FileReadableByGroupOrOthersIsRefusedWithTheFix) {
  for (mode_t mode : {0640, 0604, 0644, 0660}) {
    auto path = WriteKeyFile("open", kHexKey, mode);
    auto key = Load("file:" + path);
    ASSERT_FALSE(key.ok());
    EXPECT_EQ(key.status().code(), Status::Code::kPermissionDenied);
    EXPECT_NE(key.status().message().find("chmod 600 " + path), std::string::npos)
        << key.status().message();
  }
}

TEST_F(MasterKeyTest, MalformedKeysAreRejectedWithoutEchoingThem) {
  for (std::string bad : {std::string("abc"), std::string(kHexKey).substr(0, 62) + "zz",
                          std::string(kHexKey) + "00"}) {
    auto path = WriteKeyFile("bad", bad, 0600);
    auto key = Load("file:" + path);
    ASSERT_FALSE(key.ok());
    EXPECT_EQ(key.status().code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(key.status().message().find(bad), std::string::npos);
  }
}

TEST_F(MasterKeyTest, MissingFileIsAClearError) {
  auto key = Load("file:" + dir_ + "/nope");
  ASSERT_FALSE(key.ok());
  EXPECT_NE(key.status().message().find("cannot open master key file"), std::string::npos);
}

TEST_F(MasterKeyTest, EnvProviderLoadsAndWarns) {
  setenv("SEALCACHE_TEST_MASTER_KEY", kHexKey, 1);
  auto key = Load("env:SEALCACHE_TEST_MASTER_KEY");
  unsetenv("SEALCACHE_TEST_MASTER_KEY");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_TRUE(key->key.Equals(testing::SecretHex(kHexKey)));
  ASSERT_EQ(key->warnings.size(), 1u);
  EXPECT_NE(key->warnings[0].find("development only"), std::string::npos);
  EXPECT_EQ(key->warnings[0].find(kHexKey), std::string::npos);
}

TEST_F(MasterKeyTest, UnknownOrIncompleteSpecsAreRefused) {
  EXPECT_EQ(MasterKeyProviderFromSpec("vault:x").status().code(), Status::Code::kInvalidArgument);
  // A pkcs11: URI needs a token, a key and a module (tests/keys runs it against a token).
  EXPECT_EQ(MasterKeyProviderFromSpec("pkcs11:slot-id=0").status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_FALSE(MasterKeyProviderFromSpec("file:").ok());
  EXPECT_FALSE(MasterKeyProviderFromSpec("nocolon").ok());
}

TEST_F(MasterKeyTest, SpecsWithControlCharactersAreRefusedWithoutRepeatingThem) {
  // The variable the specs name is set: each refusal is its control character's.
  setenv("SEALCACHE_TEST_MASTER_KEY", kHexKey, 1);
  const bool loads = Load("env:SEALCACHE_TEST_MASTER_KEY").ok();
  for (std::string spec :
       {std::string("env:SEALCACHE_TEST_MASTER_KEY\nsealcached: forged"),
        std::string("env:SEALCACHE_TEST_MASTER_KEY\r"), std::string("file:/tmp/a\x1b[2Jforged"),
        std::string("env:A\x7f"), std::string("file:/tmp/forged\0x", 18)}) {
    auto provider = MasterKeyProviderFromSpec(spec);
    EXPECT_FALSE(provider.ok()) << spec;
    if (provider.ok()) continue;
    EXPECT_EQ(provider.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(provider.status().message().find("control character"), std::string::npos);
    EXPECT_EQ(provider.status().message().find("forged"), std::string::npos);
  }
  unsetenv("SEALCACHE_TEST_MASTER_KEY");
  EXPECT_TRUE(loads);
}

TEST_F(MasterKeyTest, CreatedKeyFileIsPrivateLoadableAndNeverOverwritten) {
  std::string path = dir_ + "/master.key";
  ASSERT_TRUE(CreateMasterKeyFile(path).ok());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto key = Load("file:" + path);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->key.size(), kMasterKeySize);
  EXPECT_EQ(CreateMasterKeyFile(path).code(), Status::Code::kAlreadyExists);
}

}  // namespace
}  // namespace sealcache::crypto
