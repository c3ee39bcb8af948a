// Disk faults against the real sealcached: a data directory on a size-limited tmpfs that
// fills up, and a data directory that is read-only at start.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "fault_fixture.h"

namespace sealcache::fault {
namespace {

constexpr size_t kTmpfsBytes = 16u << 20;
constexpr size_t kLargerTmpfsBytes = 64u << 20;
// Space left for the server once the filler is in place: enough for the first puts to
// succeed, small enough that the WAL fills it within a few seconds.
constexpr size_t kHeadroomBytes = 3u << 20;
constexpr uint32_t kDim = 16;
constexpr size_t kPayloadBytes = 4096;
// Far more than the headroom can hold: reaching it means the full disk went unnoticed.
constexpr int kMaxPutsBeforeFull = 20'000;
// RocksDB's SstFileManager polls for free space every few seconds before it resumes.
constexpr auto kResumeDeadline = std::chrono::seconds(60);

// Fills the tmpfs at `dir` until `leave` bytes are free; returns the filler's path.
std::string PlaceFiller(const std::string& dir, size_t leave) {
  const std::string path = dir + "/filler";
  auto free_bytes = fs::space(dir).available;
  EXPECT_GT(free_bytes, leave);
  std::vector<char> chunk(1u << 20, 'f');
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  EXPECT_GE(fd, 0);
  size_t to_write = free_bytes - leave;
  while (to_write > 0) {
    size_t n = std::min(to_write, chunk.size());
    ssize_t w = write(fd, chunk.data(), n);
    if (w <= 0) break;
    to_write -= static_cast<size_t>(w);
  }
  close(fd);
  return path;
}

bool IsNoSpaceMessage(const std::string& m) {
  return m.find("No space left on device") != std::string::npos ||
         m.find("no space") != std::string::npos || m.find("disk is full") != std::string::npos;
}

// What RocksDB's info LOG says about errors and recovery: the diagnosis when a test fails.
std::string RocksDbErrorLines(const std::string& data_dir) {
  std::ifstream in(data_dir + "/db/LOG");
  std::string line, out;
  while (std::getline(in, line)) {
    for (const char* word : {"rror", "ecover", "esum", "space"}) {
      if (line.find(word) != std::string::npos) {
        out += line + "\n";
        break;
      }
    }
  }
  return out;
}

class DiskFull : public FaultTest {};

TEST_F(DiskFull, PutsFailWithNoSpaceThenResumeOnceSpaceIsFreed) {
  std::string why;
  if (!MountDataDir(kTmpfsBytes, &why)) GTEST_SKIP() << why;
  ASSERT_TRUE(StartServer());
  const std::string token = CreateOrg("acme", kDim);
  auto c = proc_->ConnectAs(token);
  ASSERT_NE(c, nullptr);
  const std::string filler = PlaceFiller(proc_->data_dir(), kHeadroomBytes);

  // Write until the disk is full: every put either succeeds or fails with a clear error.
  std::vector<uint64_t> acked;
  Status first_error;
  int i = 0;
  for (; i < kMaxPutsBeforeFull; ++i) {
    auto put = c->Put(PutArgsFor(MakeEntry(i, 1, kDim, kPayloadBytes)));
    if (put.ok()) {
      acked.push_back(i);
      continue;
    }
    first_error = put.status();
    break;
  }
  ASSERT_LT(i, kMaxPutsBeforeFull) << "the disk never filled up";
  ASSERT_GT(acked.size(), 0u) << "not even the first put fit: " << first_error.ToString();
  ASSERT_EQ(first_error.code(), Status::Code::kResourceExhausted)
      << first_error.ToString() << "\nserver log:\n"
      << proc_->Log();
  EXPECT_TRUE(IsNoSpaceMessage(first_error.message())) << first_error.ToString();
  std::printf("[ disk-full ] %zu puts acknowledged before the disk filled; first error: %s\n",
              acked.size(), first_error.ToString().c_str());

  // While full: further puts fail the same clear way, reads and pings still work.
  for (int k = 0; k < 3; ++k) {
    auto again = c->Put(PutArgsFor(MakeEntry(kMaxPutsBeforeFull + k, 1, kDim, kPayloadBytes)));
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.status().code(), Status::Code::kResourceExhausted) << again.status().ToString();
  }
  ASSERT_TRUE(c->Ping().ok());
  for (uint64_t n : acked) {
    auto got = c->Get(MakeEntry(n, 1, kDim, kPayloadBytes).digest);
    ASSERT_TRUE(got.ok()) << "acknowledged put " << n << ": " << got.status().ToString();
    ASSERT_EQ(PayloadOf(*got), MakeEntry(n, 1, kDim, kPayloadBytes).payload);
  }
  EXPECT_FALSE(LinesWith(proc_->Log(), "no space").empty() &&
               LinesWith(proc_->Log(), "No space").empty())
      << "the server log does not report the full disk:\n"
      << proc_->Log();

  // Free the space: puts succeed again without a restart.
  ASSERT_TRUE(fs::remove(filler));
  const auto deadline = std::chrono::steady_clock::now() + kResumeDeadline;
  const auto freed_at = std::chrono::steady_clock::now();
  Status last;
  bool resumed = false;
  uint64_t next = kMaxPutsBeforeFull + 100;
  while (!resumed && std::chrono::steady_clock::now() < deadline) {
    auto put = c->Put(PutArgsFor(MakeEntry(next, 1, kDim, kPayloadBytes)));
    if (put.ok()) {
      acked.push_back(next++);
      resumed = true;
      break;
    }
    last = put.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(resumed) << "puts still fail " << kResumeDeadline.count()
                       << " s after space was freed: " << last.ToString() << "\nRocksDB LOG:\n"
                       << RocksDbErrorLines(proc_->data_dir());
  std::printf("[ disk-full ] puts resumed %.1f s after the filler was removed\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - freed_at).count());
  for (int k = 0; k < 50; ++k, ++next) {
    auto put = c->Put(PutArgsFor(MakeEntry(next, 1, kDim, kPayloadBytes)));
    ASSERT_TRUE(put.ok()) << put.status().ToString();
    acked.push_back(next);
  }

  // Every acknowledged put survives a restart, and lookups find them.
  c.reset();
  ASSERT_EQ(proc_->Kill(SIGTERM), 0) << proc_->Log();
  ASSERT_TRUE(StartServer()) << proc_->Log();
  c = proc_->ConnectAs(token);
  ASSERT_NE(c, nullptr);
  for (uint64_t n : acked) {
    const TestEntry e = MakeEntry(n, 1, kDim, kPayloadBytes);
    auto got = c->Get(e.digest);
    ASSERT_TRUE(got.ok()) << "acknowledged put " << n << " lost: " << got.status().ToString();
    ASSERT_EQ(PayloadOf(*got), e.payload);
  }
  const TestEntry probe = MakeEntry(acked.back(), 1, kDim, kPayloadBytes);
  auto hits =
      c->Lookup({.vector = probe.vector, .k = 1, .min_score = 0.99f, .with_payload = false});
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].entry.digest, probe.digest);
  std::printf("[ disk-full ] %zu acknowledged puts verified after restart\n", acked.size());
  for (const auto& line : LinesWith(proc_->Log(), "storage")) {
    std::printf("[ disk-full ] log: %s\n", line.c_str());
  }
}

TEST_F(DiskFull, PutsResumeAfterTheFileSystemGrows) {
  std::string why;
  if (!MountDataDir(kTmpfsBytes, &why)) GTEST_SKIP() << why;
  ASSERT_TRUE(StartServer());
  const std::string token = CreateOrg("acme", kDim);
  auto c = proc_->ConnectAs(token);
  ASSERT_NE(c, nullptr);
  PlaceFiller(proc_->data_dir(), kHeadroomBytes);
  int i = 0;
  Status error;
  for (; i < kMaxPutsBeforeFull; ++i) {
    auto put = c->Put(PutArgsFor(MakeEntry(i, 2, kDim, kPayloadBytes)));
    if (!put.ok()) {
      error = put.status();
      break;
    }
  }
  ASSERT_LT(i, kMaxPutsBeforeFull);
  EXPECT_EQ(error.code(), Status::Code::kResourceExhausted) << error.ToString();

  ASSERT_TRUE(mount_->Resize(kLargerTmpfsBytes));
  const auto deadline = std::chrono::steady_clock::now() + kResumeDeadline;
  Status last;
  bool resumed = false;
  while (!resumed && std::chrono::steady_clock::now() < deadline) {
    auto put = c->Put(PutArgsFor(MakeEntry(i, 2, kDim, kPayloadBytes)));
    resumed = put.ok();
    if (!resumed) {
      last = put.status();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  ASSERT_TRUE(resumed) << last.ToString();
  for (int k = 0; k <= i; ++k) {
    const TestEntry e = MakeEntry(k, 2, kDim, kPayloadBytes);
    auto got = c->Get(e.digest);
    ASSERT_TRUE(got.ok()) << k << ": " << got.status().ToString();
    ASSERT_EQ(PayloadOf(*got), e.payload);
  }
}

class DataDir : public FaultTest {};

TEST_F(DataDir, ReadOnlyAtStartExitsNonZeroWithOneLineNamingTheDirectory) {
  std::string why;
  if (!MountDataDir(kTmpfsBytes, &why)) GTEST_SKIP() << why;
  // An existing store (the usual case: a disk remounted read-only after an error).
  ASSERT_TRUE(StartServer());
  ASSERT_EQ(proc_->Kill(SIGTERM), 0) << proc_->Log();
  ASSERT_TRUE(mount_->SetReadOnly(true)) << std::strerror(errno);
  const size_t log_before = proc_->Log().size();
  EXPECT_FALSE(StartServer());
  EXPECT_NE(proc_->exit_status(), 0);
  const std::string out = proc_->Log().substr(log_before);
  const auto lines = LinesWith(out, "sealcached:");
  ASSERT_EQ(lines.size(), 1u) << out;
  EXPECT_NE(lines[0].find("data directory " + proc_->data_dir() + " is not writable"),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[0].find("Read-only file system"), std::string::npos) << lines[0];
  std::printf("[ read-only ] %s\n", lines[0].c_str());
  ASSERT_TRUE(mount_->SetReadOnly(false));
}

TEST_F(DataDir, EmptyAndReadOnlyAtStartExitsNonZeroNamingTheDirectory) {
  std::string why;
  if (!MountDataDir(kTmpfsBytes, &why)) GTEST_SKIP() << why;
  ASSERT_TRUE(mount_->SetReadOnly(true)) << std::strerror(errno);
  EXPECT_FALSE(StartServer());
  EXPECT_NE(proc_->exit_status(), 0);
  const auto lines = LinesWith(proc_->Log(), "sealcached:");
  ASSERT_EQ(lines.size(), 1u) << proc_->Log();
  EXPECT_NE(lines[0].find("data directory " + proc_->data_dir() + " is not writable"),
            std::string::npos)
      << lines[0];
  std::printf("[ read-only ] %s\n", lines[0].c_str());
}

}  // namespace
}  // namespace sealcache::fault
