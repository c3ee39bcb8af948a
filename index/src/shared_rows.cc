#include "shared_rows.h"

#include <sys/mman.h>

#include <cstdlib>
#include <new>

namespace sealcache::index {

void* AllocateRows(size_t bytes) {
  if (bytes < kHugePageBytes) {
    void* p = std::malloc(bytes == 0 ? 1 : bytes);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  const size_t rounded = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  void* p = std::aligned_alloc(kHugePageBytes, rounded);
  if (p == nullptr) throw std::bad_alloc();
  // Advice only: without transparent huge pages the block is backed by small pages as before.
  (void)madvise(p, rounded, MADV_HUGEPAGE);
  return p;
}

void FreeRows(void* p) { std::free(p); }

}  // namespace sealcache::index
