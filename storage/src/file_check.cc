#include "sealcache/storage/file_check.h"

#include <rocksdb/env.h>
#include <rocksdb/sst_file_reader.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "encrypted_file_system.h"
#include "read_only_file_system.h"
#include "rocksdb_status.h"
#include "sealcache/crypto/keystore.h"
#include "sealcache/storage/file_header.h"
#include "sealcache/storage/inspect.h"
#include "sealed_file.h"

namespace sealcache::storage {
namespace {

namespace fs = std::filesystem;

// Sequential reads of WALs and snapshots go through the decrypting file system in chunks.
constexpr size_t kReadChunk = 1u << 20;

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool StartsWith(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// The kind of file a location holds, as named to operators.
std::string KindByLocation(const DataLayout& layout, const std::string& path) {
  const std::string name = fs::path(path).filename().string();
  if (path == layout.keystore_path()) return "keystore";
  if (path == layout.catalog_path()) return "catalog";
  const FileClass cls = layout.Classify(path);
  if (cls.encrypted) {
    switch (cls.kind) {
      case FileKind::kSst:
        return "sst";
      case FileKind::kWal:
        return "wal";
      case FileKind::kIndexSnapshot:
        return "snapshot";
      default:
        return "other";
    }
  }
  // Plaintext files of a RocksDB instance: an org's (or the legacy shared one).
  const bool in_org = !cls.org.empty();
  if (!in_org && !StartsWith(path, layout.legacy_db_dir() + "/")) return "other";
  if (EndsWith(name, ".sst")) return "sst";
  if (StartsWith(name, "MANIFEST-")) return "manifest";
  return "other";
}

std::vector<uint8_t> ReadPrefix(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> buf(n);
  in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(n));
  buf.resize(static_cast<size_t>(in.gcount()));
  return buf;
}

void JudgeHeader(const std::string& path, const FileClass& cls, const std::vector<uint8_t>& prefix,
                 DataFileReport* r) {
  if (!HasFileHeaderMagic(prefix)) {
    if (cls.encrypted) {
      r->verdict = FileVerdict::kNotEncrypted;
      r->detail = "plaintext file where " + cls.ring.ToString() + " encryption is required";
    }
    return;
  }
  auto header = ParseFileHeader(prefix);
  if (!header.ok()) {
    r->verdict = FileVerdict::kBadHeader;
    r->detail = header.status().message();
    return;
  }
  r->encrypted = true;
  r->format_version = header->format_version;
  r->key_ring = header->ring;
  r->key_version = header->key_version;
  r->verdict = FileVerdict::kEncrypted;
  r->layout = std::string(BodyLayoutName(header->layout));
  auto logical = internal::LogicalSizeOf(path, *header, r->physical_bytes);
  if (!logical.ok()) {
    r->verdict = FileVerdict::kBadSize;
    r->detail = logical.status().message();
    return;
  }
  r->logical_bytes = *logical;
  if (cls.encrypted && header->ring != cls.ring) {
    r->verdict = FileVerdict::kWrongRing;
    r->detail = "header names " + header->ring.ToString() + " but the file lies in the place of " +
                cls.ring.ToString();
  }
}

DataFileReport CheckOne(const DataLayout& layout, const std::string& path) {
  DataFileReport r;
  r.path = fs::relative(path, layout.data_dir()).string();
  r.kind = KindByLocation(layout, path);
  const FileClass cls = layout.Classify(path);
  r.must_encrypt = cls.encrypted;
  if (cls.encrypted) r.org = cls.ring.org;
  std::error_code ec;
  r.physical_bytes = fs::file_size(path, ec);
  r.logical_bytes = r.physical_bytes;
  if (cls.encrypted && r.physical_bytes == 0) {
    r.verdict = FileVerdict::kEmpty;
    return r;
  }
  if (cls.encrypted && LogEndsInsideHeader(cls.kind, r.physical_bytes)) {
    // As the engine reads it: created, then the writer stopped.
    r.verdict = FileVerdict::kEmpty;
    r.logical_bytes = 0;
    r.detail = "a log cut inside its header (its writer stopped after creating it): empty";
    return r;
  }
  JudgeHeader(path, cls, ReadPrefix(path, kFileHeaderSize), &r);
  return r;
}

std::optional<uint64_t> BlockOffsetOf(const std::string& message) {
  // RocksDB block errors end with "... in <file> offset <n> size <m>".
  const std::string marker = " offset ";
  size_t at = message.rfind(marker);
  if (at == std::string::npos) return std::nullopt;
  size_t begin = at + marker.size(), end = begin;
  while (end < message.size() && std::isdigit(static_cast<unsigned char>(message[end]))) ++end;
  if (end == begin) return std::nullopt;
  return std::stoull(message.substr(begin, end - begin));
}

// Decrypts and verifies files through one read-only, decrypting file system.
class FileVerifier {
 public:
  explicit FileVerifier(std::shared_ptr<rocksdb::FileSystem> fs)
      : fs_(std::move(fs)), env_(rocksdb::NewCompositeEnv(fs_)) {}

  // Every block checksum of one SST.
  Status VerifySst(const std::string& path) {
    rocksdb::Options options;
    options.env = env_.get();
    options.info_log = internal::NewDiscardingLogger();
    rocksdb::SstFileReader reader(options);
    SC_RETURN_IF_ERROR(internal::FromRocks(reader.Open(path)));
    return internal::FromRocks(reader.VerifyChecksum());
  }

  // Unwraps the data key (at open) and decrypts the whole body.
  Status ReadThrough(const std::string& path, uint64_t* bytes) {
    std::unique_ptr<rocksdb::FSSequentialFile> file;
    SC_RETURN_IF_ERROR(internal::FromRocks(fs_->NewSequentialFile(path, {}, &file, nullptr)));
    std::string buf(kReadChunk, '\0');
    while (true) {
      rocksdb::Slice got;
      SC_RETURN_IF_ERROR(
          internal::FromRocks(file->Read(kReadChunk, {}, &got, buf.data(), nullptr)));
      if (got.empty()) return Status::Ok();
      *bytes += got.size();
    }
  }

 private:
  std::shared_ptr<rocksdb::FileSystem> fs_;
  std::unique_ptr<rocksdb::Env> env_;
};

}  // namespace

std::string_view FileVerdictName(FileVerdict verdict) {
  switch (verdict) {
    case FileVerdict::kEncrypted:
      return "encrypted";
    case FileVerdict::kPlaintextOk:
      return "plaintext-ok";
    case FileVerdict::kEmpty:
      return "empty";
    case FileVerdict::kNotEncrypted:
      return "NOT-ENCRYPTED";
    case FileVerdict::kBadHeader:
      return "BAD-HEADER";
    case FileVerdict::kBadSize:
      return "BAD-SIZE";
    case FileVerdict::kWrongRing:
      return "WRONG-KEY-RING";
  }
  return "unknown";
}

bool IsProblem(FileVerdict verdict) {
  return verdict == FileVerdict::kNotEncrypted || verdict == FileVerdict::kBadHeader ||
         verdict == FileVerdict::kWrongRing || verdict == FileVerdict::kBadSize;
}

Result<std::vector<DataFileReport>> CheckDataFiles(const DataLayout& layout) {
  std::vector<DataFileReport> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(layout.data_dir(), ec);
  if (ec) return Status::IOError("cannot list " + layout.data_dir() + ": " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return Status::IOError("cannot list " + layout.data_dir() + ": " + ec.message());
    // Files can vanish while a server runs (compaction, WAL deletion): skip what is gone.
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    out.push_back(CheckOne(layout, it->path().string()));
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.path < b.path; });
  return out;
}

Result<VerifyReport> VerifyDataFiles(const DataLayout& layout, const crypto::SecretBytes& master) {
  VerifyReport report;
  const std::string keystore_rel = fs::relative(layout.keystore_path(), layout.data_dir());
  Status ks = crypto::Keystore::Verify(layout.keystore_path(), master);
  report.keystore_ok = ks.ok();
  if (!ks.ok()) {
    // Without an authentic keystore no data key can be trusted: stop here.
    report.problems.push_back({keystore_rel, ks.ToString(), std::nullopt});
    return report;
  }
  SystemClock clock;
  crypto::KeystoreOptions ks_options;
  ks_options.clock = &clock;
  ks_options.create_if_missing = false;
  ks_options.read_only = true;
  SC_ASSIGN_OR_RETURN(auto keystore,
                      crypto::Keystore::Open(layout.keystore_path(), master, ks_options));
  auto base = internal::NewReadOnlyFileSystem(rocksdb::FileSystem::Default(), false);
  auto routing = internal::NewRoutingFileSystem(layout, keystore.get(), base, {});
  if (routing == nullptr) return Status::Internal("cannot create the decrypting file system");
  FileVerifier verifier(routing);

  SC_ASSIGN_OR_RETURN(auto files, CheckDataFiles(layout));
  for (const DataFileReport& f : files) {
    if (IsProblem(f.verdict)) {
      report.problems.push_back(
          {f.path, std::string(FileVerdictName(f.verdict)) + ": " + f.detail, std::nullopt});
      continue;
    }
    const bool is_sst = f.kind == "sst";
    if (!is_sst && !f.encrypted) continue;  // plaintext without checksums: nothing to verify
    const std::string path = layout.data_dir() + "/" + f.path;
    uint64_t bytes = 0;
    Status s = is_sst ? verifier.VerifySst(path) : verifier.ReadThrough(path, &bytes);
    report.files_checked++;
    report.bytes_checked += is_sst ? f.logical_bytes : bytes;
    if (!s.ok()) report.problems.push_back({f.path, s.ToString(), BlockOffsetOf(s.message())});
  }
  // Replays each org's WAL with record checksums; only a torn tail (a write in flight) is
  // tolerated.
  StoreViewOptions view;
  view.data_dir = layout.data_dir();
  view.master_key = &master;
  view.strict_wal = true;
  auto opened = StoreView::Open(view);
  if (!opened.ok()) {
    report.problems.push_back({"orgs", opened.status().ToString(), std::nullopt});
    return report;
  }
  for (const std::string& org : (*opened)->org_families()) {
    Status s = (*opened)->OrgStatus(org);
    if (!s.ok()) report.problems.push_back({"orgs/" + org, s.ToString(), std::nullopt});
  }
  return report;
}

}  // namespace sealcache::storage
