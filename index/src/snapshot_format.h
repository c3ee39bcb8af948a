// Encoding and decoding of VectorIndex snapshots; the byte layout is in index/FORMAT.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "sealcache/status.h"
#include "segment.h"
#include "simd_hnsw.h"

namespace sealcache::index {

inline constexpr uint8_t kSnapshotMagic[4] = {'S', 'C', 'V', 'X'};
// Version 2 keeps a sealed (HNSW) segment's vectors in half precision and its links in our
// own layout; version 1 (float vectors inside a FAISS blob) is still read.
inline constexpr uint32_t kSnapshotFormatVersion = 2;
inline constexpr uint32_t kSnapshotFormatVersion1 = 1;
inline constexpr size_t kSnapshotHeaderSize = 4 + 4 + 8 + 32;
// Largest dimension a snapshot may declare; bounds allocations made from a header.
inline constexpr uint32_t kMaxSnapshotDimension = 1 << 16;

// One segment as captured under the writer lock: the first `size` entries and the
// tombstone bits as they were then.
struct SegmentCapture {
  std::shared_ptr<const Segment> segment;
  size_t size = 0;
  std::vector<uint64_t> tombstone_words;  // (size + 63) / 64 words
};

Result<std::vector<uint8_t>> EncodeSnapshot(size_t dimension, std::optional<uint64_t> highest_slot,
                                            const std::vector<SegmentCapture>& segments);

struct DecodedSegment {
  Segment::Kind kind = Segment::Kind::kFlat;
  std::vector<uint64_t> slots;
  std::vector<uint64_t> tombstone_words;
  std::vector<float> vectors;       // kFlat: slots.size() x dimension
  std::unique_ptr<HnswGraph> hnsw;  // kHnsw: validated

  bool removed(size_t local) const { return (tombstone_words[local / 64] >> (local % 64)) & 1; }
  void CopyVector(size_t local, size_t dimension, float* out) const;
};

struct DecodedSnapshot {
  size_t dimension = 0;
  std::optional<uint64_t> highest_slot;
  std::vector<DecodedSegment> segments;
};

// Corruption for anything that does not check out: magic, version, length, checksum, sizes,
// the HNSW links (and, in version 1, the FAISS blobs that hold them).
Result<DecodedSnapshot> DecodeSnapshot(std::span<const uint8_t> bytes);

}  // namespace sealcache::index
