// KMIP TTLV against the examples of the KMIP 1.4 specification (section 9.1.2), whose bytes
// PyKMIP 0.10 (python3-pykmip) encodes identically.
#include "../../crypto/src/kmip_ttlv.h"

#include <gtest/gtest.h>

#include "sealcache/crypto/master_key.h"

namespace sealcache::crypto::kmip {
namespace {

constexpr uint32_t kTag = 0x420020;  // the tag the specification's examples use

std::string Hex(const std::vector<uint8_t>& b) { return ToHex(b); }

std::vector<uint8_t> FromHex(std::string_view hex) { return std::move(ParseHex(hex)).value(); }

TEST(KmipTtlv, EncodesTheSpecificationsExamples) {
  const std::vector<std::pair<Item, std::string>> cases = {
      {Item::Integer(kTag, 8), "42002002000000040000000800000000"},
      {Item::LongInteger(kTag, 123456789000000000), "420020030000000801b69b4ba5749200"},
      {Item::BigInteger(kTag, FromHex("0000000003fd35eb6bc2df4618080000")),
       "42002004000000100000000003fd35eb6bc2df4618080000"},
      {Item::Enumeration(kTag, 255), "4200200500000004000000ff00000000"},
      {Item::Boolean(kTag, true), "42002006000000080000000000000001"},
      {Item::Text(kTag, "Hello World"), "420020070000000b48656c6c6f20576f726c640000000000"},
      {Item::Bytes(kTag, std::vector<uint8_t>{1, 2, 3}), "42002008000000030102030000000000"},
      {Item::DateTime(kTag, 1205495800), "42002009000000080000000047da67f8"},  // 2008-03-14
      {Item::Interval(kTag, 864000), "4200200a00000004000d2f0000000000"},      // 10 days
      {Item::Structure(kTag, {Item::Enumeration(0x420004, 254), Item::Integer(0x420005, 255)}),
       "42002001000000204200040500000004000000fe000000004200050200000004000000ff00000000"},
  };
  for (const auto& [item, hex] : cases) {
    EXPECT_EQ(Hex(Encode(item)), hex);
    auto back = Decode(FromHex(hex));
    ASSERT_TRUE(back.ok()) << hex << ": " << back.status().ToString();
    EXPECT_EQ(Hex(Encode(*back)), hex) << "round trip";
    EXPECT_EQ(back->type, item.type);
    EXPECT_EQ(back->number, item.number);
    EXPECT_EQ(back->bytes, item.bytes);
  }
  auto s = Decode(FromHex(cases.back().second));
  ASSERT_TRUE(s.ok());
  ASSERT_NE(s->Find(0x420005), nullptr);
  EXPECT_EQ(s->Find(0x420005)->number, 255);
  EXPECT_EQ(s->Find(0x420006), nullptr);
  // Negative numbers keep their sign.
  EXPECT_EQ(Decode(Encode(Item::Integer(kTag, -2)))->number, -2);
  EXPECT_EQ(Decode(Encode(Item::LongInteger(kTag, -3)))->number, -3);
  EXPECT_EQ(Hex(Encode(Item::Text(kTag, ""))), "4200200700000000");
}

TEST(KmipTtlv, RefusesWhatTheEncodingDoesNotAllow) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "truncated"},
      {"420020020000000400000008", "past the end"},               // value cut
      {"43002002000000040000000800000000", "0x42xxxx"},           // tag prefix
      {"420020ff000000040000000800000000", "unknown item type"},  // type
      {"42002002000000080000000000000008", "wrong length"},       // Integer of 8 bytes
      {"42002002000000040000000800000001", "non-zero padding"},   // padding
      {"42002006000000080000000000000002", "Boolean"},            // Boolean 2
      {"42002004000000040000000100000000", "Big Integer"},        // 4-byte Big Integer
      {"4200200200000004000000080000000000", "trailing"},         // a byte too many
      {"42002001000000084200200200000004", "past the end"},       // child cut short
  };
  for (const auto& [hex, why] : bad) {
    auto r = Decode(FromHex(hex));
    ASSERT_FALSE(r.ok()) << hex;
    EXPECT_NE(r.status().message().find(why), std::string::npos)
        << hex << ": " << r.status().ToString();
  }
  // Structures nested past the limit (hostile input must not exhaust the stack).
  Item deep = Item::Integer(kTag, 1);
  for (int i = 0; i <= kMaxDepth; ++i) deep = Item::Structure(kTag, {deep});
  auto r = Decode(Encode(deep));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nested"), std::string::npos);
}

}  // namespace
}  // namespace sealcache::crypto::kmip
