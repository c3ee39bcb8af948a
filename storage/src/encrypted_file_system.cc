#include "encrypted_file_system.h"

#include <rocksdb/env_encryption.h>

#include <cstring>

#include "rocksdb_status.h"
#include "sealcache/crypto/aead.h"
#include "sealcache/crypto/ctr_cipher.h"
#include "sealcache/crypto/random.h"

namespace sealcache::storage::internal {
namespace {

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

class HeaderEncryptionProvider final : public rocksdb::EncryptionProvider {
 public:
  HeaderEncryptionProvider(DataLayout layout, const crypto::Keystore* keystore,
                           EncryptionEvents events)
      : layout_(std::move(layout)), keystore_(keystore), events_(std::move(events)) {}

  const char* Name() const override { return "SealcacheHeaderEncryptionProvider"; }
  size_t GetPrefixLength() const override { return kFileHeaderSize; }

  rocksdb::Status CreateNewPrefix(const std::string& fname, char* prefix,
                                  size_t prefix_length) const override {
    if (prefix_length != kFileHeaderSize) {
      return rocksdb::Status::InvalidArgument("unexpected encryption prefix length");
    }
    auto header = NewHeader(fname);
    if (!header.ok()) return ToRocks(header.status().WithContext("cannot create " + fname));
    std::memcpy(prefix, header->data(), kFileHeaderSize);
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
    if (!stream.ok()) {
      if (events_.on_decrypt_failure) events_.on_decrypt_failure(fname, stream.status());
      return ToRocks(stream.status());
    }
    if (events_.on_file_key_unwrapped) events_.on_file_key_unwrapped();
    *result = std::move(stream).value();
    return rocksdb::Status::OK();
  }

 private:
  Result<std::vector<uint8_t>> NewHeader(const std::string& fname) const {
    FileClass cls = layout_.Classify(fname);
    if (!cls.encrypted) return Status::Internal("path is not an encrypted location");
    SC_ASSIGN_OR_RETURN(crypto::Keystore::ActiveKey active, keystore_->Active(cls.ring));
    FileHeader h;
    h.kind = cls.kind;
    h.ring = cls.ring;
    h.key_version = active.version;
    SC_RETURN_IF_ERROR(crypto::RandomFill(h.file_id));
    SC_RETURN_IF_ERROR(crypto::RandomFill(h.iv));
    SC_ASSIGN_OR_RETURN(crypto::SecretBytes data_key, crypto::RandomSecret(crypto::kDataKeySize));
    SC_ASSIGN_OR_RETURN(auto wrapper, crypto::Aead::New(*active.key));
    SC_ASSIGN_OR_RETURN(h.wrapped_data_key, wrapper->Seal(data_key.span(), HeaderAad(h)));
    return EncodeFileHeader(h);
  }

  Result<std::unique_ptr<rocksdb::BlockAccessCipherStream>> OpenStream(
      const std::string& fname, std::span<const uint8_t> prefix) const {
    auto parsed = ParseFileHeader(prefix);
    if (!parsed.ok()) return parsed.status().WithContext("cannot decrypt " + fname);
    const FileHeader& h = *parsed;
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
                                ": its header does not "
                                "authenticate under " +
                                h.ring.ToString() + " key version " +
                                std::to_string(h.key_version) +
                                " (tampered header or a file "
                                "of another org)");
    }
    crypto::CtrCipher::Iv iv;
    std::copy(h.iv.begin(), h.iv.end(), iv.begin());
    SC_ASSIGN_OR_RETURN(auto ctr, crypto::CtrCipher::New(*data_key, iv));
    return std::unique_ptr<rocksdb::BlockAccessCipherStream>(new CtrCipherStream(std::move(ctr)));
  }

  DataLayout layout_;
  const crypto::Keystore* keystore_;
  EncryptionEvents events_;
};

class RoutingFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  RoutingFileSystem(const DataLayout& layout, std::shared_ptr<rocksdb::FileSystem> base,
                    std::shared_ptr<HeaderEncryptionProvider> provider)
      : rocksdb::FileSystemWrapper(base),
        layout_(layout),
        provider_(provider),
        encrypted_(rocksdb::NewEncryptedFS(base, provider)) {}

  bool ok() const { return encrypted_ != nullptr; }
  const char* Name() const override { return "SealcacheRoutingFileSystem"; }

  rocksdb::IOStatus NewSequentialFile(const std::string& f, const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSSequentialFile>* r,
                                      rocksdb::IODebugContext* d) override {
    return For(f)->NewSequentialFile(f, o, r, d);
  }
  rocksdb::IOStatus NewRandomAccessFile(const std::string& f, const rocksdb::FileOptions& o,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* r,
                                        rocksdb::IODebugContext* d) override {
    return For(f)->NewRandomAccessFile(f, o, r, d);
  }
  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* d) override {
    return For(f)->NewWritableFile(f, o, r, d);
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* d) override {
    if (IsEncrypted(f) != IsEncrypted(old)) {
      return rocksdb::IOStatus::NotSupported("cannot reuse a file across encryption domains");
    }
    return For(f)->ReuseWritableFile(f, old, o, r, d);
  }
  rocksdb::IOStatus NewRandomRWFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* r,
                                    rocksdb::IODebugContext* d) override {
    return For(f)->NewRandomRWFile(f, o, r, d);
  }

  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* d) override {
    if (!IsEncrypted(f)) return target()->ReopenWritableFile(f, o, r, d);
    uint64_t size = 0;
    rocksdb::IOStatus s = target()->GetFileSize(f, o.io_options, &size, d);
    if (!s.ok() || size == 0) {
      // New or empty: the encrypted FS writes a fresh header at offset 0.
      return encrypted_->ReopenWritableFile(f, o, r, d);
    }
    // Existing: continue the stream its header describes.
    std::unique_ptr<rocksdb::FSRandomAccessFile> reader;
    s = target()->NewRandomAccessFile(f, o, &reader, d);
    if (!s.ok()) return s;
    std::string buf(kFileHeaderSize, '\0');
    rocksdb::Slice prefix;
    s = reader->Read(0, kFileHeaderSize, o.io_options, &prefix, buf.data(), d);
    if (!s.ok()) return s;
    std::unique_ptr<rocksdb::BlockAccessCipherStream> stream;
    rocksdb::Status cs = provider_->CreateCipherStream(f, o, prefix, &stream);
    if (!cs.ok()) return rocksdb::status_to_io_status(std::move(cs));
    std::unique_ptr<rocksdb::FSWritableFile> underlying;
    s = target()->ReopenWritableFile(f, o, &underlying, d);
    if (!s.ok()) return s;
    underlying = std::make_unique<ReopenedWritableFile>(std::move(underlying), size);
    r->reset(new rocksdb::EncryptedWritableFile(std::move(underlying), std::move(stream),
                                                kFileHeaderSize));
    return rocksdb::IOStatus::OK();
  }

  rocksdb::IOStatus GetFileSize(const std::string& f, const rocksdb::IOOptions& o, uint64_t* size,
                                rocksdb::IODebugContext* d) override {
    rocksdb::IOStatus s = target()->GetFileSize(f, o, size, d);
    if (s.ok() && IsEncrypted(f)) *size = *size >= kFileHeaderSize ? *size - kFileHeaderSize : 0;
    return s;
  }

  rocksdb::IOStatus GetChildrenFileAttributes(const std::string& dir, const rocksdb::IOOptions& o,
                                              std::vector<rocksdb::FileAttributes>* result,
                                              rocksdb::IODebugContext* d) override {
    rocksdb::IOStatus s = target()->GetChildrenFileAttributes(dir, o, result, d);
    if (!s.ok()) return s;
    for (auto& attr : *result) {
      if (IsEncrypted(dir + "/" + attr.name)) {
        attr.size_bytes =
            attr.size_bytes >= kFileHeaderSize ? attr.size_bytes - kFileHeaderSize : 0;
      }
    }
    return s;
  }

  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst,
                               const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
    if (!SameDomain(src, dst)) {
      return rocksdb::IOStatus::NotSupported("refusing to rename " + src + " to " + dst +
                                             ": different encryption domains");
    }
    return target()->RenameFile(src, dst, o, d);
  }

  rocksdb::IOStatus LinkFile(const std::string& src, const std::string& dst,
                             const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
    if (!SameDomain(src, dst)) {
      return rocksdb::IOStatus::NotSupported("refusing to link " + src + " to " + dst +
                                             ": different encryption domains");
    }
    return target()->LinkFile(src, dst, o, d);
  }

 private:
  bool IsEncrypted(const std::string& f) const { return layout_.Classify(f).encrypted; }
  bool SameDomain(const std::string& a, const std::string& b) const {
    FileClass ca = layout_.Classify(a), cb = layout_.Classify(b);
    return ca.encrypted == cb.encrypted && (!ca.encrypted || ca.ring == cb.ring);
  }
  rocksdb::FileSystem* For(const std::string& f) const {
    return IsEncrypted(f) ? encrypted_.get() : target();
  }

  DataLayout layout_;
  std::shared_ptr<HeaderEncryptionProvider> provider_;
  std::shared_ptr<rocksdb::FileSystem> encrypted_;
};

}  // namespace

std::shared_ptr<rocksdb::FileSystem> NewRoutingFileSystem(const DataLayout& layout,
                                                          const crypto::Keystore* keystore,
                                                          std::shared_ptr<rocksdb::FileSystem> base,
                                                          EncryptionEvents events) {
  auto provider = std::make_shared<HeaderEncryptionProvider>(layout, keystore, std::move(events));
  auto fs = std::make_shared<RoutingFileSystem>(layout, std::move(base), std::move(provider));
  if (!fs->ok()) return nullptr;
  return fs;
}

}  // namespace sealcache::storage::internal
