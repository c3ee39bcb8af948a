// Stored records decode wherever RocksDB hands them over: a value slice may start at any
// address, and flatbuffers must not load its words from a misaligned one (UBSan in the
// sanitizer tree reports such a load as undefined behaviour).
#include "records.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sealcache::storage::internal {
namespace {

constexpr size_t kOffsets = 8;

// `encoded` copied to each of the first kOffsets offsets of an aligned buffer.
template <typename Check>
void AtEveryOffset(const std::string& encoded, Check check) {
  std::vector<uint64_t> words(encoded.size() / sizeof(uint64_t) + 2);
  char* base = reinterpret_cast<char*>(words.data());
  for (size_t offset = 0; offset < kOffsets; ++offset) {
    std::copy(encoded.begin(), encoded.end(), base + offset);
    SCOPED_TRACE("offset " + std::to_string(offset));
    check(std::string_view(base + offset, encoded.size()));
  }
}

TEST(Records, TokenRecordDecodesAtAnyAlignment) {
  const TokenRecord token{"acme", "0123456789abcdef", 1'700'000'000'000};
  AtEveryOffset(EncodeToken(token), [&](std::string_view value) {
    auto decoded = DecodeToken(value);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(decoded->org, token.org);
    EXPECT_EQ(decoded->token_id, token.token_id);
    EXPECT_EQ(decoded->created_ms, token.created_ms);
  });
}

TEST(Records, OrgInfoDecodesAtAnyAlignment) {
  OrgConfig config;
  config.dimension = 384;
  config.index_kind = "flat";
  config.created_ms = 1'700'000'000'123;
  config.ef_search = 77;
  AtEveryOffset(EncodeOrgInfo(config), [&](std::string_view value) {
    auto decoded = DecodeOrgInfo(value);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(decoded->dimension, config.dimension);
    EXPECT_EQ(decoded->index_kind, config.index_kind);
    EXPECT_EQ(decoded->created_ms, config.created_ms);
    EXPECT_EQ(decoded->ef_search, config.ef_search);
  });
}

TEST(Records, EntryMetaDecodesAtAnyAlignment) {
  EntryMeta meta;
  meta.digest.fill(0x5a);
  meta.created_ms = 1'700'000'000'000;
  meta.expires_ms = 1'700'000'360'000;
  meta.ttl_ms = 360'000;
  meta.name_space = "ns";
  meta.payload_size = 12;
  meta.vector_slot = 41;
  meta.hits = 3;
  AtEveryOffset(EncodeEntryMeta(meta), [&](std::string_view value) {
    auto decoded = DecodeEntryMeta(value, meta.digest);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(decoded->expires_ms, meta.expires_ms);
    EXPECT_EQ(decoded->name_space, meta.name_space);
    EXPECT_EQ(decoded->vector_slot, meta.vector_slot);
    EXPECT_EQ(decoded->hits, meta.hits);
  });
}

}  // namespace
}  // namespace sealcache::storage::internal
