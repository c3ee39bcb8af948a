#include "resp_parser.h"

#include <charconv>
#include <cstring>

namespace sealcache::server::internal {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsSpace(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f';
}

}  // namespace

std::optional<RespCommand> SplitInlineArguments(std::string_view line) {
  enum class Mode { kPlain, kDouble, kSingle };
  RespCommand words;
  const size_t n = line.size();
  size_t i = 0;
  for (;;) {
    while (i < n && IsSpace(line[i])) ++i;
    if (i == n) return words;
    std::string word;
    Mode mode = Mode::kPlain;
    for (;;) {
      if (mode == Mode::kPlain) {
        if (i == n || IsSpace(line[i])) break;
        if (line[i] == '"' || line[i] == '\'') {
          mode = line[i] == '"' ? Mode::kDouble : Mode::kSingle;
          ++i;
          continue;
        }
        word.push_back(line[i++]);
        continue;
      }
      if (i == n) return std::nullopt;  // unbalanced quotes
      const char c = line[i];
      if (mode == Mode::kDouble) {
        if (c == '\\' && i + 3 < n && line[i + 1] == 'x' && HexDigit(line[i + 2]) >= 0 &&
            HexDigit(line[i + 3]) >= 0) {
          word.push_back(static_cast<char>(HexDigit(line[i + 2]) * 16 + HexDigit(line[i + 3])));
          i += 4;
          continue;
        }
        if (c == '\\' && i + 1 < n) {
          const char e = line[i + 1];
          word.push_back(e == 'n'   ? '\n'
                         : e == 'r' ? '\r'
                         : e == 't' ? '\t'
                         : e == 'b' ? '\b'
                         : e == 'a' ? '\a'
                                    : e);
          i += 2;
          continue;
        }
        if (c == '"') {
          ++i;
          // A closing quote must end the word.
          if (i < n && !IsSpace(line[i])) return std::nullopt;
          break;
        }
      } else {
        if (c == '\\' && i + 1 < n && line[i + 1] == '\'') {
          word.push_back('\'');
          i += 2;
          continue;
        }
        if (c == '\'') {
          ++i;
          if (i < n && !IsSpace(line[i])) return std::nullopt;
          break;
        }
      }
      word.push_back(c);
      ++i;
    }
    words.push_back(std::move(word));
  }
}

RespParser::Outcome RespParser::Fail(std::string message) {
  error_ = "Protocol error: " + std::move(message);
  return Outcome::kProtocolError;
}

RespParser::Outcome RespParser::Parse(std::string& buffer, RespCommand* command) {
  command->clear();
  while (!buffer.empty()) {
    const Outcome outcome =
        buffer.front() == '*' ? ParseMultibulk(buffer, command) : ParseInline(buffer, command);
    if (outcome != Outcome::kCommand || !command->empty()) return outcome;
    // An empty request was consumed: look for the next one.
  }
  return Outcome::kNeedMore;
}

RespParser::Outcome RespParser::ParseInline(std::string& buffer, RespCommand* command) {
  const size_t newline = buffer.find('\n');
  if (newline == std::string::npos) {
    if (buffer.size() > limits_.max_inline_bytes) return Fail("too big inline request");
    return Outcome::kNeedMore;
  }
  size_t end = newline;
  if (end > 0 && buffer[end - 1] == '\r') --end;
  auto words = SplitInlineArguments(std::string_view(buffer).substr(0, end));
  if (!words) return Fail("unbalanced quotes in request");
  buffer.erase(0, newline + 1);
  *command = std::move(*words);
  return Outcome::kCommand;
}

RespParser::Outcome RespParser::ParseMultibulk(std::string& buffer, RespCommand* command) {
  // Nothing is consumed until the whole request is there: a partial one stays in `buffer`.
  size_t pos = 0;
  auto line = [&](std::string_view too_big, std::string_view* out) -> std::optional<Outcome> {
    const size_t cr = buffer.find('\r', pos);
    if (cr == std::string::npos || cr + 1 >= buffer.size()) {
      if (buffer.size() - pos > limits_.max_inline_bytes) return Fail(std::string(too_big));
      return Outcome::kNeedMore;
    }
    *out = std::string_view(buffer).substr(pos, cr - pos);
    pos = cr + 2;
    return std::nullopt;
  };
  std::string_view header;
  if (auto o = line("too big mbulk count string", &header)) return *o;
  const auto count = ParseRedisInteger(header.substr(1));
  if (!count || *count > static_cast<int64_t>(limits_.max_arguments)) {
    return Fail("invalid multibulk length");
  }
  RespCommand args;
  if (*count > 0) args.reserve(static_cast<size_t>(std::min<int64_t>(*count, 1024)));
  for (int64_t i = 0; i < *count; ++i) {
    if (pos >= buffer.size()) return Outcome::kNeedMore;
    if (buffer[pos] != '$') {
      return Fail(std::string("expected '$', got '") + buffer[pos] + "'");
    }
    std::string_view length_line;
    if (auto o = line("too big bulk count string", &length_line)) return *o;
    const auto length = ParseRedisInteger(length_line.substr(1));
    if (!length || *length < 0 || *length > static_cast<int64_t>(limits_.max_bulk_bytes)) {
      return Fail("invalid bulk length");
    }
    const size_t n = static_cast<size_t>(*length);
    if (buffer.size() - pos < n + 2) return Outcome::kNeedMore;
    args.emplace_back(buffer, pos, n);
    pos += n + 2;  // Redis does not check that the two bytes are "\r\n" either
  }
  buffer.erase(0, pos);
  *command = std::move(args);
  return Outcome::kCommand;
}

std::optional<int64_t> ParseRedisInteger(std::string_view s) {
  const std::string_view digits = !s.empty() && s[0] == '-' ? s.substr(1) : s;
  if (digits.empty() || digits[0] < '0' || digits[0] > '9' ||
      (digits[0] == '0' && (digits.size() > 1 || digits.size() != s.size()))) {
    return std::nullopt;  // "", "-", "+5", " 1", "007", "-0"
  }
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace sealcache::server::internal
