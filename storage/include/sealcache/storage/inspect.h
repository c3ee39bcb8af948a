// StoreView: a strictly read-only view of a data directory for offline tools (sealcache-dump),
// safe to use beside a running server.
//
// - Never takes the RocksDB LOCK or the keystore lock and never creates, changes or removes a
//   file: every org's RocksDB instance is opened with DB::OpenForReadOnly through a file
//   system that refuses every write, with an info logger that writes nothing.
// - Keyless (no master key): only each org's plaintext family `meta` is opened and its WAL
//   (encrypted under the node key) is skipped, so the view shows the metadata as of the last
//   flush; the orgs are those with a database directory and an org record in it. Payloads,
//   vectors and the catalog (sealed) are not readable.
// - Keyed (master key given): the keystore is opened read-only, the catalog says which orgs
//   exist, each org's WAL is replayed into the view's memtables (never written back) and its
//   `data` family is readable.
// - A plaintext benchmark store (PLAINTEXT-BENCHMARK-ONLY) is always fully readable.
// - One org whose database cannot be opened does not stop the view: OrgStatus() says why and
//   every call about that org answers it.
// The view is a snapshot taken at Open(); writes the server makes afterwards are not seen.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sealcache/crypto/key_ring.h"
#include "sealcache/crypto/secret_bytes.h"
#include "sealcache/status.h"
#include "sealcache/storage/data_layout.h"
#include "sealcache/storage/store.h"

namespace sealcache::storage {

struct StoreViewOptions {
  // Root of the store. Required.
  std::string data_dir;
  // Master key for a keyed view; null for a keyless one. Not owned; used only during Open.
  const crypto::SecretBytes* master_key = nullptr;
  // Keyed views: fail on any corrupt WAL record except a torn tail (a write in flight),
  // instead of stopping the replay quietly at the first bad record. Used by verification.
  bool strict_wal = false;
};

struct OrgRecord {
  std::string org;
  OrgConfig config;
};

// One SST of an org and the key version its header names.
struct OrgSstFile {
  std::string path;
  uint64_t physical_bytes = 0;
  uint32_t key_version = 0;   // 0 when the header cannot be read (see header_error)
  std::string header_error;   // empty when the header parsed
  int level = -1;             // LSM level; -1 when unknown (keyless views)
  int64_t max_expiry_ms = 0;  // from table properties; 0 when unknown (keyless views)
};

// Where the current version of a record lives and which key protects it.
struct RecordLocation {
  std::string path;  // an SST, or the WAL when the record is not flushed yet
  crypto::RingId ring;
  uint32_t key_version = 0;
  bool in_wal = false;
};

class StoreView {
 public:
  static Result<std::unique_ptr<StoreView>> Open(const StoreViewOptions& options);
  ~StoreView();
  StoreView(const StoreView&) = delete;
  StoreView& operator=(const StoreView&) = delete;

  const DataLayout& layout() const;
  // True when org data and WALs were read (keyed view or plaintext benchmark store).
  bool full() const;
  bool plaintext_benchmark() const;
  // Orgs with a database directory (with or without a commit record), in id order.
  const std::vector<std::string>& org_families() const;
  // Why the org's database could not be opened (OK if it was).
  Status OrgStatus(std::string_view org) const;

  // Orgs with a commit record (keyless: with an org record in their own database, or whose
  // database does not open, with an empty config), in id order.
  Result<std::vector<OrgRecord>> Orgs();
  Result<OrgConfig> GetOrg(std::string_view org);
  // Every entry metadata record of the org, expired ones included, in digest order; `fn`
  // returns false to stop.
  Status ScanEntries(std::string_view org, const std::function<bool(const EntryMeta&)>& fn);
  Result<EntryMeta> GetEntryMeta(std::string_view org, const Digest& digest);
  // The org's SSTs: in a full view the live files from RocksDB's metadata; in a keyless view
  // the *.sst files in its directory (which may include obsolete files not yet deleted).
  Result<std::vector<OrgSstFile>> OrgSstFiles(std::string_view org);

  // REQUIRES: full().
  Result<std::vector<uint8_t>> ReadPayload(std::string_view org, const Digest& digest);
  Result<std::vector<float>> ReadVector(std::string_view org, uint64_t slot);
  Result<RecordLocation> LocatePayload(std::string_view org, const Digest& digest);

 private:
  struct Impl;
  explicit StoreView(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sealcache::storage
