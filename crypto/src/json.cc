#include "sealcache/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "sealcache/json_string.h"

namespace sealcache {
namespace {

template <typename T>
void AppendNumber(T v, std::string* out) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, ec == std::errc() ? end : buf);
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Recursive-descent parser over one document; depth-limited so hostile input cannot
// exhaust the stack.
class JsonParser {
 public:
  explicit JsonParser(std::string_view s) : s_(s) {}

  Result<Json> Document() {
    SC_ASSIGN_OR_RETURN(Json v, Value(0));
    SkipSpace();
    if (i_ != s_.size()) return Error("trailing characters");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  Status Error(std::string_view what) const {
    return Status::InvalidArgument("JSON: " + std::string(what) + " at offset " +
                                   std::to_string(i_));
  }
  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool Eat(char c) {
    SkipSpace();
    if (i_ < s_.size() && s_[i_] == c) return ++i_, true;
    return false;
  }
  bool Literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  Result<Json> Value(int depth) {
    if (depth > kMaxDepth) return Error("nesting too deep");
    SkipSpace();
    if (i_ >= s_.size()) return Error("unexpected end");
    const char c = s_[i_];
    if (c == '{') return ObjectValue(depth);
    if (c == '[') return ArrayValue(depth);
    if (c == '"') {
      SC_ASSIGN_OR_RETURN(std::string str, String());
      return Json(std::move(str));
    }
    if (Literal("null")) return Json();
    if (Literal("true")) return Json(true);
    if (Literal("false")) return Json(false);
    return Number();
  }

  Result<Json> ObjectValue(int depth) {
    ++i_;
    Json obj = Json::MakeObject();
    if (Eat('}')) return obj;
    do {
      SkipSpace();
      SC_ASSIGN_OR_RETURN(std::string key, String());
      if (!Eat(':')) return Error("expected ':'");
      SC_ASSIGN_OR_RETURN(Json v, Value(depth + 1));
      obj.Set(std::move(key), std::move(v));
    } while (Eat(','));
    if (!Eat('}')) return Error("expected ',' or '}'");
    return obj;
  }

  Result<Json> ArrayValue(int depth) {
    ++i_;
    Json arr = Json::MakeArray();
    if (Eat(']')) return arr;
    do {
      SC_ASSIGN_OR_RETURN(Json v, Value(depth + 1));
      arr.Push(std::move(v));
    } while (Eat(','));
    if (!Eat(']')) return Error("expected ',' or ']'");
    return arr;
  }

  Result<Json> Number() {
    const size_t start = i_;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    while (i_ < s_.size() &&
           std::string_view("0123456789.eE+-").find(s_[i_]) != std::string_view::npos)
      ++i_;
    const std::string_view text = s_.substr(start, i_ - start);
    if (text.empty() || text == "-") return Error("unexpected character");
    int64_t integer = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), integer);
    if (ec == std::errc() && end == text.data() + text.size()) return Json(integer);
    double d = 0;
    auto [dend, dec] = std::from_chars(text.data(), text.data() + text.size(), d);
    if (dec != std::errc() || dend != text.data() + text.size()) return Error("bad number");
    return Json(d);
  }

  Result<uint32_t> Hex4() {
    if (i_ + 4 > s_.size()) return Error("short \\u escape");
    uint32_t v = 0;
    auto [end, ec] = std::from_chars(s_.data() + i_, s_.data() + i_ + 4, v, 16);
    if (ec != std::errc() || end != s_.data() + i_ + 4) return Error("bad \\u escape");
    i_ += 4;
    return v;
  }

  // After "\u": one code point, joining a surrogate pair.
  Result<uint32_t> CodePoint() {
    SC_ASSIGN_OR_RETURN(uint32_t hi, Hex4());
    if (hi < 0xD800 || hi > 0xDBFF) return hi;
    if (!Literal("\\u")) return Error("lone surrogate");
    SC_ASSIGN_OR_RETURN(uint32_t lo, Hex4());
    if (lo < 0xDC00 || lo > 0xDFFF) return Error("bad surrogate pair");
    return 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
  }

  Status Escape(std::string* out) {
    if (i_ >= s_.size()) return Error("unterminated string");
    const char e = s_[i_++];
    switch (e) {
      case '"':
      case '\\':
      case '/':
        out->push_back(e);
        return Status::Ok();
      case 'n':
        out->push_back('\n');
        return Status::Ok();
      case 'r':
        out->push_back('\r');
        return Status::Ok();
      case 't':
        out->push_back('\t');
        return Status::Ok();
      case 'b':
        out->push_back('\b');
        return Status::Ok();
      case 'f':
        out->push_back('\f');
        return Status::Ok();
      case 'u': {
        SC_ASSIGN_OR_RETURN(uint32_t cp, CodePoint());
        AppendUtf8(cp, out);
        return Status::Ok();
      }
      default:
        return Error("bad escape");
    }
  }

  Result<std::string> String() {
    if (i_ >= s_.size() || s_[i_] != '"') return Error("expected a string");
    ++i_;
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      const char c = s_[i_++];
      if (static_cast<unsigned char>(c) < 0x20) return Error("control character in string");
      if (c == '\\') {
        SC_RETURN_IF_ERROR(Escape(&out));
      } else {
        out.push_back(c);
      }
    }
    if (i_ >= s_.size()) return Error("unterminated string");
    ++i_;
    return out;
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

Json Json::FromFloat(float v) {
  if (!std::isfinite(v)) return Json();
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return Json(std::strtod(std::string(buf, end).c_str(), nullptr));
}

Json& Json::Set(std::string key, Json value) {
  std::get<Object>(v_).emplace_back(std::move(key), std::move(value));
  return *this;
}

Json& Json::Push(Json value) {
  std::get<Array>(v_).push_back(std::move(value));
  return *this;
}

bool Json::is_number() const {
  return std::holds_alternative<int64_t>(v_) || std::holds_alternative<uint64_t>(v_) ||
         std::holds_alternative<double>(v_);
}

double Json::number() const {
  if (const auto* i = std::get_if<int64_t>(&v_)) return static_cast<double>(*i);
  if (const auto* u = std::get_if<uint64_t>(&v_)) return static_cast<double>(*u);
  return std::get<double>(v_);
}

const Json& Json::operator[](std::string_view key) const {
  static const Json kNull;
  if (!is_object()) return kNull;
  for (const auto& [k, v] : object()) {
    if (k == key) return v;
  }
  return kNull;
}

std::string Json::Dump() const {
  std::string out;
  DumpTo(&out);
  return out;
}

void Json::DumpTo(std::string* out) const {
  if (is_null()) {
    out->append("null");
  } else if (const auto* b = std::get_if<bool>(&v_)) {
    out->append(*b ? "true" : "false");
  } else if (const auto* i = std::get_if<int64_t>(&v_)) {
    AppendNumber(*i, out);
  } else if (const auto* u = std::get_if<uint64_t>(&v_)) {
    AppendNumber(*u, out);
  } else if (const auto* d = std::get_if<double>(&v_)) {
    if (std::isfinite(*d)) {
      AppendNumber(*d, out);
    } else {
      out->append("null");  // JSON has no NaN or infinity
    }
  } else if (const auto* s = std::get_if<std::string>(&v_)) {
    out->append(JsonQuote(*s));
  } else if (const auto* a = std::get_if<Array>(&v_)) {
    out->push_back('[');
    for (size_t k = 0; k < a->size(); ++k) {
      if (k > 0) out->push_back(',');
      (*a)[k].DumpTo(out);
    }
    out->push_back(']');
  } else {
    const auto& o = std::get<Object>(v_);
    out->push_back('{');
    for (size_t k = 0; k < o.size(); ++k) {
      if (k > 0) out->push_back(',');
      out->append(JsonQuote(o[k].first));
      out->push_back(':');
      o[k].second.DumpTo(out);
    }
    out->push_back('}');
  }
}

Result<Json> Json::Parse(std::string_view text) { return JsonParser(text).Document(); }

std::string JsonQuote(std::string_view s) {
  std::string out = "\"";
  AppendJsonEscaped(&out, s);
  out += "\"";
  return out;
}

}  // namespace sealcache
