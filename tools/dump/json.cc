#include "json.h"

#include <cassert>
#include <cmath>
#include <cstdio>

namespace sealcache::dump {

Json& Json::Set(std::string key, Json value) {
  auto* o = std::get_if<Object>(&v_);
  assert(o != nullptr);
  o->emplace_back(std::move(key), std::move(value));
  return *this;
}

Json& Json::Push(Json value) {
  auto* a = std::get_if<Array>(&v_);
  assert(a != nullptr);
  a->push_back(std::move(value));
  return *this;
}

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out;
}

std::string Json::Dump() const {
  std::string out;
  DumpTo(&out);
  return out;
}

void Json::DumpTo(std::string* out) const {
  if (std::holds_alternative<std::nullptr_t>(v_)) {
    *out += "null";
  } else if (auto* b = std::get_if<bool>(&v_)) {
    *out += *b ? "true" : "false";
  } else if (auto* i = std::get_if<int64_t>(&v_)) {
    *out += std::to_string(*i);
  } else if (auto* u = std::get_if<uint64_t>(&v_)) {
    *out += std::to_string(*u);
  } else if (auto* d = std::get_if<double>(&v_)) {
    if (!std::isfinite(*d)) {
      *out += "null";  // JSON has no NaN or infinity
    } else {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.9g", *d);
      *out += buf;
    }
  } else if (auto* s = std::get_if<std::string>(&v_)) {
    *out += "\"" + JsonEscape(*s) + "\"";
  } else if (auto* a = std::get_if<Array>(&v_)) {
    *out += "[";
    for (size_t k = 0; k < a->size(); ++k) {
      if (k > 0) *out += ",";
      (*a)[k].DumpTo(out);
    }
    *out += "]";
  } else if (auto* o = std::get_if<Object>(&v_)) {
    *out += "{";
    for (size_t k = 0; k < o->size(); ++k) {
      if (k > 0) *out += ",";
      *out += "\"" + JsonEscape((*o)[k].first) + "\":";
      (*o)[k].second.DumpTo(out);
    }
    *out += "}";
  }
}

}  // namespace sealcache::dump
