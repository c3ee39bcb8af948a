// RespWriter: every reply of the Redis-protocol front goes through here, so handlers never
// format bytes and one place knows how each reply type looks in RESP2 and in RESP3 (after
// HELLO 3), the way Redis's addReply* functions do (src/networking.c). Private to server/.
//
// RESP3 types a RESP2 client cannot read fall back as Redis does: a map is an array of
// 2n elements, a set an array, a double a bulk string, a boolean the integer 1 or 0, a
// verbatim string a bulk string, and null the null bulk string ($-1) or null array (*-1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sealcache::server::internal {

class RespWriter {
 public:
  // `protocol` is 2 or 3.
  explicit RespWriter(int protocol) : protocol_(protocol) {}

  int protocol() const { return protocol_; }
  void set_protocol(int protocol) { protocol_ = protocol; }

  void SimpleString(std::string_view s);
  // `message` starts with the error code, e.g. "ERR unknown command ..." or "NOAUTH ...";
  // line breaks in it are replaced by spaces, as Redis does.
  void Error(std::string_view message);
  void Integer(int64_t value);
  void Bulk(std::string_view s);
  void NullBulk();   // RESP2 $-1, RESP3 _
  void NullArray();  // RESP2 *-1, RESP3 _
  void ArrayHeader(size_t elements);
  void MapHeader(size_t pairs);
  void SetHeader(size_t elements);
  void Double(double value);
  void Boolean(bool value);
  // RESP3 verbatim string with a 3-letter format ("txt"); RESP2 bulk string.
  void Verbatim(std::string_view format, std::string_view s);

  // The bytes written so far; the caller sends and clears them (or swaps in an empty
  // buffer: a connection hands them to its write queue without a copy).
  std::vector<uint8_t>& buffer() { return out_; }

 private:
  // As bytes: inserting `const char*` iterators into a byte vector copies one byte at a
  // time (g++ 12), byte pointers with memmove.
  void Append(std::string_view s) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(s.data());
    out_.insert(out_.end(), bytes, bytes + s.size());
  }
  void Line(char type, std::string_view s);

  int protocol_;
  std::vector<uint8_t> out_;
};

}  // namespace sealcache::server::internal
