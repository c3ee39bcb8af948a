// Checks of the files in a data directory for offline tools (sealcache-dump). Read-only.
//
// CheckDataFiles needs no key: it classifies every file by location (DataLayout::Classify)
// and compares that with what the file holds (the header of storage/FORMAT.md, and for v2
// whether the size fits the chunk grid),
// so a plaintext file where encryption is required, or a damaged or mislabelled header, is
// found without the master key. It cannot tell whether an encrypted body is intact.
//
// VerifyDataFiles needs the master key: it authenticates the keystore, unwraps the data key
// of every encrypted file, decrypts (format v2: authenticates) every file end to end and
// checks every RocksDB block checksum (format v1's CTR has no integrity of its own).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sealcache/crypto/key_ring.h"
#include "sealcache/crypto/secret_bytes.h"
#include "sealcache/status.h"
#include "sealcache/storage/data_layout.h"

namespace sealcache::storage {

enum class FileVerdict {
  kEncrypted,     // required and present: valid header for the right ring
  kPlaintextOk,   // plaintext where plaintext is allowed
  kEmpty,         // zero bytes in an encrypted location: holds nothing
  kNotEncrypted,  // required but the file has no header: a problem
  kBadHeader,     // header magic present but damaged, or too short: a problem
  kWrongRing,     // valid header for another org or scope than the location: a problem
  kBadSize,       // a v2 file whose size is off its chunk grid (cut or extended): a problem
};
std::string_view FileVerdictName(FileVerdict verdict);  // "encrypted", "NOT-ENCRYPTED", ...
bool IsProblem(FileVerdict verdict);

struct DataFileReport {
  std::string path;           // relative to the data directory
  std::string kind;           // sst, wal, manifest, snapshot, keystore, other
  std::string org;            // owning org by location; empty for node-wide files
  bool must_encrypt = false;  // by location
  bool encrypted = false;     // carries a valid header (format v1 or v2)
  uint16_t format_version = 0;
  std::string layout;                      // body layout: "ctr" (v1), "chunks" or "frames" (v2)
  std::optional<crypto::RingId> key_ring;  // from the header
  uint32_t key_version = 0;                // from the header
  uint64_t physical_bytes = 0;
  uint64_t logical_bytes = 0;  // what RocksDB sees: without the header, nonces, tags, frames
  FileVerdict verdict = FileVerdict::kPlaintextOk;
  std::string detail;  // why a problem is one
};

// Every regular file under the data directory, sorted by path.
Result<std::vector<DataFileReport>> CheckDataFiles(const DataLayout& layout);

struct VerifyProblem {
  std::string path;  // relative to the data directory; empty for the database as a whole
  std::string error;
  std::optional<uint64_t> block_offset;  // logical offset of a corrupt RocksDB block
};

struct VerifyReport {
  bool keystore_ok = false;
  uint64_t files_checked = 0;
  uint64_t bytes_checked = 0;  // logical bytes read and decrypted
  std::vector<VerifyProblem> problems;
};

// Fails (rather than reporting problems) only when verification cannot start, e.g. the
// master key does not open the keystore.
Result<VerifyReport> VerifyDataFiles(const DataLayout& layout, const crypto::SecretBytes& master);

}  // namespace sealcache::storage
