#include <faiss/IndexHNSW.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <gtest/gtest.h>

#include <bit>
#include <cstring>

#include "hnsw_segment.h"
#include "sealcache/crypto/hash.h"
#include "sealcache/encoding.h"
#include "sealcache/index/vector_index.h"
#include "simd_hnsw.h"
#include "snapshot_format.h"
#include "test_util.h"

namespace sealcache::index {
namespace {

using testing::AddRows;
using testing::IsotropicVectors;
using testing::MakeIndex;
using testing::SearchOrDie;
using testing::VectorSet;

constexpr size_t kDim = 32;

IndexParams Params(bool exact = false) {
  IndexParams p;
  p.dimension = kDim;
  p.hnsw_m = 16;
  p.ef_construction = 64;
  p.ef_search = 64;
  p.seal_threshold = 1000;
  p.max_segment_size = 1000;  // one HNSW segment per seal
  p.exact = exact;
  return p;
}

// Two sealed HNSW segments, a partly filled mutable one, tombstones in both kinds.
std::unique_ptr<VectorIndex> PopulatedIndex(const VectorSet& set, bool exact = false) {
  auto index = MakeIndex(Params(exact));
  AddRows(*index, set, 0, set.size());
  index->WaitForBackgroundWork();
  for (uint64_t slot : {3u, 500u, 1001u, 1999u, 2100u, 2400u}) {
    if (slot < set.size()) {
      EXPECT_TRUE(index->Remove(slot).ok());
    }
  }
  return index;
}

std::vector<uint8_t> SerializeOrDie(const VectorIndex& index) {
  auto bytes = index.Serialize();
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  return bytes.ok() ? *bytes : std::vector<uint8_t>{};
}

// Recomputes the header's checksum so a change to the body reaches the body's own checks.
void Reseal(std::vector<uint8_t>& bytes) {
  std::span<const uint8_t> body(bytes.data() + kSnapshotHeaderSize,
                                bytes.size() - kSnapshotHeaderSize);
  crypto::Sha256Digest digest = crypto::Sha256(body);
  std::memcpy(bytes.data() + 16, digest.data(), digest.size());
}

void ExpectSameAnswers(const VectorIndex& a, const VectorIndex& b, const VectorSet& queries) {
  for (size_t q = 0; q < queries.size(); ++q) {
    EXPECT_EQ(SearchOrDie(a, queries.row(q), 10), SearchOrDie(b, queries.row(q), 10)) << q;
  }
}

TEST(VectorIndexSnapshot, RoundTripGivesTheSameSearchResults) {
  VectorSet set = IsotropicVectors(2500, kDim, 41);
  auto index = PopulatedIndex(set);
  ASSERT_EQ(index->Stats().hnsw_segments, 2u);
  std::vector<uint8_t> bytes = SerializeOrDie(*index);

  auto loaded = VectorIndex::Deserialize(bytes, Params());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  VectorIndex& copy = **loaded;
  EXPECT_EQ(copy.Size(), index->Size());
  EXPECT_EQ(copy.HighestSlot(), index->HighestSlot());
  EXPECT_EQ(copy.Stats().hnsw_segments, 2u);
  for (uint64_t slot = 0; slot < set.size(); ++slot) {
    ASSERT_EQ(copy.Contains(slot), index->Contains(slot)) << slot;
  }
  ExpectSameAnswers(*index, copy, IsotropicVectors(100, kDim, 42));
  // The loaded index keeps working: new slots and removals on both sides agree.
  VectorSet more = IsotropicVectors(10, kDim, 43);
  for (size_t i = 0; i < more.size(); ++i) {
    ASSERT_TRUE(copy.Add(5000 + i, more.row(i)).ok());
    ASSERT_TRUE(index->Add(5000 + i, more.row(i)).ok());
  }
  ASSERT_TRUE(copy.Remove(10).ok());
  ASSERT_TRUE(index->Remove(10).ok());
  ExpectSameAnswers(*index, copy, IsotropicVectors(50, kDim, 44));
}

TEST(VectorIndexSnapshot, HighestSlotSurvivesEvenWhenThatSlotWasRemoved) {
  auto index = MakeIndex(Params());
  ASSERT_TRUE(index->Add(7, std::vector<float>(kDim, 1.0f)).ok());
  ASSERT_TRUE(index->Add(90, std::vector<float>(kDim, 2.0f)).ok());
  ASSERT_TRUE(index->Remove(90).ok());
  auto loaded = VectorIndex::Deserialize(SerializeOrDie(*index), Params());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->HighestSlot(), 90u);
  EXPECT_EQ((*loaded)->Size(), 1u);
  EXPECT_FALSE((*loaded)->Contains(90));
}

TEST(VectorIndexSnapshot, EmptyIndexRoundTrips) {
  auto index = MakeIndex(Params());
  auto loaded = VectorIndex::Deserialize(SerializeOrDie(*index), Params());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->Size(), 0u);
  EXPECT_FALSE((*loaded)->HighestSlot().has_value());
}

TEST(VectorIndexSnapshot, ExactModeLoadsAnHnswSnapshotAsFlatSegments) {
  VectorSet set = IsotropicVectors(2500, kDim, 45);
  auto index = PopulatedIndex(set);
  auto loaded = VectorIndex::Deserialize(SerializeOrDie(*index), Params(/*exact=*/true));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  (*loaded)->WaitForBackgroundWork();
  EXPECT_EQ((*loaded)->Stats().hnsw_segments, 0u);
  EXPECT_EQ((*loaded)->Size(), index->Size());
  for (size_t q = 0; q < 50; ++q) {
    if (q == 3) continue;  // removed
    auto exact = SearchOrDie(**loaded, set.row(q), 1);
    ASSERT_EQ(exact.size(), 1u);
    EXPECT_EQ(exact[0].slot, q) << "an exact search finds every live vector itself";
  }
}

TEST(VectorIndexSnapshot, HeaderHasMagicVersionLengthAndChecksum) {
  VectorSet set = IsotropicVectors(10, kDim, 46);
  auto index = MakeIndex(Params());
  AddRows(*index, set, 0, set.size());
  std::vector<uint8_t> bytes = SerializeOrDie(*index);
  ASSERT_GE(bytes.size(), kSnapshotHeaderSize);
  EXPECT_EQ(std::memcmp(bytes.data(), "SCVX", 4), 0);
  EXPECT_EQ(DecodeFixed32(bytes.data() + 4), 2u);
  EXPECT_EQ(DecodeFixed64(bytes.data() + 8), bytes.size() - kSnapshotHeaderSize);
  crypto::Sha256Digest digest = crypto::Sha256(
      std::span<const uint8_t>(bytes.data() + kSnapshotHeaderSize, bytes.size() - 48));
  EXPECT_EQ(std::memcmp(bytes.data() + 16, digest.data(), 32), 0);
  // Body: dimension, highest-slot flag and value, segment count.
  EXPECT_EQ(DecodeFixed32(bytes.data() + 48), kDim);
  EXPECT_EQ(bytes[52], 1);
  EXPECT_EQ(DecodeFixed64(bytes.data() + 53), 9u);
  EXPECT_EQ(DecodeFixed32(bytes.data() + 61), 1u);
}

TEST(VectorIndexSnapshot, WrongDimensionIsRejected) {
  auto index = MakeIndex(Params());
  IndexParams other = Params();
  other.dimension = kDim + 1;
  auto loaded = VectorIndex::Deserialize(SerializeOrDie(*index), other);
  EXPECT_EQ(loaded.status().code(), Status::Code::kInvalidArgument);
}

TEST(VectorIndexSnapshot, FlippedBytesAnywhereAreCorruption) {
  VectorSet set = IsotropicVectors(2500, kDim, 47);
  std::vector<uint8_t> good = SerializeOrDie(*PopulatedIndex(set));
  for (size_t pos = 0; pos < good.size(); pos += (pos < 128 ? 1 : 997)) {
    std::vector<uint8_t> bad = good;
    bad[pos] ^= 0x20;
    auto loaded = VectorIndex::Deserialize(bad, Params());
    ASSERT_FALSE(loaded.ok()) << "flip at " << pos;
    ASSERT_TRUE(loaded.status().IsCorruption()) << pos << ": " << loaded.status().ToString();
  }
}

TEST(VectorIndexSnapshot, TruncatedOrExtendedBufferIsCorruption) {
  VectorSet set = IsotropicVectors(2500, kDim, 48);
  std::vector<uint8_t> good = SerializeOrDie(*PopulatedIndex(set));
  for (size_t len = 0; len < good.size(); len += (len < 200 ? 1 : 1009)) {
    std::span<const uint8_t> cut(good.data(), len);
    auto loaded = VectorIndex::Deserialize(cut, Params());
    ASSERT_TRUE(loaded.status().IsCorruption()) << len << ": " << loaded.status().ToString();
  }
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  EXPECT_TRUE(VectorIndex::Deserialize(longer, Params()).status().IsCorruption());
}

// Past the checksum (as if the damage happened before it was computed), the body's own
// checks must still hold: every flip either loads or is Corruption, never a crash. Flat
// segments only: the FAISS blob's own fields are covered by the graph checks below.
TEST(VectorIndexSnapshot, DamagedBodyWithValidChecksumIsCorruptionOrHarmless) {
  VectorSet set = IsotropicVectors(300, kDim, 49);
  auto index = PopulatedIndex(set, /*exact=*/true);
  std::vector<uint8_t> good = SerializeOrDie(*index);
  size_t corrupt = 0;
  for (size_t pos = kSnapshotHeaderSize; pos < good.size(); pos += 3) {
    for (uint8_t mask : {0x01, 0x80}) {
      std::vector<uint8_t> bad = good;
      bad[pos] ^= mask;
      Reseal(bad);
      auto loaded = VectorIndex::Deserialize(bad, Params(/*exact=*/true));
      if (!loaded.ok()) {
        ASSERT_TRUE(loaded.status().IsCorruption()) << pos << ": " << loaded.status().ToString();
        ++corrupt;
      }
    }
  }
  EXPECT_GT(corrupt, 0u);
}

// Builds a snapshot around deliberately broken links and checks it is refused.
Status DecodeWithBrokenLinks(void (*breaker)(faiss::HNSW&)) {
  VectorSet set = IsotropicVectors(500, kDim, 50);
  auto built =
      BuildHnsw(set.data.data(), set.size(), kDim, {.m = 8, .ef_construction = 32}, nullptr);
  EXPECT_TRUE(built.ok());
  std::unique_ptr<HnswGraph> graph = std::move(built).value();
  breaker(graph->links);
  std::vector<uint64_t> slots(500);
  for (size_t i = 0; i < slots.size(); ++i) slots[i] = i;
  auto segment = std::make_shared<HnswSegment>(1, std::make_shared<Tombstones>(500),
                                               std::move(graph), slots, 16);
  std::vector<SegmentCapture> captures = {{segment, 500, std::vector<uint64_t>(8, 0)}};
  auto bytes = EncodeSnapshot(kDim, 499, captures);
  EXPECT_TRUE(bytes.ok());
  return VectorIndex::Deserialize(*bytes, Params()).status();
}

TEST(VectorIndexSnapshot, HnswLinksOutOfRangeAreCorruption) {
  EXPECT_TRUE(
      DecodeWithBrokenLinks([](faiss::HNSW& l) { l.neighbors[7] = 100000; }).IsCorruption());
  EXPECT_TRUE(DecodeWithBrokenLinks([](faiss::HNSW& l) { l.entry_point = 777; }).IsCorruption());
  EXPECT_TRUE(DecodeWithBrokenLinks([](faiss::HNSW& l) { l.levels[3] = 200; }).IsCorruption());
  EXPECT_TRUE(DecodeWithBrokenLinks([](faiss::HNSW& l) {
                l.cum_nneighbor_per_level[2] = 0;  // fewer neighbours up to level 2 than 1
              }).IsCorruption());
  // Control: unbroken links load.
  EXPECT_TRUE(DecodeWithBrokenLinks([](faiss::HNSW&) {}).ok());
}

TEST(VectorIndexSnapshot, AnHnswSegmentIsWrittenAsHalvesThenLinks) {
  // The version 2 layout of index/FORMAT.md, byte by byte.
  constexpr size_t n = 300;
  VectorSet set = IsotropicVectors(n, kDim, 51);
  auto built = BuildHnsw(set.data.data(), n, kDim, {.m = 8, .ef_construction = 32}, nullptr);
  ASSERT_TRUE(built.ok());
  const HnswGraph graph_copy = **built;
  std::vector<uint64_t> slots(n);
  for (size_t i = 0; i < n; ++i) slots[i] = 1000 + i;
  auto segment = std::make_shared<HnswSegment>(1, std::make_shared<Tombstones>(n),
                                               std::move(built).value(), slots, 16);
  std::vector<uint64_t> tombstones((n + 63) / 64, 0);
  tombstones[1] = 0b101;  // local ids 64 and 66
  auto bytes = EncodeSnapshot(kDim, 1299, {{segment, n, tombstones}});
  ASSERT_TRUE(bytes.ok());
  const uint8_t* p = bytes->data() + kSnapshotHeaderSize + 4 + 1 + 8 + 4;  // body header
  EXPECT_EQ(p[0], 2);                                                      // HNSW
  EXPECT_EQ(DecodeFixed64(p + 1), n);
  p += 1 + 8;
  for (size_t i = 0; i < n; ++i, p += 8) ASSERT_EQ(DecodeFixed64(p), 1000 + i);
  for (uint64_t word : tombstones) {
    EXPECT_EQ(DecodeFixed64(p), word);
    p += 8;
  }
  const faiss::HNSW& links = graph_copy.links;
  for (size_t i = 0; i < n * kDim; ++i, p += 2)
    ASSERT_EQ(DecodeFixed16(p), graph_copy.half.data()[i]);
  const size_t table = links.cum_nneighbor_per_level.size();
  EXPECT_EQ(DecodeFixed32(p), table);
  p += 4;
  for (int c : links.cum_nneighbor_per_level) {
    EXPECT_EQ(DecodeFixed32(p), static_cast<uint32_t>(c));
    p += 4;
  }
  for (double q : links.assign_probas) {
    EXPECT_EQ(DecodeFixed64(p), std::bit_cast<uint64_t>(q));
    p += 8;
  }
  EXPECT_EQ(DecodeFixed32(p), static_cast<uint32_t>(links.entry_point));
  EXPECT_EQ(DecodeFixed32(p + 4), static_cast<uint32_t>(links.max_level));
  p += 8;
  for (size_t i = 0; i < n; ++i, ++p) ASSERT_EQ(*p, static_cast<uint8_t>(links.levels[i]));
  for (int32_t v : links.neighbors) {
    ASSERT_EQ(DecodeFixed32(p), static_cast<uint32_t>(v));
    p += 4;
  }
  EXPECT_EQ(p, bytes->data() + bytes->size()) << "nothing follows the last segment";
}

// A version 1 snapshot (index/FORMAT.md) of one HNSW segment: float vectors and links in a
// FAISS IndexHNSWFlat blob, as sealcache wrote them before version 2.
std::vector<uint8_t> Version1Snapshot(const faiss::IndexHNSWFlat& index) {
  const size_t n = static_cast<size_t>(index.ntotal);
  std::vector<uint8_t> body;
  PutFixed32(body, kDim);
  PutFixed8(body, 1);
  PutFixed64(body, n - 1);
  PutFixed32(body, 1);
  PutFixed8(body, 2);  // HNSW
  PutFixed64(body, n);
  for (size_t i = 0; i < n; ++i) PutFixed64(body, i);
  for (size_t w = 0; w < (n + 63) / 64; ++w) PutFixed64(body, 0);
  faiss::VectorIOWriter writer;
  faiss::write_index(&index, &writer);
  PutFixed64(body, writer.data.size());
  PutBytes(body, writer.data);
  std::vector<uint8_t> out;
  PutBytes(out, kSnapshotMagic);
  PutFixed32(out, 1);
  PutFixed64(out, body.size());
  PutBytes(out, crypto::Sha256(body));
  PutBytes(out, body);
  return out;
}

std::unique_ptr<faiss::IndexHNSWFlat> FaissOwnHnsw(const VectorSet& set) {
  auto index = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(kDim), 16,
                                                      faiss::METRIC_INNER_PRODUCT);
  index->hnsw.efConstruction = 64;
  index->add(static_cast<faiss::Index::idx_t>(set.size()), set.data.data());
  return index;
}

TEST(VectorIndexSnapshot, Version1SnapshotsStillLoadAndAreRewrittenAsVersion2) {
  VectorSet set = IsotropicVectors(800, kDim, 52);
  auto loaded = VectorIndex::Deserialize(Version1Snapshot(*FaissOwnHnsw(set)), Params());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  VectorIndex& index = **loaded;
  EXPECT_EQ(index.Size(), set.size());
  EXPECT_EQ(index.Stats().hnsw_segments, 1u);
  size_t found = 0;
  for (size_t i = 0; i < set.size(); ++i) {
    std::vector<Hit> hits = SearchOrDie(index, set.row(i), 1);
    if (!hits.empty() && hits[0].slot == i) {
      ++found;
      EXPECT_NEAR(hits[0].score, 1.0f, 1.0f / 2048);
    }
  }
  EXPECT_GE(found, set.size() * 99 / 100);

  std::vector<uint8_t> rewritten = SerializeOrDie(index);
  uint32_t version = 0;
  std::memcpy(&version, rewritten.data() + 4, 4);
  EXPECT_EQ(version, 2u);
  auto again = VectorIndex::Deserialize(rewritten, Params());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ExpectSameAnswers(index, **again, IsotropicVectors(50, kDim, 53));
}

Status DecodeVersion1WithBrokenGraph(void (*breaker)(faiss::IndexHNSWFlat&)) {
  auto index = FaissOwnHnsw(IsotropicVectors(500, kDim, 54));
  breaker(*index);
  return VectorIndex::Deserialize(Version1Snapshot(*index), Params()).status();
}

TEST(VectorIndexSnapshot, Version1FaissIndexWithOutOfRangeGraphIsCorruption) {
  EXPECT_TRUE(DecodeVersion1WithBrokenGraph([](faiss::IndexHNSWFlat& i) {
                i.hnsw.neighbors[7] = 100000;
              }).IsCorruption());
  EXPECT_TRUE(DecodeVersion1WithBrokenGraph([](faiss::IndexHNSWFlat& i) {
                i.hnsw.entry_point = 777;
              }).IsCorruption());
  EXPECT_TRUE(DecodeVersion1WithBrokenGraph([](faiss::IndexHNSWFlat& i) {
                i.hnsw.levels.pop_back();
              }).IsCorruption());
  EXPECT_TRUE(DecodeVersion1WithBrokenGraph([](faiss::IndexHNSWFlat& i) {
                auto* flat = static_cast<faiss::IndexFlat*>(i.storage);
                flat->codes.resize(flat->codes.size() - 4);
              }).IsCorruption());
  // Control: an unbroken graph loads.
  EXPECT_TRUE(DecodeVersion1WithBrokenGraph([](faiss::IndexHNSWFlat&) {}).ok());
}

}  // namespace
}  // namespace sealcache::index
