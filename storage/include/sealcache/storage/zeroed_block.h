// Memory for the open-addressing tables that resize a few cells per write (DigestMap, the
// server's slot table): zeroed blocks, and the gradual release of blocks no longer needed.
//
// A block of kMapBytes or more is mapped from the kernel, whose pages come zeroed as they are
// first written, so a new table costs no fill before its first entry; a smaller one comes from
// calloc. Unmapping a large block at once costs as much as a rehash would (4.8 ms for 58 MB
// on this machine kind), so a table retires its old block to a BlockReleaser, which gives it
// back a slice per write.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <utility>

namespace sealcache::storage {

class ZeroedBlock {
 public:
  static constexpr size_t kMapBytes = size_t{1} << 20;

  ZeroedBlock() = default;
  // `bytes` of zeroes. Throws std::bad_alloc without memory, as new does.
  explicit ZeroedBlock(size_t bytes) : bytes_(bytes) {
    if (bytes >= kMapBytes) {  // zero pages, each faulted in as it is first written
      data_ = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (data_ == MAP_FAILED) data_ = nullptr;
    } else {
      data_ = std::calloc(bytes, 1);
    }
    if (data_ == nullptr) throw std::bad_alloc();
  }
  ZeroedBlock(ZeroedBlock&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  ZeroedBlock& operator=(ZeroedBlock&& other) noexcept {
    ZeroedBlock gone(std::move(*this));
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    return *this;
  }
  ~ZeroedBlock() {
    if (data_ == nullptr) return;
    if (mapped()) {
      ::munmap(data_, bytes_);
    } else {
      std::free(data_);
    }
  }

  void* data() const { return data_; }
  bool mapped() const { return bytes_ >= kMapBytes; }

 private:
  friend class BlockReleaser;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// Gives retired blocks back to the kernel a slice at a time: the rest when destroyed.
class BlockReleaser {
 public:
  BlockReleaser() = default;
  BlockReleaser(const BlockReleaser&) = delete;
  BlockReleaser& operator=(const BlockReleaser&) = delete;
  ~BlockReleaser() { Release(SIZE_MAX); }

  // Takes `block`: one from calloc is freed now; a mapped one is released by later calls to
  // Release (the one retired before it, if any, goes now: two resizes within a few writes).
  void Retire(ZeroedBlock&& block) {
    if (!block.mapped()) {
      ZeroedBlock gone(std::move(block));
      return;
    }
    Release(SIZE_MAX);
    bytes_ = std::exchange(block.bytes_, 0);
    data_ = static_cast<char*>(std::exchange(block.data_, nullptr));
    done_ = 0;
  }
  // Unmaps the next `bytes` of the retired block, from its start (a page-aligned mapping, cut
  // at multiples of `bytes`, which must be a multiple of the page size unless SIZE_MAX).
  void Release(size_t bytes) {
    if (data_ == nullptr) return;
    const size_t n = std::min(bytes, bytes_ - done_);
    ::munmap(data_ + done_, n);
    done_ += n;
    if (done_ == bytes_) data_ = nullptr;
  }

 private:
  char* data_ = nullptr;  // the retired mapping, or null
  size_t bytes_ = 0;
  size_t done_ = 0;  // bytes unmapped from its start
};

}  // namespace sealcache::storage
