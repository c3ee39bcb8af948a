// KMIP's Tag-Type-Length-Value encoding (KMIP 1.4, section 9.1), for the small KMIP client of
// the kmip:// master key provider: Debian has no KMIP library for C++. Private to crypto/.
//
// An item is a 3-byte tag (0x42xxxx), a 1-byte type, a 4-byte big-endian length of the value,
// and the value padded with zeros to a multiple of 8 bytes. Structures hold items.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sealcache/status.h"

namespace sealcache::crypto::kmip {

enum class ItemType : uint8_t {
  kStructure = 0x01,
  kInteger = 0x02,      // int32
  kLongInteger = 0x03,  // int64
  kBigInteger = 0x04,   // two's complement, big-endian, a multiple of 8 bytes
  kEnumeration = 0x05,  // uint32
  kBoolean = 0x06,      // 0 or 1 in 8 bytes
  kTextString = 0x07,   // UTF-8
  kByteString = 0x08,
  kDateTime = 0x09,  // int64 seconds since the epoch
  kInterval = 0x0A,  // uint32 seconds
};

struct Item {
  uint32_t tag = 0;
  ItemType type = ItemType::kStructure;
  int64_t number = 0;          // Integer, LongInteger, Enumeration, Boolean, DateTime, Interval
  std::vector<uint8_t> bytes;  // TextString, ByteString, BigInteger
  std::vector<Item> items;     // Structure

  static Item Structure(uint32_t tag, std::vector<Item> items);
  static Item Integer(uint32_t tag, int32_t v);
  static Item LongInteger(uint32_t tag, int64_t v);
  static Item BigInteger(uint32_t tag, std::vector<uint8_t> twos_complement);
  static Item Enumeration(uint32_t tag, uint32_t v);
  static Item Boolean(uint32_t tag, bool v);
  static Item Text(uint32_t tag, std::string_view v);
  static Item Bytes(uint32_t tag, std::span<const uint8_t> v);
  static Item DateTime(uint32_t tag, int64_t seconds);
  static Item Interval(uint32_t tag, uint32_t seconds);

  // The first direct child with `tag`, or null.
  const Item* Find(uint32_t tag) const;
};

// Encodes one item (and its children).
std::vector<uint8_t> Encode(const Item& item);

// Decodes exactly one item spanning `bytes`. Refuses (InvalidArgument) anything the encoding
// does not allow: a tag outside 0x42xxxx, an unknown type, a length wrong for its type or
// past the end, non-zero padding, a Boolean other than 0 or 1, nesting deeper than
// kMaxDepth, trailing bytes.
inline constexpr int kMaxDepth = 16;
Result<Item> Decode(std::span<const uint8_t> bytes);

}  // namespace sealcache::crypto::kmip
