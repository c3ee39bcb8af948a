// The body of a format v2 encrypted file (storage/FORMAT.md): authenticated AES-256-GCM
// chunks for files read at any offset (SSTs, index snapshots), authenticated append-only
// frames for files written by appending and syncing (the WAL). Private to storage/.
//
// Chunks: chunk i holds plaintext bytes [i*C, (i+1)*C) of the file; the last chunk, always
// present, is the "final" chunk and holds fewer than C bytes (possibly none), so the logical
// size follows from the physical size alone. Each chunk is nonce(12) | ciphertext | tag(16)
// with a random nonce, sealed under a key derived from the file's data key, over the file
// id, kind, chunk index, final flag and (final chunk only) the file's logical length: a
// truncated, extended, reordered, duplicated or spliced file fails to authenticate.
//
// Frames: u32 length | u32 ~length | nonce(12) | ciphertext | tag(16), sealed over the file
// id, kind, frame index, logical offset and length. Never rewritten: a torn write damages
// only the frame being written, and a damaged last frame is the end of the log.
#pragma once

#include <rocksdb/file_system.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "sealcache/crypto/aead.h"
#include "sealcache/crypto/secret_bytes.h"
#include "sealcache/status.h"
#include "sealcache/storage/file_header.h"

namespace sealcache::storage::internal {

inline constexpr size_t kSealOverhead = crypto::Aead::kRawOverhead;         // nonce + tag = 28
inline constexpr size_t kFrameHeaderSize = 8;                               // length, ~length
inline constexpr size_t kFrameOverhead = kFrameHeaderSize + kSealOverhead;  // 36

// The keys and bindings of one v2 file's body. Immutable; shared by its readers and writer.
class SealedBody {
 public:
  // Derives the body key from the file's (unwrapped) data key: HKDF-SHA256 with the info
  // "sealcache/file/v2/chunks" or ".../frames" by the header's layout.
  static Result<std::shared_ptr<const SealedBody>> New(const crypto::SecretBytes& data_key,
                                                       const FileHeader& header);

  BodyLayout layout() const { return layout_; }
  uint32_t chunk_size() const { return chunk_size_; }
  const crypto::Aead& aead() const { return *aead_; }

  static constexpr size_t kChunkAadSize = 16 + 1 + 8 + 1 + 8;
  static constexpr size_t kFrameAadSize = 16 + 1 + 8 + 8 + 4;
  std::array<uint8_t, kChunkAadSize> ChunkAad(uint64_t index, bool final,
                                              uint64_t logical_size) const;
  std::array<uint8_t, kFrameAadSize> FrameAad(uint64_t index, uint64_t logical_offset,
                                              uint32_t length) const;

 private:
  SealedBody(std::unique_ptr<crypto::Aead> aead, const FileHeader& header);
  std::unique_ptr<crypto::Aead> aead_;
  std::array<uint8_t, 16> file_id_;
  uint8_t kind_;
  BodyLayout layout_;
  uint32_t chunk_size_;
};

// ---- Sizes ---------------------------------------------------------------------------------

// Physical size (header included) of a chunked file of `logical` bytes.
uint64_t ChunkedPhysicalSize(uint64_t logical, uint32_t chunk_size);
// The inverse; Corruption if no logical size gives `physical` (the file was cut or extended
// off the chunk grid). A file of only its header (being written) has logical size 0.
Result<uint64_t> ChunkedLogicalSize(uint64_t physical, uint32_t chunk_size);

// Physical offset of logical byte `logical` of a chunked file (inside its chunk's ciphertext).
uint64_t ChunkedPhysicalOffset(uint64_t logical, uint32_t chunk_size);

// What walking a framed file's frame headers finds.
struct FrameScan {
  uint64_t frames = 0;         // complete frames with a consistent header
  uint64_t logical_bytes = 0;  // their plaintext bytes
  uint64_t end = 0;            // physical offset just past the last of them
  uint64_t physical_size = 0;
};
// Reads only frame headers (no key needed), from kFileHeaderSize to `physical_size`. With a
// `body`, the last complete frame is also authenticated and left out if it fails (a torn
// write that reached the file's length).
Result<FrameScan> ScanFrames(const std::string& path, rocksdb::FSRandomAccessFile& file,
                             uint64_t physical_size, const SealedBody* body);

// The logical size of the encrypted file at `path` (on the local file system) from its
// parsed header and physical size: no key needed.
Result<uint64_t> LogicalSizeOf(const std::string& path, const FileHeader& header,
                               uint64_t physical_size);

// ---- Files ---------------------------------------------------------------------------------

struct SealedFileEvents {
  // A chunk or frame that does not authenticate (never with key material).
  std::function<void(const std::string& path, const Status& status)> on_auth_failure;
  // A framed file's torn or unauthenticated tail, read as its clean end: what was dropped.
  std::function<void(const std::string& path, const std::string& what)> on_tail_dropped;
};

// A new chunked file: `rw` is the file holding only its header. Or one reopened to append at
// its end (`existing_logical` > 0 or `reopen`), whose final chunk is read back first.
Result<std::unique_ptr<rocksdb::FSWritableFile>> NewChunkedWritableFile(
    std::string path, std::unique_ptr<rocksdb::FSRandomRWFile> rw,
    std::shared_ptr<const SealedBody> body, bool reopen, uint64_t physical_size);

// Reads a chunked file at offsets; authenticates its final chunk before returning.
Result<std::unique_ptr<rocksdb::FSRandomAccessFile>> NewChunkedRandomAccessFile(
    std::string path, std::unique_ptr<rocksdb::FSRandomAccessFile> base,
    std::shared_ptr<const SealedBody> body, uint64_t physical_size, SealedFileEvents events);
// Reads a chunked file in order (over the random-access reader).
std::unique_ptr<rocksdb::FSSequentialFile> NewChunkedSequentialFile(
    std::unique_ptr<rocksdb::FSRandomAccessFile> chunked);

// Appends frames to `base`, which already holds the header and `scan.frames` frames.
std::unique_ptr<rocksdb::FSWritableFile> NewFramedWritableFile(
    std::unique_ptr<rocksdb::FSWritableFile> base, std::shared_ptr<const SealedBody> body,
    const FrameScan& scan);
// Reads a framed file in order. A torn or unauthenticated last frame (or a zero-filled tail)
// reads as the end of the file and is reported through on_tail_dropped; a bad frame followed
// by more data is Corruption.
std::unique_ptr<rocksdb::FSSequentialFile> NewFramedSequentialFile(
    std::string path, std::unique_ptr<rocksdb::FSRandomAccessFile> base,
    std::shared_ptr<const SealedBody> body, uint64_t physical_size, SealedFileEvents events);

}  // namespace sealcache::storage::internal
