#include "snapshot_format.h"

#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <exception>
#include <string>

#include "hnsw_segment.h"
#include "sealcache/crypto/hash.h"
#include "sealcache/encoding.h"
#include "simd_hnsw.h"

namespace sealcache::index {
namespace {

static_assert(std::endian::native == std::endian::little,
              "snapshots store floats as little-endian IEEE 754 by memcpy");

constexpr uint8_t kKindFlat = 1;
constexpr uint8_t kKindHnsw = 2;

void PutFloats(std::vector<uint8_t>& out, const float* v, size_t n) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(v);
  out.insert(out.end(), bytes, bytes + n * sizeof(float));
}

// The largest level table a snapshot may declare: FAISS's default for M >= 2 has ~30 levels.
constexpr uint32_t kMaxLevels = 64;

void PutHalves(std::vector<uint8_t>& out, const uint16_t* v, size_t n) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(v);
  out.insert(out.end(), bytes, bytes + n * sizeof(uint16_t));
}

// Version 2 HNSW segment body: index/FORMAT.md.
Status PutHnsw(const HnswGraph& graph, size_t n, std::vector<uint8_t>& out) {
  const faiss::HNSW& links = graph.links;
  if (graph.n != n || links.levels.size() != n || links.cum_nneighbor_per_level.empty() ||
      links.cum_nneighbor_per_level.size() > kMaxLevels ||
      links.assign_probas.size() + 1 != links.cum_nneighbor_per_level.size()) {
    return Status::Internal("snapshot: hnsw segment does not match its capture");
  }
  PutHalves(out, graph.half.data(), n * graph.d);
  PutFixed32(out, static_cast<uint32_t>(links.cum_nneighbor_per_level.size()));
  for (int c : links.cum_nneighbor_per_level) PutFixed32(out, static_cast<uint32_t>(c));
  for (double p : links.assign_probas) PutFixed64(out, std::bit_cast<uint64_t>(p));
  PutFixed32(out, static_cast<uint32_t>(links.entry_point));
  PutFixed32(out, static_cast<uint32_t>(links.max_level));
  for (int level : links.levels) PutFixed8(out, static_cast<uint8_t>(level));
  for (faiss::HNSW::storage_idx_t v : links.neighbors) PutFixed32(out, static_cast<uint32_t>(v));
  return Status::Ok();
}

Status EncodeSegment(const SegmentCapture& capture, size_t dimension, std::vector<uint8_t>& out) {
  const Segment& segment = *capture.segment;
  bool hnsw = segment.kind() == Segment::Kind::kHnsw;
  PutFixed8(out, hnsw ? kKindHnsw : kKindFlat);
  PutFixed64(out, capture.size);
  for (size_t local = 0; local < capture.size; ++local) PutFixed64(out, segment.slot(local));
  for (uint64_t word : capture.tombstone_words) PutFixed64(out, word);
  if (hnsw) return PutHnsw(static_cast<const HnswSegment&>(segment).graph(), capture.size, out);
  std::vector<float> vector(dimension);
  for (size_t local = 0; local < capture.size; ++local) {
    segment.CopyVector(local, vector.data());
    PutFloats(out, vector.data(), dimension);
  }
  return Status::Ok();
}

// faiss::read_index over the snapshot's bytes where they are: VectorIOReader would first
// copy the whole blob (the vectors, ~1.5 KB each) into a vector of its own.
class SpanReader final : public faiss::IOReader {
 public:
  explicit SpanReader(std::span<const uint8_t> data) : data_(data) {}
  size_t operator()(void* ptr, size_t size, size_t nitems) override {
    if (size == 0) return 0;
    size_t n = std::min(nitems, (data_.size() - position_) / size);
    std::memcpy(ptr, data_.data() + position_, n * size);
    position_ += n * size;
    return n;
  }
  size_t remaining() const { return data_.size() - position_; }

 private:
  std::span<const uint8_t> data_;
  size_t position_ = 0;
};

// Version 1: the links and float vectors of a FAISS IndexHNSWFlat blob.
Result<std::unique_ptr<HnswGraph>> ReadHnswBlob(std::span<const uint8_t> blob, size_t n,
                                                size_t dimension) {
  std::unique_ptr<faiss::Index> read;
  try {
    SpanReader reader(blob);
    read.reset(faiss::read_index(&reader));
    if (reader.remaining() != 0) {
      return Status::Corruption("snapshot: trailing bytes after the hnsw index");
    }
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("snapshot: faiss read_index: ") + e.what());
  }
  auto* hnsw = dynamic_cast<faiss::IndexHNSWFlat*>(read.get());
  if (hnsw == nullptr) return Status::Corruption("snapshot: faiss blob is not an IndexHNSWFlat");
  auto graph = FromFaissHnsw(*hnsw, n, dimension);
  if (!graph.ok()) return graph.status().WithContext("snapshot");
  return graph;
}

// Version 2: halves, then links (PutHnsw).
Result<std::unique_ptr<HnswGraph>> ReadHnsw(ByteReader& in, size_t n, size_t dimension) {
  auto graph = std::make_unique<HnswGraph>(dimension);
  graph->n = n;
  std::span<const uint8_t> bytes;
  if (n > in.remaining() / (dimension * sizeof(uint16_t)) ||
      !in.ReadBytes(n * dimension * sizeof(uint16_t), &bytes)) {
    return Status::Corruption("snapshot: truncated hnsw vectors");
  }
  graph->half.Grow(n);
  if (n > 0) std::memcpy(graph->half.MutableRow(0), bytes.data(), bytes.size());

  faiss::HNSW& links = graph->links;
  uint32_t table_size = 0;
  if (!in.ReadFixed32(&table_size) || table_size < 2 || table_size > kMaxLevels) {
    return Status::Corruption("snapshot: bad hnsw level table size");
  }
  links.cum_nneighbor_per_level.resize(table_size);
  for (int& c : links.cum_nneighbor_per_level) {
    uint32_t v = 0;
    in.ReadFixed32(&v);
    c = static_cast<int>(v);
  }
  links.assign_probas.resize(table_size - 1);
  for (double& p : links.assign_probas) {
    uint64_t v = 0;
    in.ReadFixed64(&v);
    p = std::bit_cast<double>(v);
  }
  uint32_t entry_point = 0, max_level = 0;
  in.ReadFixed32(&entry_point);
  in.ReadFixed32(&max_level);
  links.entry_point = static_cast<faiss::HNSW::storage_idx_t>(entry_point);
  links.max_level = static_cast<int>(max_level);
  if (in.failed() || n > in.remaining() || !in.ReadBytes(n, &bytes)) {
    return Status::Corruption("snapshot: truncated hnsw links");
  }
  for (int c : links.cum_nneighbor_per_level) {
    if (c < 0 || c > (1 << 16)) return Status::Corruption("snapshot: bad hnsw level table");
  }
  for (double p : links.assign_probas) {
    if (!(p >= 0.0 && p <= 1.0)) return Status::Corruption("snapshot: bad hnsw level odds");
  }
  links.levels.resize(n);
  links.offsets.assign(1, 0);
  links.offsets.reserve(n + 1);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t level = bytes[i];
    if (level < 1 || level >= table_size) {
      return Status::Corruption("snapshot: node " + std::to_string(i) + " has a bad level");
    }
    links.levels[i] = level;
    links.offsets.push_back(links.offsets.back() +
                            static_cast<size_t>(links.cum_nneighbor_per_level[level]));
  }
  const size_t neighbours = links.offsets.back();
  if (neighbours > in.remaining() / 4) return Status::Corruption("snapshot: truncated hnsw links");
  links.neighbors.resize(neighbours);
  for (faiss::HNSW::storage_idx_t& v : links.neighbors) {
    uint32_t id = 0;
    in.ReadFixed32(&id);
    v = static_cast<faiss::HNSW::storage_idx_t>(id);
  }
  SC_RETURN_IF_ERROR(ValidateLinks(links, n).WithContext("snapshot"));
  // The walk navigates on int8 codes of what it scores with: the halves.
  graph->codes.codes.Grow(n);
  graph->codes.scales.Grow(n);
  std::vector<float> vector(dimension);
  for (size_t i = 0; i < n; ++i) {
    graph->Vector(i, vector.data());
    *graph->codes.scales.MutableRow(i) =
        QuantizeInt8(vector.data(), dimension, graph->codes.codes.MutableRow(i));
  }
  return graph;
}

Status DecodeSegment(ByteReader& in, uint32_t version, size_t dimension, DecodedSegment& out) {
  uint8_t kind = 0;
  uint64_t n = 0;
  if (!in.ReadFixed8(&kind) || !in.ReadFixed64(&n)) {
    return Status::Corruption("snapshot: truncated segment header");
  }
  if (kind != kKindFlat && kind != kKindHnsw) {
    return Status::Corruption("snapshot: unknown segment kind " + std::to_string(kind));
  }
  // Each entry takes at least 8 bytes (its slot): bounds n before anything is allocated.
  if (n > in.remaining() / 8 || n > (uint64_t{1} << 31)) {
    return Status::Corruption("snapshot: segment size exceeds the buffer");
  }
  out.kind = kind == kKindFlat ? Segment::Kind::kFlat : Segment::Kind::kHnsw;
  out.slots.resize(n);
  for (uint64_t& slot : out.slots) in.ReadFixed64(&slot);
  out.tombstone_words.resize((n + 63) / 64);
  for (uint64_t& word : out.tombstone_words) in.ReadFixed64(&word);
  if (in.failed()) return Status::Corruption("snapshot: truncated slots or tombstones");
  if (n % 64 != 0 && (out.tombstone_words.back() >> (n % 64)) != 0) {
    return Status::Corruption("snapshot: tombstone bits past the segment end");
  }
  if (out.kind == Segment::Kind::kFlat) {
    std::span<const uint8_t> bytes;
    if (n > in.remaining() / (dimension * sizeof(float)) ||
        !in.ReadBytes(n * dimension * sizeof(float), &bytes)) {
      return Status::Corruption("snapshot: truncated flat vectors");
    }
    out.vectors.resize(n * dimension);
    std::memcpy(out.vectors.data(), bytes.data(), bytes.size());
    return Status::Ok();
  }
  if (version != kSnapshotFormatVersion1) {
    SC_ASSIGN_OR_RETURN(out.hnsw, ReadHnsw(in, n, dimension));
    return Status::Ok();
  }
  uint64_t blob_size = 0;
  std::span<const uint8_t> blob;
  if (!in.ReadFixed64(&blob_size) || blob_size > in.remaining() ||
      !in.ReadBytes(blob_size, &blob)) {
    return Status::Corruption("snapshot: truncated hnsw index");
  }
  SC_ASSIGN_OR_RETURN(out.hnsw, ReadHnswBlob(blob, n, dimension));
  return Status::Ok();
}

}  // namespace

void DecodedSegment::CopyVector(size_t local, size_t dimension, float* out) const {
  if (kind == Segment::Kind::kFlat) {
    std::copy_n(vectors.data() + local * dimension, dimension, out);
  } else {
    hnsw->Vector(local, out);
  }
}

Result<std::vector<uint8_t>> EncodeSnapshot(size_t dimension, std::optional<uint64_t> highest_slot,
                                            const std::vector<SegmentCapture>& segments) {
  std::vector<uint8_t> body;
  PutFixed32(body, static_cast<uint32_t>(dimension));
  PutFixed8(body, highest_slot.has_value() ? 1 : 0);
  PutFixed64(body, highest_slot.value_or(0));
  PutFixed32(body, static_cast<uint32_t>(segments.size()));
  for (const SegmentCapture& capture : segments) {
    SC_RETURN_IF_ERROR(EncodeSegment(capture, dimension, body));
  }
  std::vector<uint8_t> out;
  out.reserve(kSnapshotHeaderSize + body.size());
  PutBytes(out, kSnapshotMagic);
  PutFixed32(out, kSnapshotFormatVersion);
  PutFixed64(out, body.size());
  PutBytes(out, crypto::Sha256(body));
  PutBytes(out, body);
  return out;
}

Result<DecodedSnapshot> DecodeSnapshot(std::span<const uint8_t> bytes) {
  ByteReader header(bytes);
  std::span<const uint8_t> magic, digest, body;
  uint32_t version = 0;
  uint64_t body_size = 0;
  if (!header.ReadBytes(4, &magic) || !header.ReadFixed32(&version) ||
      !header.ReadFixed64(&body_size) || !header.ReadBytes(32, &digest)) {
    return Status::Corruption("snapshot: shorter than its header");
  }
  if (std::memcmp(magic.data(), kSnapshotMagic, 4) != 0) {
    return Status::Corruption("snapshot: bad magic (not a vector index snapshot)");
  }
  if (version != kSnapshotFormatVersion && version != kSnapshotFormatVersion1) {
    return Status::Corruption("snapshot: unsupported format version " + std::to_string(version));
  }
  if (body_size != header.remaining() || !header.ReadBytes(body_size, &body)) {
    return Status::Corruption("snapshot: length " + std::to_string(bytes.size()) +
                              " does not match the header");
  }
  crypto::Sha256Digest actual = crypto::Sha256(body);
  if (std::memcmp(actual.data(), digest.data(), actual.size()) != 0) {
    return Status::Corruption("snapshot: checksum mismatch");
  }

  ByteReader in(body);
  DecodedSnapshot snapshot;
  uint32_t dimension = 0, segment_count = 0;
  uint8_t has_highest = 0;
  uint64_t highest = 0;
  if (!in.ReadFixed32(&dimension) || !in.ReadFixed8(&has_highest) || !in.ReadFixed64(&highest) ||
      !in.ReadFixed32(&segment_count)) {
    return Status::Corruption("snapshot: truncated body header");
  }
  if (dimension == 0 || dimension > kMaxSnapshotDimension || has_highest > 1 ||
      segment_count > in.remaining()) {
    return Status::Corruption("snapshot: bad dimension, highest-slot flag or segment count");
  }
  snapshot.dimension = dimension;
  if (has_highest) snapshot.highest_slot = highest;
  snapshot.segments.resize(segment_count);
  for (uint32_t i = 0; i < segment_count; ++i) {
    SC_RETURN_IF_ERROR(DecodeSegment(in, version, dimension, snapshot.segments[i])
                           .WithContext("segment " + std::to_string(i)));
  }
  if (in.remaining() != 0) return Status::Corruption("snapshot: trailing bytes after segments");
  return snapshot;
}

}  // namespace sealcache::index
