// The Redis-protocol fuzz target's committed seeds (resp_corpus/), replayed in every build:
// each keeps the promises of resp_fuzz_input.h. The reply validator the target relies on is
// itself specified here.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "resp_fuzz_input.h"

namespace sealcache::fuzz {
namespace {

TEST(RespFuzzInput, EverySeedKeepsTheFrontsPromises) {
  int seeds = 0;
  uint32_t commands = 0;
  for (const auto& e : std::filesystem::directory_iterator(SEALCACHE_RESP_CORPUS_DIR)) {
    std::ifstream in(e.path(), std::ios::binary);
    const std::vector<uint8_t> input((std::istreambuf_iterator<char>(in)), {});
    auto result = RunRespFuzzInput(input);
    ASSERT_TRUE(result.ok()) << e.path() << ": " << result.status().ToString();
    commands += result->frames;
    ++seeds;
  }
  EXPECT_GE(seeds, 9);
  EXPECT_GE(commands, 40u);
}

TEST(RespReplyLength, AcceptsOneWholeReplyOfEveryTypeAndNothingElse) {
  EXPECT_EQ(RespReplyLength("+OK\r\n"), 5u);
  EXPECT_EQ(RespReplyLength("$3\r\nabc\r\n"), 9u);
  EXPECT_EQ(RespReplyLength("$-1\r\n"), 5u);
  EXPECT_EQ(RespReplyLength("*2\r\n:1\r\n_\r\n"), 11u);
  EXPECT_EQ(RespReplyLength("%1\r\n$1\r\nk\r\n#t\r\n"), 15u);
  EXPECT_EQ(RespReplyLength("=5\r\ntxt:a\r\n"), 11u);
  EXPECT_EQ(RespReplyLength("~0\r\n"), 4u);
  EXPECT_EQ(RespReplyLength(",0.5\r\n"), 6u);
  EXPECT_FALSE(RespReplyLength("$3\r\nab\r\n"));
  EXPECT_FALSE(RespReplyLength("*2\r\n:1\r\n"));
  EXPECT_FALSE(RespReplyLength("?x\r\n"));
  EXPECT_FALSE(RespReplyLength("+OK"));
}

}  // namespace
}  // namespace sealcache::fuzz
