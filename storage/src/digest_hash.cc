#include <cstring>
#include <random>

#include "sealcache/storage/store.h"

namespace sealcache::storage {
namespace {

constexpr uint64_t kMix = 0xBF58476D1CE4E5B9ull;  // odd; splitmix64's finaliser constants
constexpr uint64_t kMix2 = 0x94D049BB133111EBull;

}  // namespace

DigestHash::DigestHash() {
  std::random_device random;
  seed_ = (uint64_t{random()} << 32) | random();
}

size_t DigestHash::operator()(const Digest& d) const {
  uint64_t words[kDigestSize / sizeof(uint64_t)];
  std::memcpy(words, d.data(), sizeof(words));
  uint64_t h = seed_;
  for (uint64_t w : words) {
    h = (h ^ w) * kMix;
    h ^= h >> 31;
  }
  h *= kMix2;
  return static_cast<size_t>(h ^ (h >> 32));
}

}  // namespace sealcache::storage
