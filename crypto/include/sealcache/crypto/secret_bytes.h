// SecretBytes: the one type that holds key material.
//
// - Wiped with OPENSSL_cleanse on destruction and on move-from.
// - Never copied implicitly (use Clone()), never printable (no operator<<, no ToString).
// - The buffer is mlock()ed where the process is allowed to, so it is not swapped out;
//   where mlock is refused (RLIMIT_MEMLOCK) it still works, only without that guarantee.
// - The heap buffer never moves, so a move leaves no stray copy behind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace sealcache::crypto {

class SecretBytes {
 public:
  SecretBytes() = default;
  // A zero-filled secret of `size` bytes, to be filled by the caller via data().
  explicit SecretBytes(size_t size);
  // Copies `bytes` in. The caller remains responsible for wiping its own copy.
  static SecretBytes CopyFrom(std::span<const uint8_t> bytes);

  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  SecretBytes Clone() const;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const uint8_t* data() const { return data_; }
  uint8_t* data() { return data_; }
  std::span<const uint8_t> span() const { return {data_, size_}; }

  // Constant-time comparison.
  bool Equals(const SecretBytes& other) const;

 private:
  void Release();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool locked_ = false;
};

}  // namespace sealcache::crypto
