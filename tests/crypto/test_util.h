// Helpers shared by the crypto tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "sealcache/crypto/master_key.h"
#include "sealcache/crypto/secret_bytes.h"
#include "test_support.h"

namespace sealcache::crypto::testing {

inline std::vector<uint8_t> Hex(std::string_view hex) {
  auto r = ParseHex(hex);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<uint8_t>{};
}

inline SecretBytes SecretHex(std::string_view hex) { return SecretBytes::CopyFrom(Hex(hex)); }

inline SecretBytes FilledKey(uint8_t byte) {
  SecretBytes k(32);
  for (size_t i = 0; i < k.size(); ++i) k.data()[i] = static_cast<uint8_t>(byte + i);
  return k;
}

using ::sealcache::test::MakeTempDir;

}  // namespace sealcache::crypto::testing
