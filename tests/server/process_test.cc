// The real sealcached binary: SIGTERM under load drains in-flight requests, exits 0 and
// loses no acknowledged put.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <thread>
#include <utility>
#include <vector>

#include "sealcache/crypto/master_key.h"
#include "server_fixture.h"

namespace sealcache::server {
namespace {

using testing::Bytes;
using testing::MakeDigest;
using testing::MakeVector;

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("sealcache-proc");
    ASSERT_TRUE(crypto::CreateMasterKeyFile(dir_ + "/master.key").ok());
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port_ = a.local_endpoint().port();
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
  }

  void Spawn() {
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      std::string port = std::to_string(port_);
      std::string data = dir_ + "/data", key = "file:" + dir_ + "/master.key";
      execl(SEALCACHED_PATH, SEALCACHED_PATH, "--data", data.c_str(), "--master-key", key.c_str(),
            "--port", port.c_str(), "--threads", "2", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 500; ++i) {
      client::ClientOptions o;
      o.port = port_;
      if (client::Client::Connect(o).ok()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL() << "sealcached did not start listening";
  }
  // Runs sealcached with `args` to its exit, its stderr into `stderr_path`; returns its exit
  // code (128 + the signal if one ended it).
  int RunToExit(const std::vector<std::string>& args,
                const std::string& stderr_path = "/dev/null") {
    std::vector<char*> argv{const_cast<char*>(SEALCACHED_PATH)};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t p = fork();
    if (p == 0) {
      int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(err, 2);
      execv(SEALCACHED_PATH, argv.data());
      _exit(127);
    }
    int status = 0;
    waitpid(p, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  int WaitExit() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::unique_ptr<client::Client> ConnectAs(const std::string& token) {
    client::ClientOptions o;
    o.port = port_;
    auto c = client::Client::Connect(o);
    if (!c.ok() || !(*c)->Hello(token).ok()) return nullptr;
    return std::move(c).value();
  }
  std::string AdminToken() {
    std::ifstream in(dir_ + "/data/admin.token");
    std::string t;
    in >> t;
    return t;
  }

  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

TEST_F(ProcessTest, SigtermUnderLoadDrainsExitsZeroAndLosesNoAcknowledgedPut) {
  Spawn();
  auto admin = ConnectAs(AdminToken());
  ASSERT_NE(admin, nullptr);
  auto org = admin->CreateOrg("acme", 16);
  ASSERT_TRUE(org.ok());
  constexpr int kWriters = 4;
  std::vector<std::vector<uint64_t>> acked(kWriters);
  std::atomic<bool> go{true};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto c = ConnectAs(org->token);
      if (c == nullptr) return;
      for (uint64_t i = w * 1'000'000; go; ++i) {
        auto v = MakeVector(16, i);
        std::string payload = "payload " + std::to_string(i);
        if (!c->Put({MakeDigest(i), v, Bytes(payload), 3'600'000, ""}).ok()) return;
        acked[w].push_back(i);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  kill(pid_, SIGTERM);
  EXPECT_EQ(WaitExit(), 0) << "sealcached must exit 0 after SIGTERM";
  go = false;
  for (auto& t : writers) t.join();
  size_t total = 0;
  for (auto& a : acked) total += a.size();
  EXPECT_GT(total, 0u);

  Spawn();
  auto c = ConnectAs(org->token);
  ASSERT_NE(c, nullptr);
  for (auto& a : acked) {
    for (uint64_t i : a) {
      auto e = c->Get(MakeDigest(i));
      ASSERT_TRUE(e.ok()) << "acknowledged put " << i << " lost: " << e.status().ToString();
      EXPECT_EQ(std::string(e->payload.begin(), e->payload.end()), "payload " + std::to_string(i));
    }
  }
  kill(pid_, SIGTERM);
  EXPECT_EQ(WaitExit(), 0);
}

TEST_F(ProcessTest, RefusesToStartWithoutAKeyOrWithAnOpenKeyFile) {
  const std::string data = dir_ + "/data", key = "file:" + dir_ + "/master.key";
  EXPECT_EQ(RunToExit({"--data", data}), 1);
  chmod((dir_ + "/master.key").c_str(), 0644);
  EXPECT_EQ(RunToExit({"--data", data, "--master-key", key}), 1);
}

TEST_F(ProcessTest, RefusesAHitFlushPeriodBelowOneMillisecond) {
  const std::string data = dir_ + "/data", key = "file:" + dir_ + "/master.key";
  const std::string err = dir_ + "/stderr";
  EXPECT_EQ(RunToExit({"--data", data, "--master-key", key, "--hit-flush-ms", "0"}, err), 1);
  std::ifstream in(err);
  const std::string message{std::istreambuf_iterator<char>(in), {}};
  EXPECT_NE(message.find("--hit-flush-ms must be 1 or more"), std::string::npos) << message;
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/data"));
}

}  // namespace
}  // namespace sealcache::server
