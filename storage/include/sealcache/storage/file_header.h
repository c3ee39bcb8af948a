// The 4096-byte header of every encrypted file (formats v1 and v2), documented in
// storage/FORMAT.md.
//
// The header is plaintext except for the wrapped data key, and is authenticated as the AAD
// of that wrapped key: changing any header field makes the data key unwrappable, so a file
// cannot be re-labelled to another org, key version, IV or kind.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sealcache/crypto/key_ring.h"
#include "sealcache/status.h"

namespace sealcache::storage {

inline constexpr size_t kFileHeaderSize = 4096;
inline constexpr uint16_t kFileFormatV1 = 1;  // AES-256-CTR body, readable only
inline constexpr uint16_t kFileFormatV2 = 2;  // authenticated chunks or frames; every new file
// Plaintext bytes per chunk of a format v2 random-access file, and the most plaintext one
// frame of a v2 append-only file holds.
inline constexpr uint32_t kDefaultChunkSize = 4096;
inline constexpr uint32_t kMaxFrameSize = 1u << 20;

enum class FileKind : uint8_t {
  kSst = 1,
  kWal = 2,
  kManifest = 3,
  kIndexSnapshot = 4,
  kOther = 5,
};
std::string_view FileKindName(FileKind kind);  // "sst", "wal", ...

// True for a log cut inside its header: its writer stopped between creating the file and
// writing the header (a kill just after RocksDB starts a new WAL). No frame can follow a
// header never written, so such a log holds no record and reads as empty (storage/FORMAT.md).
// Any other kind of file cut there is damaged.
inline bool LogEndsInsideHeader(FileKind kind, uint64_t physical_size) {
  return kind == FileKind::kWal && physical_size < kFileHeaderSize;
}

// How a file's body is encrypted.
enum class BodyLayout : uint8_t {
  kCtr = 0,     // v1: one AES-256-CTR stream
  kChunks = 1,  // v2: fixed-size AES-256-GCM chunks, read at any offset (SSTs, snapshots)
  kFrames = 2,  // v2: append-only AES-256-GCM frames, read in order (the WAL)
};
std::string_view BodyLayoutName(BodyLayout layout);  // "ctr", "chunks", "frames"

struct FileHeader {
  uint16_t format_version = kFileFormatV1;
  FileKind kind = FileKind::kOther;
  crypto::RingId ring;  // node, or the org whose key protects the file
  uint32_t key_version = 0;
  std::array<uint8_t, 16> file_id{};     // random; names the file in audits
  std::array<uint8_t, 16> iv{};          // v1: random CTR IV of the body; v2: zero
  BodyLayout layout = BodyLayout::kCtr;  // v2 only (v1 is always kCtr)
  uint32_t chunk_size = 0;               // v2: chunk size (kChunks) or largest frame (kFrames)
  std::vector<uint8_t> wrapped_data_key;
};

// Serialises `header` to exactly kFileHeaderSize bytes. `wrapped_data_key` must already be
// sealed over HeaderAad() of the same fields.
std::vector<uint8_t> EncodeFileHeader(const FileHeader& header);
// The associated data the data key is wrapped under: the encoded header up to (excluding)
// the wrapped key length field.
std::vector<uint8_t> HeaderAad(const FileHeader& header);
// Parses and checks the layout (magic, version, lengths, org id, zero padding). Needs no key
// and proves nothing about authenticity; unwrapping the data key does.
Result<FileHeader> ParseFileHeader(std::span<const uint8_t> bytes);
// True if `bytes` start with the header magic (a quick "is this ours" test for tools).
bool HasFileHeaderMagic(std::span<const uint8_t> bytes);
// Reads and parses the header of the file at `path`.
Result<FileHeader> ReadFileHeader(const std::string& path);

}  // namespace sealcache::storage
