// Shared fixture for the storage tests: a fresh data directory, a fake clock and a master
// key per test.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "sealcache/crypto/random.h"
#include "sealcache/storage/store.h"
#include "test_support.h"

namespace sealcache::storage::testing {

using ::sealcache::test::MakeTempDir;
using ::sealcache::test::MakeVector;

inline Digest MakeDigest(uint64_t i, uint8_t salt = 0) {
  Digest d{};
  std::mt19937_64 rng(i * 1315423911u + salt);
  for (auto& b : d) b = static_cast<uint8_t>(rng());
  return d;
}

inline std::vector<uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }

inline std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

inline bool Contains(const std::vector<uint8_t>& hay, std::span<const uint8_t> needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

inline std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> out;
  if (!std::filesystem::exists(dir)) return out;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path().string());
  }
  return out;
}

class StoreTest : public ::testing::Test {
 public:
  static constexpr uint32_t kDim = 16;

 protected:
  void SetUp() override {
    dir_ = MakeTempDir("sealcache-store");
    master_ = std::move(crypto::RandomSecret(32)).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  StoreOptions Options() {
    StoreOptions o;
    o.data_dir = dir_;
    o.clock = &clock_;
    o.reaper_period_ms = 0;
    return o;
  }
  void Open(StoreOptions options) {
    store_.reset();
    auto s = Store::Open(std::move(options), master_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void Open() { Open(Options()); }
  void CreateOrg(const std::string& org, uint32_t dim = kDim) {
    OrgConfig c;
    c.dimension = dim;
    Status s = store_->CreateOrg(org, c);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  Result<PutResult> Put(const std::string& org, uint64_t i, std::string_view payload,
                        int64_t ttl_ms = 3'600'000, std::string_view ns = "",
                        std::vector<float> vec = {}) {
    if (vec.empty()) vec = MakeVector(kDim, i);
    PutRequest r;
    r.digest = MakeDigest(i);
    r.payload = {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()};
    r.vector = vec;
    r.ttl_ms = ttl_ms;
    r.name_space = ns;
    return store_->Put(org, r);
  }
  std::string PayloadOf(const std::string& org, uint64_t i) {
    auto e = store_->Get(org, MakeDigest(i));
    if (!e.ok()) return "<" + e.status().ToString() + ">";
    return std::string(e->payload.begin(), e->payload.end());
  }
  size_t CountVectors(const std::string& org) {
    size_t n = 0;
    Status s = store_->ScanVectors(
        org, 0,
        [&](uint64_t, const Digest&, int64_t, std::span<const float>) { return ++n, true; });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return n;
  }

  std::string dir_;
  crypto::SecretBytes master_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
};

}  // namespace sealcache::storage::testing
