// The fuzz corpus (tests/fuzz/corpus/) run through the fuzz target's entry function by the
// ordinary build, so every build checks the seeds and the crashes found so far without clang.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "sealcache/server/frame.h"
#include "seed_corpus.h"
#include "service_fuzz_input.h"

namespace sealcache::fuzz {
namespace {

namespace P = ::sealcache::protocol;

struct CorpusFile {
  std::string name;
  std::vector<uint8_t> bytes;
};

std::vector<CorpusFile> ReadCorpus() {
  std::vector<CorpusFile> files;
  for (const auto& entry : std::filesystem::directory_iterator(SEALCACHE_FUZZ_CORPUS_DIR)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    files.push_back({entry.path().filename().string(),
                     {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()}});
  }
  std::sort(files.begin(), files.end(),
            [](const CorpusFile& a, const CorpusFile& b) { return a.name < b.name; });
  return files;
}

bool StartsWith(const std::string& s, std::string_view prefix) { return s.starts_with(prefix); }

// The request types of every verified frame of an input.
std::set<P::RequestBody> RequestTypes(std::span<const uint8_t> input) {
  std::set<P::RequestBody> types;
  if (input.empty()) return types;
  auto frames = input.subspan(1);
  while (frames.size() >= server::kFrameHeaderSize) {
    const uint32_t n = server::DecodeFrameLength(frames.data());
    frames = frames.subspan(server::kFrameHeaderSize);
    if (frames.size() < n) break;
    // A copy: flatbuffers needs the body aligned, as the server's read buffer is.
    const std::vector<uint8_t> body(frames.begin(), frames.begin() + n);
    auto request = server::VerifyRequest(body);
    if (request.ok()) types.insert((*request)->body_type());
    frames = frames.subspan(n);
  }
  return types;
}

TEST(FuzzCorpus, EveryFileKeepsTheProtocolsPromises) {
  const auto corpus = ReadCorpus();
  ASSERT_GE(corpus.size(), SeedCorpus().size());
  for (const CorpusFile& file : corpus) {
    auto run = RunServiceFuzzInput(file.bytes);
    EXPECT_TRUE(run.ok()) << file.name << ": " << run.status().ToString();
  }
}

TEST(FuzzCorpus, EverySeedIsAnsweredOkFrameByFrame) {
  for (const CorpusFile& file : ReadCorpus()) {
    if (!StartsWith(file.name, kSeedPrefix)) continue;
    auto run = RunServiceFuzzInput(file.bytes);
    ASSERT_TRUE(run.ok()) << file.name << ": " << run.status().ToString();
    EXPECT_GT(run->frames, 0u) << file.name;
    EXPECT_EQ(run->ok_responses, run->frames) << file.name;
  }
}

TEST(FuzzCorpus, EveryRefusalIsAnsweredWithErrorsOnly) {
  for (const CorpusFile& file : ReadCorpus()) {
    if (!StartsWith(file.name, kRefusalPrefix)) continue;
    auto run = RunServiceFuzzInput(file.bytes);
    ASSERT_TRUE(run.ok()) << file.name << ": " << run.status().ToString();
    EXPECT_GT(run->frames, 0u) << file.name;
    EXPECT_EQ(run->ok_responses, 0u) << file.name;
  }
}

TEST(FuzzCorpus, SeedsHoldAValidFrameOfEveryRequestType) {
  // Refusals count too: the cluster's requests can only be refused by the fuzz fixture,
  // a single node.
  std::set<P::RequestBody> seen;
  for (const CorpusFile& file : ReadCorpus()) {
    if (!StartsWith(file.name, kSeedPrefix) && !StartsWith(file.name, kRefusalPrefix)) continue;
    seen.merge(RequestTypes(file.bytes));
  }
  for (P::RequestBody type : P::EnumValuesRequestBody()) {
    if (type == P::RequestBody::NONE) continue;
    EXPECT_TRUE(seen.count(type)) << "no seed holds a " << P::EnumNameRequestBody(type);
  }
}

TEST(FuzzCorpus, CommittedSeedsAreWhatTheGeneratorWrites) {
  const auto corpus = ReadCorpus();
  for (const SeedInput& seed : SeedCorpus()) {
    auto it = std::find_if(corpus.begin(), corpus.end(),
                           [&](const CorpusFile& f) { return f.name == seed.name; });
    ASSERT_NE(it, corpus.end()) << seed.name << " is missing: run make_seed_corpus";
    EXPECT_EQ(it->bytes, seed.bytes) << seed.name << " is stale: run make_seed_corpus";
  }
}

TEST(ServiceFuzzInput, AnOversizeLengthEndsTheInputUnhandled) {
  std::vector<uint8_t> input{static_cast<uint8_t>(SessionState::kOrgA)};
  const uint32_t oversize = server::kDefaultMaxFrameBytes + 1;
  for (int shift = 0; shift < 32; shift += 8) input.push_back(uint8_t(oversize >> shift));
  const auto ping = MakeFuzzInput(SessionState::kOrgA, std::vector<Body>{PingBody(1)});
  input.insert(input.end(), ping.begin() + 1, ping.end());
  auto run = RunServiceFuzzInput(input);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_EQ(run->frames, 0u);
}

TEST(ServiceFuzzInput, ATruncatedLastFrameIsNotHandled) {
  auto input = MakeFuzzInput(SessionState::kOrgA, std::vector<Body>{PingBody(1), PingBody(2)});
  input.pop_back();
  auto run = RunServiceFuzzInput(input);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_EQ(run->frames, 1u);
  EXPECT_EQ(run->ok_responses, 1u);
}

TEST(ServiceFuzzInput, AHelloInTheInputBindsTheFramesAfterIt) {
  const std::vector<Body> bodies = {StatsBody(1), HelloBody(2, kOrgAToken), StatsBody(3)};
  auto run = RunServiceFuzzInput(MakeFuzzInput(SessionState::kUnauthenticated, bodies));
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_EQ(run->frames, 3u);
  EXPECT_EQ(run->ok_responses, 2u);
}

TEST(ServiceFuzzInput, AnInputThatDropsAFixtureOrgDoesNotStarveTheNextOne) {
  auto dropped = RunServiceFuzzInput(
      MakeFuzzInput(SessionState::kAdmin, std::vector<Body>{DropOrgBody(1, kOrgA)}));
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  EXPECT_EQ(dropped->ok_responses, 1u);
  auto get = RunServiceFuzzInput(MakeFuzzInput(
      SessionState::kOrgA, std::vector<Body>{GetEntryBody(1, SeededDigest(0), false)}));
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  EXPECT_EQ(get->ok_responses, 1u);
}

}  // namespace
}  // namespace sealcache::fuzz
