#include "simd_hnsw.h"

#include <faiss/IndexHNSW.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <set>

#include "flat_segment.h"
#include "hnsw_segment.h"
#include "sealcache/index/inner_product.h"
#include "test_util.h"

namespace sealcache::index {
namespace {

using testing::ClusteredVectors;
using testing::IsotropicVectors;
using testing::VectorSet;

std::unique_ptr<HnswGraph> Build(const VectorSet& set, int ef_search = 64) {
  HnswBuildOptions options{.m = 16, .ef_construction = 64};
  auto built = BuildHnsw(set.data.data(), set.size(), set.d, options, nullptr);
  EXPECT_TRUE(built.ok()) << built.status().ToString();
  std::unique_ptr<HnswGraph> graph = std::move(built).value();
  graph->links.efSearch = ef_search;
  return graph;
}

// `set` with its first `n` vectors made lopsided: one coordinate carries most of the norm,
// which coarsens every other coordinate's int8 code.
VectorSet LopsidedFirst(VectorSet set, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    float* row = set.data.data() + i * set.d;
    row[i % set.d] = 8.0f;
    testing::NormalizeRow(row, set.d);
  }
  return set;
}

// The bound from inner_product.h: each half is within 2^-11 of its float, so a unit query's
// similarity to a unit vector moves by at most 2^-11.
constexpr float kHalfScoreError = 1.0f / 2048;

TEST(SimdHnsw, TheGraphKeepsEveryVectorInHalfPrecisionAndAsInt8Codes) {
  VectorSet set = IsotropicVectors(300, 48, 1);
  auto graph = Build(set);
  ASSERT_EQ(graph->n, set.size());
  ASSERT_EQ(graph->half.rows(), set.size());
  ASSERT_EQ(graph->half.width(), set.d);
  ASSERT_EQ(graph->codes.scales.rows(), set.size());
  std::vector<float> widened(set.d);
  for (size_t i = 0; i < set.size(); ++i) {
    graph->Vector(i, widened.data());
    for (size_t j = 0; j < set.d; ++j) {
      ASSERT_EQ(widened[j], HalfToFloat(FloatToHalf(set.row(i)[j])));
    }
    ASSERT_NEAR(graph->Similarity(set.row(5).data(), i),
                InnerProductScalar(set.row(5).data(), set.row(i).data(), set.d), kHalfScoreError);
  }
}

TEST(SimdHnsw, OurGraphFindsWhatFaissOwnHnswFinds) {
  // FAISS's own construction and search (scalar distances in Debian's build) are the
  // reference: ours builds on int8 codes and scores with halves, and must agree on the
  // nearest neighbour of nearly every query.
  VectorSet set = IsotropicVectors(3000, 64, 2);
  auto graph = Build(set);
  omp_set_num_threads(1);
  faiss::IndexHNSWFlat faiss_own(64, 16, faiss::METRIC_INNER_PRODUCT);
  faiss_own.hnsw.efConstruction = 64;
  faiss_own.hnsw.efSearch = 64;
  faiss_own.add(static_cast<faiss::Index::idx_t>(set.size()), set.data.data());
  VectorSet queries = IsotropicVectors(200, 64, 3);
  size_t same = 0;
  for (size_t q = 0; q < queries.size(); ++q) {
    float ours_score, faiss_score;
    int64_t ours_label;
    faiss::Index::idx_t faiss_label;
    ASSERT_TRUE(
        SearchHnsw(*graph, queries.row(q).data(), 1, nullptr, &ours_score, &ours_label).ok());
    faiss_own.search(1, queries.row(q).data(), 1, &faiss_score, &faiss_label);
    same += ours_label == faiss_label;
  }
  EXPECT_GE(same, 190u);
}

TEST(SimdHnsw, SearchFindsEachStoredVectorAsItsOwnNearestNeighbour) {
  VectorSet set = IsotropicVectors(2000, 32, 4);
  auto graph = Build(set);
  size_t found = 0;
  for (size_t i = 0; i < set.size(); ++i) {
    float score;
    int64_t label;
    ASSERT_TRUE(SearchHnsw(*graph, set.row(i).data(), 1, nullptr, &score, &label).ok());
    if (label == static_cast<int64_t>(i)) {
      ++found;
      EXPECT_NEAR(score, 1.0f, kHalfScoreError);
    }
  }
  EXPECT_GE(found, set.size() * 99 / 100);
}

TEST(SimdHnsw, SelectorExcludesIdsInsideTheGraphWalk) {
  VectorSet set = IsotropicVectors(2000, 32, 5);
  auto graph = Build(set);
  struct EvenOnly : faiss::IDSelector {
    bool is_member(idx_t id) const override { return id % 2 == 0; }
  } even;
  std::vector<float> scores(10);
  std::vector<int64_t> labels(10);
  for (size_t q = 1; q < 200; q += 2) {
    ASSERT_TRUE(
        SearchHnsw(*graph, set.row(q).data(), 10, &even, scores.data(), labels.data()).ok());
    for (int64_t label : labels) {
      ASSERT_GE(label, 0);
      EXPECT_EQ(label % 2, 0);
    }
  }
}

// What a walk relies on in every list the construction writes: ids in range, on the list's
// level, packed from the front (a walk stops at the first -1), never the node itself and
// never twice.
TEST(SimdHnsw, ConstructionWritesPackedListsWithoutSelfOrRepeatedLinks) {
  VectorSet set = IsotropicVectors(4000, 32, 9);
  auto base = Build(set);
  auto extended = ExtendHnsw(*base, set.row(0).data(), 1000, {.m = 16, .ef_construction = 64},
                             nullptr);  // the same vectors again: exact duplicates
  ASSERT_TRUE(extended.ok()) << extended.status().ToString();
  for (const HnswGraph* graph : {base.get(), extended->get()}) {
    const faiss::HNSW& g = graph->links;
    ASSERT_TRUE(ValidateLinks(g, graph->n).ok());
    size_t level0_links = 0;
    for (size_t i = 0; i < graph->n; ++i) {
      for (int level = 0; level < g.levels[i]; ++level) {
        size_t begin, end;
        g.neighbor_range(static_cast<faiss::HNSW::idx_t>(i), level, &begin, &end);
        std::set<int32_t> seen;
        bool ended = false;
        for (size_t j = begin; j < end; ++j) {
          const int32_t v = g.neighbors[j];
          if (v < 0) {
            ended = true;
            continue;
          }
          ASSERT_FALSE(ended) << "node " << i << " level " << level << ": a link after a -1";
          ASSERT_NE(v, static_cast<int32_t>(i)) << "node " << i << " links to itself";
          ASSERT_TRUE(seen.insert(v).second) << "node " << i << " links to " << v << " twice";
          level0_links += level == 0;
        }
      }
    }
    // Nodes are linked, and pruning drops links: level-0 lists (degree 32) average 26 here.
    EXPECT_GT(level0_links, graph->n * 16);
    EXPECT_LT(level0_links, graph->n * 30);
  }
}

TEST(SimdHnsw, BuildStopsWhenCancelled) {
  VectorSet set = IsotropicVectors(5000, 16, 6);
  std::atomic<bool> cancel{true};
  auto built = BuildHnsw(set.data.data(), set.size(), set.d, {}, &cancel);
  ASSERT_FALSE(built.ok());
  EXPECT_EQ(built.status().code(), Status::Code::kFailedPrecondition);
}

// Every row of `rows`, as one array.
template <typename T>
std::vector<T> AllRows(const SharedRows<T>& rows) {
  return {rows.data(), rows.data() + rows.rows() * rows.width()};
}

// Half-precision vectors and codes of a graph, to check that no version changes another's.
struct GraphRows {
  std::vector<uint16_t> half;
  std::vector<int8_t> codes;
  std::vector<float> scales;
  explicit GraphRows(const HnswGraph& g)
      : half(AllRows(g.half)), codes(AllRows(g.codes.codes)), scales(AllRows(g.codes.scales)) {}
  bool operator==(const GraphRows&) const = default;
};

// How many of rows [first, last) of `set` the graph finds as their own nearest.
size_t FoundAsTheirOwnNearest(HnswGraph& graph, const VectorSet& set, size_t first, size_t last) {
  graph.links.efSearch = 64;
  size_t found = 0;
  for (size_t i = first; i < last; ++i) {
    float score;
    int64_t label;
    EXPECT_TRUE(SearchHnsw(graph, set.row(i).data(), 1, nullptr, &score, &label).ok());
    found += label == static_cast<int64_t>(i);
  }
  return found;
}

TEST(SimdHnsw, ExtendingAddsTheNewVectorsAndLeavesTheBaseAsItWas) {
  VectorSet set = IsotropicVectors(3000, 32, 8);
  auto base = BuildHnsw(set.data.data(), 2000, set.d, {.m = 16, .ef_construction = 64}, nullptr);
  ASSERT_TRUE(base.ok());
  const GraphRows base_rows(**base);
  const std::vector<int32_t> base_neighbors = (*base)->links.neighbors;
  auto extended =
      ExtendHnsw(**base, set.row(2000).data(), 1000, {.m = 16, .ef_construction = 64}, nullptr);
  ASSERT_TRUE(extended.ok()) << extended.status().ToString();
  EXPECT_EQ((*base)->n, 2000u);
  EXPECT_EQ(GraphRows(**base), base_rows);
  EXPECT_EQ((*base)->links.neighbors, base_neighbors);
  HnswGraph& graph = **extended;
  ASSERT_EQ(graph.n, 3000u);
  ASSERT_TRUE(ValidateLinks(graph.links, 3000).ok());
  EXPECT_GE(FoundAsTheirOwnNearest(graph, set, 0, 3000), 2970u);
}

// A seal extends the newest version of a graph while readers walk it: the extension appends
// to the rows it shares with that version. Extending an older version again (or the same one
// twice) must copy instead, or the two extensions would write the same rows.
TEST(SimdHnsw, ExtensionsShareTheirBasesRowsAndASecondExtensionOfOneBaseCopiesThem) {
  VectorSet set = IsotropicVectors(2500, 32, 9);
  const HnswBuildOptions options{.m = 16, .ef_construction = 64};
  // A built graph has room for as many rows again.
  auto base = BuildHnsw(set.data.data(), 1000, set.d, options, nullptr);
  ASSERT_TRUE(base.ok());
  auto first = ExtendHnsw(**base, set.row(1000).data(), 500, options, nullptr);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE((*first)->half.SharesBlockWith((*base)->half));
  EXPECT_TRUE((*first)->codes.codes.SharesBlockWith((*base)->codes.codes));
  EXPECT_TRUE((*first)->codes.scales.SharesBlockWith((*base)->codes.scales));
  const GraphRows base_rows(**base), first_rows(**first);

  // `base` extended again, with other vectors: its rows past 1000 are the first's.
  auto again = ExtendHnsw(**base, set.row(2000).data(), 500, options, nullptr);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE((*again)->half.SharesBlockWith((*base)->half));
  EXPECT_FALSE((*again)->codes.codes.SharesBlockWith((*base)->codes.codes));
  EXPECT_FALSE((*again)->codes.scales.SharesBlockWith((*base)->codes.scales));

  // The newest version still extends in place.
  auto second = ExtendHnsw(**first, set.row(1500).data(), 500, options, nullptr);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE((*second)->half.SharesBlockWith((*first)->half));

  EXPECT_EQ(GraphRows(**base), base_rows);
  EXPECT_EQ(GraphRows(**first), first_rows);
  EXPECT_EQ(GraphRows(**second).half.size(), 2000 * set.d);
  // Each extension holds its own vectors past 1000 and finds them.
  VectorSet again_set = set;  // rows 1000.. of `again` are the set's rows 2000..
  std::copy(set.row(2000).data(), set.row(2000).data() + 500 * set.d,
            again_set.data.begin() + 1000 * set.d);
  std::vector<float> widened(set.d);
  for (size_t i = 1000; i < 1500; ++i) {
    (*second)->Vector(i, widened.data());
    ASSERT_EQ(widened[0], HalfToFloat(FloatToHalf(set.row(i)[0])));
    (*again)->Vector(i, widened.data());
    ASSERT_EQ(widened[0], HalfToFloat(FloatToHalf(again_set.row(i)[0])));
  }
  EXPECT_GE(FoundAsTheirOwnNearest(**second, set, 0, 2000), 1980u);
  EXPECT_GE(FoundAsTheirOwnNearest(**again, again_set, 0, 1500), 1485u);
}

// Extending continues the build exactly: the level draws, the entry point and every list
// come out as if all the vectors had been built at once (so nothing of the base's links or
// its level generator is lost in the copy an extension starts from).
TEST(SimdHnsw, ABuildExtendedEqualsOneBuildOfAllItsVectors) {
  VectorSet set = IsotropicVectors(3000, 32, 12);
  const HnswBuildOptions options{.m = 8, .ef_construction = 32};
  auto whole = BuildHnsw(set.data.data(), 3000, set.d, options, nullptr);
  auto part = BuildHnsw(set.data.data(), 1800, set.d, options, nullptr);
  ASSERT_TRUE(whole.ok() && part.ok());
  auto extended = ExtendHnsw(**part, set.row(1800).data(), 700, options, nullptr);
  ASSERT_TRUE(extended.ok());
  extended = ExtendHnsw(**extended, set.row(2500).data(), 500, options, nullptr);
  ASSERT_TRUE(extended.ok());
  const faiss::HNSW& a = (*whole)->links;
  const faiss::HNSW& b = (*extended)->links;
  EXPECT_EQ(b.levels, a.levels);
  EXPECT_EQ(b.offsets, a.offsets);
  EXPECT_EQ(b.neighbors, a.neighbors);
  EXPECT_EQ(b.entry_point, a.entry_point);
  EXPECT_EQ(b.max_level, a.max_level);
  EXPECT_EQ(b.efSearch, a.efSearch);
  EXPECT_EQ(b.cum_nneighbor_per_level, a.cum_nneighbor_per_level);
  EXPECT_EQ(GraphRows(**extended), GraphRows(**whole));
  // Nor is it held with room to spare (growing the copy doubled the array once).
  EXPECT_LT(b.neighbors.capacity(), b.neighbors.size() * 11 / 10);
}

// The memo only spares products: extending with the memo of the base's build (or of the
// last extension) links exactly as extending without one, through several extensions; a
// memo of another graph's size is discarded rather than read.
TEST(SimdHnsw, ExtendingWithTheBasesLinkMemoBuildsTheSameLinksAsWithout) {
  VectorSet set = IsotropicVectors(4000, 32, 11);
  const HnswBuildOptions options{.m = 8, .ef_construction = 32};
  LinkMemo memo;
  auto with = BuildHnsw(set.data.data(), 1000, set.d, options, nullptr, &memo);
  auto without = BuildHnsw(set.data.data(), 1000, set.d, options, nullptr);
  ASSERT_TRUE(with.ok() && without.ok());
  ASSERT_EQ(memo.similarity.size(), (*with)->links.neighbors.size());
  ASSERT_EQ(memo.checked.size(), (*with)->links.neighbors.size());
  for (size_t first : {1000u, 1500u, 1600u, 2600u}) {
    const size_t n = first == 1500u ? 100u : (first == 1600u ? 1000u : 500u);
    auto next_with = ExtendHnsw(**with, set.row(first).data(), n, options, nullptr, &memo);
    auto next_without = ExtendHnsw(**without, set.row(first).data(), n, options, nullptr);
    ASSERT_TRUE(next_with.ok() && next_without.ok());
    with = std::move(next_with);
    without = std::move(next_without);
    ASSERT_EQ((*with)->links.neighbors, (*without)->links.neighbors) << "after " << first + n;
    ASSERT_EQ(memo.similarity.size(), (*with)->links.neighbors.size());
  }
  size_t known = 0;
  for (size_t j = 0; j < memo.similarity.size(); ++j) {
    known += !std::isnan(memo.similarity[j]) && (*with)->links.neighbors[j] >= 0;
  }
  EXPECT_GT(known, 0u);

  LinkMemo other_graphs{.similarity = std::vector<float>(7, 2.0f),
                        .checked = std::vector<uint8_t>(7, 1)};
  auto with_other = ExtendHnsw(**with, set.row(3100).data(), 900, options, nullptr, &other_graphs);
  auto plain = ExtendHnsw(**without, set.row(3100).data(), 900, options, nullptr);
  ASSERT_TRUE(with_other.ok() && plain.ok());
  EXPECT_EQ((*with_other)->links.neighbors, (*plain)->links.neighbors);
  EXPECT_EQ(other_graphs.similarity.size(), (*plain)->links.neighbors.size());
}

// A graph version that is dropped hands its neighbour array to its SpareLinks, and a later
// extension copies its base's links into that array instead of a new one (whose pages the
// kernel would fault in and zero), with the same links as without; the kept array is freed on
// Clear.
TEST(SimdHnsw, ExtensionsCopyLinksIntoTheArrayOfADroppedVersion) {
  VectorSet set = IsotropicVectors(3000, 32, 13);
  const HnswBuildOptions options{.m = 8, .ef_construction = 32};
  auto spare = std::make_shared<SpareLinks>();
  auto with = BuildHnsw(set.data.data(), 2000, set.d, options, nullptr);
  auto without = BuildHnsw(set.data.data(), 2000, set.d, options, nullptr);
  ASSERT_TRUE(with.ok() && without.ok());
  (*with)->spare_links = spare;
  std::vector<const int32_t*> arrays;  // of the versions `with` went through, oldest first
  for (size_t first = 2000; first < 3000; first += 100) {
    arrays.push_back((*with)->links.neighbors.data());
    auto next_with =
        ExtendHnsw(**with, set.row(first).data(), 100, options, nullptr, nullptr, spare.get());
    auto next_without = ExtendHnsw(**without, set.row(first).data(), 100, options, nullptr);
    ASSERT_TRUE(next_with.ok() && next_without.ok());
    (*next_with)->spare_links = spare;
    with = std::move(next_with);  // the version before is dropped: its array becomes the spare
    without = std::move(next_without);
    ASSERT_EQ((*with)->links.neighbors, (*without)->links.neighbors) << "after " << first + 100;
    ASSERT_EQ((*with)->links.offsets, (*without)->links.offsets);
  }
  // The built graph's array is exactly its size, too small for the next extension; after
  // that, an extension takes the array its base's base had until that has no room left (each
  // extension adds ~5% of the links here, against ~1% a seal at 100k): 5 of the 8 here.
  size_t reused = 0;
  for (size_t v = 2; v < arrays.size(); ++v) reused += arrays[v] == arrays[v - 2];
  EXPECT_GE(reused, 4u);

  spare->Clear();
  EXPECT_EQ(spare->Take().capacity(), 0u);
}

TEST(SimdHnsw, ACancelledExtensionLeavesItsBaseToBeExtendedAgain) {
  VectorSet set = IsotropicVectors(3000, 32, 10);
  const HnswBuildOptions options{.m = 16, .ef_construction = 64, .batch = 1};
  auto first = BuildHnsw(set.data.data(), 2000, set.d, options, nullptr);
  ASSERT_TRUE(first.ok());
  const GraphRows first_rows(**first);
  std::atomic<bool> cancel{true};
  EXPECT_FALSE(ExtendHnsw(**first, set.row(2000).data(), 1000, options, &cancel).ok());
  auto retried = ExtendHnsw(**first, set.row(2000).data(), 1000, options, nullptr);
  ASSERT_TRUE(retried.ok());
  EXPECT_FALSE((*retried)->half.SharesBlockWith((*first)->half));
  EXPECT_EQ(GraphRows(**first), first_rows);
  EXPECT_GE(FoundAsTheirOwnNearest(**retried, set, 0, 3000), 2970u);
}

TEST(SimdHnsw, ValidationRejectsLinksAWalkCouldFollowOutOfBounds) {
  VectorSet set = IsotropicVectors(400, 16, 7);
  auto graph = Build(set);
  faiss::HNSW& links = graph->links;
  ASSERT_TRUE(ValidateLinks(links, 400).ok());
  EXPECT_TRUE(ValidateLinks(links, 401).IsCorruption());

  int saved = links.neighbors[3];
  links.neighbors[3] = 400;
  EXPECT_TRUE(ValidateLinks(links, 400).IsCorruption());
  links.neighbors[3] = saved;

  auto saved_entry = links.entry_point;
  links.entry_point = 1000;
  EXPECT_TRUE(ValidateLinks(links, 400).IsCorruption());
  links.entry_point = saved_entry;

  links.assign_probas.push_back(0.5);  // a level the table has no neighbour count for
  EXPECT_TRUE(ValidateLinks(links, 400).IsCorruption());
  links.assign_probas.pop_back();

  links.levels[10] += 5;
  EXPECT_TRUE(ValidateLinks(links, 400).IsCorruption());
}

// The int8 walk re-scores with the halves: the same nearest neighbours as a walk on the
// halves, and scores from the halves, not the codes.
TEST(SimdHnsw, Int8WalkFindsTheSameNeighboursAsAWalkOnTheHalves) {
  VectorSet set = IsotropicVectors(3000, 64, 21);
  auto graph = Build(set);
  size_t same = 0;
  for (size_t i = 0; i < 300; ++i) {
    float h_score, c_score;
    int64_t h_label, c_label;
    ASSERT_TRUE(
        SearchHnsw(*graph, set.row(i).data(), 1, nullptr, &h_score, &h_label, WalkOn::kHalf).ok());
    ASSERT_TRUE(
        SearchHnsw(*graph, set.row(i).data(), 1, nullptr, &c_score, &c_label, WalkOn::kCodes).ok());
    same += h_label == c_label;
    if (c_label == static_cast<int64_t>(i)) {
      EXPECT_EQ(c_score, graph->Similarity(set.row(i).data(), i));
    }
  }
  EXPECT_GE(same, 297u);
}

TEST(SimdHnsw, Int8ScoresStayWithinTheirErrorBoundOfTheHalfScores) {
  // The bound lets a walk on codes skip re-scoring nodes that cannot be among the best, so it
  // must hold for every vector and every query, also the lopsided ones whose large
  // coordinate coarsens every other coordinate's code.
  const size_t d = 384;
  VectorSet set = LopsidedFirst(IsotropicVectors(400, d, 31), 100);
  auto graph = Build(set);
  const HalfInnerProductFn half_ip = HalfInnerProductFunction();
  VectorSet queries = IsotropicVectors(50, d, 32);
  float worst_ratio = 0.0f;
  for (size_t q = 0; q < queries.size() + 120; ++q) {  // then 100 lopsided and 20 others
    const float* query = q < queries.size() ? queries.row(q).data() : set.row(q - 50).data();
    const Int8Query walked = Int8Query::Of(query, d);
    for (size_t i = 0; i < set.size(); ++i) {
      const float int8 = walked.Similarity(graph->codes, i, d);
      const float half = half_ip(query, graph->Half(i), d);
      const float bound = walked.ErrorBound(graph->codes.Scale(i));
      ASSERT_LE(std::fabs(int8 - half), bound) << "query " << q << " vector " << i;
      worst_ratio = std::max(worst_ratio, std::fabs(int8 - half) / bound);
    }
  }
  // Not so loose that it re-scores everything: the typical error is far inside it.
  EXPECT_LT(worst_ratio, 0.5f);
}

TEST(SimdHnsw, RankingOnlyTheBestKGivesTheHitsRankingEveryKeptNodeGives) {
  // Isotropic vectors keep many nodes within the int8 error of each other: the case where
  // skipping a re-score could change the answer if the bound were wrong.
  VectorSet set = IsotropicVectors(3000, 64, 33);
  auto graph = Build(set, 48);
  VectorSet queries = IsotropicVectors(100, 64, 34);
  std::vector<GraphHit> all, best;
  struct NotAThird : faiss::IDSelector {
    bool is_member(idx_t id) const override { return id % 3 != 0; }
  } not_third;
  for (size_t q = 0; q < queries.size(); ++q) {
    for (size_t k : {1, 2, 3, 5, 10, 47}) {
      ASSERT_TRUE(WalkHnsw(*graph, queries.row(q).data(), k, {.ranked = kAllKept}, all).ok());
      ASSERT_TRUE(WalkHnsw(*graph, queries.row(q).data(), k, {}, best).ok());
      ASSERT_EQ(all.size(), 48u);
      ASSERT_EQ(best.size(), k);
      for (size_t i = 0; i < k; ++i) {
        ASSERT_EQ(best[i].label, all[i].label) << "query " << q << " k " << k << " rank " << i;
        ASSERT_EQ(best[i].score, all[i].score);
      }
      // A filter checked after the walk: the best k it admits, in the order of all kept.
      std::vector<GraphHit> admitted;
      for (const GraphHit& h : all) {
        if (h.label % 3 != 0 && admitted.size() < k) admitted.push_back(h);
      }
      ASSERT_TRUE(WalkHnsw(*graph, queries.row(q).data(), k, {.rank_only = &not_third}, best).ok());
      ASSERT_EQ(best.size(), admitted.size());
      for (size_t i = 0; i < admitted.size(); ++i) {
        ASSERT_EQ(best[i].label, admitted[i].label) << "query " << q << " k " << k;
        ASSERT_EQ(best[i].score, admitted[i].score);
      }
    }
  }
}

// The answers of `hits` at or above `min_score`, as a threshold query's caller keeps them.
std::vector<GraphHit> AtOrAbove(const std::vector<GraphHit>& hits, float min_score) {
  std::vector<GraphHit> out;
  for (const GraphHit& h : hits) {
    if (h.score >= min_score) out.push_back(h);
  }
  return out;
}

void ExpectSameHits(const std::vector<GraphHit>& a, const std::vector<GraphHit>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].label, b[i].label) << "rank " << i;
    EXPECT_EQ(a[i].score, b[i].score) << "rank " << i;
  }
}

// A query walked without a threshold and with `min_score`, and how many graph walks the
// thresholded one took.
struct BothWalks {
  std::vector<GraphHit> full, thresholded;
  size_t walks = 0;
  bool complete = false;  // WalkOptions::complete of the thresholded walk
};
BothWalks WalkBoth(const HnswGraph& graph, const float* query, size_t k, float min_score) {
  BothWalks out;
  EXPECT_TRUE(WalkHnsw(graph, query, k, {}, out.full).ok());
  WalkStats stats;
  EXPECT_TRUE(WalkHnsw(graph, query, k,
                       {.min_score = min_score, .stats = &stats, .complete = &out.complete},
                       out.thresholded)
                  .ok());
  out.walks = stats.walks;
  return out;
}

TEST(SimdHnsw, AThresholdQueryWithAnAnswerIsAnsweredByItsShortWalk) {
  // Near duplicates of stored vectors (cosine ~0.99): the short beam reaches past the
  // threshold, so one walk answers, with the answers above the threshold of a full walk.
  constexpr size_t kD = 64;
  constexpr float kMinScore = 0.9f;
  VectorSet set = ClusteredVectors(4000, kD, 41, 0, 100);
  auto graph = Build(set, 48);
  std::mt19937 rng(42);
  std::normal_distribution<float> noise(0.0f, 0.02f);
  for (size_t source = 0; source < set.size(); source += 20) {
    std::vector<float> query(set.row(source).begin(), set.row(source).end());
    for (float& x : query) x += noise(rng);
    testing::NormalizeRow(query.data(), kD);
    for (size_t k : {1, 3, 5}) {
      const BothWalks walked = WalkBoth(*graph, query.data(), k, kMinScore);
      EXPECT_EQ(walked.walks, 1u) << "source " << source;
      ASSERT_FALSE(walked.thresholded.empty());
      EXPECT_EQ(walked.thresholded[0].label, static_cast<int64_t>(source));
      ExpectSameHits(AtOrAbove(walked.thresholded, kMinScore), AtOrAbove(walked.full, kMinScore));
      // Fewer than k come back when fewer may reach the threshold, and the walk says they
      // are all.
      EXPECT_TRUE(walked.thresholded.size() == k || walked.complete) << "source " << source;
    }
  }
}

TEST(SimdHnsw, AThresholdQueryWithoutAnAnswerOrWithMoreThanItsShortBeamIsWalkedInFull) {
  constexpr size_t kD = 64;
  constexpr float kMinScore = 0.9f;
  VectorSet set = ClusteredVectors(4000, kD, 43, 0, 100);
  // 30 near-copies of vector 7: more answers above the threshold than a short beam holds.
  std::mt19937 rng(44);
  std::normal_distribution<float> noise(0.0f, 0.005f);
  for (int copy = 0; copy < 30; ++copy) {
    std::vector<float> v(set.row(7).begin(), set.row(7).end());
    for (float& x : v) x += noise(rng);
    testing::NormalizeRow(v.data(), kD);
    set.data.insert(set.data.end(), v.begin(), v.end());
  }
  auto graph = Build(set, 48);
  VectorSet misses = IsotropicVectors(100, kD, 45);  // best cosine far below the threshold
  std::vector<std::vector<float>> queries;
  for (size_t q = 0; q < misses.size(); ++q) {
    queries.emplace_back(misses.row(q).begin(), misses.row(q).end());
  }
  queries.emplace_back(set.row(7).begin(), set.row(7).end());
  for (const std::vector<float>& query : queries) {
    for (size_t k : {1, 5}) {
      const BothWalks walked = WalkBoth(*graph, query.data(), k, kMinScore);
      EXPECT_EQ(walked.walks, 2u);
      ExpectSameHits(AtOrAbove(walked.thresholded, kMinScore), AtOrAbove(walked.full, kMinScore));
    }
  }
  // A threshold of -1 keeps every node: one walk, the full one.
  for (const std::vector<float>& query : {queries.front(), queries.back()}) {
    const BothWalks walked = WalkBoth(*graph, query.data(), 3, -1.0f);
    EXPECT_EQ(walked.walks, 1u);
    ExpectSameHits(walked.thresholded, walked.full);
  }
  // The near-copies are answers: the full walk returns k of them.
  std::vector<GraphHit> hits;
  ASSERT_TRUE(WalkHnsw(*graph, queries.back().data(), 5, {.min_score = kMinScore}, hits).ok());
  EXPECT_EQ(AtOrAbove(hits, kMinScore).size(), 5u);
}

TEST(FlatSegment, AScanOnCodesReturnsTheHitsOfTheFloatScan) {
  // The scan skips the float score of vectors whose code score plus its error bound cannot
  // make the top k: the hits must be exactly those of scoring every vector in float, also
  // among isotropic near-ties, lopsided vectors, tombstones and a filter.
  const size_t d = 384;
  VectorSet set = LopsidedFirst(IsotropicVectors(1500, d, 51), 100);
  FlatSegment segment(1, d, set.size());
  for (size_t i = 0; i < set.size(); ++i) segment.Append(1000 + i, set.row(i).data());
  for (size_t i = 0; i < set.size(); i += 7) segment.tombstones()->Set(i);
  FunctionFilter not_fifth([](uint64_t slot) { return slot % 5 != 0; });
  VectorSet queries = IsotropicVectors(20, d, 52);
  for (size_t q = 0; q < queries.size() + 10; ++q) {  // then 10 lopsided stored vectors
    const float* query = q < queries.size() ? queries.row(q).data() : set.row(q * 3).data();
    for (size_t k : {1, 5, 50}) {
      for (float min_score : {-1.0f, 0.05f, 0.9f}) {
        for (const Filter* filter :
             {static_cast<const Filter*>(nullptr), static_cast<const Filter*>(&not_fifth)}) {
          TopK scanned(k, min_score), exact(k, min_score);
          segment.Search(query, Int8Query::Of(query, d), filter, scanned);
          segment.ExactScan(query, segment.size(), filter, exact);
          std::vector<Hit> got = std::move(scanned).Take(), want = std::move(exact).Take();
          ASSERT_EQ(got.size(), want.size()) << "query " << q << " k " << k;
          for (size_t i = 0; i < want.size(); ++i) {
            ASSERT_EQ(got[i].slot, want[i].slot) << "query " << q << " k " << k << " rank " << i;
            ASSERT_EQ(got[i].score, want[i].score);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace sealcache::index
