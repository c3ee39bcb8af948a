// Json: a small ordered JSON value for the dump tool's --json output (one document per run).
// Objects keep insertion order so output is stable and diffable.
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace sealcache::dump {

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

  // REQUIRES: an object. Appends; keys are not de-duplicated.
  Json& Set(std::string key, Json value);
  // REQUIRES: an array.
  Json& Push(Json value);

  std::string Dump() const;  // compact, UTF-8, no trailing newline

 private:
  explicit Json(Object o) : v_(std::move(o)) {}
  explicit Json(Array a) : v_(std::move(a)) {}
  void DumpTo(std::string* out) const;

  std::variant<std::nullptr_t, bool, int64_t, uint64_t, double, std::string, Array, Object> v_ =
      nullptr;
};

std::string JsonEscape(std::string_view s);

}  // namespace sealcache::dump
