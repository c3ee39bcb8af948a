// What an attacker with the disk but without the master key can and cannot see.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <map>

#include "sealcache/crypto/master_key.h"
#include "sealcache/half.h"
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

// A vector whose float32 bytes are recognisable: 16 distinct non-round values.
std::vector<float> MarkerVector(float base) {
  std::vector<float> v(StoreTest::kDim);
  for (size_t i = 0; i < v.size(); ++i) v[i] = base + 0.123457f * static_cast<float>(i + 1);
  return v;
}

std::span<const uint8_t> AsBytes(const std::vector<float>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)};
}

// The first 16 components as the store keeps them: half precision.
std::vector<uint8_t> AsHalfBytes(const std::vector<float>& v) {
  std::vector<uint16_t> halves(16);
  EncodeHalf(v.data(), halves.size(), halves.data());
  const auto* bytes = reinterpret_cast<const uint8_t*>(halves.data());
  return {bytes, bytes + halves.size() * sizeof(uint16_t)};
}

std::string RandomMarker() {
  auto bytes = std::move(crypto::RandomBytes(16)).value();
  return "MARKER-" + crypto::ToHex(bytes);
}

class EncryptionAtRestTest : public StoreTest {
 protected:
  struct Planted {
    std::string payload_marker;
    std::vector<float> vector;
  };

  // Writes entries carrying markers for two orgs; returns what to look for.
  std::vector<Planted> PlantMarkers() {
    std::vector<Planted> planted;
    int i = 0;
    for (const std::string org : {"acme", "globex"}) {
      CreateOrg(org);
      for (int k = 0; k < 20; ++k, ++i) {
        Planted p{RandomMarker(), MarkerVector(static_cast<float>(i) + 10.0f)};
        std::string payload = "answer with a secret " + p.payload_marker + " inside";
        EXPECT_TRUE(Put(org, i, payload, 3'600'000, "ns", p.vector).ok());
        planted.push_back(std::move(p));
      }
    }
    return planted;
  }

  // Files that must hold no plaintext: org SSTs, snapshots and WALs (and, though plaintext by
  // design, MANIFESTs, which must never hold a payload or vector either).
  std::vector<std::string> ProtectedFiles() {
    DataLayout layout(dir_);
    std::vector<std::string> files;
    for (const auto& f : FilesUnder(layout.orgs_dir())) {
      const std::string name = std::filesystem::path(f).filename();
      if (layout.Classify(f).encrypted || name.rfind("MANIFEST-", 0) == 0) files.push_back(f);
    }
    std::sort(files.begin(), files.end());
    files.erase(std::unique(files.begin(), files.end()), files.end());
    return files;
  }

  void ExpectNoMarkers(const std::vector<Planted>& planted, std::string_view when) {
    auto files = ProtectedFiles();
    ASSERT_FALSE(files.empty());
    for (const auto& f : files) {
      auto bytes = ReadFile(f);
      for (const auto& p : planted) {
        EXPECT_FALSE(Contains(bytes, Bytes(p.payload_marker)))
            << when << ": payload marker in " << f;
        EXPECT_FALSE(Contains(bytes, AsBytes(p.vector).first(32)))
            << when << ": vector bytes in " << f;
        EXPECT_FALSE(Contains(bytes, AsHalfBytes(p.vector)))
            << when << ": half-precision vector bytes in " << f;
      }
    }
  }
};

TEST_F(EncryptionAtRestTest, NoPayloadOrVectorBytesInTheClearAnywhere) {
  Open();
  auto planted = PlantMarkers();
  ExpectNoMarkers(planted, "in the WAL before flush");
  ASSERT_TRUE(store_->Flush().ok());
  ASSERT_TRUE(store_->CompactOrg("acme").ok());
  ASSERT_TRUE(store_->CompactOrg("globex").ok());
  ExpectNoMarkers(planted, "after flush and compaction");
  store_.reset();
  ExpectNoMarkers(planted, "after close");
  // Nothing anywhere else in the data directory either (meta holds no payloads).
  for (const auto& f : FilesUnder(dir_)) {
    auto bytes = ReadFile(f);
    for (const auto& p : planted) {
      EXPECT_FALSE(Contains(bytes, Bytes(p.payload_marker))) << f;
      EXPECT_FALSE(Contains(bytes, AsBytes(p.vector).first(32))) << f;
      EXPECT_FALSE(Contains(bytes, AsHalfBytes(p.vector))) << f;
    }
  }
}

TEST_F(EncryptionAtRestTest, EveryOrgFileCarriesAValidHeaderForItsOrg) {
  Open();
  PlantMarkers();
  ASSERT_TRUE(store_->Flush().ok());
  DataLayout layout(dir_);
  int checked = 0;
  for (const auto& f : ProtectedFiles()) {
    if (!layout.Classify(f).encrypted) continue;
    auto h = ReadFileHeader(f);
    ASSERT_TRUE(h.ok()) << f << ": " << h.status().ToString();
    EXPECT_EQ(h->ring, layout.Classify(f).ring) << f;
    EXPECT_EQ(h->key_version, 1u);
    ++checked;
  }
  EXPECT_GE(checked, 3);  // two org SSTs and a WAL at least
}

TEST_F(EncryptionAtRestTest, MetaSstsShowDigestsAndSstDumpReadsThem) {
  Open();
  PlantMarkers();
  ASSERT_TRUE(store_->Flush().ok());
  store_.reset();
  DataLayout layout(dir_);
  auto metas = FilesUnder(layout.org_meta_dir("acme"));
  ASSERT_FALSE(metas.empty());
  bool found = false;
  for (const auto& f : metas) {
    auto d = MakeDigest(0);
    found |= Contains(ReadFile(f), d);
  }
  EXPECT_TRUE(found) << "digests are plaintext in meta SSTs";
  if (system("command -v sst_dump >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "sst_dump (rocksdb-tools) is not installed";
  }
  std::string cmd = "sst_dump --file=" + metas[0] + " --command=scan --output_hex 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << out;
  std::string hex = crypto::ToHex(MakeDigest(0));
  std::transform(hex.begin(), hex.end(), hex.begin(), ::toupper);
  EXPECT_NE(out.find(hex), std::string::npos) << out.substr(0, 2000);
}

TEST_F(EncryptionAtRestTest, WrongMasterKeyIsAClearErrorAndModifiesNoFile) {
  Open();
  PlantMarkers();
  store_.reset();
  std::map<std::string, std::vector<uint8_t>> before;
  for (const auto& f : FilesUnder(dir_)) before[f] = ReadFile(f);
  auto wrong = std::move(crypto::RandomSecret(32)).value();
  auto s = Store::Open(Options(), wrong);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kPermissionDenied);
  EXPECT_NE(s.status().message().find("wrong master key"), std::string::npos);
  std::map<std::string, std::vector<uint8_t>> after;
  for (const auto& f : FilesUnder(dir_)) after[f] = ReadFile(f);
  EXPECT_EQ(before, after);
}

TEST_F(EncryptionAtRestTest, FlippedByteInAnOrgSstFailsOnlyTheDamagedBlock) {
  Open();
  CreateOrg("acme");
  CreateOrg("globex");
  constexpr int kEntries = 300;
  for (int i = 0; i < kEntries; ++i) {
    ASSERT_TRUE(Put("acme", i, std::string(1000, static_cast<char>('a' + i % 26))).ok());
    ASSERT_TRUE(Put("globex", 10'000 + i, "fine").ok());
  }
  ASSERT_TRUE(store_->Flush().ok());
  ASSERT_TRUE(store_->CompactOrg("acme").ok());
  store_.reset();
  auto ssts = FilesUnder(DataLayout(dir_).org_data_dir("acme"));
  ASSERT_EQ(ssts.size(), 1u);
  {
    auto bytes = ReadFile(ssts[0]);
    bytes[kFileHeaderSize + bytes.size() / 4] ^= 0x40;  // inside the data blocks
    std::ofstream(ssts[0], std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  Open();
  int ok = 0, corrupt = 0;
  for (int i = 0; i < kEntries; ++i) {
    auto e = store_->Get("acme", MakeDigest(i));
    if (e.ok()) {
      ++ok;
    } else {
      EXPECT_TRUE(e.status().IsCorruption()) << e.status().ToString();
      ++corrupt;
    }
  }
  EXPECT_GE(corrupt, 1);
  EXPECT_GT(ok, kEntries / 2);
  for (int i = 0; i < kEntries; ++i) EXPECT_EQ(PayloadOf("globex", 10'000 + i), "fine");
}

TEST_F(EncryptionAtRestTest, OneOrgsFileCannotBeReadAsAnothersEvenWithAValidHeader) {
  Open();
  CreateOrg("acme");
  CreateOrg("globex");
  std::string secret = RandomMarker();
  ASSERT_TRUE(store_->WriteOrgFile("acme", "snap", Bytes(secret)).ok());
  DataLayout layout(dir_);
  std::filesystem::create_directories(layout.org_index_dir("globex"));
  std::filesystem::copy_file(layout.org_index_dir("acme") + "/snap",
                             layout.org_index_dir("globex") + "/snap");
  auto r = store_->ReadOrgFile("globex", "snap");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("org acme"), std::string::npos) << r.status().message();
  // Relabelling the header to globex breaks its authentication instead.
  auto bytes = ReadFile(layout.org_index_dir("acme") + "/snap");
  auto h = ParseFileHeader(bytes);
  ASSERT_TRUE(h.ok());
  h->ring.org = "globex";
  auto forged = EncodeFileHeader(*h);
  std::copy(forged.begin(), forged.end(), bytes.begin());
  std::ofstream(layout.org_index_dir("globex") + "/snap", std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  r = store_->ReadOrgFile("globex", "snap");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("does not authenticate"), std::string::npos)
      << r.status().message();
  EXPECT_GE(store_->Stats("globex")->decrypt_failures, 2u);
}

TEST_F(EncryptionAtRestTest, PlaintextFileInAnOrgDirectoryIsNeverReadAsPlaintext) {
  Open();
  CreateOrg("acme");
  DataLayout layout(dir_);
  std::filesystem::create_directories(layout.org_index_dir("acme"));
  std::ofstream(layout.org_index_dir("acme") + "/planted") << std::string(5000, 'x');
  auto r = store_->ReadOrgFile("acme", "planted");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("no sealcache encryption header"), std::string::npos);
}

}  // namespace
}  // namespace sealcache::storage

namespace sealcache::storage {
namespace {

TEST_F(StoreTest, PlaintextBenchmarkModeIsMarkedAndNeverMixesWithEncryption) {
  auto plain = Options();
  plain.insecure_plaintext_for_benchmarks = true;
  Open(plain);
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "visible").ok());
  store_.reset();
  EXPECT_TRUE(std::filesystem::exists(DataLayout(dir_).plaintext_marker_path()));
  auto encrypted = Store::Open(Options(), master_);
  EXPECT_EQ(encrypted.status().code(), Status::Code::kFailedPrecondition);
  auto log = ReadFile(DataLayout(dir_).audit_log_path());
  EXPECT_NE(std::string(log.begin(), log.end()).find("store_opened_without_encryption"),
            std::string::npos);
  // And an encrypted store refuses plaintext mode.
  std::filesystem::remove_all(dir_);
  Open();
  store_.reset();
  EXPECT_EQ(Store::Open(plain, master_).status().code(), Status::Code::kFailedPrecondition);
}

}  // namespace
}  // namespace sealcache::storage
