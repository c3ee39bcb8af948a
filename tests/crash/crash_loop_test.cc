// The shipped sealcached, killed at random moments while several connections put, delete and
// rotate keys, and restarted, again and again. After every restart the server must hold
// exactly what it acknowledged:
//   - every acknowledged put is there with its payload, and a Lookup of its vector finds it
//     with score ~1;
//   - no acknowledged delete comes back;
//   - an operation in flight at the kill either happened or did not, all or nothing, and
//     whatever a restart showed stays so after later restarts;
//   - the index agrees with the store: every Lookup hit is a live entry, the org's entry and
//     vector counts equal the live entries;
//   - each key ring has versions 1..n, exactly one ACTIVE (the newest), n never shrinks, every
//     acknowledged rotation is there and a DESTROYED version stays destroyed.
// Runs with --sync and without (a process crash must lose nothing either way: the WAL is in
// the OS's page cache). One cycle in kSigtermOneIn ends with SIGTERM instead, so index
// snapshots are written and later restarts load a snapshot and replay from the store.
//
// SEALCACHE_CRASH_CYCLES sets the cycles per mode (default 8); SEALCACHE_CRASH_SEED replays a
// run (the seed is printed at the start of each test).
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "crash_support.h"
#include "sealcached_process.h"

namespace sealcache::crash {
namespace {

using test::SealcachedProcess;

constexpr char kCyclesEnv[] = "SEALCACHE_CRASH_CYCLES";
constexpr char kSeedEnv[] = "SEALCACHE_CRASH_SEED";
constexpr uint64_t kDefaultCycles = 8;
constexpr uint32_t kDim = 16;
constexpr int kWritersPerOrg = 2;
constexpr size_t kPipelineDepth = 4;  // requests in flight per writer
constexpr int kDeletePercent = 25;    // of a writer's operations, once it has entries
constexpr int64_t kTtlMs = int64_t{24} * 3600 * 1000;  // nothing expires during a run
constexpr int kMinRunMs = 30, kMaxRunMs = 400;         // traffic before the kill
constexpr int kSigtermOneIn = 5;
constexpr int kMinRotateGapMs = 10, kMaxRotateGapMs = 120;
constexpr size_t kLookupSample = 100;  // older live entries looked up per org per cycle
constexpr size_t kLookupK = 3;
constexpr float kLookupMinScore = 0.99f;
constexpr int kSigkillExit = 128 + SIGKILL;
// Writer w of an org allocates ids (w << kWriterShift) + 0, 1, 2, ...
constexpr int kWriterShift = 40;

enum class State { kPutInFlight, kLive, kDeleteInFlight, kDeleted, kAbsent };

// The entries one writer created. Only that writer touches it while the server runs; the
// test thread reads and resolves it between runs.
struct WriterLog {
  uint64_t next_id = 0;
  std::map<uint64_t, State> entries;
  std::vector<uint64_t> live;     // acknowledged live: candidates for a delete
  std::vector<uint64_t> touched;  // ids this cycle sent an operation for
  std::vector<std::string> errors;
};

struct OrgModel {
  std::string name;
  uint64_t salt = 0;
  client::OrgIndexOptions index;
  std::string token;
  std::vector<WriterLog> writers;
  // Key ring history: written by the rotator while the server runs.
  uint32_t acked_version = 1;      // newest version a RotateKey returned (or a restart showed)
  uint32_t rotation_attempts = 0;  // RotateKey requests sent, acknowledged or not
  uint32_t seen_versions = 1;      // newest version any KeyStatus showed
  std::set<uint32_t> seen_destroyed;

  WriterLog& WriterOf(uint64_t id) { return writers[id >> kWriterShift]; }
};

struct Totals {
  uint64_t cycles = 0, sigkills = 0, sigterms = 0;
  uint64_t puts_acked = 0, deletes_acked = 0, rotations_acked = 0;
  uint64_t live_verified = 0, deleted_verified = 0, absent_verified = 0;
  uint64_t in_flight_happened = 0, in_flight_not_happened = 0;
  uint64_t lookups = 0, destroyed_versions = 0;
};

std::string Name(const OrgModel& org, uint64_t id) {
  return org.name + " entry " + std::to_string(id);
}

// One writer's traffic until its connection dies: pipelined puts of new ids and deletes of
// its own live ids. Each entry is marked in flight before its request is sent and resolved
// when the answer comes; what is in flight when the server dies stays in flight.
void RunWriter(const SealcachedProcess& server, OrgModel& org, WriterLog& log, uint64_t seed,
               std::atomic<uint64_t>& puts, std::atomic<uint64_t>& deletes) {
  auto c = server.ConnectAs(org.token);
  if (c == nullptr) return;
  std::mt19937_64 rng(seed);
  struct Op {
    bool put;
    uint64_t id;
  };
  std::map<uint64_t, Op> in_flight;
  for (;;) {
    while (in_flight.size() < kPipelineDepth) {
      Op op{true, 0};
      if (!log.live.empty() && static_cast<int>(rng() % 100) < kDeletePercent) {
        size_t pick = rng() % log.live.size();
        op = {false, log.live[pick]};
        log.live[pick] = log.live.back();
        log.live.pop_back();
        log.entries[op.id] = State::kDeleteInFlight;
      } else {
        op.id = log.next_id++;
        log.entries[op.id] = State::kPutInFlight;
      }
      log.touched.push_back(op.id);
      const client::Digest digest = DigestOf(org.salt, op.id);
      Result<uint64_t> sent = Status::Internal("unsent");
      if (op.put) {
        const std::string payload = PayloadOf(org.salt, op.id);
        const std::vector<float> vector = VectorOf(kDim, org.salt, op.id);
        client::PutArgs args{digest, vector, Bytes(payload), kTtlMs, ""};
        sent = c->Send([&](flatbuffers::FlatBufferBuilder& fbb) {
          return std::make_pair(protocol::RequestBody::PutRequest,
                                client::BuildPut(fbb, args).Union());
        });
      } else {
        sent = c->Send([&](flatbuffers::FlatBufferBuilder& fbb) {
          auto d = fbb.CreateVector(digest.data(), digest.size());
          return std::make_pair(protocol::RequestBody::DeleteRequest,
                                protocol::CreateDeleteRequest(fbb, d).Union());
        });
      }
      if (!sent.ok()) return;
      in_flight[*sent] = op;
    }
    auto frame = c->Receive();
    if (!frame.ok()) return;
    auto it = in_flight.find(frame->id());
    if (it == in_flight.end()) {
      log.errors.push_back("response to an unknown request id " + std::to_string(frame->id()));
      continue;
    }
    const Op op = it->second;
    in_flight.erase(it);
    Status s = frame->status();
    if (!s.ok()) {  // not acknowledged: the outcome stays unknown
      log.errors.push_back((op.put ? "put of " : "delete of ") + Name(org, op.id) + ": " +
                           s.ToString());
      continue;
    }
    if (op.put) {
      const auto* body = (*frame)->body_as_PutResponse();
      if (body == nullptr || body->replaced()) {
        log.errors.push_back("put of new " + Name(org, op.id) + " replaced an entry");
      }
      log.entries[op.id] = State::kLive;
      log.live.push_back(op.id);
      puts.fetch_add(1);
    } else {
      const auto* body = (*frame)->body_as_DeleteResponse();
      if (body == nullptr || body->removed() != 1) {
        log.errors.push_back("delete of live " + Name(org, op.id) + " removed nothing");
      }
      log.entries[op.id] = State::kDeleted;
      deletes.fetch_add(1);
    }
  }
}

// Rotates a random org's key every few ms until its connection dies.
void RunRotator(const SealcachedProcess& server, const std::string& admin_token,
                std::vector<OrgModel>& orgs, uint64_t seed, std::atomic<uint64_t>& rotations,
                std::vector<std::string>& errors) {
  auto c = server.ConnectAs(admin_token);
  if (c == nullptr) return;
  std::mt19937_64 rng(seed);
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(
        kMinRotateGapMs + rng() % (kMaxRotateGapMs - kMinRotateGapMs + 1)));
    OrgModel& org = orgs[rng() % orgs.size()];
    org.rotation_attempts++;
    auto v = c->RotateKey(org.name);
    if (!v.ok()) {
      if (v.status().code() != Status::Code::kIOError) {
        errors.push_back("RotateKey " + org.name + ": " + v.status().ToString());
      }
      return;
    }
    if (*v <= org.acked_version) {
      errors.push_back("RotateKey " + org.name + " returned version " + std::to_string(*v) +
                       " after version " + std::to_string(org.acked_version));
    }
    org.acked_version = std::max(org.acked_version, *v);
    rotations.fetch_add(1);
  }
}

class CrashLoopTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    dir_ = test::MakeTempDir("sealcache-crashloop");
    seed_ = EnvNumber(kSeedEnv, std::random_device{}());
    cycles_ = EnvNumber(kCyclesEnv, kDefaultCycles);
    std::printf("[ crash loop ] seed %llu (%s=%llu replays it), %llu cycles, %s\n",
                static_cast<unsigned long long>(seed_), kSeedEnv,
                static_cast<unsigned long long>(seed_), static_cast<unsigned long long>(cycles_),
                GetParam() ? "--sync" : "no --sync");
    std::fflush(stdout);
    RecordProperty("seed", std::to_string(seed_));
    server_ = std::make_unique<SealcachedProcess>(SEALCACHED_PATH, dir_);
  }
  void TearDown() override {
    server_.reset();  // SIGKILLs a server still running
    if (!HasFailure()) {
      std::filesystem::remove_all(dir_);
    } else {
      std::printf("[ crash loop ] data directory kept for inspection: %s\n", dir_.c_str());
    }
  }

  std::vector<std::string> Flags() const {
    std::vector<std::string> f = {"--reaper-period-ms", "100", "--hit-flush-ms", "200"};
    if (GetParam()) f.push_back("--sync");
    return f;
  }

  void StartServer() {
    ASSERT_TRUE(server_->Start(Flags()))
        << "sealcached did not come back (exit status " << server_->exit_status() << "); log:\n"
        << server_->Log();
  }

  void CreateOrgs() {
    auto admin = server_->ConnectAs(server_->AdminToken());
    ASSERT_NE(admin, nullptr);
    client::OrgIndexOptions flat;
    flat.index_kind = "flat";
    client::OrgIndexOptions hnsw;
    hnsw.index_kind = "hnsw";
    hnsw.seal_threshold = 256;  // several sealed graph segments within a run
    hnsw.ef_search = 256;
    for (auto [name, index] : {std::pair{"exact", flat}, std::pair{"graph", hnsw}}) {
      OrgModel org;
      org.name = name;
      org.salt = orgs_.size() + 1;
      org.index = index;
      auto created = admin->CreateOrg(org.name, kDim, org.index);
      ASSERT_TRUE(created.ok()) << created.status().ToString();
      org.token = created->token;
      org.writers.resize(kWritersPerOrg);
      for (int w = 0; w < kWritersPerOrg; ++w) org.writers[w].next_id = uint64_t(w) << kWriterShift;
      orgs_.push_back(std::move(org));
    }
  }

  // One cycle: traffic, a kill at a random moment, a restart.
  void RunCycle(std::mt19937_64& rng) {
    std::atomic<uint64_t> puts{0}, deletes{0}, rotations{0};
    std::vector<std::string> rotator_errors;
    std::vector<std::thread> threads;
    for (auto& org : orgs_) {
      for (auto& w : org.writers) {
        w.touched.clear();
        w.errors.clear();
        threads.emplace_back(RunWriter, std::cref(*server_), std::ref(org), std::ref(w), rng(),
                             std::ref(puts), std::ref(deletes));
      }
    }
    threads.emplace_back(RunRotator, std::cref(*server_), server_->AdminToken(), std::ref(orgs_),
                         rng(), std::ref(rotations), std::ref(rotator_errors));
    std::this_thread::sleep_for(
        std::chrono::milliseconds(kMinRunMs + rng() % (kMaxRunMs - kMinRunMs + 1)));
    const bool graceful = rng() % kSigtermOneIn == 0;
    const int exit_status = server_->Kill(graceful ? SIGTERM : SIGKILL);
    for (auto& t : threads) t.join();
    if (graceful) {
      EXPECT_EQ(exit_status, 0) << "SIGTERM must drain and exit 0; log:\n" << server_->Log();
      totals_.sigterms++;
    } else {
      EXPECT_EQ(exit_status, kSigkillExit);
      totals_.sigkills++;
    }
    for (const auto& e : rotator_errors) ADD_FAILURE() << e;
    for (auto& org : orgs_) {
      for (auto& w : org.writers) {
        // A SIGKILLed server answers nothing wrongly; a draining one may refuse late requests.
        if (!graceful) {
          for (const auto& e : w.errors) ADD_FAILURE() << e;
        }
      }
    }
    totals_.puts_acked += puts;
    totals_.deletes_acked += deletes;
    totals_.rotations_acked += rotations;
    totals_.cycles++;
    StartServer();
  }

  // Resolves in-flight operations by what the restarted server holds, and checks that
  // everything settled before is as it was.
  void VerifyEntries(OrgModel& org, client::Client& c) {
    std::vector<uint64_t> ids;
    std::vector<client::Digest> digests;
    for (auto& w : org.writers) {
      for (const auto& [id, state] : w.entries) {
        ids.push_back(id);
        digests.push_back(DigestOf(org.salt, id));
      }
    }
    auto got = PipelinedGet(c, digests);
    for (size_t i = 0; i < ids.size(); ++i) {
      const uint64_t id = ids[i];
      State& state = org.WriterOf(id).entries[id];
      const auto& r = got[i];
      if (!r.ok() && !r.status().IsNotFound()) {
        ADD_FAILURE() << "Get of " << Name(org, id) << " failed: " << r.status().ToString();
        continue;
      }
      const bool present = r.ok();
      if (present) {
        EXPECT_EQ(Text(r->payload), PayloadOf(org.salt, id))
            << Name(org, id) << " has another payload: a torn or misplaced write";
      }
      switch (state) {
        case State::kLive:
          EXPECT_TRUE(present) << "acknowledged put of " << Name(org, id) << " was lost";
          totals_.live_verified++;
          break;
        case State::kDeleted:
          EXPECT_FALSE(present) << "acknowledged delete of " << Name(org, id) << " came back";
          totals_.deleted_verified++;
          break;
        case State::kAbsent:
          EXPECT_FALSE(present) << Name(org, id)
                                << " was absent after an earlier crash and appeared later";
          totals_.absent_verified++;
          break;
        case State::kPutInFlight:
          state = present ? State::kLive : State::kAbsent;
          (present ? totals_.in_flight_happened : totals_.in_flight_not_happened)++;
          break;
        case State::kDeleteInFlight:
          state = present ? State::kLive : State::kDeleted;
          (present ? totals_.in_flight_not_happened : totals_.in_flight_happened)++;
          break;
      }
    }
    for (auto& w : org.writers) {
      w.live.clear();
      for (const auto& [id, state] : w.entries) {
        if (state == State::kLive) w.live.push_back(id);
      }
    }
  }

  // Lookups by stored vectors: every id touched this cycle and a sample of older ones. A
  // live entry must be found by its own vector; a deleted or never-written one never; and
  // every hit must be a live entry with its own payload.
  void VerifyIndex(OrgModel& org, client::Client& c, std::mt19937_64& rng) {
    std::set<uint64_t> check;
    std::vector<uint64_t> settled;
    for (auto& w : org.writers) {
      check.insert(w.touched.begin(), w.touched.end());
      for (const auto& [id, state] : w.entries) settled.push_back(id);
    }
    for (size_t i = 0; i < kLookupSample && !settled.empty(); ++i) {
      check.insert(settled[rng() % settled.size()]);
    }
    for (uint64_t id : check) {
      const State state = org.WriterOf(id).entries[id];
      const std::vector<float> vector = VectorOf(kDim, org.salt, id);
      auto hits = c.Lookup({vector, kLookupK, kLookupMinScore});
      totals_.lookups++;
      ASSERT_TRUE(hits.ok()) << "Lookup failed: " << hits.status().ToString();
      bool found = false;
      for (const auto& h : *hits) {
        const client::Digest& d = h.entry.digest;
        uint64_t hit_id = 0;
        for (int b = 0; b < 8; ++b) hit_id |= uint64_t{d[24 + b]} << (8 * b);
        ASSERT_EQ(d, DigestOf(org.salt, hit_id))
            << "a Lookup hit no writer of " << org.name << " ever put";
        ASSERT_LT(hit_id >> kWriterShift, org.writers.size());
        auto& entries = org.WriterOf(hit_id).entries;
        auto it = entries.find(hit_id);
        ASSERT_TRUE(it != entries.end() && it->second == State::kLive)
            << "Lookup returned " << Name(org, hit_id) << ", which is not live";
        EXPECT_EQ(Text(h.entry.payload), PayloadOf(org.salt, hit_id));
        if (hit_id == id) {
          found = true;
          EXPECT_GE(h.score, kSelfMatchScore) << Name(org, id) << " found by its own vector";
        }
      }
      if (state == State::kLive) {
        EXPECT_TRUE(found) << "live " << Name(org, id) << " is missing from the index";
      } else {
        EXPECT_FALSE(found) << "removed " << Name(org, id) << " is still in the index";
      }
    }
  }

  void VerifyCounts(OrgModel& org, client::Client& c) {
    uint64_t live = 0;
    for (auto& w : org.writers) live += w.live.size();
    auto stats = c.Stats();
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    const auto* body = (*stats)->body_as_StatsResponse();
    ASSERT_NE(body, nullptr);
    EXPECT_EQ(body->entries(), live) << org.name << ": store entries differ from the history";
    EXPECT_EQ(body->vectors(), live) << org.name << ": index size differs from the history";
  }

  void VerifyKeys(OrgModel& org, client::Client& admin) {
    auto versions = KeyVersions(admin, org.name);
    ASSERT_TRUE(versions.ok()) << versions.status().ToString();
    const uint32_t n = ExpectWellFormedRing(*versions, org.name);
    EXPECT_GE(n, org.acked_version) << org.name << ": an acknowledged rotation was lost";
    EXPECT_GE(n, org.seen_versions) << org.name << ": key versions went backwards";
    EXPECT_LE(n, 1 + org.rotation_attempts) << org.name << ": more versions than rotations";
    for (uint32_t v : org.seen_destroyed) {
      ASSERT_LE(v, versions->size());
      EXPECT_EQ((*versions)[v - 1].state, "DESTROYED")
          << org.name << " version " << v << " was destroyed and came back";
    }
    for (const auto& kv : *versions) {
      if (kv.state == "DESTROYED" && org.seen_destroyed.insert(kv.version).second) {
        totals_.destroyed_versions++;
      }
    }
    org.seen_versions = n;
    org.acked_version = std::max(org.acked_version, n);  // what a restart showed stays so
  }

  void Verify(std::mt19937_64& rng) {
    auto admin = server_->ConnectAs(server_->AdminToken());
    ASSERT_NE(admin, nullptr);
    for (auto& org : orgs_) {
      auto c = server_->ConnectAs(org.token);
      ASSERT_NE(c, nullptr) << "the token of " << org.name << " no longer works";
      VerifyEntries(org, *c);
      VerifyIndex(org, *c, rng);
      VerifyCounts(org, *c);
      VerifyKeys(org, *admin);
    }
  }

  void Report() {
    std::printf(
        "[ crash loop ] %s: %llu cycles (%llu SIGKILL, %llu SIGTERM); acknowledged: %llu puts, "
        "%llu deletes, %llu rotations; verified: %llu live, %llu deleted, %llu never-written "
        "checks, %llu lookups; in flight at a kill: %llu happened, %llu did not; %llu key "
        "versions destroyed\n",
        GetParam() ? "--sync" : "no --sync", (unsigned long long)totals_.cycles,
        (unsigned long long)totals_.sigkills, (unsigned long long)totals_.sigterms,
        (unsigned long long)totals_.puts_acked, (unsigned long long)totals_.deletes_acked,
        (unsigned long long)totals_.rotations_acked, (unsigned long long)totals_.live_verified,
        (unsigned long long)totals_.deleted_verified, (unsigned long long)totals_.absent_verified,
        (unsigned long long)totals_.lookups, (unsigned long long)totals_.in_flight_happened,
        (unsigned long long)totals_.in_flight_not_happened,
        (unsigned long long)totals_.destroyed_versions);
    std::fflush(stdout);
  }

  std::string dir_;
  uint64_t seed_ = 0;
  uint64_t cycles_ = 0;
  std::unique_ptr<SealcachedProcess> server_;
  std::vector<OrgModel> orgs_;
  Totals totals_;
};

TEST_P(CrashLoopTest, AcknowledgedWorkSurvivesKillsAndIndexMatchesStore) {
  std::mt19937_64 rng(seed_);
  StartServer();
  CreateOrgs();
  for (uint64_t cycle = 0; cycle < cycles_ && !HasFailure(); ++cycle) {
    RunCycle(rng);
    if (HasFailure()) break;
    Verify(rng);
    if (HasFailure()) {
      std::printf("[ crash loop ] failed after cycle %llu\n", (unsigned long long)cycle + 1);
    }
  }
  Report();
  EXPECT_GT(totals_.puts_acked, 0u);
  EXPECT_GT(totals_.live_verified, 0u);
  EXPECT_EQ(server_->Kill(SIGTERM), 0) << server_->Log();
}

INSTANTIATE_TEST_SUITE_P(Modes, CrashLoopTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Sync" : "NoSync";
                         });

}  // namespace
}  // namespace sealcache::crash
