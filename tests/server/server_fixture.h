// An in-process sealcached on 127.0.0.1 with an ephemeral port, for end-to-end tests.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "sealcache/client/client.h"
#include "sealcache/crypto/random.h"
#include "sealcache/server/server.h"
#include "test_support.h"

namespace sealcache::server::testing {

using ::sealcache::test::MakeTempDir;
using ::sealcache::test::MakeVector;

inline client::Digest MakeDigest(uint64_t i, uint8_t salt = 0) {
  client::Digest d{};
  std::mt19937_64 rng(i * 2654435761u + salt);
  for (auto& b : d) b = static_cast<uint8_t>(rng());
  return d;
}

inline std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

class ServerTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kDim = 8;

  void SetUp() override {
    dir_ = MakeTempDir("sealcache-server");
    master_ = std::move(crypto::RandomSecret(32)).value();
  }
  void TearDown() override {
    if (server_) (void)server_->Shutdown();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  ServerOptions Options() {
    ServerOptions o;
    o.port = 0;
    o.threads = 2;
    o.service.store.data_dir = dir_ + "/data";
    o.service.store.reaper_period_ms = 0;
    o.service.hit_flush_period_ms = 50;
    return o;
  }
  void StartServer(ServerOptions o) {
    auto s = Server::Start(std::move(o), master_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
  }
  void StartServer() { StartServer(Options()); }
  void Restart(ServerOptions o) {
    ASSERT_TRUE(server_->Shutdown().ok());
    server_.reset();
    StartServer(std::move(o));
  }
  std::string AdminToken() {
    std::ifstream in(dir_ + "/data/admin.token");
    std::string token;
    in >> token;
    return token;
  }
  std::unique_ptr<client::Client> Connect(client::ClientOptions o = {}) {
    o.port = server_->port();
    auto c = client::Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }
  std::unique_ptr<client::Client> ConnectAs(const std::string& token) {
    auto c = Connect();
    auto hello = c->Hello(token);
    EXPECT_TRUE(hello.ok()) << hello.status().ToString();
    return c;
  }
  // Creates an org and returns a client bound to it.
  std::unique_ptr<client::Client> NewOrg(const std::string& org, uint32_t dim = kDim,
                                         std::string kind = "hnsw") {
    auto admin = ConnectAs(AdminToken());
    auto created = admin->CreateOrg(org, dim, kind);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    tokens_[org] = created->token;
    return ConnectAs(created->token);
  }
  Result<client::PutInfo> Put(client::Client& c, uint64_t i, const std::string& payload,
                              std::string_view ns = "", int64_t ttl_ms = 3'600'000) {
    auto v = MakeVector(kDim, i);
    client::PutArgs a;
    a.digest = MakeDigest(i);
    a.vector = v;
    a.payload = Bytes(payload);
    a.ttl_ms = ttl_ms;
    a.name_space = ns;
    return c.Put(a);
  }

  std::string dir_;
  crypto::SecretBytes master_;
  std::unique_ptr<Server> server_;
  std::map<std::string, std::string> tokens_;
};

}  // namespace sealcache::server::testing
