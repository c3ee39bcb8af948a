// SharedRows: the rows of a growing graph's per-node arrays (half-precision vectors, int8
// codes, their scales), shared by the graph's versions instead of copied into each.
//
// A sealed graph is immutable while readers walk it; a seal publishes a new version with
// more nodes. The rows a version holds never change, so a new version appends past them in
// the same block: each version reads only its own first rows(), and one extension at a time
// writes only past the rows claimed so far. An extension claims its rows with a
// compare-and-swap on the block's end, so a second extension of an older version (or one
// after a cancelled extension) finds the block claimed past its rows and copies them into a
// new block, as it does when the block is full. A new block has room for as many rows again
// as it holds: pages past the rows written are never touched, so the room costs address
// space, not memory.
//
// Blocks of a huge page or more ask the kernel for transparent huge pages (AllocateRows): a
// walk reads one code each of hundreds of nodes spread over tens of megabytes, and with
// 4 KiB pages nearly each of those reads also missed the TLB.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <memory>
#include <type_traits>

namespace sealcache::index {

// Memory for rows: blocks of kHugePageBytes or more are aligned to it, rounded up to it and
// advised as huge pages (used where the kernel's transparent huge pages are in madvise or
// always mode); smaller ones come from the heap. Throws std::bad_alloc without memory, as
// new does.
inline constexpr size_t kHugePageBytes = size_t{2} << 20;
void* AllocateRows(size_t bytes);
void FreeRows(void* p);

template <typename T>
class SharedRows {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  SharedRows() = default;
  explicit SharedRows(size_t width) : width_(width) {}

  size_t width() const { return width_; }
  size_t rows() const { return rows_; }
  const T* data() const { return data_; }
  const T* Row(size_t i) const { return data_ + i * width_; }

  // Adds `extra` rows to this version, writable through MutableRow until the version is
  // shared with readers. Shares the block with the version this one was copied from when
  // nothing was appended past its rows and the block has room; copies the rows otherwise.
  void Grow(size_t extra) {
    const size_t end = rows_ * width_, new_end = (rows_ + extra) * width_;
    size_t claimed = end;
    if (block_ == nullptr || new_end > block_->capacity ||
        !block_->claimed.compare_exchange_strong(claimed, new_end)) {
      auto block = std::make_shared<Block>(2 * new_end);
      if (end > 0) std::memcpy(block->data.get(), data_, end * sizeof(T));
      block->claimed.store(new_end, std::memory_order_relaxed);
      block_ = std::move(block);
      data_ = block_->data.get();
    }
    rows_ += extra;
  }

  // REQUIRES: row i was added by this version's Grow.
  T* MutableRow(size_t i) { return block_->data.get() + i * width_; }

  // Whether this version and `other` read the same block (tests).
  bool SharesBlockWith(const SharedRows& other) const {
    return block_ != nullptr && block_ == other.block_;
  }

 private:
  struct Block {
    struct Free {
      void operator()(T* p) const { FreeRows(p); }
    };
    explicit Block(size_t capacity)
        : data(static_cast<T*>(AllocateRows(capacity * sizeof(T)))), capacity(capacity) {}
    std::unique_ptr<T, Free> data;
    size_t capacity;                 // elements
    std::atomic<size_t> claimed{0};  // elements written by the newest extension
  };
  std::shared_ptr<Block> block_;
  const T* data_ = nullptr;
  size_t width_ = 0;
  size_t rows_ = 0;
};

}  // namespace sealcache::index
