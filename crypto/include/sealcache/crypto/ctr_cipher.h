// CtrCipher: AES-256-CTR keystream applied at any byte offset of a stream, for the storage
// file format (a file is one CTR stream; offset 0 is the first byte after the file header).
//
// Counter block for byte offset o: (iv as a 128-bit big-endian integer) + o / 16, mod 2^128;
// the first o % 16 keystream bytes of that block are skipped. Applying at offset o therefore
// gives the same bytes as one-shot encryption of the whole stream sliced at o.
//
// One EVP call per buffer (plus one for an unaligned start). Contexts hold the key schedule
// and are pooled, so Apply() is safe to call concurrently from many threads.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "sealcache/crypto/secret_bytes.h"
#include "sealcache/status.h"

namespace sealcache::crypto {

class CtrCipher {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kIvSize = 16;
  using Iv = std::array<uint8_t, kIvSize>;

  static Result<std::unique_ptr<CtrCipher>> New(const SecretBytes& key, const Iv& iv);
  ~CtrCipher();
  CtrCipher(const CtrCipher&) = delete;
  CtrCipher& operator=(const CtrCipher&) = delete;

  // out[i] = in[i] XOR keystream[offset + i] for i < size. Encryption and decryption are the
  // same operation. `in` and `out` may be the same buffer (in place); otherwise they must
  // not overlap.
  Status Apply(uint64_t offset, const uint8_t* in, uint8_t* out, size_t size) const;

  // The counter block for `offset` (exposed for tests of the wrap-around rule).
  static Iv CounterBlockAt(const Iv& iv, uint64_t offset);

 private:
  struct Impl;
  explicit CtrCipher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sealcache::crypto
