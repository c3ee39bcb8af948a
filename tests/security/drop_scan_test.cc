// A dropped org leaves nothing readable (issue 12, point 4): once drop-org is acknowledged,
// no file of the data directory holds its digests, namespaces or token hashes, its directory
// (its own RocksDB instance: SSTs, WAL, MANIFEST, info LOG, snapshots) is gone, and its name
// is left only where storage/FORMAT.md says (the audit log and the keystore's record of its
// destroyed versions).
//
// Markers are the last 24 bytes of each digest: random bytes that neither LZ4 nor the
// key prefix sharing of SST blocks can shorten, so a copy on disk is a verbatim copy.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "sealcache/crypto/hash.h"
#include "server_fixture.h"

namespace sealcache::server {
namespace {

using testing::Bytes;
using testing::MakeDigest;
using testing::ServerTest;

constexpr char kOrg[] = "zebra-dropped";
constexpr char kNamespace[] = "ns-Q7x9Kp2vLm4R8tWz";  // shares no run with the org name
constexpr int kEntries = 50;

std::string Raw(std::span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

class DropScan : public ServerTest {
 protected:
  // Every file under the data directory holding `needle`, by path relative to it.
  std::vector<std::string> FilesWith(const std::string& needle) {
    std::vector<std::string> found;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_ + "/data")) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), {});
      if (bytes.find(needle) != std::string::npos) {
        found.push_back(std::filesystem::relative(e.path(), dir_ + "/data").string());
      }
    }
    return found;
  }
  // The secrets of the org: digests, namespace, token hashes.
  std::vector<std::pair<std::string, std::string>> Markers() {
    std::vector<std::pair<std::string, std::string>> m;
    for (int i = 0; i < kEntries; i += 7) {
      const auto d = MakeDigest(i, 9);
      m.emplace_back("digest " + std::to_string(i), Raw(std::span(d).subspan(8)));
    }
    m.emplace_back("namespace", kNamespace);
    for (const std::string& t : tokens) {
      const auto h = crypto::Sha256(Bytes(t));
      m.emplace_back("token hash", Raw(h));
    }
    return m;
  }
  std::vector<std::string> tokens;
};

TEST_F(DropScan, NothingOfADroppedOrgIsLeftReadableInAnyFile) {
  StartServer();
  auto admin = ConnectAs(AdminToken());
  auto created = admin->CreateOrg(kOrg, kDim, "flat");
  ASSERT_TRUE(created.ok());
  tokens.push_back(created->token);
  auto second = admin->IssueToken(kOrg);
  ASSERT_TRUE(second.ok());
  tokens.push_back(second->first);
  auto keeper = NewOrg("keeper");
  auto org = ConnectAs(created->token);
  for (int i = 0; i < kEntries; ++i) {
    const auto v = testing::MakeVector(kDim, i);
    const std::string payload = "zebra payload";
    ASSERT_TRUE(org->Put({MakeDigest(i, 9), v, Bytes(payload), 3'600'000, kNamespace}).ok());
    ASSERT_TRUE(Put(*keeper, i, "keeper payload").ok());
  }
  ASSERT_TRUE(server_->service().Flush().ok());
  // The scan can see them: before the drop, digests and namespace are in plaintext meta SSTs.
  for (const auto& [what, bytes] : Markers()) {
    if (what != "token hash") {
      EXPECT_FALSE(FilesWith(bytes).empty()) << what << " not found before the drop";
    }
  }

  ASSERT_TRUE(admin->DropOrg(kOrg).ok());

  int checked = 0;
  auto expect_nothing_left = [&](const char* when) {
    for (const auto& [what, bytes] : Markers()) {
      const auto files = FilesWith(bytes);
      EXPECT_TRUE(files.empty()) << what << " is still in " << files[0] << " " << when;
      ++checked;
    }
    for (const auto& f : FilesWith(kOrg)) {
      EXPECT_TRUE(f == "audit.log" || f == "keys/keystore")
          << "the org's name is in " << f << " " << when;
    }
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_ + "/data")) {
      EXPECT_EQ(e.path().string().find(kOrg), std::string::npos) << e.path() << " " << when;
    }
  };
  expect_nothing_left("after the drop");

  // Nor after a restart.
  org.reset();
  admin.reset();
  keeper.reset();
  Restart(Options());
  expect_nothing_left("after a restart");
  // The other org lost nothing.
  keeper = ConnectAs(tokens_["keeper"]);
  for (int i = 0; i < kEntries; ++i) ASSERT_TRUE(keeper->Get(MakeDigest(i)).ok()) << i;
  std::printf(
      "[ security ] drop scan: %d marker checks (digests, namespace, token hashes, found "
      "before the drop): none in any file after it nor after a restart\n",
      checked);
}

}  // namespace
}  // namespace sealcache::server
