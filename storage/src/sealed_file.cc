#include "sealed_file.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <vector>

#include "sealcache/crypto/hash.h"
#include "sealcache/encoding.h"

namespace sealcache::storage::internal {
namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

constexpr std::string_view kChunkKeyInfo = "sealcache/file/v2/chunks";
constexpr std::string_view kFrameKeyInfo = "sealcache/file/v2/frames";
// Frame headers are read through a window of this size, so a scan of small frames costs one
// read per window rather than one per frame.
constexpr size_t kScanWindow = 64 * 1024;

IOStatus ToIo(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk:
      return IOStatus::OK();
    case Status::Code::kCorruption:
      return IOStatus::Corruption(s.message());
    case Status::Code::kNotFound:
      return IOStatus::NotFound(s.message());
    case Status::Code::kInvalidArgument:
      return IOStatus::InvalidArgument(s.message());
    default:
      return IOStatus::IOError(s.message());
  }
}

Status FromIo(const IOStatus& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  if (s.IsCorruption()) return Status::Corruption(what + ": " + s.ToString());
  return Status::IOError(what + ": " + s.ToString());
}

// Reads exactly `n` bytes at `offset` into `buf` (a short read is Corruption: the file is
// shorter than its layout says).
Status ReadExactly(rocksdb::FSRandomAccessFile& file, uint64_t offset, size_t n, uint8_t* buf,
                   const std::string& path) {
  Slice got;
  IOStatus s = file.Read(offset, n, IOOptions(), &got, reinterpret_cast<char*>(buf), nullptr);
  if (!s.ok()) return FromIo(s, "read " + path);
  if (got.size() != n) {
    return Status::Corruption(path + " ends inside a chunk (truncated at offset " +
                              std::to_string(offset + got.size()) + ")");
  }
  if (got.data() != reinterpret_cast<const char*>(buf)) std::memcpy(buf, got.data(), n);
  return Status::Ok();
}

struct FrameHeader {
  uint32_t length = 0;
  bool valid = false;
};
FrameHeader DecodeFrameHeader(const uint8_t* p) {
  const uint32_t length = DecodeFixed32(p), check = DecodeFixed32(p + 4);
  return {length, check == ~length && length > 0 && length <= kMaxFrameSize};
}

uint64_t ChunkOffset(uint64_t index, uint32_t chunk_size) {
  return kFileHeaderSize + index * (uint64_t{chunk_size} + kSealOverhead);
}

// ---- Chunked files ---------------------------------------------------------------------------

class ChunkedWritableFile final : public rocksdb::FSWritableFile {
 public:
  ChunkedWritableFile(std::string path, std::unique_ptr<rocksdb::FSRandomRWFile> rw,
                      std::shared_ptr<const SealedBody> body, uint64_t physical_size)
      : path_(std::move(path)),
        rw_(std::move(rw)),
        body_(std::move(body)),
        chunk_(body_->chunk_size()),
        physical_end_(physical_size) {
    buf_.reserve(chunk_);
  }

  // Continues the file at its logical end: the final chunk's bytes become the buffer, and are
  // sealed again (with a new nonce, as a full or final chunk) when the file grows or syncs.
  Status LoadEnd() {
    SC_ASSIGN_OR_RETURN(uint64_t logical, ChunkedLogicalSize(physical_end_, chunk_));
    if (physical_end_ <= kFileHeaderSize) {
      final_written_ = false;
      return Status::Ok();
    }
    idx_ = logical / chunk_;
    const size_t len = static_cast<size_t>(logical % chunk_);
    std::vector<uint8_t> sealed(len + kSealOverhead);
    SC_RETURN_IF_ERROR(ReadChunk(idx_, sealed));
    const auto aad = body_->ChunkAad(idx_, /*final=*/true, logical);
    buf_.resize(len);
    SC_RETURN_IF_ERROR(body_->aead()
                           .OpenRaw(sealed, aad, buf_.data())
                           .WithContext(path_ + ": its final chunk does not authenticate"));
    logical_ = logical;
    final_written_ = true;
    return Status::Ok();
  }

  IOStatus Append(const Slice& data, const IOOptions&, IODebugContext*) override {
    return ToIo(AppendBytes(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  }
  IOStatus Append(const Slice& data, const IOOptions& o, const rocksdb::DataVerificationInfo&,
                  IODebugContext* d) override {
    return Append(data, o, d);
  }
  IOStatus Truncate(uint64_t size, const IOOptions&, IODebugContext*) override {
    return ToIo(TruncateTo(size));
  }
  // Whole chunks are written as they fill; only the final chunk waits for Sync or Close.
  IOStatus Flush(const IOOptions&, IODebugContext*) override { return IOStatus::OK(); }
  IOStatus Sync(const IOOptions& o, IODebugContext* d) override {
    IOStatus s = ToIo(WriteFinal());
    return s.ok() ? rw_->Sync(o, d) : s;
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* d) override {
    IOStatus s = ToIo(WriteFinal());
    return s.ok() ? rw_->Fsync(o, d) : s;
  }
  // A hint for smoothing write-back; the final Sync makes the file durable.
  IOStatus RangeSync(uint64_t, uint64_t, const IOOptions&, IODebugContext*) override {
    return IOStatus::OK();
  }
  IOStatus Close(const IOOptions& o, IODebugContext* d) override {
    if (rw_ == nullptr) return IOStatus::OK();
    IOStatus s = ToIo(WriteFinal());
    IOStatus c = rw_->Close(o, d);
    rw_.reset();
    return s.ok() ? c : s;
  }
  uint64_t GetFileSize(const IOOptions&, IODebugContext*) override { return logical_; }
  bool IsSyncThreadSafe() const override { return false; }

  ~ChunkedWritableFile() override {
    if (rw_ != nullptr) (void)Close(IOOptions(), nullptr);
  }

 private:
  Status ReadChunk(uint64_t index, std::vector<uint8_t>& sealed) {
    Slice got;
    IOStatus s = rw_->Read(ChunkOffset(index, chunk_), sealed.size(), IOOptions(), &got,
                           reinterpret_cast<char*>(sealed.data()), nullptr);
    if (!s.ok()) return FromIo(s, "read " + path_);
    if (got.size() != sealed.size()) {
      return Status::Corruption(path_ + " ends inside chunk " + std::to_string(index));
    }
    if (got.data() != reinterpret_cast<const char*>(sealed.data())) {
      std::memcpy(sealed.data(), got.data(), sealed.size());
    }
    return Status::Ok();
  }

  Status AppendBytes(const uint8_t* p, size_t n) {
    if (rw_ == nullptr) return Status::FailedPrecondition(path_ + " is closed");
    if (n == 0) return Status::Ok();
    final_written_ = false;
    const uint64_t first = idx_;
    out_.clear();
    auto seal_full = [&](const uint8_t* plain) -> Status {
      const size_t at = out_.size();
      out_.resize(at + chunk_ + kSealOverhead);
      const auto aad = body_->ChunkAad(idx_, /*final=*/false, 0);
      SC_RETURN_IF_ERROR(body_->aead().SealRaw({plain, chunk_}, aad, nonces_, out_.data() + at));
      ++idx_;
      return Status::Ok();
    };
    while (n > 0) {
      if (buf_.empty() && n >= chunk_) {  // whole chunks straight from the caller's bytes
        SC_RETURN_IF_ERROR(seal_full(p));
        p += chunk_;
        n -= chunk_;
        logical_ += chunk_;
        continue;
      }
      const size_t take = std::min<size_t>(chunk_ - buf_.size(), n);
      buf_.insert(buf_.end(), p, p + take);
      p += take;
      n -= take;
      logical_ += take;
      if (buf_.size() == chunk_) {
        SC_RETURN_IF_ERROR(seal_full(buf_.data()));
        buf_.clear();
      }
    }
    if (out_.empty()) return Status::Ok();
    const uint64_t offset = ChunkOffset(first, chunk_);
    IOStatus s = rw_->Write(offset, Slice(reinterpret_cast<const char*>(out_.data()), out_.size()),
                            IOOptions(), nullptr);
    if (!s.ok()) return FromIo(s, "write " + path_);
    physical_end_ = std::max(physical_end_, offset + out_.size());
    return Status::Ok();
  }

  // Seals the buffered bytes as the final chunk, bound to the logical size, at its place.
  Status WriteFinal() {
    if (final_written_ || rw_ == nullptr) return Status::Ok();
    std::vector<uint8_t> sealed(buf_.size() + kSealOverhead);
    const auto aad = body_->ChunkAad(idx_, /*final=*/true, logical_);
    SC_RETURN_IF_ERROR(body_->aead().SealRaw(buf_, aad, nonces_, sealed.data()));
    const uint64_t offset = ChunkOffset(idx_, chunk_);
    IOStatus s =
        rw_->Write(offset, Slice(reinterpret_cast<const char*>(sealed.data()), sealed.size()),
                   IOOptions(), nullptr);
    if (!s.ok()) return FromIo(s, "write " + path_);
    const uint64_t end = offset + sealed.size();
    if (physical_end_ > end) SC_RETURN_IF_ERROR(CutAt(end));
    physical_end_ = end;
    final_written_ = true;
    return Status::Ok();
  }

  // Cuts the file to `size` logical bytes: the chunk holding the new end is read back into
  // the buffer (its bytes are sealed again, with a new nonce, by the next write or sync).
  Status TruncateTo(uint64_t size) {
    if (rw_ == nullptr) return Status::FailedPrecondition(path_ + " is closed");
    if (size == logical_) return Status::Ok();
    if (size > logical_) {
      return Status::InvalidArgument("cannot extend " + path_ + " by truncation");
    }
    const uint64_t index = size / chunk_;
    const size_t keep = static_cast<size_t>(size % chunk_);
    if (index < idx_) {  // the new end is in a whole chunk already written
      std::vector<uint8_t> sealed(chunk_ + kSealOverhead);
      SC_RETURN_IF_ERROR(ReadChunk(index, sealed));
      std::vector<uint8_t> plain(chunk_);
      const auto aad = body_->ChunkAad(index, /*final=*/false, 0);
      SC_RETURN_IF_ERROR(body_->aead().OpenRaw(sealed, aad, plain.data()));
      buf_.assign(plain.begin(), plain.begin() + keep);
      idx_ = index;
    } else {
      buf_.resize(keep);
    }
    logical_ = size;
    final_written_ = false;
    const uint64_t cut = ChunkOffset(idx_, chunk_);
    if (physical_end_ > cut) SC_RETURN_IF_ERROR(CutAt(cut));
    physical_end_ = cut;
    return Status::Ok();
  }

  Status CutAt(uint64_t physical) {
    if (::truncate(path_.c_str(), static_cast<off_t>(physical)) != 0) {
      return Status::IOError("cannot truncate " + path_ + ": " + std::strerror(errno));
    }
    return Status::Ok();
  }

  const std::string path_;
  std::unique_ptr<rocksdb::FSRandomRWFile> rw_;
  const std::shared_ptr<const SealedBody> body_;
  const uint32_t chunk_;
  uint64_t idx_ = 0;      // the chunk being filled (every chunk before it is written)
  uint64_t logical_ = 0;  // idx_ * chunk_ + buf_.size()
  uint64_t physical_end_;
  bool final_written_ = false;    // the file on disk ends with the final chunk for logical_
  std::vector<uint8_t> buf_;      // plaintext of chunk idx_, fewer than chunk_ bytes
  std::vector<uint8_t> out_;      // sealed whole chunks of one Append
  crypto::NonceSequence nonces_;  // this writer's: a reopen or another writer draws its own
};

class ChunkedRandomAccessFile final : public rocksdb::FSRandomAccessFile {
 public:
  ChunkedRandomAccessFile(std::string path, std::unique_ptr<rocksdb::FSRandomAccessFile> base,
                          std::shared_ptr<const SealedBody> body, uint64_t logical,
                          SealedFileEvents events)
      : path_(std::move(path)),
        base_(std::move(base)),
        body_(std::move(body)),
        chunk_(body_->chunk_size()),
        logical_(logical),
        final_index_(logical / chunk_),
        events_(std::move(events)) {}

  // The final chunk authenticates only in a file of exactly this length: a cut, extended or
  // mixed-up file fails here, at open.
  Status CheckFinalChunk() {
    std::vector<uint8_t> sealed(FinalLength() + kSealOverhead);
    SC_RETURN_IF_ERROR(ReadExactly(*base_, ChunkOffset(final_index_, chunk_), sealed.size(),
                                   sealed.data(), path_));
    return OpenChunk(final_index_, sealed);
  }

  IOStatus Read(uint64_t offset, size_t n, const IOOptions&, Slice* result, char* scratch,
                IODebugContext*) const override {
    if (offset >= logical_ || n == 0) {
      *result = Slice(scratch, 0);
      return IOStatus::OK();
    }
    n = static_cast<size_t>(std::min<uint64_t>(n, logical_ - offset));
    const uint64_t first = offset / chunk_, last = (offset + n - 1) / chunk_;
    const uint64_t begin = ChunkOffset(first, chunk_);
    const uint64_t end = ChunkOffset(last, chunk_) + ChunkLength(last) + kSealOverhead;
    thread_local std::vector<uint8_t> sealed;
    sealed.resize(static_cast<size_t>(end - begin));
    Status s = ReadExactly(*base_, begin, sealed.size(), sealed.data(), path_);
    if (!s.ok()) return ToIo(s);
    char* out = scratch;
    for (uint64_t i = first; i <= last; ++i) {
      uint8_t* at = sealed.data() + (i - first) * (uint64_t{chunk_} + kSealOverhead);
      const size_t len = ChunkLength(i);
      s = OpenChunk(i, {at, len + kSealOverhead});
      if (!s.ok()) return ToIo(s);
      // Decrypted in place, after the nonce: copy the requested part.
      const uint64_t chunk_start = i * chunk_;
      const uint64_t from = std::max(offset, chunk_start);
      const uint64_t to = std::min(offset + n, chunk_start + len);
      std::memcpy(out, at + crypto::Aead::kNonceSize + (from - chunk_start), to - from);
      out += to - from;
    }
    *result = Slice(scratch, n);
    return IOStatus::OK();
  }

  IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num_reqs, const IOOptions& o,
                     IODebugContext* d) override {
    for (size_t i = 0; i < num_reqs; ++i) {
      reqs[i].status = Read(reqs[i].offset, reqs[i].len, o, &reqs[i].result, reqs[i].scratch, d);
    }
    return IOStatus::OK();
  }
  // Accepted as a hint and not acted on. Answering NotSupported would make RocksDB read the
  // last 512 KiB of a table into its own buffer at open: one read, but a damaged chunk
  // anywhere in that range (data blocks too, in a small table) would then fail the whole
  // table instead of the reads that need that chunk.
  IOStatus Prefetch(uint64_t, size_t, const IOOptions&, IODebugContext*) override {
    return IOStatus::OK();
  }
  IOStatus InvalidateCache(size_t offset, size_t length) override {
    return base_->InvalidateCache(offset, length);
  }

  uint64_t logical_size() const { return logical_; }

 private:
  size_t FinalLength() const { return static_cast<size_t>(logical_ % chunk_); }
  size_t ChunkLength(uint64_t index) const {
    return index == final_index_ ? FinalLength() : chunk_;
  }

  // Opens chunk `index` in place (the plaintext lands after the nonce).
  Status OpenChunk(uint64_t index, std::span<uint8_t> sealed) const {
    const bool final = index == final_index_;
    const auto aad = body_->ChunkAad(index, final, final ? logical_ : 0);
    Status s = body_->aead().OpenRaw(sealed, aad, sealed.data() + crypto::Aead::kNonceSize);
    if (s.ok()) return s;
    Status failure = Status::Corruption(
        path_ + ": chunk " + std::to_string(index) + " (logical offset " +
        std::to_string(index * chunk_) +
        ") does not authenticate: the file was tampered with, cut, extended, reordered or "
        "spliced from another file");
    if (events_.on_auth_failure) events_.on_auth_failure(path_, failure);
    return failure;
  }

  const std::string path_;
  std::unique_ptr<rocksdb::FSRandomAccessFile> base_;
  const std::shared_ptr<const SealedBody> body_;
  const uint32_t chunk_;
  const uint64_t logical_;
  const uint64_t final_index_;
  const SealedFileEvents events_;
};

class ChunkedSequentialFile final : public rocksdb::FSSequentialFile {
 public:
  explicit ChunkedSequentialFile(std::unique_ptr<rocksdb::FSRandomAccessFile> file)
      : file_(std::move(file)) {}
  IOStatus Read(size_t n, const IOOptions& o, Slice* result, char* scratch,
                IODebugContext* d) override {
    IOStatus s = file_->Read(pos_, n, o, result, scratch, d);
    if (s.ok()) pos_ += result->size();
    return s;
  }
  IOStatus Skip(uint64_t n) override {
    pos_ += n;
    return IOStatus::OK();
  }
  IOStatus PositionedRead(uint64_t offset, size_t n, const IOOptions& o, Slice* result,
                          char* scratch, IODebugContext* d) override {
    return file_->Read(offset, n, o, result, scratch, d);
  }

 private:
  std::unique_ptr<rocksdb::FSRandomAccessFile> file_;
  uint64_t pos_ = 0;
};

// ---- Framed files ----------------------------------------------------------------------------

class FramedWritableFile final : public rocksdb::FSWritableFile {
 public:
  FramedWritableFile(std::unique_ptr<rocksdb::FSWritableFile> base,
                     std::shared_ptr<const SealedBody> body, const FrameScan& scan)
      : base_(std::move(base)),
        body_(std::move(body)),
        next_(scan.frames),
        logical_(scan.logical_bytes) {}
  // RocksDB destroys a log on whichever thread closes it (a flush thread, once the log is
  // obsolete), after the last append on a write-group leader's thread, ordered by its
  // uninstrumented atomics; taking the lock makes that order visible to TSan, which otherwise
  // sees the frame buffer freed while the last append's write(2) read it.
  // Flush, Sync and Close run outside the lock (an fsync must not hold up appends); each
  // publishes its end through `calls_done_`, which the destructor reads, for the same reason.
  ~FramedWritableFile() override {
    std::lock_guard<std::mutex> lock(mu_);
    (void)calls_done_.load(std::memory_order_acquire);
  }

  IOStatus Append(const Slice& data, const IOOptions& o, IODebugContext* d) override {
    std::lock_guard<std::mutex> lock(mu_);
    const auto* p = reinterpret_cast<const uint8_t*>(data.data());
    size_t n = data.size();
    out_.clear();
    while (n > 0) {
      const auto len = static_cast<uint32_t>(std::min<size_t>(n, kMaxFrameSize));
      const size_t at = out_.size();
      out_.resize(at + kFrameOverhead + len);
      EncodeFixed32(out_.data() + at, len);
      EncodeFixed32(out_.data() + at + 4, ~len);
      const auto aad = body_->FrameAad(next_, logical_, len);
      Status s = body_->aead().SealRaw({p, len}, aad, nonces_, out_.data() + at + kFrameHeaderSize);
      if (!s.ok()) return ToIo(s);
      ++next_;
      logical_ += len;
      p += len;
      n -= len;
    }
    if (out_.empty()) return IOStatus::OK();
    return base_->Append(Slice(reinterpret_cast<const char*>(out_.data()), out_.size()), o, d);
  }
  IOStatus Append(const Slice& data, const IOOptions& o, const rocksdb::DataVerificationInfo&,
                  IODebugContext* d) override {
    return Append(data, o, d);
  }
  // Frames are never rewritten, so a framed file is cut only at its end.
  IOStatus Truncate(uint64_t size, const IOOptions&, IODebugContext*) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (size == logical_) return IOStatus::OK();
    return IOStatus::NotSupported("a format v2 log is cut only at its logical end");
  }
  IOStatus Flush(const IOOptions& o, IODebugContext* d) override {
    return Done(base_->Flush(o, d));
  }
  IOStatus Sync(const IOOptions& o, IODebugContext* d) override { return Done(base_->Sync(o, d)); }
  IOStatus Fsync(const IOOptions& o, IODebugContext* d) override {
    return Done(base_->Fsync(o, d));
  }
  IOStatus RangeSync(uint64_t, uint64_t, const IOOptions&, IODebugContext*) override {
    return IOStatus::OK();
  }
  IOStatus Close(const IOOptions& o, IODebugContext* d) override {
    return Done(base_->Close(o, d));
  }
  uint64_t GetFileSize(const IOOptions&, IODebugContext*) override {
    std::lock_guard<std::mutex> lock(mu_);
    return logical_;
  }
  bool IsSyncThreadSafe() const override { return base_->IsSyncThreadSafe(); }
  IOStatus Allocate(uint64_t, uint64_t, const IOOptions&, IODebugContext*) override {
    return IOStatus::OK();
  }

 private:
  IOStatus Done(IOStatus s) {
    calls_done_.fetch_add(1, std::memory_order_release);
    return s;
  }

  std::unique_ptr<rocksdb::FSWritableFile> base_;
  const std::shared_ptr<const SealedBody> body_;
  std::atomic<uint64_t> calls_done_{0};
  // RocksDB appends to a log from one write-group leader at a time, handing over through
  // atomics in its own (uninstrumented) code; the lock makes that order visible to TSan, and
  // costs an uncontended lock per write group.
  std::mutex mu_;
  uint64_t next_;     // GUARDED_BY(mu_): index of the next frame
  uint64_t logical_;  // GUARDED_BY(mu_): plaintext bytes in the file
  std::vector<uint8_t> out_;
  crypto::NonceSequence nonces_;
};

class FramedSequentialFile final : public rocksdb::FSSequentialFile {
 public:
  FramedSequentialFile(std::string path, std::unique_ptr<rocksdb::FSRandomAccessFile> base,
                       std::shared_ptr<const SealedBody> body, uint64_t physical_size,
                       SealedFileEvents events)
      : path_(std::move(path)),
        base_(std::move(base)),
        body_(std::move(body)),
        size_(physical_size),
        events_(std::move(events)) {}

  IOStatus Read(size_t n, const IOOptions&, Slice* result, char* scratch,
                IODebugContext*) override {
    size_t got = 0;
    while (got < n) {
      if (plain_pos_ == plain_.size()) {
        if (ended_) break;
        // An error drops what this read gathered: RocksDB's log reader takes a short read
        // for the end of the file and would never ask again for the error.
        Status s = NextFrame();
        if (!s.ok()) return ToIo(s);
        continue;
      }
      const size_t take = std::min(n - got, plain_.size() - plain_pos_);
      std::memcpy(scratch + got, plain_.data() + plain_pos_, take);
      plain_pos_ += take;
      got += take;
    }
    *result = Slice(scratch, got);
    return IOStatus::OK();
  }
  IOStatus Skip(uint64_t n) override {
    while (n > 0) {
      if (plain_pos_ == plain_.size()) {
        if (ended_) return IOStatus::OK();
        Status s = NextFrame();
        if (!s.ok()) return ToIo(s);
        continue;
      }
      const size_t take = static_cast<size_t>(std::min<uint64_t>(n, plain_.size() - plain_pos_));
      plain_pos_ += take;
      n -= take;
    }
    return IOStatus::OK();
  }

 private:
  // Loads the next frame into plain_, or sets ended_ at the end of the log.
  Status NextFrame() {
    plain_.clear();
    plain_pos_ = 0;
    const uint64_t remaining = size_ - pos_;
    if (remaining == 0) return End("");
    if (remaining >= kFrameOverhead) {
      uint8_t header[kFrameHeaderSize];
      SC_RETURN_IF_ERROR(ReadExactly(*base_, pos_, sizeof(header), header, path_));
      const FrameHeader h = DecodeFrameHeader(header);
      if (h.valid && kFrameOverhead + uint64_t{h.length} <= remaining) {
        SC_ASSIGN_OR_RETURN(bool ok, OpenFrame(pos_, h.length, index_, logical_, &plain_));
        if (ok) {
          pos_ += kFrameOverhead + h.length;
          ++index_;
          logical_ += h.length;
          return Status::Ok();
        }
      }
    }
    // No intact frame here: a torn write, a zero-filled tail, damage or garbage. Only an
    // intact frame after it tells a damaged log from a torn end.
    SC_ASSIGN_OR_RETURN(std::optional<uint64_t> next, NextIntactFrame());
    if (next.has_value()) {
      return Damaged("it does not authenticate, and an intact frame follows at physical offset " +
                     std::to_string(*next));
    }
    return End(std::to_string(remaining) +
               " bytes that hold no intact frame (a torn write or damage)");
  }

  // Opens the frame of `length` at physical `at` as frame `index` at `logical`; false if it
  // does not authenticate.
  Result<bool> OpenFrame(uint64_t at, uint32_t length, uint64_t index, uint64_t logical,
                         std::vector<uint8_t>* plain) {
    sealed_.resize(kFrameOverhead + length);
    SC_RETURN_IF_ERROR(ReadExactly(*base_, at, sealed_.size(), sealed_.data(), path_));
    plain->resize(length);
    const auto aad = body_->FrameAad(index, logical, length);
    if (body_->aead()
            .OpenRaw({sealed_.data() + kFrameHeaderSize, length + kSealOverhead}, aad,
                     plain->data())
            .ok()) {
      return true;
    }
    plain->clear();
    return false;
  }

  // The physical offset of an intact frame index_ + 1 anywhere after pos_ (whatever length
  // the bad frame at pos_ had), if there is one.
  Result<std::optional<uint64_t>> NextIntactFrame() {
    std::vector<uint8_t> window(kScanWindow), plain;
    const uint64_t first = pos_ + kFrameOverhead;
    for (uint64_t at = first; at + kFrameOverhead <= size_;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(window.size(), size_ - at));
      SC_RETURN_IF_ERROR(ReadExactly(*base_, at, n, window.data(), path_));
      for (size_t i = 0; i + kFrameHeaderSize <= n; ++i) {
        const FrameHeader h = DecodeFrameHeader(window.data() + i);
        const uint64_t p = at + i;
        if (!h.valid || p + kFrameOverhead + h.length > size_) continue;
        const uint64_t logical = logical_ + (p - pos_ - kFrameOverhead);
        SC_ASSIGN_OR_RETURN(bool ok, OpenFrame(p, h.length, index_ + 1, logical, &plain));
        if (ok) return std::optional<uint64_t>(p);
      }
      if (n < kFrameHeaderSize) break;
      at += n - (kFrameHeaderSize - 1);
    }
    return std::optional<uint64_t>();
  }

  Status End(const std::string& dropped) {
    ended_ = true;
    if (!dropped.empty() && events_.on_tail_dropped) {
      events_.on_tail_dropped(path_, "dropping " + dropped + " at the end of the log (frame " +
                                         std::to_string(index_) + ", logical offset " +
                                         std::to_string(logical_) + ")");
    }
    return Status::Ok();
  }
  Status Damaged(const std::string& why) {
    Status s = Status::Corruption(path_ + ": frame " + std::to_string(index_) +
                                  " at physical offset " + std::to_string(pos_) + " is bad (" +
                                  why + "): the log was damaged or tampered with");
    if (events_.on_auth_failure) events_.on_auth_failure(path_, s);
    return s;
  }

  const std::string path_;
  std::unique_ptr<rocksdb::FSRandomAccessFile> base_;
  const std::shared_ptr<const SealedBody> body_;
  const uint64_t size_;
  const SealedFileEvents events_;
  uint64_t pos_ = kFileHeaderSize;  // physical offset of the next frame
  uint64_t index_ = 0;
  uint64_t logical_ = 0;
  bool ended_ = false;
  std::vector<uint8_t> sealed_, plain_;
  size_t plain_pos_ = 0;
};

}  // namespace

// ---- SealedBody ------------------------------------------------------------------------------

SealedBody::SealedBody(std::unique_ptr<crypto::Aead> aead, const FileHeader& header)
    : aead_(std::move(aead)),
      file_id_(header.file_id),
      kind_(static_cast<uint8_t>(header.kind)),
      layout_(header.layout),
      chunk_size_(header.chunk_size) {}

Result<std::shared_ptr<const SealedBody>> SealedBody::New(const crypto::SecretBytes& data_key,
                                                          const FileHeader& header) {
  if (header.format_version != kFileFormatV2 || header.layout == BodyLayout::kCtr) {
    return Status::InvalidArgument("not a format v2 header");
  }
  const std::string_view info =
      header.layout == BodyLayout::kChunks ? kChunkKeyInfo : kFrameKeyInfo;
  SC_ASSIGN_OR_RETURN(crypto::SecretBytes key,
                      crypto::HkdfSha256(data_key, info, crypto::Aead::kKeySize));
  SC_ASSIGN_OR_RETURN(auto aead, crypto::Aead::New(key));
  return std::shared_ptr<const SealedBody>(new SealedBody(std::move(aead), header));
}

std::array<uint8_t, SealedBody::kChunkAadSize> SealedBody::ChunkAad(uint64_t index, bool final,
                                                                    uint64_t logical_size) const {
  std::array<uint8_t, kChunkAadSize> aad{};
  std::memcpy(aad.data(), file_id_.data(), 16);
  aad[16] = kind_;
  EncodeFixed64(aad.data() + 17, index);
  aad[25] = final ? 1 : 0;
  EncodeFixed64(aad.data() + 26, final ? logical_size : 0);
  return aad;
}

std::array<uint8_t, SealedBody::kFrameAadSize> SealedBody::FrameAad(uint64_t index,
                                                                    uint64_t logical_offset,
                                                                    uint32_t length) const {
  std::array<uint8_t, kFrameAadSize> aad{};
  std::memcpy(aad.data(), file_id_.data(), 16);
  aad[16] = kind_;
  EncodeFixed64(aad.data() + 17, index);
  EncodeFixed64(aad.data() + 25, logical_offset);
  EncodeFixed32(aad.data() + 33, length);
  return aad;
}

// ---- Sizes -----------------------------------------------------------------------------------

uint64_t ChunkedPhysicalSize(uint64_t logical, uint32_t chunk_size) {
  return ChunkOffset(logical / chunk_size, chunk_size) + logical % chunk_size + kSealOverhead;
}

uint64_t ChunkedPhysicalOffset(uint64_t logical, uint32_t chunk_size) {
  return ChunkOffset(logical / chunk_size, chunk_size) + crypto::Aead::kNonceSize +
         logical % chunk_size;
}

Result<uint64_t> LogicalSizeOf(const std::string& path, const FileHeader& header,
                               uint64_t physical_size) {
  if (physical_size < kFileHeaderSize) return uint64_t{0};
  switch (header.layout) {
    case BodyLayout::kCtr:
      return physical_size - kFileHeaderSize;
    case BodyLayout::kChunks:
      return ChunkedLogicalSize(physical_size, header.chunk_size);
    case BodyLayout::kFrames:
      break;
  }
  std::unique_ptr<rocksdb::FSRandomAccessFile> file;
  IOStatus s = rocksdb::FileSystem::Default()->NewRandomAccessFile(path, rocksdb::FileOptions(),
                                                                   &file, nullptr);
  if (!s.ok()) return FromIo(s, "open " + path);
  SC_ASSIGN_OR_RETURN(FrameScan scan, ScanFrames(path, *file, physical_size, nullptr));
  return scan.logical_bytes;
}

Result<uint64_t> ChunkedLogicalSize(uint64_t physical, uint32_t chunk_size) {
  if (physical < kFileHeaderSize) {
    return Status::Corruption("file is shorter than its header");
  }
  if (physical == kFileHeaderSize) return uint64_t{0};
  const uint64_t body = physical - kFileHeaderSize;
  const uint64_t stride = uint64_t{chunk_size} + kSealOverhead;
  const uint64_t full = body / stride, rest = body % stride;
  if (rest < kSealOverhead) {
    return Status::Corruption("its size " + std::to_string(physical) +
                              " is off the format v2 chunk grid (the file was cut or extended)");
  }
  return full * chunk_size + (rest - kSealOverhead);
}

Result<FrameScan> ScanFrames(const std::string& path, rocksdb::FSRandomAccessFile& file,
                             uint64_t physical_size, const SealedBody* body) {
  FrameScan scan;
  scan.physical_size = physical_size;
  scan.end = kFileHeaderSize;
  if (physical_size < kFileHeaderSize) return Status::Corruption("file is shorter than its header");
  std::vector<uint8_t> window;
  uint64_t window_at = 0;
  uint64_t last_start = 0;
  uint32_t last_length = 0;
  while (physical_size - scan.end >= kFrameOverhead) {
    if (scan.end < window_at || scan.end + kFrameHeaderSize > window_at + window.size()) {
      window_at = scan.end;
      window.resize(static_cast<size_t>(std::min<uint64_t>(kScanWindow, physical_size - scan.end)));
      SC_RETURN_IF_ERROR(ReadExactly(file, window_at, window.size(), window.data(), path));
    }
    const FrameHeader h = DecodeFrameHeader(window.data() + (scan.end - window_at));
    if (!h.valid) break;  // torn, zero-filled or damaged: the reader tells which
    const uint64_t frame_size = kFrameOverhead + uint64_t{h.length};
    if (frame_size > physical_size - scan.end) break;  // torn
    last_start = scan.end;
    last_length = h.length;
    scan.end += frame_size;
    scan.logical_bytes += h.length;
    ++scan.frames;
  }
  if (body != nullptr && scan.frames > 0) {
    std::vector<uint8_t> sealed(kFrameOverhead + last_length), plain(last_length);
    SC_RETURN_IF_ERROR(ReadExactly(file, last_start, sealed.size(), sealed.data(), path));
    const auto aad = body->FrameAad(scan.frames - 1, scan.logical_bytes - last_length, last_length);
    if (!body->aead()
             .OpenRaw({sealed.data() + kFrameHeaderSize, last_length + kSealOverhead}, aad,
                      plain.data())
             .ok()) {
      --scan.frames;
      scan.logical_bytes -= last_length;
      scan.end = last_start;
    }
  }
  return scan;
}

// ---- Factories -------------------------------------------------------------------------------

Result<std::unique_ptr<rocksdb::FSWritableFile>> NewChunkedWritableFile(
    std::string path, std::unique_ptr<rocksdb::FSRandomRWFile> rw,
    std::shared_ptr<const SealedBody> body, bool reopen, uint64_t physical_size) {
  auto file = std::make_unique<ChunkedWritableFile>(std::move(path), std::move(rw), std::move(body),
                                                    physical_size);
  if (reopen) SC_RETURN_IF_ERROR(file->LoadEnd());
  return std::unique_ptr<rocksdb::FSWritableFile>(std::move(file));
}

Result<std::unique_ptr<rocksdb::FSRandomAccessFile>> NewChunkedRandomAccessFile(
    std::string path, std::unique_ptr<rocksdb::FSRandomAccessFile> base,
    std::shared_ptr<const SealedBody> body, uint64_t physical_size, SealedFileEvents events) {
  auto logical = ChunkedLogicalSize(physical_size, body->chunk_size());
  if (!logical.ok()) return logical.status().WithContext(path);
  if (physical_size == kFileHeaderSize) {
    return Status::Corruption(path + " has no final chunk (cut down to its header)");
  }
  auto file = std::make_unique<ChunkedRandomAccessFile>(path, std::move(base), std::move(body),
                                                        *logical, std::move(events));
  SC_RETURN_IF_ERROR(file->CheckFinalChunk());
  return std::unique_ptr<rocksdb::FSRandomAccessFile>(std::move(file));
}

std::unique_ptr<rocksdb::FSSequentialFile> NewChunkedSequentialFile(
    std::unique_ptr<rocksdb::FSRandomAccessFile> chunked) {
  return std::make_unique<ChunkedSequentialFile>(std::move(chunked));
}

std::unique_ptr<rocksdb::FSWritableFile> NewFramedWritableFile(
    std::unique_ptr<rocksdb::FSWritableFile> base, std::shared_ptr<const SealedBody> body,
    const FrameScan& scan) {
  return std::make_unique<FramedWritableFile>(std::move(base), std::move(body), scan);
}

std::unique_ptr<rocksdb::FSSequentialFile> NewFramedSequentialFile(
    std::string path, std::unique_ptr<rocksdb::FSRandomAccessFile> base,
    std::shared_ptr<const SealedBody> body, uint64_t physical_size, SealedFileEvents events) {
  return std::make_unique<FramedSequentialFile>(std::move(path), std::move(base), std::move(body),
                                                physical_size, std::move(events));
}

}  // namespace sealcache::storage::internal
