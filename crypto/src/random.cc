#include "sealcache/crypto/random.h"

#include <openssl/rand.h>

#include <climits>

namespace sealcache::crypto {

Status RandomFill(std::span<uint8_t> out) {
  // RAND_bytes takes an int length; chunk to stay in range.
  size_t done = 0;
  while (done < out.size()) {
    size_t n = std::min<size_t>(out.size() - done, INT_MAX);
    if (RAND_bytes(out.data() + done, static_cast<int>(n)) != 1) {
      return Status::Internal("RAND_bytes failed: the system random source is unavailable");
    }
    done += n;
  }
  return Status::Ok();
}

Result<SecretBytes> RandomSecret(size_t size) {
  SecretBytes s(size);
  SC_RETURN_IF_ERROR(RandomFill({s.data(), s.size()}));
  return s;
}

Result<std::vector<uint8_t>> RandomBytes(size_t size) {
  std::vector<uint8_t> v(size);
  SC_RETURN_IF_ERROR(RandomFill(v));
  return v;
}

}  // namespace sealcache::crypto
