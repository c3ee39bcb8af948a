// What the empty servers of bench/loop_floor.sh answer: each command in a read (counted by
// its "*" at the start of a line; redis-benchmark sends whole multibulk commands) gets the
// same 2 KiB bulk string.
#pragma once

#include <cstddef>
#include <string>

namespace loop_floor {

inline constexpr size_t kValueBytes = 2048;

inline void AnswerEach(const char* in, size_t n, std::string& out) {
  static const std::string reply =
      "$" + std::to_string(kValueBytes) + "\r\n" + std::string(kValueBytes, 'x') + "\r\n";
  out.clear();
  for (size_t i = 0; i < n; ++i) {
    if (in[i] == '*' && (i == 0 || in[i - 1] == '\n')) out += reply;
  }
}

}  // namespace loop_floor
