// Damaged files under the real sealcached: an org's SST, the WAL tail, the MANIFEST, the
// keystore and an index snapshot. Each is detected, reported, and never served as data.
#include <signal.h>

#include <chrono>
#include <thread>

#include "fault_fixture.h"

namespace sealcache::fault {
namespace {

constexpr uint32_t kDim = 16;
constexpr size_t kPayloadBytes = 2048;
constexpr uint64_t kEncryptedHeaderBytes = 4096;
constexpr int kEntries = 300;

class Corruption : public FaultTest {
 protected:
  // Puts entries [from, to) of org salt `salt` and asserts every put is acknowledged.
  void PutRange(client::Client& c, uint8_t salt, int from, int to) {
    for (int i = from; i < to; ++i) {
      auto put = c.Put(PutArgsFor(MakeEntry(i, salt, kDim, kPayloadBytes)));
      ASSERT_TRUE(put.ok()) << i << ": " << put.status().ToString();
    }
  }
  // Reads entries [0, n): counts intact and corrupt ones; fails on anything else (a wrong
  // payload, a miss, another error).
  void ReadBack(client::Client& c, uint8_t salt, int n, int* intact, int* corrupt,
                std::string* corrupt_message) {
    *intact = *corrupt = 0;
    for (int i = 0; i < n; ++i) {
      const TestEntry e = MakeEntry(i, salt, kDim, kPayloadBytes);
      auto got = c.Get(e.digest);
      if (got.ok()) {
        ASSERT_EQ(PayloadOf(*got), e.payload) << "entry " << i << " served wrong data";
        ++*intact;
        continue;
      }
      ASSERT_EQ(got.status().code(), Status::Code::kCorruption)
          << "entry " << i << ": " << got.status().ToString();
      ++*corrupt;
      if (corrupt_message->empty()) *corrupt_message = got.status().message();
    }
  }
  // Every entry's own vector finds that entry first (flat index: exact).
  void ExpectLookupsFindEachEntry(client::Client& c, uint8_t salt, int n) {
    for (int i = 0; i < n; ++i) {
      const TestEntry e = MakeEntry(i, salt, kDim, kPayloadBytes);
      auto hits = c.Lookup({.vector = e.vector, .k = 1, .min_score = 0.99f, .with_payload = false});
      ASSERT_TRUE(hits.ok()) << hits.status().ToString();
      ASSERT_EQ(hits->size(), 1u) << "entry " << i;
      ASSERT_EQ((*hits)[0].entry.digest, e.digest) << "entry " << i;
    }
  }
  // Creates orgs acme and globex (tokens out) and puts entries 0..n-1 into each (salts 1, 2).
  void LoadTwoOrgs(int n, std::string* acme, std::string* globex) {
    *acme = CreateOrg("acme", kDim);
    *globex = CreateOrg("globex", kDim);
    auto a = proc_->ConnectAs(*acme), g = proc_->ConnectAs(*globex);
    ASSERT_TRUE(a && g);
    PutRange(*a, 1, 0, n);
    PutRange(*g, 2, 0, n);
  }
  std::string OrgSstDir(const std::string& org) {
    return proc_->data_dir() + "/orgs/" + org + "/data";
  }
  // The org's RocksDB instance: its WAL and MANIFEST.
  std::string DbDir(const std::string& org = "acme") { return proc_->data_dir() + "/orgs/" + org; }
  std::string LogSince(size_t offset) { return proc_->Log().substr(offset); }
};

TEST_F(Corruption, DamagedOrgSstFailsOnlyThatOrgsDamagedReads) {
  ASSERT_TRUE(StartServer());
  std::string acme, globex;
  ASSERT_NO_FATAL_FAILURE(LoadTwoOrgs(kEntries, &acme, &globex));
  ASSERT_EQ(proc_->Kill(SIGTERM), 0) << proc_->Log();  // flushes memtables into SSTs
  const auto ssts = FilesIn(OrgSstDir("acme"), ".sst");
  ASSERT_FALSE(ssts.empty());
  // A run of bytes early in the body: payload data blocks ('P' keys sort first), away from
  // the footer, index and properties at the end of the file.
  FlipBytes(ssts.front(), kEncryptedHeaderBytes + 3 * 4096 + 100, 64);

  const size_t log_at = proc_->Log().size();
  ASSERT_TRUE(StartServer()) << proc_->Log();
  auto a = proc_->ConnectAs(acme), g = proc_->ConnectAs(globex);
  ASSERT_TRUE(a && g);
  int intact = 0, corrupt = 0;
  std::string message;
  ReadBack(*a, 1, kEntries, &intact, &corrupt, &message);
  EXPECT_GT(corrupt, 0) << "the damaged block was never read";
  EXPECT_GT(intact, kEntries / 2);
  EXPECT_NE(message.find("does not authenticate"), std::string::npos) << message;
  std::printf("[ sst ] acme: %d intact, %d corrupt; client saw: %s\n", intact, corrupt,
              message.c_str());
  // Reported in the server log, naming the org.
  const auto reports = LinesWith(LogSince(log_at), "corrupt");
  ASSERT_FALSE(reports.empty()) << LogSince(log_at);
  EXPECT_NE(reports[0].find("acme"), std::string::npos) << reports[0];
  std::printf("[ sst ] log: %s\n", reports[0].c_str());

  // The other org is untouched and keeps working, reads and writes.
  int g_intact = 0, g_corrupt = 0;
  std::string g_message;
  ReadBack(*g, 2, kEntries, &g_intact, &g_corrupt, &g_message);
  EXPECT_EQ(g_intact, kEntries);
  EXPECT_EQ(g_corrupt, 0) << g_message;
  ExpectLookupsFindEachEntry(*g, 2, 20);
  PutRange(*g, 2, kEntries, kEntries + 20);
  ASSERT_TRUE(g->Ping().ok());
  // The damaged org still serves its intact entries and takes writes.
  PutRange(*a, 1, kEntries, kEntries + 20);
}

// Garbage after the last synced write: the writes survive, and the dropped bytes are reported.
// The log is format v2: the garbage holds no frame that authenticates and no intact frame
// follows it, so it is the log's damaged end, dropped and reported (v1 decrypted it to random
// records, and 4 times in 256 RocksDB took those for a recycled log's stale tail, silently).
TEST_F(Corruption, GarbageWalTailKeepsSyncedWritesAndReportsTheDrop) {
  constexpr int kAttempts = 3, kPerAttempt = 50;
  ASSERT_TRUE(StartServer({"--sync"}));
  std::string acme, globex;
  ASSERT_NO_FATAL_FAILURE(LoadTwoOrgs(kPerAttempt, &acme, &globex));
  int written = kPerAttempt;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    ASSERT_EQ(proc_->Kill(SIGKILL), 128 + SIGKILL);
    const auto wals = FilesIn(DbDir(), ".log");
    ASSERT_FALSE(wals.empty());
    std::string garbage(777, '\0');
    std::mt19937 rng(7 + attempt);
    for (auto& ch : garbage) ch = static_cast<char>(rng());
    AppendBytes(wals.back(), garbage);

    const size_t log_at = proc_->Log().size();
    ASSERT_TRUE(StartServer({"--sync"})) << proc_->Log();
    auto a = proc_->ConnectAs(acme), g = proc_->ConnectAs(globex);
    ASSERT_TRUE(a && g);
    int intact = 0, corrupt = 0;
    std::string message;
    ReadBack(*a, 1, written, &intact, &corrupt, &message);
    EXPECT_EQ(intact, written) << "attempt " << attempt;
    ReadBack(*g, 2, kPerAttempt, &intact, &corrupt, &message);
    EXPECT_EQ(intact, kPerAttempt) << "attempt " << attempt;
    ExpectLookupsFindEachEntry(*a, 1, written);
    const auto reports = LinesWith(LogSince(log_at), "WAL recovery");
    ASSERT_FALSE(reports.empty()) << "attempt " << attempt << ": " << LogSince(log_at);
    EXPECT_NE(reports[0].find("777 bytes"), std::string::npos) << reports[0];
    EXPECT_FALSE(LinesWith(LogSince(log_at), "are lost").empty()) << LogSince(log_at);
    std::printf("[ wal garbage ] log: %s\n", reports[0].c_str());
    // Writes after the recovery land in a new WAL: the next attempt damages that one.
    ASSERT_NO_FATAL_FAILURE(PutRange(*a, 1, written, written + kPerAttempt));
    written += kPerAttempt;
  }
}

TEST_F(Corruption, TornWalTailLosesOnlyTheTornWriteAndReportsIt) {
  ASSERT_TRUE(StartServer({"--sync"}));
  const std::string acme = CreateOrg("acme", kDim);
  {
    auto a = proc_->ConnectAs(acme);
    ASSERT_TRUE(a);
    PutRange(*a, 1, 0, 40);
  }
  ASSERT_EQ(proc_->Kill(SIGKILL), 128 + SIGKILL);
  const auto wals = FilesIn(DbDir(), ".log");
  ASSERT_FALSE(wals.empty());
  // Cut into the last record (one put: a few KB), as if the crash tore its write.
  const auto size = fs::file_size(wals.back());
  ASSERT_GT(size, kEncryptedHeaderBytes + 1000);
  fs::resize_file(wals.back(), size - 500);

  const size_t log_at = proc_->Log().size();
  ASSERT_TRUE(StartServer({"--sync"})) << proc_->Log();
  auto a = proc_->ConnectAs(acme);
  ASSERT_TRUE(a);
  for (int i = 0; i < 39; ++i) {
    const TestEntry e = MakeEntry(i, 1, kDim, kPayloadBytes);
    auto got = a->Get(e.digest);
    ASSERT_TRUE(got.ok()) << i << ": " << got.status().ToString();
    ASSERT_EQ(PayloadOf(*got), e.payload);
  }
  auto torn = a->Get(MakeEntry(39, 1, kDim, kPayloadBytes).digest);
  EXPECT_EQ(torn.status().code(), Status::Code::kNotFound) << torn.status().ToString();
  const auto reports = LinesWith(LogSince(log_at), "WAL recovery");
  ASSERT_FALSE(reports.empty()) << LogSince(log_at);
  EXPECT_FALSE(LinesWith(LogSince(log_at), "are lost").empty()) << LogSince(log_at);
  for (const auto& r : reports) std::printf("[ wal torn ] log: %s\n", r.c_str());
}

// A byte flipped in the middle of the WAL (format v2: inside a frame that intact frames follow)
// is damage, not a torn end: recovery reports it as Corruption and stops there (RocksDB's
// point-in-time recovery). Nothing is ever served wrong; what came before it is intact.
TEST_F(Corruption, FlippedMiddleOfTheWalIsReportedAsCorruptionAndServesNothingWrong) {
  constexpr int kWritten = 200;
  ASSERT_TRUE(StartServer({"--sync"}));
  const std::string acme = CreateOrg("acme", kDim);
  {
    auto a = proc_->ConnectAs(acme);
    ASSERT_TRUE(a);
    PutRange(*a, 1, 0, kWritten);
  }
  ASSERT_EQ(proc_->Kill(SIGKILL), 128 + SIGKILL);
  const auto wals = FilesIn(DbDir(), ".log");
  ASSERT_FALSE(wals.empty());
  const auto size = fs::file_size(wals.back());
  ASSERT_GT(size, 200'000u);
  FlipBytes(wals.back(), size / 2, 1);

  const size_t log_at = proc_->Log().size();
  ASSERT_TRUE(StartServer({"--sync"})) << proc_->Log();
  auto a = proc_->ConnectAs(acme);
  ASSERT_TRUE(a);
  int intact = 0, missing = 0, corrupt = 0;
  for (int i = 0; i < kWritten; ++i) {
    const TestEntry e = MakeEntry(i, 1, kDim, kPayloadBytes);
    auto got = a->Get(e.digest);
    if (got.ok()) {
      ASSERT_EQ(PayloadOf(*got), e.payload) << "entry " << i << " served wrong data";
      ++intact;
    } else if (got.status().code() == Status::Code::kNotFound) {
      ++missing;
    } else {
      ASSERT_EQ(got.status().code(), Status::Code::kCorruption) << got.status().ToString();
      ++corrupt;
    }
  }
  std::printf("[ wal flipped ] %d intact, %d lost after the damage, %d CORRUPTION\n", intact,
              missing, corrupt);
  EXPECT_TRUE(corrupt == kWritten || intact >= kWritten / 3) << intact;
  EXPECT_LT(intact, kWritten);  // the damage is never skipped over
  const std::string since = LogSince(log_at);
  EXPECT_FALSE(LinesWith(since, "does not authenticate").empty() &&
               LinesWith(since, "is bad").empty())
      << since;
  for (const auto& r : LinesWith(since, "frame"))
    std::printf("[ wal flipped ] log: %s\n", r.c_str());
}

TEST_F(Corruption, DamagedManifestMakesOnlyThatOrgUnavailableWithAClearMessage) {
  ASSERT_TRUE(StartServer());
  std::string acme, globex;
  ASSERT_NO_FATAL_FAILURE(LoadTwoOrgs(20, &acme, &globex));
  ASSERT_EQ(proc_->Kill(SIGTERM), 0);
  const auto manifests = FilesIn(DbDir("acme"), "MANIFEST-", /*prefix=*/true);
  ASSERT_EQ(manifests.size(), 1u);
  FlipBytes(manifests[0], fs::file_size(manifests[0]) / 2, 16);

  const size_t log_at = proc_->Log().size();
  ASSERT_TRUE(StartServer()) << LogSince(log_at);
  const auto lines = LinesWith(LogSince(log_at), "org acme is unavailable");
  ASSERT_EQ(lines.size(), 1u) << LogSince(log_at);
  EXPECT_NE(lines[0].find("Corruption"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("MANIFEST"), std::string::npos) << lines[0];
  std::printf("[ manifest ] %s\n", lines[0].c_str());
  auto a = proc_->ConnectAs(acme), g = proc_->ConnectAs(globex);
  ASSERT_TRUE(a && g);
  auto got = a->Get(MakeEntry(0, 1, kDim, kPayloadBytes).digest);
  EXPECT_EQ(got.status().code(), Status::Code::kCorruption) << got.status().ToString();
  int intact = 0, corrupt = 0;
  std::string message;
  ReadBack(*g, 2, 20, &intact, &corrupt, &message);
  EXPECT_EQ(intact, 20) << message;
  PutRange(*g, 2, 20, 30);
}

TEST_F(Corruption, DamagedKeystoreRefusesToStartWithAClearMessage) {
  ASSERT_TRUE(StartServer());
  CreateOrg("acme", kDim);
  CreateOrg("globex", kDim);
  ASSERT_EQ(proc_->Kill(SIGTERM), 0);
  const std::string keystore = proc_->data_dir() + "/keys/keystore";
  const auto size = fs::file_size(keystore);

  // A flipped byte anywhere, then a keystore cut short (as if a record were missing).
  for (int variant = 0; variant < 2; ++variant) {
    SCOPED_TRACE(variant == 0 ? "flipped byte" : "truncated");
    const std::string saved = keystore + ".saved";
    fs::copy_file(keystore, saved, fs::copy_options::overwrite_existing);
    if (variant == 0) {
      FlipBytes(keystore, size / 2, 1);
    } else {
      fs::resize_file(keystore, size - 100);
    }
    const size_t log_at = proc_->Log().size();
    EXPECT_FALSE(StartServer());
    EXPECT_NE(proc_->exit_status(), 0);
    const auto lines = LinesWith(LogSince(log_at), "sealcached:");
    ASSERT_EQ(lines.size(), 1u) << LogSince(log_at);
    EXPECT_NE(lines[0].find(keystore), std::string::npos) << lines[0];
    std::printf("[ keystore ] %s\n", lines[0].c_str());
    fs::rename(saved, keystore);
  }
  // The intact keystore still opens: the refusals changed nothing.
  ASSERT_TRUE(StartServer()) << proc_->Log();
}

TEST_F(Corruption, DamagedIndexSnapshotIsRebuiltFromTheStore) {
  ASSERT_TRUE(StartServer());
  const std::string acme = CreateOrg("acme", kDim);
  {
    auto a = proc_->ConnectAs(acme);
    ASSERT_TRUE(a);
    PutRange(*a, 1, 0, kEntries);
  }
  ASSERT_EQ(proc_->Kill(SIGTERM), 0);  // writes the snapshot
  const std::string snapshot = proc_->data_dir() + "/orgs/acme/index/index.snapshot";
  ASSERT_TRUE(fs::exists(snapshot));
  // Body damage (the index bytes) and header damage (the wrapped file key).
  for (uint64_t offset : {kEncryptedHeaderBytes + 200, uint64_t{120}}) {
    SCOPED_TRACE(offset);
    FlipBytes(snapshot, offset, 8);
    const size_t log_at = proc_->Log().size();
    ASSERT_TRUE(StartServer()) << proc_->Log();
    const auto lines = LinesWith(LogSince(log_at), "rebuilt from the store");
    ASSERT_EQ(lines.size(), 1u) << LogSince(log_at);
    EXPECT_NE(lines[0].find("acme"), std::string::npos);
    EXPECT_NE(lines[0].find("Corruption"), std::string::npos) << lines[0];
    std::printf("[ snapshot ] %s\n", lines[0].c_str());
    auto a = proc_->ConnectAs(acme);
    ASSERT_TRUE(a);
    ExpectLookupsFindEachEntry(*a, 1, kEntries);
    a.reset();
    ASSERT_EQ(proc_->Kill(SIGTERM), 0);  // writes a fresh, intact snapshot
  }
  const size_t log_at = proc_->Log().size();
  ASSERT_TRUE(StartServer());
  EXPECT_FALSE(LinesWith(LogSince(log_at), "loaded snapshot").empty()) << LogSince(log_at);
}

// A compaction that reads the damaged SST must not stop the other org's writes (one RocksDB
// instance serves every org: its default reaction to a compaction Corruption is to refuse all
// writes).
TEST_F(Corruption, CompactionOverDamagedSstLeavesEveryOrgWritable) {
  ASSERT_TRUE(StartServer());
  std::string acme, globex;
  ASSERT_NO_FATAL_FAILURE(LoadTwoOrgs(kEntries, &acme, &globex));
  ASSERT_EQ(proc_->Kill(SIGTERM), 0);
  const auto ssts = FilesIn(OrgSstDir("acme"), ".sst");
  ASSERT_EQ(ssts.size(), 1u);
  FlipBytes(ssts.front(), kEncryptedHeaderBytes + 3 * 4096 + 100, 64);
  // Each clean stop flushes acme's new entries into one more L0 file; at 4 (RocksDB's
  // level0_file_num_compaction_trigger) a compaction over all of them, the damaged one
  // included, starts.
  constexpr int kMoreL0Files = 3, kPerFile = 50;
  for (int round = 1; round <= kMoreL0Files; ++round) {
    ASSERT_TRUE(StartServer()) << proc_->Log();
    auto a = proc_->ConnectAs(acme);
    ASSERT_TRUE(a);
    PutRange(*a, 1, kEntries * round, kEntries * round + kPerFile);
    a.reset();
    ASSERT_EQ(proc_->Kill(SIGTERM), 0) << proc_->Log();
  }
  const size_t log_at = proc_->Log().size();
  ASSERT_TRUE(StartServer()) << proc_->Log();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (LinesWith(LogSince(log_at), "compaction stopped at corrupt data").empty() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const auto reports = LinesWith(LogSince(log_at), "compaction stopped at corrupt data");
  ASSERT_EQ(reports.size(), 1u) << LogSince(log_at);
  std::printf("[ compaction ] %s\n", reports[0].c_str());

  auto a = proc_->ConnectAs(acme), g = proc_->ConnectAs(globex);
  ASSERT_TRUE(a && g);
  PutRange(*g, 2, kEntries, kEntries + 50);
  PutRange(*a, 1, 5000, 5050);
  int intact = 0, corrupt = 0;
  std::string message;
  ReadBack(*g, 2, kEntries + 50, &intact, &corrupt, &message);
  EXPECT_EQ(intact, kEntries + 50);
  ReadBack(*a, 1, kEntries, &intact, &corrupt, &message);
  EXPECT_GT(corrupt, 0);
  EXPECT_GT(intact, kEntries / 2);
  EXPECT_TRUE(LinesWith(LogSince(log_at), "writes are refused").empty()) << LogSince(log_at);
  EXPECT_EQ(proc_->Kill(SIGTERM), 0) << proc_->Log();
}

}  // namespace
}  // namespace sealcache::fault
