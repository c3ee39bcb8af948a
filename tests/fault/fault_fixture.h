// Shared pieces of the fault suite: a size-limited tmpfs the test owns, byte-level damage to
// files, and deterministic entries (digest, vector, payload from an index) so a test can
// re-derive what every acknowledged put must read back as.
#pragma once

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "sealcache/client/client.h"
#include "sealcached_process.h"
#include "test_support.h"

namespace sealcache::fault {

namespace fs = std::filesystem;

// A tmpfs mounted at a directory for the lifetime of the object. Mounting needs root (CI runs
// as root); when it fails, ok() is false and error() says why, so the test can skip.
class TmpfsMount {
 public:
  TmpfsMount(std::string dir, size_t bytes) : dir_(std::move(dir)) {
    fs::create_directories(dir_);
    const std::string opts = "size=" + std::to_string(bytes) + ",mode=0700";
    if (mount("tmpfs", dir_.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
      error_ = "cannot mount a tmpfs at " + dir_ + ": " + std::strerror(errno) +
               " (the disk-fault tests need root or CAP_SYS_ADMIN)";
      return;
    }
    mounted_ = true;
  }
  ~TmpfsMount() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

  bool ok() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& dir() const { return dir_; }

  // Changes the size limit in place (files stay).
  bool Resize(size_t bytes) { return Remount(0, "size=" + std::to_string(bytes)); }
  bool SetReadOnly(bool read_only) { return Remount(read_only ? MS_RDONLY : 0, ""); }

 private:
  bool Remount(unsigned long flags, const std::string& opts) {
    return mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT | flags,
                 opts.empty() ? nullptr : opts.c_str()) == 0;
  }
  std::string dir_;
  std::string error_;
  bool mounted_ = false;
};

// The entry a test writes as number `i` of `org_salt`: all of it derives from (i, org_salt).
struct TestEntry {
  client::Digest digest{};
  std::vector<float> vector;
  std::string payload;
};

inline TestEntry MakeEntry(uint64_t i, uint8_t org_salt, uint32_t dim, size_t payload_bytes) {
  TestEntry e;
  std::mt19937_64 rng(i * 1000003u + org_salt * 7919u + 1);
  for (auto& b : e.digest) b = static_cast<uint8_t>(rng());
  e.vector = test::MakeVector(dim, i * 131u + org_salt);
  e.payload.resize(payload_bytes);
  // Random bytes: LZ4 cannot shrink them, so the bytes on disk are what the test sized.
  for (auto& c : e.payload) c = static_cast<char>(rng());
  return e;
}

inline client::PutArgs PutArgsFor(const TestEntry& e, int64_t ttl_ms = 3'600'000) {
  client::PutArgs a;
  a.digest = e.digest;
  a.vector = e.vector;
  a.payload = {reinterpret_cast<const uint8_t*>(e.payload.data()), e.payload.size()};
  a.ttl_ms = ttl_ms;
  return a;
}

inline std::string PayloadOf(const client::EntryInfo& info) {
  return std::string(info.payload.begin(), info.payload.end());
}

// Regular files directly in `dir` whose name ends with `suffix` (or starts with it when
// `prefix` is true), sorted by name.
inline std::vector<std::string> FilesIn(const std::string& dir, const std::string& pattern,
                                        bool prefix = false) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    const bool match =
        prefix ? name.rfind(pattern, 0) == 0
               : name.size() >= pattern.size() &&
                     name.compare(name.size() - pattern.size(), pattern.size(), pattern) == 0;
    if (match) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// XORs `count` bytes of `path` from `offset` with 0xA5: every byte changes.
inline void FlipBytes(const std::string& path, uint64_t offset, size_t count) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good()) << path;
  std::vector<char> buf(count);
  f.seekg(static_cast<std::streamoff>(offset));
  f.read(buf.data(), static_cast<std::streamsize>(count));
  ASSERT_EQ(f.gcount(), static_cast<std::streamsize>(count)) << path << " is too short";
  for (auto& c : buf) c = static_cast<char>(c ^ 0xA5);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(buf.data(), static_cast<std::streamsize>(count));
  ASSERT_TRUE(f.good());
}

inline void AppendBytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::app);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

// Lines of `log` containing `needle`.
inline std::vector<std::string> LinesWith(const std::string& log, const std::string& needle) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < log.size()) {
    size_t end = log.find('\n', start);
    if (end == std::string::npos) end = log.size();
    std::string line = log.substr(start, end - start);
    if (line.find(needle) != std::string::npos) out.push_back(line);
    start = end + 1;
  }
  return out;
}

constexpr auto kStartTimeout = std::chrono::seconds(60);

// True once `pid` (a child not yet reaped) has exited: /proc shows it as a zombie.
inline bool HasExited(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_field, comm, state;
  if (!(in >> pid_field >> comm >> state)) return true;
  return state == "Z";
}

// A data directory and a server the test owns; removes both at the end.
class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::MakeTempDir("sealcache-fault");
    proc_ = std::make_unique<test::SealcachedProcess>(SEALCACHED_PATH, dir_);
  }
  void TearDown() override {
    proc_.reset();  // SIGKILLs a server still running
    mount_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Mounts a tmpfs of `bytes` at the server's data directory; false (with a skip message
  // in `why`) when this machine does not allow it.
  bool MountDataDir(size_t bytes, std::string* why) {
    mount_ = std::make_unique<TmpfsMount>(proc_->data_dir(), bytes);
    if (!mount_->ok()) *why = mount_->error();
    return mount_->ok();
  }

  // Starts the server and waits for its "serving" line. The harness's Start returns as soon
  // as a connection to the port succeeds, which can happen before this server listens (a
  // port picked free and then taken by another process, or a TCP self-connect); the log
  // line is this server's own word. False (exit status in proc_->exit_status()) if it exits.
  bool StartServer(const std::vector<std::string>& args = {}) {
    const size_t log_at = proc_->Log().size();
    if (!proc_->Start(args)) return false;
    const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (proc_->Log().find("sealcached: serving", log_at) != std::string::npos) return true;
      if (HasExited(proc_->pid())) {
        proc_->Wait();
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  std::unique_ptr<client::Client> Admin() { return proc_->ConnectAs(proc_->AdminToken()); }

  // Creates `org` (flat index: exact, so lookup results are deterministic) and returns its
  // token.
  std::string CreateOrg(const std::string& org, uint32_t dim) {
    auto admin = Admin();
    EXPECT_NE(admin, nullptr);
    if (admin == nullptr) return "";
    auto created = admin->CreateOrg(org, dim, "flat");
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? created->token : "";
  }

  std::string dir_;
  std::unique_ptr<test::SealcachedProcess> proc_;
  std::unique_ptr<TmpfsMount> mount_;
};

}  // namespace sealcache::fault
