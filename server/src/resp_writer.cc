#include "resp_writer.h"

#include <charconv>
#include <cmath>

namespace sealcache::server::internal {

void RespWriter::Line(char type, std::string_view s) {
  out_.push_back(type);
  Append(s);
  Append("\r\n");
}

void RespWriter::SimpleString(std::string_view s) { Line('+', s); }

void RespWriter::Error(std::string_view message) {
  out_.push_back('-');
  for (char c : message) out_.push_back(c == '\r' || c == '\n' ? ' ' : c);
  Append("\r\n");
}

void RespWriter::Integer(int64_t value) { Line(':', std::to_string(value)); }

void RespWriter::Bulk(std::string_view s) {
  Line('$', std::to_string(s.size()));
  Append(s);
  Append("\r\n");
}

void RespWriter::NullBulk() { Append(protocol_ >= 3 ? "_\r\n" : "$-1\r\n"); }

void RespWriter::NullArray() { Append(protocol_ >= 3 ? "_\r\n" : "*-1\r\n"); }

void RespWriter::ArrayHeader(size_t elements) { Line('*', std::to_string(elements)); }

void RespWriter::MapHeader(size_t pairs) {
  if (protocol_ >= 3) {
    Line('%', std::to_string(pairs));
  } else {
    Line('*', std::to_string(2 * pairs));
  }
}

void RespWriter::SetHeader(size_t elements) {
  Line(protocol_ >= 3 ? '~' : '*', std::to_string(elements));
}

void RespWriter::Double(double value) {
  std::string text;
  if (std::isnan(value)) {
    text = "nan";
  } else if (std::isinf(value)) {
    text = value > 0 ? "inf" : "-inf";
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);  // shortest round trip
    text.assign(buf, ec == std::errc() ? end : buf);
  }
  if (protocol_ >= 3) {
    Line(',', text);
  } else {
    Bulk(text);
  }
}

void RespWriter::Boolean(bool value) {
  if (protocol_ >= 3) {
    Append(value ? "#t\r\n" : "#f\r\n");
  } else {
    Integer(value ? 1 : 0);
  }
}

void RespWriter::Verbatim(std::string_view format, std::string_view s) {
  if (protocol_ < 3) return Bulk(s);
  Line('=', std::to_string(format.size() + 1 + s.size()));
  Append(format);
  out_.push_back(':');
  Append(s);
  Append("\r\n");
}

}  // namespace sealcache::server::internal
