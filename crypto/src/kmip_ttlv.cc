#include "kmip_ttlv.h"

#include <cstring>

namespace sealcache::crypto::kmip {
namespace {

constexpr size_t kHeaderSize = 8;  // tag (3), type (1), length (4)
constexpr uint32_t kTagPrefix = 0x42;

size_t Padded(size_t n) { return (n + 7) / 8 * 8; }

void PutBigEndian(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint64_t GetBigEndian(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = v << 8 | p[i];
  return v;
}

void EncodeInto(const Item& item, std::vector<uint8_t>& out) {
  PutBigEndian(out, item.tag, 3);
  out.push_back(static_cast<uint8_t>(item.type));
  const size_t length_at = out.size();
  PutBigEndian(out, 0, 4);  // the length, filled in below
  const size_t value_at = out.size();
  switch (item.type) {
    case ItemType::kStructure:
      for (const Item& child : item.items) EncodeInto(child, out);
      break;
    case ItemType::kInteger:
    case ItemType::kEnumeration:
    case ItemType::kInterval:
      PutBigEndian(out, static_cast<uint32_t>(item.number), 4);
      break;
    case ItemType::kLongInteger:
    case ItemType::kBoolean:
    case ItemType::kDateTime:
      PutBigEndian(out, static_cast<uint64_t>(item.number), 8);
      break;
    case ItemType::kBigInteger:
    case ItemType::kTextString:
    case ItemType::kByteString:
      out.insert(out.end(), item.bytes.begin(), item.bytes.end());
      break;
  }
  const size_t length = out.size() - value_at;
  for (int i = 0; i < 4; ++i) out[length_at + i] = static_cast<uint8_t>(length >> (8 * (3 - i)));
  out.resize(value_at + Padded(length), 0);
}

Status Bad(const std::string& why) { return Status::InvalidArgument("KMIP TTLV: " + why); }

// Decodes the item at the start of `in`; `*used` is its padded size.
Result<Item> DecodeOne(std::span<const uint8_t> in, int depth, size_t* used) {
  if (depth > kMaxDepth) return Bad("structures nested deeper than " + std::to_string(kMaxDepth));
  if (in.size() < kHeaderSize) return Bad("truncated item header");
  Item item;
  item.tag = static_cast<uint32_t>(GetBigEndian(in.data(), 3));
  if (item.tag >> 16 != kTagPrefix) return Bad("tag outside 0x42xxxx");
  const uint8_t type = in[3];
  if (type < 0x01 || type > 0x0A) return Bad("unknown item type " + std::to_string(type));
  item.type = static_cast<ItemType>(type);
  const uint64_t length = GetBigEndian(in.data() + 4, 4);
  const uint64_t padded = Padded(length);
  if (padded > in.size() - kHeaderSize) return Bad("item length past the end of the input");
  const uint8_t* v = in.data() + kHeaderSize;
  for (uint64_t i = length; i < padded; ++i) {
    if (v[i] != 0) return Bad("non-zero padding");
  }
  auto need = [&](uint64_t n) -> Status {
    return length == n ? Status::Ok() : Bad("wrong length for its type");
  };
  switch (item.type) {
    case ItemType::kStructure: {
      size_t at = 0;
      while (at < length) {
        size_t child_used = 0;
        SC_ASSIGN_OR_RETURN(Item child, DecodeOne({v + at, static_cast<size_t>(length - at)},
                                                  depth + 1, &child_used));
        item.items.push_back(std::move(child));
        at += child_used;
      }
      if (at != length) return Bad("a structure's items overrun its length");
      break;
    }
    case ItemType::kInteger:
      SC_RETURN_IF_ERROR(need(4));
      item.number = static_cast<int32_t>(GetBigEndian(v, 4));
      break;
    case ItemType::kEnumeration:
    case ItemType::kInterval:
      SC_RETURN_IF_ERROR(need(4));
      item.number = static_cast<int64_t>(GetBigEndian(v, 4));
      break;
    case ItemType::kLongInteger:
    case ItemType::kDateTime:
      SC_RETURN_IF_ERROR(need(8));
      item.number = static_cast<int64_t>(GetBigEndian(v, 8));
      break;
    case ItemType::kBoolean:
      SC_RETURN_IF_ERROR(need(8));
      item.number = static_cast<int64_t>(GetBigEndian(v, 8));
      if (item.number != 0 && item.number != 1) return Bad("a Boolean other than 0 or 1");
      break;
    case ItemType::kBigInteger:
      if (length == 0 || length % 8 != 0) return Bad("a Big Integer not a multiple of 8 bytes");
      item.bytes.assign(v, v + length);
      break;
    case ItemType::kTextString:
    case ItemType::kByteString:
      item.bytes.assign(v, v + length);
      break;
  }
  *used = kHeaderSize + padded;
  return item;
}

}  // namespace

namespace {
Item Scalar(uint32_t tag, ItemType type, int64_t number) {
  Item i;
  i.tag = tag;
  i.type = type;
  i.number = number;
  return i;
}
Item Blob(uint32_t tag, ItemType type, std::span<const uint8_t> bytes) {
  Item i = Scalar(tag, type, 0);
  i.bytes.assign(bytes.begin(), bytes.end());
  return i;
}
}  // namespace

Item Item::Structure(uint32_t tag, std::vector<Item> items) {
  Item i = Scalar(tag, ItemType::kStructure, 0);
  i.items = std::move(items);
  return i;
}
Item Item::Integer(uint32_t tag, int32_t v) { return Scalar(tag, ItemType::kInteger, v); }
Item Item::LongInteger(uint32_t tag, int64_t v) { return Scalar(tag, ItemType::kLongInteger, v); }
Item Item::BigInteger(uint32_t tag, std::vector<uint8_t> twos_complement) {
  Item i = Scalar(tag, ItemType::kBigInteger, 0);
  i.bytes = std::move(twos_complement);
  return i;
}
Item Item::Enumeration(uint32_t tag, uint32_t v) { return Scalar(tag, ItemType::kEnumeration, v); }
Item Item::Boolean(uint32_t tag, bool v) { return Scalar(tag, ItemType::kBoolean, v ? 1 : 0); }
Item Item::Text(uint32_t tag, std::string_view v) {
  return Blob(tag, ItemType::kTextString, {reinterpret_cast<const uint8_t*>(v.data()), v.size()});
}
Item Item::Bytes(uint32_t tag, std::span<const uint8_t> v) {
  return Blob(tag, ItemType::kByteString, v);
}
Item Item::DateTime(uint32_t tag, int64_t seconds) {
  return Scalar(tag, ItemType::kDateTime, seconds);
}
Item Item::Interval(uint32_t tag, uint32_t seconds) {
  return Scalar(tag, ItemType::kInterval, seconds);
}

const Item* Item::Find(uint32_t t) const {
  for (const Item& i : items) {
    if (i.tag == t) return &i;
  }
  return nullptr;
}

std::vector<uint8_t> Encode(const Item& item) {
  std::vector<uint8_t> out;
  EncodeInto(item, out);
  return out;
}

Result<Item> Decode(std::span<const uint8_t> bytes) {
  size_t used = 0;
  SC_ASSIGN_OR_RETURN(Item item, DecodeOne(bytes, 0, &used));
  if (used != bytes.size()) return Bad("trailing bytes after the item");
  return item;
}

}  // namespace sealcache::crypto::kmip
