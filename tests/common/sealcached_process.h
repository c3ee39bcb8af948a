// A real sealcached child process for tests that kill, restart or starve the server: a data
// directory and master key the test owns, an ephemeral port, and clients bound to tokens.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sealcache/client/client.h"
#include "sealcache/crypto/master_key.h"

namespace sealcache::test {

// A loopback port nobody listened on a moment ago.
inline uint16_t FreePort() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

// The body of GET /metrics on a server's --metrics-port, or "" if the endpoint does not answer.
inline std::string ScrapeMetrics(uint16_t port) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket s(io);
  boost::system::error_code ec;
  s.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
  if (ec) return "";
  const std::string request = "GET /metrics HTTP/1.0\r\n\r\n";
  boost::asio::write(s, boost::asio::buffer(request), ec);
  std::string response;
  boost::asio::read(s, boost::asio::dynamic_buffer(response), ec);
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// The value of the sample line `name` (with its labels, if any) in a /metrics body.
inline std::optional<double> MetricValue(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return std::nullopt;
}

class SealcachedProcess {
 public:
  // `binary` is the sealcached to run; `dir` holds data/ and master.key (created here).
  SealcachedProcess(std::string binary, std::string dir)
      : binary_(std::move(binary)), dir_(std::move(dir)) {
    if (!std::filesystem::exists(master_key_path())) {
      EXPECT_TRUE(crypto::CreateMasterKeyFile(master_key_path()).ok());
    }
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port_ = a.local_endpoint().port();
  }
  ~SealcachedProcess() { Kill(SIGKILL); }
  SealcachedProcess(const SealcachedProcess&) = delete;
  SealcachedProcess& operator=(const SealcachedProcess&) = delete;

  std::string data_dir() const { return dir_ + "/data"; }
  // The --master-key of the next Start (default: file: of master_key_path()).
  void set_master_key_spec(std::string spec) { master_key_spec_ = std::move(spec); }
  std::string master_key_spec() const {
    return master_key_spec_.empty() ? "file:" + master_key_path() : master_key_spec_;
  }
  std::string master_key_path() const { return dir_ + "/master.key"; }
  std::string log_path() const { return dir_ + "/sealcached.log"; }
  uint16_t port() const { return port_; }
  // The --port of the next Start (the constructor picks a free one).
  void set_port(uint16_t port) { port_ = port; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  // Clients of this test (the readiness probe, ConnectAs) speak TLS trusting `ca_file`
  // (for a server started with --tls-cert); empty: plain TCP.
  void set_tls_ca(std::string ca_file) { tls_ca_ = std::move(ca_file); }
  client::ClientOptions ClientOptionsFor() const {
    client::ClientOptions o;
    o.port = port_;
    o.tls = !tls_ca_.empty();
    o.tls_ca_file = tls_ca_;
    return o;
  }

  // Starts the server with --data, --master-key, --port, --threads 2 and `extra` flags;
  // `env` entries ("NAME=value") are added to the child's environment. stderr goes to
  // log_path() (appended). Returns once the port accepts connections, or false if the
  // process exited or did not listen within `timeout`.
  bool Start(const std::vector<std::string>& extra = {}, const std::vector<std::string>& env = {},
             std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    EXPECT_FALSE(running());
    std::vector<std::string> args = {binary_,
                                     "--data",
                                     data_dir(),
                                     "--master-key",
                                     master_key_spec(),
                                     "--port",
                                     std::to_string(port_),
                                     "--threads",
                                     "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = fork();
    if (pid_ == 0) {
      int log = open(log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (log >= 0) {
        dup2(log, 2);
        dup2(log, 1);
      }
      for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      const client::ClientOptions o = ClientOptionsFor();
      // A response, not just a connect: connecting to a port nobody listens on yet can
      // succeed as a TCP self-connect (the kernel picks the same port as the source), and
      // then the "server" echoes our own request back. The server answers a Ping before
      // Hello with Unauthenticated.
      auto c = client::Client::Connect(o);
      if (c.ok()) {
        auto pong = (*c)->Ping();
        if (pong.ok() || pong.status().code() == Status::Code::kUnauthenticated) return true;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // Sends `sig` and reaps the process; returns its exit code (128 + signal if killed), or -1
  // if it was not running.
  int Kill(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    return Wait();
  }
  int Wait() {
    if (pid_ <= 0) return exit_status_;
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_status_;
  }
  // Exit code of the last process that ended (by Wait, Kill, or failing to Start).
  int exit_status() const { return exit_status_; }

  std::string AdminToken() const {
    std::ifstream in(data_dir() + "/admin.token");
    std::string t;
    in >> t;
    return t;
  }
  std::string Log() const {
    std::ifstream in(log_path());
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // A connected client that said Hello with `token`, or nullptr.
  std::unique_ptr<client::Client> ConnectAs(const std::string& token) const {
    auto c = client::Client::Connect(ClientOptionsFor());
    if (!c.ok() || !(*c)->Hello(token).ok()) return nullptr;
    return std::move(c).value();
  }

 private:
  std::string master_key_spec_;
  std::string tls_ca_;
  std::string binary_;
  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  int exit_status_ = -1;
};

}  // namespace sealcache::test
