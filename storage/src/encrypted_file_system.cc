#include "encrypted_file_system.h"

#include <rocksdb/env_encryption.h>
#include <unistd.h>

#include <cstring>

#include "rocksdb_status.h"
#include "sealcache/crypto/aead.h"
#include "sealcache/crypto/ctr_cipher.h"
#include "sealcache/crypto/random.h"
#include "sealed_file.h"

namespace sealcache::storage::internal {
namespace {

using rocksdb::FileOptions;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;

constexpr size_t kCtrBlockSize = 16;

// The body cipher of one file: AES-256-CTR at the physical file offset (RocksDB passes
// offsets that include the header), one EVP call per I/O.
class CtrCipherStream final : public rocksdb::BlockAccessCipherStream {
 public:
  explicit CtrCipherStream(std::unique_ptr<crypto::CtrCipher> ctr) : ctr_(std::move(ctr)) {}

  size_t BlockSize() override { return kCtrBlockSize; }
  rocksdb::Status Encrypt(uint64_t offset, char* data, size_t size) override {
    return Apply(offset, data, size);
  }
  rocksdb::Status Decrypt(uint64_t offset, char* data, size_t size) override {
    return Apply(offset, data, size);
  }

 protected:
  void AllocateScratch(std::string&) override {}
  rocksdb::Status EncryptBlock(uint64_t block, char* data, char*) override {
    return Apply(block * kCtrBlockSize, data, kCtrBlockSize);
  }
  rocksdb::Status DecryptBlock(uint64_t block, char* data, char*) override {
    return Apply(block * kCtrBlockSize, data, kCtrBlockSize);
  }

 private:
  rocksdb::Status Apply(uint64_t offset, char* data, size_t size) {
    auto* p = reinterpret_cast<uint8_t*>(data);
    return ToRocks(ctr_->Apply(offset, p, p, size));
  }
  std::unique_ptr<crypto::CtrCipher> ctr_;
};

// A reopened file whose size report starts at the existing file size. PosixFileSystem's
// ReopenWritableFile counts only bytes appended since the reopen, but the cipher stream
// needs the physical offset of every append.
class ReopenedWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  ReopenedWritableFile(std::unique_ptr<rocksdb::FSWritableFile> file, uint64_t existing_size)
      : rocksdb::FSWritableFileOwnerWrapper(std::move(file)) {
    uint64_t reported = target()->GetFileSize({}, nullptr);
    base_ = existing_size > reported ? existing_size - reported : 0;
  }
  uint64_t GetFileSize(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
    return base_ + target()->GetFileSize(o, d);
  }

 private:
  uint64_t base_ = 0;
};

// Headers and data keys of encrypted files: a new file's header under the ACTIVE version of
// the ring its path belongs to; an existing file's data key from its own header, refused when
// that header names another ring than the path's.
class FileKeys {
 public:
  FileKeys(DataLayout layout, const crypto::Keystore* keystore, RoutingOptions options)
      : layout_(std::move(layout)), keystore_(keystore), options_(std::move(options)) {}

  const DataLayout& layout() const { return layout_; }
  const RoutingOptions& options() const { return options_; }

  struct NewFile {
    FileHeader header;
    std::vector<uint8_t> encoded;
    crypto::SecretBytes data_key;
  };
  Result<NewFile> NewHeader(const std::string& fname, uint16_t version) const {
    FileClass cls = layout_.Classify(fname);
    if (!cls.encrypted) return Status::Internal("path is not an encrypted location");
    SC_ASSIGN_OR_RETURN(crypto::Keystore::ActiveKey active, keystore_->Active(cls.ring));
    NewFile out;
    FileHeader& h = out.header;
    h.format_version = version;
    h.kind = cls.kind;
    h.ring = cls.ring;
    h.key_version = active.version;
    SC_RETURN_IF_ERROR(crypto::RandomFill(h.file_id));
    if (version == kFileFormatV1) {
      SC_RETURN_IF_ERROR(crypto::RandomFill(h.iv));
    } else {
      // The log is appended and synced: frames. Everything else is read at offsets: chunks.
      h.layout = cls.kind == FileKind::kWal ? BodyLayout::kFrames : BodyLayout::kChunks;
      h.chunk_size = h.layout == BodyLayout::kFrames ? kMaxFrameSize : options_.chunk_size;
    }
    SC_ASSIGN_OR_RETURN(out.data_key, crypto::RandomSecret(crypto::kDataKeySize));
    SC_ASSIGN_OR_RETURN(auto wrapper, crypto::Aead::New(*active.key));
    SC_ASSIGN_OR_RETURN(h.wrapped_data_key, wrapper->Seal(out.data_key.span(), HeaderAad(h)));
    out.encoded = EncodeFileHeader(h);
    return out;
  }

  // The data key of an existing file, from its header; failures are reported as events.
  Result<crypto::SecretBytes> DataKey(const std::string& fname, const FileHeader& h) const {
    auto key = Unwrap(fname, h);
    if (!key.ok()) {
      Failed(fname, key.status());
    } else if (options_.events.on_file_key_unwrapped) {
      options_.events.on_file_key_unwrapped();
    }
    return key;
  }

  // The body of an existing v2 file.
  Result<std::shared_ptr<const SealedBody>> Body(const std::string& fname,
                                                 const FileHeader& h) const {
    SC_ASSIGN_OR_RETURN(crypto::SecretBytes key, DataKey(fname, h));
    return SealedBody::New(key, h);
  }

  void Failed(const std::string& fname, const Status& s) const {
    if (options_.events.on_decrypt_failure) options_.events.on_decrypt_failure(fname, s);
  }

  SealedFileEvents BodyEvents() const {
    SealedFileEvents e;
    e.on_auth_failure = options_.events.on_decrypt_failure;
    e.on_tail_dropped = options_.events.on_log_tail_dropped;
    return e;
  }

 private:
  Result<crypto::SecretBytes> Unwrap(const std::string& fname, const FileHeader& h) const {
    FileClass cls = layout_.Classify(fname);
    if (cls.encrypted && h.ring != cls.ring) {
      return Status::Corruption(fname + " is encrypted for " + h.ring.ToString() +
                                " but lies in the directory of " + cls.ring.ToString() +
                                "; refusing to read it");
    }
    auto key = keystore_->Key(h.ring, h.key_version);
    if (!key.ok()) {
      return key.status().WithContext("cannot decrypt " + fname + " (key version " +
                                      std::to_string(h.key_version) + " of " + h.ring.ToString() +
                                      ")");
    }
    SC_ASSIGN_OR_RETURN(auto wrapper, crypto::Aead::New(**key));
    auto data_key = wrapper->OpenSecret(h.wrapped_data_key, HeaderAad(h));
    if (!data_key.ok()) {
      return Status::Corruption("cannot decrypt " + fname +
                                ": its header does not authenticate under " + h.ring.ToString() +
                                " key version " + std::to_string(h.key_version) +
                                " (tampered header or a file of another org)");
    }
    return data_key;
  }

  DataLayout layout_;
  const crypto::Keystore* keystore_;
  RoutingOptions options_;
};

// Format v1 through RocksDB's EncryptedFileSystem: the header is its "prefix".
class HeaderEncryptionProvider final : public rocksdb::EncryptionProvider {
 public:
  explicit HeaderEncryptionProvider(std::shared_ptr<const FileKeys> keys)
      : keys_(std::move(keys)) {}

  const char* Name() const override { return "SealcacheHeaderEncryptionProvider"; }
  size_t GetPrefixLength() const override { return kFileHeaderSize; }

  rocksdb::Status CreateNewPrefix(const std::string& fname, char* prefix,
                                  size_t prefix_length) const override {
    if (prefix_length != kFileHeaderSize) {
      return rocksdb::Status::InvalidArgument("unexpected encryption prefix length");
    }
    auto file = keys_->NewHeader(fname, kFileFormatV1);
    if (!file.ok()) return ToRocks(file.status().WithContext("cannot create " + fname));
    std::memcpy(prefix, file->encoded.data(), kFileHeaderSize);
    return rocksdb::Status::OK();
  }

  rocksdb::Status AddCipher(const std::string&, const char*, size_t, bool) override {
    return rocksdb::Status::NotSupported("keys come from the sealcache keystore");
  }

  rocksdb::Status CreateCipherStream(
      const std::string& fname, const rocksdb::EnvOptions&, rocksdb::Slice& prefix,
      std::unique_ptr<rocksdb::BlockAccessCipherStream>* result) override {
    auto stream =
        OpenStream(fname, {reinterpret_cast<const uint8_t*>(prefix.data()), prefix.size()});
    if (!stream.ok()) return ToRocks(stream.status());
    *result = std::move(stream).value();
    return rocksdb::Status::OK();
  }

 private:
  Result<std::unique_ptr<rocksdb::BlockAccessCipherStream>> OpenStream(
      const std::string& fname, std::span<const uint8_t> prefix) const {
    auto parsed = ParseFileHeader(prefix);
    if (!parsed.ok()) {
      Status s = parsed.status().WithContext("cannot decrypt " + fname);
      keys_->Failed(fname, s);
      return s;
    }
    if (parsed->format_version != kFileFormatV1) {
      return Status::Internal(fname + " is not a format v1 file");
    }
    SC_ASSIGN_OR_RETURN(crypto::SecretBytes data_key, keys_->DataKey(fname, *parsed));
    crypto::CtrCipher::Iv iv;
    std::copy(parsed->iv.begin(), parsed->iv.end(), iv.begin());
    SC_ASSIGN_OR_RETURN(auto ctr, crypto::CtrCipher::New(data_key, iv));
    return std::unique_ptr<rocksdb::BlockAccessCipherStream>(new CtrCipherStream(std::move(ctr)));
  }

  std::shared_ptr<const FileKeys> keys_;
};

IOStatus ToIo(const Status& s) {
  if (s.ok()) return IOStatus::OK();
  return rocksdb::status_to_io_status(ToRocks(s));
}

// A log that reads as empty: see RoutingFileSystem::TornLogHeader.
class EmptySequentialFile final : public rocksdb::FSSequentialFile {
 public:
  IOStatus Read(size_t, const IOOptions&, rocksdb::Slice* result, char* scratch,
                IODebugContext*) override {
    *result = rocksdb::Slice(scratch, 0);
    return IOStatus::OK();
  }
  IOStatus Skip(uint64_t) override { return IOStatus::OK(); }
};

class RoutingFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  RoutingFileSystem(std::shared_ptr<rocksdb::FileSystem> base, std::shared_ptr<const FileKeys> keys)
      : rocksdb::FileSystemWrapper(base),
        keys_(keys),
        provider_(std::make_shared<HeaderEncryptionProvider>(keys)),
        v1_(rocksdb::NewEncryptedFS(base, provider_)) {}

  bool ok() const { return v1_ != nullptr; }
  const char* Name() const override { return "SealcacheRoutingFileSystem"; }

  IOStatus NewSequentialFile(const std::string& f, const FileOptions& o,
                             std::unique_ptr<rocksdb::FSSequentialFile>* r,
                             IODebugContext* d) override {
    if (!IsEncrypted(f)) return target()->NewSequentialFile(f, o, r, d);
    IOStatus s = RefuseMappedOrDirect(f, o);
    if (!s.ok()) return s;
    bool torn = false;
    s = TornLogHeader(f, o.io_options, &torn, d);
    if (!s.ok()) return s;
    if (torn) {
      *r = std::make_unique<EmptySequentialFile>();
      return IOStatus::OK();
    }
    Existing e;
    s = OpenExisting(f, o, &e, d);
    if (!s.ok()) return s;
    if (e.header.format_version == kFileFormatV1) return v1_->NewSequentialFile(f, o, r, d);
    auto body = keys_->Body(f, e.header);
    if (!body.ok()) return ToIo(body.status());
    if (e.header.layout == BodyLayout::kFrames) {
      *r = NewFramedSequentialFile(f, std::move(e.file), std::move(body).value(), e.size,
                                   keys_->BodyEvents());
      return IOStatus::OK();
    }
    auto chunked = NewChunkedRandomAccessFile(f, std::move(e.file), std::move(body).value(), e.size,
                                              keys_->BodyEvents());
    if (!chunked.ok()) return Failed(f, chunked.status());
    *r = NewChunkedSequentialFile(std::move(chunked).value());
    return IOStatus::OK();
  }

  IOStatus NewRandomAccessFile(const std::string& f, const FileOptions& o,
                               std::unique_ptr<rocksdb::FSRandomAccessFile>* r,
                               IODebugContext* d) override {
    if (!IsEncrypted(f)) return target()->NewRandomAccessFile(f, o, r, d);
    IOStatus s = RefuseMappedOrDirect(f, o);
    if (!s.ok()) return s;
    Existing e;
    s = OpenExisting(f, o, &e, d);
    if (!s.ok()) return s;
    if (e.header.format_version == kFileFormatV1) return v1_->NewRandomAccessFile(f, o, r, d);
    if (e.header.layout == BodyLayout::kFrames) {
      return IOStatus::NotSupported(f + " is a format v2 log: it is read in order");
    }
    auto body = keys_->Body(f, e.header);
    if (!body.ok()) return ToIo(body.status());
    auto chunked = NewChunkedRandomAccessFile(f, std::move(e.file), std::move(body).value(), e.size,
                                              keys_->BodyEvents());
    if (!chunked.ok()) return Failed(f, chunked.status());
    *r = std::move(chunked).value();
    return IOStatus::OK();
  }

  IOStatus NewWritableFile(const std::string& f, const FileOptions& o,
                           std::unique_ptr<rocksdb::FSWritableFile>* r,
                           IODebugContext* d) override {
    if (!IsEncrypted(f)) return target()->NewWritableFile(f, o, r, d);
    IOStatus s = RefuseMappedOrDirect(f, o);
    if (!s.ok()) return s;
    if (keys_->options().write_v1) return v1_->NewWritableFile(f, o, r, d);
    return CreateV2(f, o, r, d);
  }

  IOStatus ReuseWritableFile(const std::string& f, const std::string& old, const FileOptions& o,
                             std::unique_ptr<rocksdb::FSWritableFile>* r,
                             IODebugContext* d) override {
    if (IsEncrypted(f) || IsEncrypted(old)) {
      return IOStatus::NotSupported("encrypted files are never reused (log recycling is off)");
    }
    return target()->ReuseWritableFile(f, old, o, r, d);
  }

  IOStatus NewRandomRWFile(const std::string& f, const FileOptions& o,
                           std::unique_ptr<rocksdb::FSRandomRWFile>* r,
                           IODebugContext* d) override {
    if (IsEncrypted(f)) {
      return IOStatus::NotSupported(f + ": encrypted files are written only by appending");
    }
    return target()->NewRandomRWFile(f, o, r, d);
  }

  IOStatus ReopenWritableFile(const std::string& f, const FileOptions& o,
                              std::unique_ptr<rocksdb::FSWritableFile>* r,
                              IODebugContext* d) override {
    if (!IsEncrypted(f)) return target()->ReopenWritableFile(f, o, r, d);
    IOStatus s = RefuseMappedOrDirect(f, o);
    if (!s.ok()) return s;
    bool torn = false;
    s = TornLogHeader(f, o.io_options, &torn, d);
    if (!s.ok()) return s;
    if (torn && ::truncate(f.c_str(), 0) != 0) {
      return IOStatus::IOError("cannot cut the torn header of " + f);
    }
    uint64_t size = 0;
    s = target()->GetFileSize(f, o.io_options, &size, d);
    if (!s.ok() || size == 0) {  // new or empty: a fresh file
      if (keys_->options().write_v1) return v1_->ReopenWritableFile(f, o, r, d);
      return CreateV2(f, o, r, d);
    }
    Existing e;
    s = OpenExisting(f, o, &e, d);
    if (!s.ok()) return s;
    if (e.header.format_version == kFileFormatV1) return ReopenV1(f, o, e, r, d);
    auto body = keys_->Body(f, e.header);
    if (!body.ok()) return ToIo(body.status());
    if (e.header.layout == BodyLayout::kFrames) {
      auto scan = ScanFrames(f, *e.file, e.size, body->get());
      if (!scan.ok()) return ToIo(scan.status().WithContext(f));
      // A torn tail goes before anything is appended after it.
      if (scan->end < e.size && ::truncate(f.c_str(), static_cast<off_t>(scan->end)) != 0) {
        return IOStatus::IOError("cannot cut the torn tail of " + f);
      }
      std::unique_ptr<rocksdb::FSWritableFile> base;
      s = target()->ReopenWritableFile(f, o, &base, d);
      if (!s.ok()) return s;
      *r = NewFramedWritableFile(std::move(base), std::move(body).value(), *scan);
      return IOStatus::OK();
    }
    e.file.reset();
    std::unique_ptr<rocksdb::FSRandomRWFile> rw;
    s = target()->NewRandomRWFile(f, o, &rw, d);
    if (!s.ok()) return s;
    auto w =
        NewChunkedWritableFile(f, std::move(rw), std::move(body).value(), /*reopen=*/true, e.size);
    if (!w.ok()) return Failed(f, w.status());
    *r = std::move(w).value();
    return IOStatus::OK();
  }

  IOStatus GetFileSize(const std::string& f, const IOOptions& o, uint64_t* size,
                       IODebugContext* d) override {
    IOStatus s = target()->GetFileSize(f, o, size, d);
    if (!s.ok() || !IsEncrypted(f)) return s;
    auto logical = LogicalSize(f, *size);
    if (!logical.ok()) return ToIo(logical.status());
    *size = *logical;
    return s;
  }

  IOStatus GetChildrenFileAttributes(const std::string& dir, const IOOptions& o,
                                     std::vector<rocksdb::FileAttributes>* result,
                                     IODebugContext* d) override {
    IOStatus s = target()->GetChildrenFileAttributes(dir, o, result, d);
    if (!s.ok()) return s;
    for (auto& attr : *result) {
      const std::string path = dir + "/" + attr.name;
      if (!IsEncrypted(path)) continue;
      // A damaged file is reported by its open; a listing still lists it.
      auto logical = LogicalSize(path, attr.size_bytes);
      attr.size_bytes = logical.ok()                         ? *logical
                        : attr.size_bytes >= kFileHeaderSize ? attr.size_bytes - kFileHeaderSize
                                                             : 0;
    }
    return s;
  }

  IOStatus RenameFile(const std::string& src, const std::string& dst, const IOOptions& o,
                      IODebugContext* d) override {
    if (!SameDomain(src, dst)) {
      return IOStatus::NotSupported("refusing to rename " + src + " to " + dst +
                                    ": different encryption domains");
    }
    return target()->RenameFile(src, dst, o, d);
  }

  IOStatus LinkFile(const std::string& src, const std::string& dst, const IOOptions& o,
                    IODebugContext* d) override {
    if (!SameDomain(src, dst)) {
      return IOStatus::NotSupported("refusing to link " + src + " to " + dst +
                                    ": different encryption domains");
    }
    return target()->LinkFile(src, dst, o, d);
  }

 private:
  struct Existing {
    std::unique_ptr<rocksdb::FSRandomAccessFile> file;  // the physical file
    uint64_t size = 0;                                  // physical
    FileHeader header;
  };

  IOStatus OpenExisting(const std::string& f, const FileOptions& o, Existing* e,
                        IODebugContext* d) {
    IOStatus s = target()->GetFileSize(f, o.io_options, &e->size, d);
    if (!s.ok()) return s;
    s = target()->NewRandomAccessFile(f, o, &e->file, d);
    if (!s.ok()) return s;
    std::string buf(kFileHeaderSize, '\0');
    rocksdb::Slice got;
    s = e->file->Read(0, kFileHeaderSize, o.io_options, &got, buf.data(), d);
    if (!s.ok()) return s;
    auto header = ParseFileHeader({reinterpret_cast<const uint8_t*>(got.data()), got.size()});
    if (!header.ok()) return Failed(f, header.status().WithContext("cannot decrypt " + f));
    e->header = std::move(header).value();
    return IOStatus::OK();
  }

  // Whether `f` is a log cut inside its header (LogEndsInsideHeader), which RocksDB finds at
  // recovery after a kill: it reads as empty, as a torn last frame reads as the log's clean
  // end, and is reported the same way.
  IOStatus TornLogHeader(const std::string& f, const IOOptions& o, bool* torn, IODebugContext* d) {
    *torn = false;
    const FileKind kind = keys_->layout().Classify(f).kind;
    if (kind != FileKind::kWal) return IOStatus::OK();
    uint64_t physical = 0;
    IOStatus s = target()->GetFileSize(f, o, &physical, d);
    if (!s.ok() || !LogEndsInsideHeader(kind, physical)) return s;
    *torn = true;
    const SealedFileEvents events = keys_->BodyEvents();
    if (events.on_tail_dropped) {
      events.on_tail_dropped(
          f, "the log ends inside its header (" + std::to_string(physical) + " of " +
                 std::to_string(kFileHeaderSize) +
                 " bytes): it was created and never written, and is read as empty");
    }
    return IOStatus::OK();
  }

  IOStatus CreateV2(const std::string& f, const FileOptions& o,
                    std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* d) {
    auto created = keys_->NewHeader(f, kFileFormatV2);
    if (!created.ok()) return ToIo(created.status().WithContext("cannot create " + f));
    auto body = SealedBody::New(created->data_key, created->header);
    if (!body.ok()) return ToIo(body.status());
    std::unique_ptr<rocksdb::FSWritableFile> base;
    IOStatus s = target()->NewWritableFile(f, o, &base, d);
    if (!s.ok()) return s;
    s = base->Append(
        rocksdb::Slice(reinterpret_cast<const char*>(created->encoded.data()), kFileHeaderSize),
        o.io_options, d);
    if (!s.ok()) return s;
    if (created->header.layout == BodyLayout::kFrames) {
      *r = NewFramedWritableFile(std::move(base), std::move(body).value(), FrameScan{});
      return IOStatus::OK();
    }
    // Chunks: the final chunk is rewritten in place as the file grows, so the body is written
    // at offsets.
    s = base->Close(o.io_options, d);
    if (!s.ok()) return s;
    std::unique_ptr<rocksdb::FSRandomRWFile> rw;
    s = target()->NewRandomRWFile(f, o, &rw, d);
    if (!s.ok()) return s;
    auto w = NewChunkedWritableFile(f, std::move(rw), std::move(body).value(), /*reopen=*/false,
                                    kFileHeaderSize);
    if (!w.ok()) return ToIo(w.status());
    *r = std::move(w).value();
    return IOStatus::OK();
  }

  // Continues a v1 file's CTR stream at its end.
  IOStatus ReopenV1(const std::string& f, const FileOptions& o, Existing& e,
                    std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* d) {
    std::string buf(kFileHeaderSize, '\0');
    rocksdb::Slice prefix;
    IOStatus s = e.file->Read(0, kFileHeaderSize, o.io_options, &prefix, buf.data(), d);
    if (!s.ok()) return s;
    std::unique_ptr<rocksdb::BlockAccessCipherStream> stream;
    rocksdb::Status cs = provider_->CreateCipherStream(f, o, prefix, &stream);
    if (!cs.ok()) return rocksdb::status_to_io_status(std::move(cs));
    std::unique_ptr<rocksdb::FSWritableFile> underlying;
    s = target()->ReopenWritableFile(f, o, &underlying, d);
    if (!s.ok()) return s;
    underlying = std::make_unique<ReopenedWritableFile>(std::move(underlying), e.size);
    r->reset(new rocksdb::EncryptedWritableFile(std::move(underlying), std::move(stream),
                                                kFileHeaderSize));
    return IOStatus::OK();
  }

  // The size RocksDB sees, from the physical size and the header (a v2 log: its frames).
  Result<uint64_t> LogicalSize(const std::string& f, uint64_t physical) {
    if (physical < kFileHeaderSize) return uint64_t{0};
    Existing e;
    IOStatus s = OpenExisting(f, FileOptions(), &e, nullptr);
    if (!s.ok()) return Status::Corruption(s.ToString());
    if (e.header.format_version == kFileFormatV1) return physical - kFileHeaderSize;
    if (e.header.layout == BodyLayout::kChunks) {
      auto logical = ChunkedLogicalSize(physical, e.header.chunk_size);
      if (!logical.ok()) return logical.status().WithContext(f);
      return logical;
    }
    auto scan = ScanFrames(f, *e.file, physical, nullptr);
    if (!scan.ok()) return scan.status().WithContext(f);
    return scan->logical_bytes;
  }

  IOStatus RefuseMappedOrDirect(const std::string& f, const FileOptions& o) const {
    if (o.use_mmap_reads || o.use_mmap_writes || o.use_direct_reads || o.use_direct_writes) {
      return IOStatus::NotSupported(f +
                                    ": mmap and direct I/O are not supported for encrypted "
                                    "files");
    }
    return IOStatus::OK();
  }
  IOStatus Failed(const std::string& f, const Status& s) {
    keys_->Failed(f, s);
    return ToIo(s);
  }

  bool IsEncrypted(const std::string& f) const { return keys_->layout().Classify(f).encrypted; }
  bool SameDomain(const std::string& a, const std::string& b) const {
    FileClass ca = keys_->layout().Classify(a), cb = keys_->layout().Classify(b);
    return ca.encrypted == cb.encrypted && (!ca.encrypted || ca.ring == cb.ring);
  }

  std::shared_ptr<const FileKeys> keys_;
  std::shared_ptr<HeaderEncryptionProvider> provider_;
  std::shared_ptr<rocksdb::FileSystem> v1_;
};

}  // namespace

std::shared_ptr<rocksdb::FileSystem> NewRoutingFileSystem(const DataLayout& layout,
                                                          const crypto::Keystore* keystore,
                                                          std::shared_ptr<rocksdb::FileSystem> base,
                                                          RoutingOptions options) {
  auto keys = std::make_shared<const FileKeys>(layout, keystore, std::move(options));
  auto fs = std::make_shared<RoutingFileSystem>(std::move(base), std::move(keys));
  if (!fs->ok()) return nullptr;
  return fs;
}

}  // namespace sealcache::storage::internal
