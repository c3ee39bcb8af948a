// SIGTERM and SIGINT drain the server and end it with exit code 0 whichever of its threads the
// kernel hands them to. Libraries start threads before main (OpenBLAS's pool, loaded with
// FAISS) that block no signal, and a process-directed signal goes to such a thread whenever
// the main thread is not waiting in sigwait (still starting, or printing its banner): its
// default action used to end the process undrained, with 128 + SIGTERM, which two key
// provider tests saw under load. Sending the signal to that thread directly is that race,
// made certain.
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "crash_support.h"
#include "sealcached_process.h"

namespace sealcache::crash {
namespace {

using test::SealcachedProcess;

constexpr uint32_t kDim = 8;
constexpr uint64_t kSalt = 3;
constexpr int64_t kTtlMs = int64_t{24} * 3600 * 1000;

// The threads of process `pid` other than its main one whose signal mask lets `sig` through.
std::vector<pid_t> ThreadsNotBlocking(pid_t pid, int sig) {
  std::vector<pid_t> out;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    const pid_t tid = std::stoi(task.path().filename().string());
    if (tid == pid) continue;
    std::ifstream status(task.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("SigBlk:", 0) != 0) continue;
      const unsigned long long blocked = std::stoull(line.substr(7), nullptr, 16);
      if ((blocked & (1ull << (sig - 1))) == 0) out.push_back(tid);
    }
  }
  return out;
}

TEST(Shutdown, ASignalHandedToAnyThreadDrainsTheServerAndExitsZero) {
  for (int sig : {SIGTERM, SIGINT}) {
    SCOPED_TRACE(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    const std::string dir = test::MakeTempDir("sealcache-signal");
    SealcachedProcess server(SEALCACHED_PATH, dir);
    ASSERT_TRUE(server.Start({})) << server.Log();
    std::string token;
    {
      auto admin = server.ConnectAs(server.AdminToken());
      ASSERT_NE(admin, nullptr);
      client::OrgIndexOptions o;
      o.index_kind = "flat";
      auto org = admin->CreateOrg("acme", kDim, o);
      ASSERT_TRUE(org.ok()) << org.status().ToString();
      token = org->token;
      auto c = server.ConnectAs(token);
      ASSERT_NE(c, nullptr);
      client::PutArgs put;
      put.digest = DigestOf(kSalt, 1);
      const std::string payload = PayloadOf(kSalt, 1);
      const std::vector<float> vector = VectorOf(kDim, kSalt, 1);
      put.vector = vector;
      put.payload = Bytes(payload);
      put.ttl_ms = kTtlMs;
      ASSERT_TRUE(c->Put(put).ok());
    }
    // A thread that lets the signal through gets it, as the kernel would choose it; where
    // there is none, only the main thread can take a process-directed signal.
    const std::vector<pid_t> open = ThreadsNotBlocking(server.pid(), sig);
    const pid_t target = open.empty() ? server.pid() : open.front();
    ASSERT_EQ(syscall(SYS_tgkill, server.pid(), target, sig), 0);
    EXPECT_EQ(server.Wait(), 0) << server.Log();
    const std::string log = server.Log();
    EXPECT_NE(log.find(std::string("sealcached: ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                       " received: draining and flushing"),
              std::string::npos)
        << log;
    EXPECT_NE(log.find("sealcached: stopped cleanly"), std::string::npos) << log;

    ASSERT_TRUE(server.Start({})) << server.Log();
    auto c = server.ConnectAs(token);
    ASSERT_NE(c, nullptr);
    auto got = c->Get(DigestOf(kSalt, 1));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(Text(got->payload), PayloadOf(kSalt, 1));
    EXPECT_EQ(server.Kill(SIGTERM), 0) << server.Log();
    std::filesystem::remove_all(dir);
  }
}

}  // namespace
}  // namespace sealcache::crash
