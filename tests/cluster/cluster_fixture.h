// A real etcd and real sealcached nodes on loopback ports in a temp dir, for the cluster
// tests (label `cluster`).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "etcd_client.h"
#include "sealcache/json.h"
#include "sealcached_process.h"
#include "test_support.h"

namespace sealcache::test {

inline constexpr char kEtcdBinary[] = "/usr/bin/etcd";

// One etcd member, its data in `dir`, on two free loopback ports.
class EtcdProcess {
 public:
  explicit EtcdProcess(std::string dir) : dir_(std::move(dir)) {}
  ~EtcdProcess() { Stop(); }

  static bool Installed() { return access(kEtcdBinary, X_OK) == 0; }

  bool Start() {
    client_port_ = FreePort();
    const uint16_t peer = FreePort();
    const std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
    const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer);
    std::vector<std::string> args = {kEtcdBinary,
                                     "--name",
                                     "test",
                                     "--data-dir",
                                     dir_ + "/etcd",
                                     "--listen-client-urls",
                                     client,
                                     "--advertise-client-urls",
                                     client,
                                     "--listen-peer-urls",
                                     peer_url,
                                     "--initial-advertise-peer-urls",
                                     peer_url,
                                     "--initial-cluster",
                                     "test=" + peer_url};
    pid_ = fork();
    if (pid_ == 0) {
      int log = open((dir_ + "/etcd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (log >= 0) {
        dup2(log, 1);
        dup2(log, 2);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    auto etcd = Client();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (etcd.GetPrefix("/").ok()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  uint16_t port() const { return client_port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(client_port_); }
  server::cluster::EtcdClient Client() const {
    auto client = server::cluster::EtcdClient::Create(endpoint(), std::chrono::milliseconds(2000));
    return std::move(client).value();
  }

 private:
  std::string dir_;
  uint16_t client_port_ = 0;
  pid_t pid_ = -1;
};

// Waits until `done` holds, checking every 50 ms; false after `timeout`.
inline bool Eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

// A RESP connection that sends one command at a time and reads one reply line (enough for
// the simple and error replies the redirect tests look at).
class RespLine {
 public:
  explicit RespLine(uint16_t port) : socket_(io_) {
    boost::system::error_code ec;
    socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
  }
  std::string Command(const std::vector<std::string>& args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    boost::system::error_code ec;
    boost::asio::write(socket_, boost::asio::buffer(out), ec);
    if (ec) return "";
    const size_t n =
        boost::asio::read_until(socket_, boost::asio::dynamic_buffer(buffer_), "\r\n", ec);
    if (ec) return "";
    std::string line = buffer_.substr(0, n - 2);
    buffer_.erase(0, n);
    if (!line.empty() && line[0] == '$' && line != "$-1") {
      // A bulk string: its body follows on the next line.
      const size_t m =
          boost::asio::read_until(socket_, boost::asio::dynamic_buffer(buffer_), "\r\n", ec);
      if (ec) return "";
      line = buffer_.substr(0, m - 2);
      buffer_.erase(0, m);
    }
    return line;
  }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  std::string buffer_;
};

// Three nodes of one cluster (more with AddNode), each with its own data dir, sharing one master
// key as the nodes of a cluster must.
class ClusterTest : public ::testing::Test {
 protected:
  static constexpr int kLeaseSeconds = 3;
  static constexpr int kReconcileMs = 500;

  void SetUp() override {
    if (!EtcdProcess::Installed()) {
      GTEST_SKIP() << "etcd is not installed (tools/setup.sh installs etcd-server)";
    }
    dir_ = MakeTempDir("sealcache-cluster");
    // The nodes of a cluster share one master key (a move hands over key rings wrapped
    // under it).
    ASSERT_TRUE(crypto::CreateMasterKeyFile(master_key_path()).ok());
    if (tls_) {
      const std::string cmd =
          "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
          "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout " +
          tls_key() + " -out " + tls_cert() + " >/dev/null 2>&1";
      ASSERT_EQ(std::system(cmd.c_str()), 0);
    }
    etcd_ = std::make_unique<EtcdProcess>(dir_);
    ASSERT_TRUE(etcd_->Start()) << "etcd did not start; see " << dir_ << "/etcd.log";
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(AddNode());
  }
  void TearDown() override {
    nodes_.clear();
    etcd_.reset();
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
  }

  bool AddNode() {
    const int i = static_cast<int>(nodes_.size());
    const std::string dir = dir_ + "/node" + std::to_string(i);
    std::filesystem::create_directories(dir);
    nodes_.push_back(std::make_unique<SealcachedProcess>(SEALCACHED_PATH, dir));
    nodes_.back()->set_master_key_spec("file:" + master_key_path());
    if (tls_) nodes_.back()->set_tls_ca(tls_cert());
    resp_ports_.push_back(FreePort());
    metrics_ports_.push_back(FreePort());
    return StartNode(i);
  }
  bool StartNode(int i) {
    // A port found free a moment ago can be taken meanwhile (the nodes' own connections to
    // etcd take local ports all the time): then new ports, and again.
    constexpr int kAttempts = 3;
    for (int attempt = 1; attempt <= kAttempts; ++attempt) {
      const size_t log_before = nodes_[i]->Log().size();
      std::vector<std::string> args = {"--etcd",
                                       etcd_->endpoint(),
                                       "--node-id",
                                       NodeId(i),
                                       "--cluster-lease-s",
                                       std::to_string(kLeaseSeconds),
                                       "--cluster-reconcile-ms",
                                       std::to_string(kReconcileMs),
                                       "--resp",
                                       "--resp-port",
                                       std::to_string(resp_ports_[i]),
                                       "--metrics-port",
                                       std::to_string(metrics_ports_[i])};
      if (tls_) {
        args.insert(args.end(), {"--tls-cert", tls_cert(), "--tls-key", tls_key(),
                                 "--cluster-peer-ca", tls_cert()});
      }
      if (nodes_[i]->Start(args)) return true;
      if (nodes_[i]->Log().find("cannot listen", log_before) == std::string::npos) return false;
      nodes_[i]->set_port(FreePort());
      resp_ports_[i] = FreePort();
      metrics_ports_[i] = FreePort();
    }
    return false;
  }
  static std::string NodeId(int i) { return "node" + std::to_string(i); }
  std::string master_key_path() const { return dir_ + "/cluster-master.key"; }
  // One self-signed certificate serves every node (and is the CA they trust), when tls_.
  std::string tls_cert() const { return dir_ + "/tls-cert.pem"; }
  std::string tls_key() const { return dir_ + "/tls-key.pem"; }
  int IndexOf(const std::string& node_id) const {
    for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
      if (NodeId(i) == node_id) return i;
    }
    return -1;
  }

  // The org's record in etcd as JSON (null if absent).
  Json Record(const std::string& org) const {
    auto kv = etcd_->Client().Get("/sealcache/orgs/" + org);
    if (!kv.ok()) return Json();
    auto j = Json::Parse(kv->value);
    return j.ok() ? *j : Json();
  }
  int Owner(const std::string& org) const {
    const Json r = Record(org);
    return r["owner"].is_string() ? IndexOf(r["owner"].string()) : -1;
  }
  int64_t Epoch(const std::string& org) const {
    const Json r = Record(org);
    return r["epoch"].is_number() ? static_cast<int64_t>(r["epoch"].number()) : 0;
  }
  bool HoldsCopy(int node, const std::string& org) const {
    return std::filesystem::exists(nodes_[node]->data_dir() + "/orgs/" + org);
  }

  // Creates `org` through node `via` with that node's admin token; returns its first token.
  std::string CreateOrg(int via, const std::string& org, uint32_t dim = 8) {
    auto admin = nodes_[via]->ConnectAs(nodes_[via]->AdminToken());
    EXPECT_NE(admin, nullptr);
    if (admin == nullptr) return "";
    auto created = admin->CreateOrg(org, dim);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? created->token : "";
  }

  std::chrono::milliseconds FailoverBound() const {
    // Lease time, one reconcile of the rebalancer, one of the new owner, and slack for a
    // loaded machine.
    return std::chrono::milliseconds(kLeaseSeconds * 1000 + 2 * kReconcileMs + 5000);
  }

  bool tls_ = false;  // set by a fixture before SetUp: every node serves TLS
  std::string dir_;
  std::unique_ptr<EtcdProcess> etcd_;
  std::vector<std::unique_ptr<SealcachedProcess>> nodes_;
  std::vector<uint16_t> resp_ports_;
  std::vector<uint16_t> metrics_ports_;
  // A metric of node `i` (0 if it does not answer).
  double Metric(int i, const std::string& name) const {
    return MetricValue(ScrapeMetrics(metrics_ports_[i]), name).value_or(0);
  }
};

}  // namespace sealcache::test
