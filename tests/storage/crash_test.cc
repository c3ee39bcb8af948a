// A writer process is SIGKILLed at random moments; every put it had acknowledged must be
// present and intact after reopen. The test process itself never opens the store, so each
// child is forked from a single-threaded parent.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>

#include "store_fixture.h"

namespace sealcache::storage {
namespace {

using testing::MakeDigest;
using testing::MakeVector;

constexpr int kCycles = 24;
constexpr uint32_t kDim = 16;

std::string PayloadFor(uint64_t i) {
  return "payload-" + std::to_string(i) + "-" + std::string(200 + i % 300, 'a' + i % 26);
}

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("sealcache-crash");
    master_ = std::move(crypto::RandomSecret(32)).value();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  StoreOptions Options(bool sync) {
    StoreOptions o;
    o.data_dir = dir_;
    o.sync_writes = sync;
    o.reaper_period_ms = 0;
    return o;
  }

  // Child: put entries start, start+1, ... and report each acknowledged index on `fd`.
  [[noreturn]] void RunWriter(int fd, uint64_t start, bool sync) {
    auto store = Store::Open(Options(sync), master_);
    if (!store.ok()) _exit(3);
    if (!(*store)->GetOrg("acme").ok()) {
      OrgConfig c;
      c.dimension = kDim;
      if (!(*store)->CreateOrg("acme", c).ok()) _exit(4);
    }
    for (uint64_t i = start;; ++i) {
      std::string payload = PayloadFor(i);
      auto vec = MakeVector(kDim, i);
      PutRequest r;
      r.digest = MakeDigest(i);
      r.payload = {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()};
      r.vector = vec;
      r.ttl_ms = 3'600'000;
      if (!(*store)->Put("acme", r).ok()) _exit(5);
      if (write(fd, &i, sizeof(i)) != sizeof(i)) _exit(6);
    }
  }

  // Child: reopen and check every acknowledged put. Exit code 0 when all are intact.
  [[noreturn]] void RunVerifier(const std::vector<uint64_t>& acked) {
    auto store = Store::Open(Options(false), master_);
    if (!store.ok()) {
      fprintf(stderr, "reopen failed: %s\n", store.status().ToString().c_str());
      _exit(2);
    }
    for (uint64_t i : acked) {
      auto e = (*store)->Get("acme", MakeDigest(i));
      if (!e.ok() || std::string(e->payload.begin(), e->payload.end()) != PayloadFor(i)) {
        fprintf(stderr, "acknowledged put %llu lost or damaged: %s\n",
                static_cast<unsigned long long>(i), e.status().ToString().c_str());
        _exit(1);
      }
    }
    _exit(0);
  }

  void RunCycles(bool sync) {
    std::mt19937 rng(sync ? 7 : 11);
    std::vector<uint64_t> acked;
    uint64_t next = 0;
    for (int cycle = 0; cycle < kCycles; ++cycle) {
      int fds[2];
      ASSERT_EQ(pipe(fds), 0);
      pid_t writer = fork();
      ASSERT_GE(writer, 0);
      if (writer == 0) {
        close(fds[0]);
        RunWriter(fds[1], next, sync);
      }
      close(fds[1]);
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(100 + rng() % 300);
      bool killed = false;
      for (;;) {
        if (!killed && std::chrono::steady_clock::now() >= deadline) {
          kill(writer, SIGKILL);
          killed = true;
        }
        pollfd p{fds[0], POLLIN, 0};
        poll(&p, 1, 5);
        if (!(p.revents & (POLLIN | POLLHUP))) continue;
        uint64_t i;
        ssize_t n = read(fds[0], &i, sizeof(i));
        if (n == sizeof(i)) {
          acked.push_back(i);
          next = i + 1;
        } else if (n <= 0 && killed) {
          break;
        }
      }
      close(fds[0]);
      int status = 0;
      waitpid(writer, &status, 0);
      ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited on its own with " << WEXITSTATUS(status);

      pid_t verifier = fork();
      ASSERT_GE(verifier, 0);
      if (verifier == 0) RunVerifier(acked);
      waitpid(verifier, &status, 0);
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << "cycle " << cycle << ": verification failed (" << acked.size() << " acked)";
    }
    EXPECT_GT(acked.size(), static_cast<size_t>(kCycles));  // the writers made progress
  }

  std::string dir_;
  crypto::SecretBytes master_;
};

TEST_F(CrashTest, EveryAcknowledgedPutSurvivesSigkillWithoutSync) { RunCycles(false); }
TEST_F(CrashTest, EveryAcknowledgedPutSurvivesSigkillWithSync) { RunCycles(true); }

}  // namespace
}  // namespace sealcache::storage
