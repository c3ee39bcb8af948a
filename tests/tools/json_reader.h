// A minimal JSON reader for checking sealcache-dump --json output in tests: parses one
// document into a tree, rejecting anything malformed (so the output is proven to be JSON).
#pragma once

#include <cctype>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sealcache::dump::testing {

struct JsonNode {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string text;
  std::vector<JsonNode> items;
  std::vector<std::pair<std::string, JsonNode>> fields;

  bool is_null() const { return type == Type::kNull; }
  // A missing field reads as null, so a test can check it without crashing.
  const JsonNode& operator[](std::string_view key) const {
    static const JsonNode kNull;
    for (const auto& [k, v] : fields) {
      if (k == key) return v;
    }
    return kNull;
  }
  const JsonNode& operator[](size_t i) const { return items.at(i); }
  size_t size() const { return type == Type::kArray ? items.size() : fields.size(); }
};

class JsonParser {
 public:
  explicit JsonParser(std::string_view s) : s_(s) {}

  std::optional<JsonNode> Parse() {
    JsonNode n;
    if (!Value(&n)) return std::nullopt;
    Space();
    if (i_ != s_.size()) return std::nullopt;
    return n;
  }

 private:
  void Space() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool Eat(char c) {
    Space();
    if (i_ < s_.size() && s_[i_] == c) return ++i_, true;
    return false;
  }
  bool Literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }
  bool String(std::string* out) {
    if (!Eat('"')) return false;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (i_ >= s_.size()) return false;
      char e = s_[i_++];
      static const std::map<char, char> kEscapes = {{'"', '"'},  {'\\', '\\'}, {'/', '/'},
                                                    {'n', '\n'}, {'r', '\r'},  {'t', '\t'},
                                                    {'b', '\b'}, {'f', '\f'}};
      if (e == 'u') {
        if (i_ + 4 > s_.size()) return false;
        out->push_back(
            static_cast<char>(std::strtol(std::string(s_.substr(i_, 4)).c_str(), nullptr, 16)));
        i_ += 4;
      } else if (kEscapes.count(e)) {
        out->push_back(kEscapes.at(e));
      } else {
        return false;
      }
    }
    return Eat('"');
  }
  bool Value(JsonNode* n) {
    Space();
    if (i_ >= s_.size()) return false;
    char c = s_[i_];
    if (c == '{') return Object(n);
    if (c == '[') return Array(n);
    if (c == '"') return n->type = JsonNode::Type::kString, String(&n->text);
    if (Literal("null")) return true;
    if (Literal("true")) return n->type = JsonNode::Type::kBool, n->boolean = true, true;
    if (Literal("false")) return n->type = JsonNode::Type::kBool, true;
    const char* begin = s_.data() + i_;
    char* end = nullptr;
    n->number = std::strtod(begin, &end);
    if (end == begin) return false;
    i_ += static_cast<size_t>(end - begin);
    n->type = JsonNode::Type::kNumber;
    return true;
  }
  bool Array(JsonNode* n) {
    n->type = JsonNode::Type::kArray;
    Eat('[');
    if (Eat(']')) return true;
    do {
      n->items.emplace_back();
      if (!Value(&n->items.back())) return false;
    } while (Eat(','));
    return Eat(']');
  }
  bool Object(JsonNode* n) {
    n->type = JsonNode::Type::kObject;
    Eat('{');
    if (Eat('}')) return true;
    do {
      std::string key;
      if (!String(&key) || !Eat(':')) return false;
      n->fields.emplace_back(std::move(key), JsonNode());
      if (!Value(&n->fields.back().second)) return false;
    } while (Eat(','));
    return Eat('}');
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace sealcache::dump::testing
