// sealcache-dump against data directories built with the Store API: every command's text and
// JSON output, problem detection (plaintext, damaged and misplaced files, flipped bytes) and
// read-only behaviour beside a process that holds the store open.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "json_reader.h"
#include "sealcache/clock.h"
#include "sealcache/crypto/hash.h"
#include "sealcache/crypto/master_key.h"
#include "sealcache/storage/store.h"
#include "test_support.h"

namespace sealcache::dump::testing {
namespace {

namespace fs = std::filesystem;
using storage::Digest;

constexpr int64_t kT0 = 1'700'000'000'000;
constexpr int64_t kMinute = 60'000;
constexpr int64_t kDay = 24 * 60 * kMinute;
constexpr int64_t kNow = kT0 + 10 * kMinute;  // --now-ms: entry 3 (1 min TTL) has expired
constexpr uint32_t kDim = 4;
const std::string kNowFlag = std::to_string(kNow);

struct DumpRun {
  int exit_code = -1;
  std::string out;
  std::string err;
  JsonNode Json() const {
    auto parsed = JsonParser(out).Parse();
    EXPECT_TRUE(parsed.has_value()) << "not JSON: " << out;
    return parsed.value_or(JsonNode{});
  }
};

std::string ReadAll(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  return s;
}

// Runs the real binary; stdout through a pipe, stderr through a temp file.
DumpRun RunDump(const std::vector<std::string>& args) {
  DumpRun run;
  int out_pipe[2];
  EXPECT_EQ(pipe(out_pipe), 0);
  FILE* err_file = std::tmpfile();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(fileno(err_file), STDERR_FILENO);
    close(out_pipe[0]);
    std::vector<char*> argv{const_cast<char*>(SEALCACHE_DUMP_BINARY)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(SEALCACHE_DUMP_BINARY, argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  run.out = ReadAll(out_pipe[0]);
  close(out_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  rewind(err_file);
  run.err = ReadAll(fileno(err_file));
  fclose(err_file);
  return run;
}

using ::sealcache::test::MakeTempDir;

Digest MakeDigest(uint8_t i) {
  Digest d{};
  for (size_t k = 0; k < d.size(); ++k) d[k] = static_cast<uint8_t>(i * 31 + k);
  return d;
}
std::string DigestHex(uint8_t i) { return crypto::ToHex(MakeDigest(i)); }

crypto::SecretBytes LoadKey(const std::string& key_file) {
  auto provider = crypto::MasterKeyProviderFromSpec("file:" + key_file);
  EXPECT_TRUE(provider.ok());
  auto loaded = (*provider)->Load();
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
  return std::move(loaded->key);
}

void Put(storage::Store& store, const std::string& org, uint8_t i, std::string_view payload,
         int64_t ttl_ms, std::string_view ns = "") {
  std::vector<float> vec(kDim);
  for (uint32_t k = 0; k < kDim; ++k) vec[k] = static_cast<float>(i) + 0.25f * k;
  storage::PutRequest r;
  r.digest = MakeDigest(i);
  r.payload = {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()};
  r.vector = vec;
  r.ttl_ms = ttl_ms;
  r.name_space = ns;
  auto put = store.Put(org, r);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
}

std::unique_ptr<storage::Store> OpenStore(const std::string& dir, const std::string& key_file,
                                          const Clock* clock) {
  storage::StoreOptions o;
  o.data_dir = dir;
  o.clock = clock;
  o.reaper_period_ms = 0;
  auto store = storage::Store::Open(o, LoadKey(key_file));
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

const std::string kBinaryPayload("\x00\x01\xfe\xff", 4);

// acme (flat): entries 1-3 flushed under key v1 (3 expires after 1 minute), key rotated,
// entry 4 flushed under v2, entry 5 only in the WAL, one index snapshot. globex (hnsw): entry 1.
void FillStore(storage::Store& store) {
  storage::OrgConfig acme{kDim, "cosine", "flat"};
  ASSERT_TRUE(store.CreateOrg("acme", acme).ok());
  ASSERT_TRUE(store.CreateOrg("globex", {kDim, "cosine", "hnsw"}).ok());
  Put(store, "acme", 1, "hello from acme", kDay, "faq");
  Put(store, "acme", 2, kBinaryPayload, kDay);
  Put(store, "acme", 3, "short lived", kMinute);
  Put(store, "globex", 1, "globex entry", kDay);
  ASSERT_TRUE(store.Flush().ok());
  ASSERT_TRUE(store.RotateKey("acme").ok());
  Put(store, "acme", 4, "after rotation", kDay, "faq");
  ASSERT_TRUE(store.Flush().ok());
  Put(store, "acme", 5, "only in the wal", kDay);
  const std::string snapshot = "index snapshot bytes";
  ASSERT_TRUE(
      store
          .WriteOrgFile("acme", "index.snapshot",
                        {reinterpret_cast<const uint8_t*>(snapshot.data()), snapshot.size()})
          .ok());
}

// Every file under `dir` by relative path -> SHA-256 of its bytes.
std::map<std::string, std::string> HashFiles(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::string bytes{std::istreambuf_iterator<char>(in), {}};
    out[fs::relative(e.path(), dir).string()] = crypto::ToHex(
        crypto::Sha256({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}));
  }
  return out;
}

std::vector<std::string> SstsOf(const std::string& dir, const std::string& org) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir + "/orgs/" + org + "/data")) {
    if (e.path().extension() == ".sst") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

const JsonNode* FindFile(const JsonNode& files, const std::string& path) {
  for (const auto& f : files.items) {
    if (f["path"].text == path) return &f;
  }
  return nullptr;
}

// ---- Beside a running store: first in this file, so that even when every test runs in one
// process, this process has not used RocksDB before it forks the holder.

TEST(DumpBesideOpenStore, FilesKeysEntriesWorkAndChangeNothing) {
  const std::string root = MakeTempDir("sealcache-dump-live");
  const std::string dir = root + "/data", key_file = root + "/master.key";
  ASSERT_TRUE(crypto::CreateMasterKeyFile(key_file).ok());
  int ready[2], release[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(release), 0);
  pid_t holder = fork();
  if (holder == 0) {
    // The child plays the server: it builds the store and keeps it open until released.
    FakeClock clock(kT0);
    auto store = OpenStore(dir, key_file, &clock);
    if (store == nullptr) _exit(1);
    FillStore(*store);
    char c = 'r';
    if (write(ready[1], &c, 1) != 1) _exit(2);
    if (read(release[0], &c, 1) != 1) _exit(3);
    store.reset();
    _exit(::testing::Test::HasFailure() ? 4 : 0);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1) << "the holder failed to open the store";
  ASSERT_TRUE(fs::exists(dir + "/orgs/acme/LOCK"));
  const auto before = HashFiles(dir);

  DumpRun files = RunDump({dir, "files", "--json"});
  DumpRun keys = RunDump({dir, "keys", "--json"});
  DumpRun entries = RunDump({dir, "entries", "--org", "acme", "--json", "--now-ms", kNowFlag});
  DumpRun keyed =
      RunDump({dir, "orgs", "--json", "--master-key", "file:" + key_file, "--now-ms", kNowFlag});

  EXPECT_EQ(HashFiles(dir), before) << "a read-only command changed the data directory";
  ASSERT_EQ(write(release[1], &c, 1), 1);
  int status = 0;
  waitpid(holder, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  EXPECT_EQ(files.exit_code, 0) << files.out << files.err;
  EXPECT_EQ(files.Json()["problem_count"].number, 0);
  EXPECT_EQ(keys.exit_code, 0) << keys.err;
  EXPECT_GE(keys.Json()["keys"].size(), 3u);  // node v1, acme v1+v2, globex v1
  ASSERT_EQ(entries.exit_code, 0) << entries.err;
  // Keyless: the state as of the last flush (entries 1, 2, 4; 3 expired; 5 only in the WAL).
  EXPECT_EQ(entries.Json()["matching"].number, 3);
  EXPECT_EQ(entries.Json()["view"].text, "keyless");
  ASSERT_EQ(keyed.exit_code, 0) << keyed.err;
  // Keyed: the WAL the holder is still using is replayed read-only (entry 5 appears).
  EXPECT_EQ(keyed.Json()["orgs"][0]["entries"].number, 4);
  fs::remove_all(root);
}

// ---- One reference store per test process ----------------------------------------------

class DumpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(MakeTempDir("sealcache-dump"));
    FakeClock clock(kT0);
    ASSERT_TRUE(crypto::CreateMasterKeyFile(KeyFile()).ok());
    auto store = OpenStore(Dir(), KeyFile(), &clock);
    ASSERT_NE(store, nullptr);
    FillStore(*store);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }
  static std::string Dir() { return *root_ + "/data"; }
  static std::string KeyFile() { return *root_ + "/master.key"; }
  static std::string KeySpec() { return "file:" + KeyFile(); }
  // A private copy for tests that damage files.
  std::string CopyOfStore(const std::string& name) {
    const std::string copy = *root_ + "/" + name;
    fs::remove_all(copy);
    fs::copy(Dir(), copy, fs::copy_options::recursive);
    return copy;
  }

  static std::string* root_;
};
std::string* DumpTest::root_ = nullptr;

TEST_F(DumpTest, HelpListsCommandsAndExitCodes) {
  DumpRun help = RunDump({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* word :
       {"files", "keys", "orgs", "entries", "entry", "verify", "stats", "--json", "Exit codes"}) {
    EXPECT_NE(help.out.find(word), std::string::npos) << word;
  }
  EXPECT_EQ(RunDump({Dir(), "frobnicate"}).exit_code, 2);
  EXPECT_EQ(RunDump({Dir(), "entries"}).exit_code, 2);  // --org missing
  EXPECT_EQ(RunDump({Dir(), "verify"}).exit_code, 2);   // --master-key missing
  DumpRun missing = RunDump({*root_ + "/nothing-here", "orgs", "--json"});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_FALSE(missing.Json()["error"].is_null());
}

TEST_F(DumpTest, FilesClassifiesEveryFileByLocationAndHeader) {
  DumpRun run = RunDump({Dir(), "files", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  JsonNode doc = run.Json();
  const JsonNode& files = doc["files"];
  EXPECT_EQ(doc["problem_count"].number, 0);
  EXPECT_EQ(doc["file_count"].number, files.size());
  std::map<std::string, int> kinds;
  std::set<double> acme_versions;
  for (const auto& f : files.items) {
    kinds[f["kind"].text]++;
    if (f["must_encrypt"].boolean) {
      EXPECT_EQ(f["verdict"].text, "encrypted") << f["path"].text;
      EXPECT_EQ(f["format_version"].number, 2);
      const auto logical = static_cast<uint64_t>(f["logical_bytes"].number);
      if (f["layout"].text == "chunks") {  // 4 KiB chunks, each with a nonce and a tag
        EXPECT_EQ(f["physical_bytes"].number,
                  4096 + logical / 4096 * (4096 + 28) + logical % 4096 + 28)
            << f["path"].text;
      } else {  // the WAL: frames of 36 bytes' overhead each
        EXPECT_EQ(f["layout"].text, "frames") << f["path"].text;
        EXPECT_GE(f["physical_bytes"].number, 4096 + logical + (logical > 0 ? 36 : 0))
            << f["path"].text;
      }
    }
    if (f["path"].text.rfind("orgs/acme/data/", 0) == 0) {
      EXPECT_EQ(f["key_scope"].text, "org");
      EXPECT_EQ(f["key_org"].text, "acme");
      acme_versions.insert(f["key_version"].number);
    }
    if (f["kind"].text == "wal") {
      EXPECT_EQ(f["key_scope"].text, "node");
    }
    if (f["kind"].text == "manifest") {
      EXPECT_EQ(f["verdict"].text, "plaintext-ok");
    }
  }
  EXPECT_EQ(acme_versions, (std::set<double>{1, 2}));  // one SST before the rotation, one after
  EXPECT_EQ(kinds["keystore"], 1);
  EXPECT_GE(kinds["wal"], 1);
  EXPECT_EQ(kinds["manifest"], 2);  // one per org instance
  EXPECT_EQ(kinds["snapshot"], 1);
  EXPECT_GE(kinds["sst"], 5);  // acme x2, globex, meta x2
  const JsonNode* snapshot = FindFile(files, "orgs/acme/index/index.snapshot");
  ASSERT_NE(snapshot, nullptr);
  EXPECT_EQ(snapshot->operator[]("key_version").number, 2);
  EXPECT_TRUE(snapshot->operator[]("encrypted").boolean);

  DumpRun text = RunDump({Dir(), "files"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("PATH"), std::string::npos);
  const size_t row = text.out.find("\norgs/acme/index/index.snapshot ");
  ASSERT_NE(row, std::string::npos) << text.out;
  const std::string line = text.out.substr(row + 1, text.out.find('\n', row + 1) - row - 1);
  for (const char* cell :
       {" snapshot ", " acme ", " v2 chunks ", " org acme v2 ", " yes ", " encrypted"}) {
    EXPECT_NE(line.find(cell), std::string::npos) << cell << " missing in: " << line;
  }
  EXPECT_NE(text.out.find(" 0 problem(s)"), std::string::npos);
}

TEST_F(DumpTest, FilesFlagsPlaintextDamagedAndMisplacedFiles) {
  const std::string dir = CopyOfStore("flagged");
  std::ofstream(dir + "/orgs/acme/data/planted.sst") << "plaintext payload where it must not be";
  FlipByte(dir + "/orgs/acme/index/index.snapshot", 8);  // format version field
  fs::copy_file(SstsOf(dir, "acme")[0], dir + "/orgs/globex/data/999999.sst");
  // Not a problem: a log whose writer stopped before its header, which the engine reads as
  // empty (storage/FORMAT.md).
  std::ofstream(dir + "/orgs/acme/999990.log", std::ios::binary) << std::string(100, '\0');

  DumpRun run = RunDump({dir, "files", "--json"});
  EXPECT_EQ(run.exit_code, 1);
  JsonNode doc = run.Json();
  EXPECT_EQ(doc["problem_count"].number, 3);
  const JsonNode* torn = FindFile(doc["files"], "orgs/acme/999990.log");
  ASSERT_NE(torn, nullptr);
  EXPECT_EQ((*torn)["verdict"].text, "empty");
  EXPECT_FALSE((*torn)["problem"].boolean);
  const JsonNode* planted = FindFile(doc["files"], "orgs/acme/data/planted.sst");
  ASSERT_NE(planted, nullptr);
  EXPECT_EQ((*planted)["verdict"].text, "NOT-ENCRYPTED");
  EXPECT_FALSE((*planted)["encrypted"].boolean);
  EXPECT_TRUE((*planted)["problem"].boolean);
  const JsonNode* damaged = FindFile(doc["files"], "orgs/acme/index/index.snapshot");
  ASSERT_NE(damaged, nullptr);
  EXPECT_EQ((*damaged)["verdict"].text, "BAD-HEADER");
  const JsonNode* misplaced = FindFile(doc["files"], "orgs/globex/data/999999.sst");
  ASSERT_NE(misplaced, nullptr);
  EXPECT_EQ((*misplaced)["verdict"].text, "WRONG-KEY-RING");

  DumpRun text = RunDump({dir, "files"});
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_NE(text.out.find("PROBLEM orgs/acme/data/planted.sst: plaintext file where org acme "
                          "encryption is required"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("3 problem(s)"), std::string::npos);
}

TEST_F(DumpTest, KeysShowsKeystoreMetadataWithoutTheMasterKey) {
  DumpRun run = RunDump({Dir(), "keys", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  JsonNode doc = run.Json();
  EXPECT_TRUE(doc["keystore"]["authenticated"].is_null());
  EXPECT_EQ(doc["keystore"]["master_key_fingerprint"].text.size(), 32u);
  std::map<std::string, std::string> states;
  for (const auto& k : doc["keys"].items) {
    const std::string id = k["scope"].text + ":" + k["org"].text + ":" +
                           std::to_string(static_cast<int>(k["version"].number));
    states[id] = k["state"].text;
    EXPECT_EQ(k["created_ms"].number, kT0) << id;
    if (id == "org:acme:1") {
      EXPECT_EQ(k["rotated_ms"].number, kT0);
      EXPECT_EQ(k["files_on_disk"].number, 1);  // the SST flushed before the rotation
      EXPECT_GT(k["bytes_on_disk"].number, 4096);
      EXPECT_TRUE(k["live_sst_files"].is_null());  // needs the key
    }
    if (id == "org:acme:2") {
      EXPECT_EQ(k["files_on_disk"].number, 2);  // SST + snapshot
    }
  }
  EXPECT_EQ(states, (std::map<std::string, std::string>{{"node::1", "ACTIVE"},
                                                        {"org:acme:1", "RETIRING"},
                                                        {"org:acme:2", "ACTIVE"},
                                                        {"org:globex:1", "ACTIVE"}}));
  DumpRun text = RunDump({Dir(), "keys"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("authentication: not checked"), std::string::npos);
  EXPECT_NE(text.out.find("RETIRING"), std::string::npos);
  EXPECT_NE(text.out.find("2023-11-14T22:13:20.000Z"), std::string::npos) << text.out;
}

TEST_F(DumpTest, KeysAuthenticatesTheKeystoreWithTheMasterKey) {
  DumpRun run = RunDump({Dir(), "keys", "--json", "--master-key", KeySpec()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  JsonNode doc = run.Json();
  EXPECT_TRUE(doc["keystore"]["authenticated"].boolean);
  for (const auto& k : doc["keys"].items) {
    if (k["org"].text == "acme") {
      EXPECT_EQ(k["live_sst_files"].number, 1) << k["version"].number;
    }
  }
  EXPECT_NE(RunDump({Dir(), "keys", "--master-key", KeySpec()}).out.find("authentication: OK"),
            std::string::npos);

  const std::string wrong = *root_ + "/wrong.key";
  fs::remove(wrong);
  ASSERT_TRUE(crypto::CreateMasterKeyFile(wrong).ok());
  DumpRun bad = RunDump({Dir(), "keys", "--json", "--master-key", "file:" + wrong});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_FALSE(bad.Json()["keystore"]["authenticated"].boolean);
  EXPECT_FALSE(bad.Json()["keystore"]["auth_error"].is_null());
}

TEST_F(DumpTest, OrgsWithoutKeyShowTheStateAsOfTheLastFlush) {
  DumpRun run = RunDump({Dir(), "orgs", "--json", "--now-ms", kNowFlag});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  JsonNode doc = run.Json();
  EXPECT_EQ(doc["view"].text, "keyless");
  ASSERT_EQ(doc["orgs"].size(), 2u);
  const JsonNode& acme = doc["orgs"][0];
  EXPECT_EQ(acme["org"].text, "acme");
  EXPECT_EQ(acme["entries"].number, 3);  // 1, 2, 4 (5 is only in the WAL)
  EXPECT_EQ(acme["expired_entries"].number, 1);
  EXPECT_EQ(acme["payload_bytes"].number, 15 + 4 + 14);
  EXPECT_EQ(acme["sst_files"].number, 2);
  EXPECT_EQ(acme["dimension"].number, kDim);
  EXPECT_EQ(acme["index_kind"].text, "flat");
  EXPECT_EQ(acme["key_versions"].size(), 2u);
  EXPECT_EQ(doc["orgs"][1]["index_kind"].text, "hnsw");

  DumpRun text = RunDump({Dir(), "orgs", "--now-ms", kNowFlag});
  EXPECT_NE(text.out.find("keyless view: state as of the last flush"), std::string::npos);
  EXPECT_NE(text.out.find("1:RETIRING,2:ACTIVE"), std::string::npos) << text.out;
}

TEST_F(DumpTest, OrgsWithKeyReplayTheWal) {
  DumpRun run = RunDump({Dir(), "orgs", "--json", "--now-ms", kNowFlag, "--master-key", KeySpec()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.Json()["view"].text, "keyed");
  EXPECT_EQ(run.Json()["orgs"][0]["entries"].number, 4);
}

TEST_F(DumpTest, EntriesListPlaintextMetadataWithFilters) {
  DumpRun all = RunDump({Dir(), "entries", "--org", "acme", "--json", "--now-ms", kNowFlag});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  JsonNode doc = all.Json();
  ASSERT_EQ(doc["matching"].number, 3);
  const JsonNode& first = doc["entries"][0];
  EXPECT_EQ(first["digest"].text, DigestHex(1));
  EXPECT_EQ(first["created_ms"].number, kT0);
  EXPECT_EQ(first["expires_ms"].number, kT0 + kDay);
  EXPECT_EQ(first["ttl_ms"].number, kDay);
  EXPECT_EQ(first["namespace"].text, "faq");
  EXPECT_EQ(first["payload_size"].number, 15);
  EXPECT_EQ(first["hits"].number, 0);
  EXPECT_FALSE(first["expired"].boolean);

  DumpRun faq = RunDump(
      {Dir(), "entries", "--org", "acme", "--namespace", "faq", "--json", "--now-ms", kNowFlag});
  EXPECT_EQ(faq.Json()["matching"].number, 2);
  DumpRun expired =
      RunDump({Dir(), "entries", "--org", "acme", "--expired", "--json", "--now-ms", kNowFlag});
  EXPECT_EQ(expired.Json()["matching"].number, 4);
  DumpRun limited =
      RunDump({Dir(), "entries", "--org", "acme", "--limit", "1", "--json", "--now-ms", kNowFlag});
  EXPECT_EQ(limited.Json()["entries"].size(), 1u);
  EXPECT_TRUE(limited.Json()["truncated"].boolean);

  DumpRun text = RunDump({Dir(), "entries", "--org", "acme", "--expired", "--now-ms", kNowFlag});
  EXPECT_NE(text.out.find(DigestHex(3)), std::string::npos);
  EXPECT_NE(text.out.find("(expired)"), std::string::npos);
  EXPECT_NE(text.out.find("4 matching entries"), std::string::npos) << text.out;
  EXPECT_EQ(RunDump({Dir(), "entries", "--org", "initech"}).exit_code, 3);
}

TEST_F(DumpTest, EntryDecryptsThePayloadAndWritesOneAuditLine) {
  const std::string dir = CopyOfStore("entry");
  auto audit_lines = [&] {
    std::ifstream in(dir + "/audit.log");
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
  };
  const size_t before = audit_lines().size();
  DumpRun run = RunDump({dir, "entry", "--org", "acme", "--digest", DigestHex(1), "--master-key",
                         "file:" + KeyFile(), "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  JsonNode doc = run.Json();
  EXPECT_EQ(doc["payload_encoding"].text, "text");
  EXPECT_EQ(doc["payload"].text, "hello from acme");
  EXPECT_EQ(doc["vector"]["dimension"].number, kDim);
  EXPECT_EQ(doc["vector"]["first"][1].number, 1.25);
  EXPECT_EQ(doc["protected_by"]["key_version"].number, 1);  // flushed before the rotation
  EXPECT_FALSE(doc["protected_by"]["in_wal"].boolean);
  auto lines = audit_lines();
  ASSERT_EQ(lines.size(), before + 1);
  EXPECT_NE(lines.back().find("\"event\":\"dump_entry_read\""), std::string::npos);
  EXPECT_NE(lines.back().find(DigestHex(1)), std::string::npos);

  DumpRun binary = RunDump({dir, "entry", "--org", "acme", "--digest", DigestHex(2), "--master-key",
                            "file:" + KeyFile(), "--json"});
  EXPECT_EQ(binary.Json()["payload_encoding"].text, "hex");
  EXPECT_EQ(binary.Json()["payload"].text, "0001feff");
  DumpRun wal = RunDump({dir, "entry", "--org", "acme", "--digest", DigestHex(5), "--master-key",
                         "file:" + KeyFile()});
  EXPECT_EQ(wal.exit_code, 0) << wal.err;
  EXPECT_NE(wal.out.find("protected by node key version 1"), std::string::npos) << wal.out;
  EXPECT_NE(wal.out.find("only in the wal"), std::string::npos);
  DumpRun rotated = RunDump({dir, "entry", "--org", "acme", "--digest", DigestHex(4),
                             "--master-key", "file:" + KeyFile()});
  EXPECT_NE(rotated.out.find("protected by org acme key version 2"), std::string::npos)
      << rotated.out;
  EXPECT_EQ(RunDump({dir, "entry", "--org", "acme", "--digest", DigestHex(9), "--master-key",
                     "file:" + KeyFile()})
                .exit_code,
            3);
}

TEST_F(DumpTest, StatsTotalPerOrgAndKeyVersionAndAgeOfActiveKeys) {
  const std::string late = std::to_string(kT0 + 100 * kDay);
  DumpRun run = RunDump({Dir(), "stats", "--json", "--now-ms", late});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  JsonNode doc = run.Json();
  EXPECT_EQ(doc["totals"]["orgs"].number, 2);
  EXPECT_EQ(doc["totals"]["entries"].number, 0);          // all expired 100 days later
  EXPECT_EQ(doc["totals"]["expired_entries"].number, 5);  // acme 1-4 (keyless), globex 1
  EXPECT_EQ(doc["orgs"][0]["active_key_version"].number, 2);
  EXPECT_EQ(doc["orgs"][0]["active_key_age_ms"].number, 100 * kDay);
  EXPECT_TRUE(doc["orgs"][0]["rotation_overdue"].boolean);
  EXPECT_EQ(doc["key_versions"].size(), 3u);
  EXPECT_EQ(doc["key_versions"][0]["sst_files"].number, 1);
  // Live encrypted bytes per format: every file of this store is v2; the chunk format's
  // nonces and tags add under 1% (plus each file's 4 KiB header).
  const JsonNode& v2 = doc["encrypted_files_by_format"]["v2"];
  EXPECT_GE(v2["files"].number, 5);
  EXPECT_GT(v2["physical_bytes"].number, v2["logical_bytes"].number);
  EXPECT_EQ(doc["encrypted_files_by_format"]["v1"]["files"].number, 0);

  DumpRun fresh = RunDump({Dir(), "stats", "--now-ms", kNowFlag});
  EXPECT_NE(fresh.out.find("in 89d 23h"), std::string::npos) << fresh.out;
  EXPECT_NE(fresh.out.find("TOTAL"), std::string::npos);
  EXPECT_NE(fresh.out.find("encrypted files by format:"), std::string::npos) << fresh.out;
}

// The capacity counter a server keeps and what the dump counts from the files agree, and
// the limits are shown: an org at its max_entries with entries flushed and in the WAL.
TEST_F(DumpTest, StatsAndOrgsCountTheLogicalBytesTheLimitsCountAndShowTheLimits) {
  const std::string dir = *root_ + "/limited";
  FakeClock clock(kT0);
  uint64_t counted = 0;
  {
    auto store = OpenStore(dir, KeyFile(), &clock);
    ASSERT_NE(store, nullptr);
    storage::OrgConfig config{kDim, "cosine", "flat"};
    config.limits = {0, 5, "lfu"};
    ASSERT_TRUE(store->CreateOrg("capped", config).ok());
    for (uint64_t i = 0; i < 12; ++i) {
      clock.Advance(1);
      Put(*store, "capped", i, std::string(100 + i, 'p'), kDay, i % 2 ? "odd" : "");
      if (i == 6) {
        ASSERT_TRUE(store->Flush().ok());
      }
    }
    counted = store->Stats("capped")->logical_bytes;
    EXPECT_EQ(store->Stats("capped")->live_entries, 5u);
  }
  DumpRun run = RunDump(
      {dir, "stats", "--json", "--master-key", KeySpec(), "--now-ms", std::to_string(kT0 + 100)});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  JsonNode doc = run.Json();
  EXPECT_EQ(doc["orgs"][0]["entries"].number, 5);
  EXPECT_EQ(doc["orgs"][0]["logical_bytes"].number, static_cast<double>(counted));
  EXPECT_EQ(doc["orgs"][0]["max_entries"].number, 5);
  EXPECT_EQ(doc["orgs"][0]["eviction_policy"].text, "lfu");
  DumpRun orgs =
      RunDump({dir, "orgs", "--master-key", KeySpec(), "--now-ms", std::to_string(kT0 + 100)});
  EXPECT_NE(orgs.out.find("max_entries=5 lfu"), std::string::npos) << orgs.out;
  fs::remove_all(dir);
}

TEST_F(DumpTest, VerifyPassesOnAnIntactStore) {
  DumpRun run = RunDump({Dir(), "verify", "--json", "--master-key", KeySpec()});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  JsonNode doc = run.Json();
  EXPECT_TRUE(doc["keystore_authenticated"].boolean);
  EXPECT_EQ(doc["problem_count"].number, 0);
  EXPECT_GE(doc["files_checked"].number, 7);  // 5 SSTs, WAL, snapshot
  EXPECT_NE(RunDump({Dir(), "verify", "--master-key", KeySpec()}).out.find("OK: no problems"),
            std::string::npos);
}

TEST_F(DumpTest, VerifyReportsAFlippedByteWithFileAndBlock) {
  const std::string dir = CopyOfStore("flipped");
  const std::string sst = SstsOf(dir, "acme")[0];
  FlipByte(sst, 4096 + 12 + 20);  // in the first chunk's ciphertext (logical offset 20)
  const std::string rel = fs::relative(sst, dir).string();

  DumpRun run = RunDump({dir, "verify", "--json", "--master-key", "file:" + KeyFile()});
  EXPECT_EQ(run.exit_code, 1) << run.out;
  JsonNode doc = run.Json();
  // The file, and (a small SST is one chunk, which RocksDB reads at open) the org's database.
  ASSERT_GE(doc["problem_count"].number, 1) << run.out;
  EXPECT_EQ(doc["problems"][0]["path"].text, rel);
  EXPECT_EQ(doc["problems"][0]["block_offset"].number, 0);
  EXPECT_NE(doc["problems"][0]["error"].text.find("does not authenticate"), std::string::npos)
      << run.out;

  DumpRun text = RunDump({dir, "verify", "--master-key", "file:" + KeyFile()});
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_NE(text.out.find("CORRUPT " + rel + " block at offset 0: "), std::string::npos)
      << text.out;
}

TEST_F(DumpTest, AnOrgWhoseDatabaseDoesNotOpenIsReportedAndHidesNoOther) {
  const std::string dir = CopyOfStore("unopenable");
  fs::remove(dir + "/orgs/acme/CURRENT");

  for (bool keyed : {false, true}) {
    std::vector<std::string> args{dir, "orgs", "--json", "--now-ms", kNowFlag};
    if (keyed) args.insert(args.end(), {"--master-key", "file:" + KeyFile()});
    DumpRun run = RunDump(args);
    ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
    JsonNode doc = run.Json();
    ASSERT_EQ(doc["orgs"].size(), 2u) << run.out;
    EXPECT_EQ(doc["orgs"][0]["org"].text, "acme");
    EXPECT_NE(doc["orgs"][0]["error"].text.find("CURRENT"), std::string::npos) << run.out;
    EXPECT_EQ(doc["orgs"][1]["org"].text, "globex");
    EXPECT_GE(doc["orgs"][1]["entries"].number, 1) << run.out;
  }
  DumpRun text = RunDump({dir, "orgs"});
  EXPECT_NE(text.out.find("UNREADABLE acme: "), std::string::npos) << text.out;

  DumpRun verify = RunDump({dir, "verify", "--json", "--master-key", "file:" + KeyFile()});
  EXPECT_EQ(verify.exit_code, 1) << verify.out;
  JsonNode doc = verify.Json();
  ASSERT_EQ(doc["problem_count"].number, 1) << verify.out;
  EXPECT_EQ(doc["problems"][0]["path"].text, "orgs/acme");
}

TEST_F(DumpTest, ReadOnlyCommandsChangeNoFile) {
  const auto before = HashFiles(Dir());
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"files"},
                                             {"keys"},
                                             {"orgs"},
                                             {"stats"},
                                             {"entries", "--org", "acme"},
                                             {"keys", "--master-key", KeySpec()},
                                             {"orgs", "--master-key", KeySpec()},
                                             {"verify", "--master-key", KeySpec()}}) {
    std::vector<std::string> full{Dir()};
    full.insert(full.end(), args.begin(), args.end());
    EXPECT_EQ(RunDump(full).exit_code, 0) << args[0];
  }
  EXPECT_EQ(HashFiles(Dir()), before);
}

}  // namespace
}  // namespace sealcache::dump::testing
