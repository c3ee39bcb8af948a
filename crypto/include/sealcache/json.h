// Json: a small ordered JSON value: the tools' --json output and input (sealcache-cli,
// sealcache-dump) and the cluster's etcd records and replies (server/CLUSTER.md).
// Written for --json output (one document per command) and read for put-batch input (one
// document per line). Objects keep insertion order so output is stable and diffable.
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "sealcache/status.h"

namespace sealcache {

class Json {
 public:
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;

  Json() = default;        // null
  Json(bool v) : v_(v) {}  // NOLINT(google-explicit-constructor)
  template <std::integral T>
  requires(!std::same_as<T, bool>) Json(T v) {  // NOLINT(google-explicit-constructor)
    if constexpr (std::is_signed_v<T>) {
      v_ = static_cast<int64_t>(v);
    } else {
      v_ = static_cast<uint64_t>(v);
    }
  }
  Json(double v) : v_(v) {}                         // NOLINT(google-explicit-constructor)
  Json(std::string v) : v_(std::move(v)) {}         // NOLINT(google-explicit-constructor)
  Json(const char* v) : v_(std::string(v)) {}       // NOLINT(google-explicit-constructor)
  Json(std::string_view v) : v_(std::string(v)) {}  // NOLINT(google-explicit-constructor)

  static Json MakeObject() { return Json(Object{}); }
  static Json MakeArray() { return Json(Array{}); }
  // A float as the shortest decimal that reads back as the same float (0.1f prints 0.1).
  static Json FromFloat(float v);

  // REQUIRES: an object. Appends; keys are not de-duplicated.
  Json& Set(std::string key, Json value);
  // REQUIRES: an array.
  Json& Push(Json value);

  bool is_null() const { return std::holds_alternative<std::nullptr_t>(v_); }
  bool is_bool() const { return std::holds_alternative<bool>(v_); }
  bool is_number() const;
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_array() const { return std::holds_alternative<Array>(v_); }
  bool is_object() const { return std::holds_alternative<Object>(v_); }

  // Accessors; REQUIRES: the matching is_*().
  bool boolean() const { return std::get<bool>(v_); }
  double number() const;
  const std::string& string() const { return std::get<std::string>(v_); }
  const Array& array() const { return std::get<Array>(v_); }
  const Object& object() const { return std::get<Object>(v_); }
  // An object's field, or a null value when absent or when this is not an object.
  const Json& operator[](std::string_view key) const;

  std::string Dump() const;  // compact, UTF-8, no trailing newline

  // Parses exactly one JSON document (surrounding whitespace allowed).
  static Result<Json> Parse(std::string_view text);

 private:
  explicit Json(Object o) : v_(std::move(o)) {}
  explicit Json(Array a) : v_(std::move(a)) {}
  void DumpTo(std::string* out) const;

  std::variant<std::nullptr_t, bool, int64_t, uint64_t, double, std::string, Array, Object> v_ =
      nullptr;
};

// `s` as a JSON string literal, quotes included; control characters become \u00XX.
std::string JsonQuote(std::string_view s);

}  // namespace sealcache
