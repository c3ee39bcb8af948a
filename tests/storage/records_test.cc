// Stored records decode wherever RocksDB hands them over: a value slice may start at any
// address, and flatbuffers must not load its words from a misaligned one (UBSan in the
// sanitizer tree reports such a load as undefined behaviour).
#include "records.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sealcache/half.h"

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

// An entry's metadata with every field but the hits set.
EntryMeta SomeEntryMeta() {
  EntryMeta meta;
  meta.digest.fill(0x5a);
  meta.created_ms = 1'700'000'000'000;
  meta.expires_ms = 1'700'000'360'000;
  meta.ttl_ms = 360'000;
  meta.name_space = "ns";
  meta.payload_size = 12;
  meta.vector_slot = 41;
  return meta;
}

TEST(Records, EntryMetaDecodesAtAnyAlignment) {
  EntryMeta meta = SomeEntryMeta();
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

// Hit counts rewrite a meta record with new hits and last hit alone: its size must not change
// (the table of hot values then rewrites its copy in place), also at the first hit.
TEST(Records, AnEntryMetaRecordKeepsItsSizeAsItsHitsAreCounted) {
  EntryMeta meta = SomeEntryMeta();
  const size_t unhit = EncodeEntryMeta(meta).size();
  meta.hits = 1;
  meta.last_hit_ms = 1'700'000'001'000;
  EXPECT_EQ(EncodeEntryMeta(meta).size(), unhit);
  meta.hits = ~uint64_t{0};
  EXPECT_EQ(EncodeEntryMeta(meta).size(), unhit);
  auto decoded = DecodeEntryMeta(EncodeEntryMeta(meta), meta.digest);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->hits, meta.hits);
  EXPECT_EQ(decoded->last_hit_ms, meta.last_hit_ms);
}

TEST(Records, AVectorIsStoredInHalfPrecisionAndDecodesAtAnyAlignment) {
  Digest digest;
  digest.fill(0x3c);
  const std::vector<float> vector = {0.5f, -0.25f, 0.1f, 1.0f / 3, 0.0f, -1.0f};
  const std::string encoded = EncodeVectorValue(1'700'000'360'000, digest, vector);
  ASSERT_EQ(encoded.size(), kExpirySize + kDigestSize + vector.size() * sizeof(uint16_t));
  AtEveryOffset(encoded, [&](std::string_view value) {
    std::vector<float> buffer;
    auto decoded = DecodeVectorValue(value, static_cast<uint32_t>(vector.size()), &buffer);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(decoded->expires_ms, 1'700'000'360'000);
    EXPECT_EQ(decoded->digest, digest);
    ASSERT_EQ(decoded->vector.size(), vector.size());
    for (size_t i = 0; i < vector.size(); ++i) {
      EXPECT_EQ(decoded->vector[i], HalfToFloat(FloatToHalf(vector[i]))) << i;
    }
  });
}

TEST(Records, AFloat32VectorRecordWrittenBeforeHalvesStillDecodes) {
  Digest digest;
  digest.fill(0x77);
  const std::vector<float> vector = {0.1f, 0.2f, 0.3f, -0.7f};
  std::string encoded(kExpirySize, '\0');
  const uint64_t expiry = 1'700'000'000'123;
  for (size_t i = 0; i < kExpirySize; ++i) encoded[i] = static_cast<char>(expiry >> (8 * i));
  ASSERT_EQ(*ValueExpiry(encoded), static_cast<int64_t>(expiry)) << "layout: expiry first";
  encoded.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  encoded.append(reinterpret_cast<const char*>(vector.data()), vector.size() * sizeof(float));
  std::vector<float> buffer;
  auto decoded = DecodeVectorValue(encoded, 4, &buffer);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->digest, digest);
  EXPECT_EQ(std::vector<float>(decoded->vector.begin(), decoded->vector.end()), vector);
  // Any length but the two layouts' is Corruption. (Cutting exactly 2d bytes would give the
  // half layout's length: values are never cut inside RocksDB, and a damaged file fails its
  // chunk authentication before a record is read, storage/FORMAT.md.)
  for (size_t cut : {size_t{1}, size_t{7}, size_t{9}, size_t{16}}) {
    EXPECT_TRUE(DecodeVectorValue(encoded.substr(0, encoded.size() - cut), 4, &buffer)
                    .status()
                    .IsCorruption())
        << cut;
  }
  EXPECT_TRUE(DecodeVectorValue(encoded, 5, &buffer).status().IsCorruption());
}

}  // namespace
}  // namespace sealcache::storage::internal
