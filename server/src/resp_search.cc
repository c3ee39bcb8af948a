// The search module's subset of the Redis-protocol front (server/RESP.md, "Search"):
// FT.CREATE, FT.INFO, FT._LIST, FT.DROPINDEX and FT.SEARCH over hashes, with KNN and
// VECTOR_RANGE vector clauses and tag and numeric filters.
//
// An index is a definition, not a second copy of the data: a hash under an index's prefix
// puts its vector field into the org's one vector index (the same HNSW search as a native
// Lookup), and the filters run inside that search on the tag and numeric values the front
// keeps in memory for such hashes (decrypted from their records at first use after a
// start, never written anywhere in plaintext). Definitions are an encrypted side file of the
// org, so they are shredded with it.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstring>
#include <deque>
#include <map>
#include <shared_mutex>
#include <unordered_map>

#include "org_runtime.h"
#include "resp_internal.h"

namespace sealcache::server::internal::resp {
namespace {

// What MODULE LIST reports: RediSearch 2.8.11's name and version, whose API subset this is.
constexpr char kModuleName[] = "search";
constexpr int64_t kModuleVersion = 20811;
// The org side file holding the index definitions (their FT.CREATE arguments).
constexpr char kDefinitionsFile[] = "resp-search-indexes";
constexpr char kUnknownIndex[] = "Unknown index name";
// FT.SEARCH's LIMIT when none is given (RediSearch: 0 10).
constexpr int64_t kDefaultLimit = 10;
// Scan page size when loading the hashes of an org's indexes.
constexpr size_t kLoadPageEntries = 1000;
// The most results a VECTOR_RANGE query answers (the service's default largest k).
constexpr size_t kMaxRangeResults = 100;
// RediSearch's default tag separator.
constexpr char kDefaultSeparator = ',';

enum class FieldType { kText, kTag, kNumeric, kVector };

struct FieldDef {
  std::string name;   // the hash field
  std::string alias;  // AS: the name queries use (= name without AS)
  FieldType type = FieldType::kText;
  std::vector<std::string> flags;      // SORTABLE, NOSTEM, ...: reported back by FT.INFO
  double weight = 1.0;                 // TEXT
  char separator = kDefaultSeparator;  // TAG
  bool case_sensitive = false;         // TAG
  // VECTOR
  std::string algorithm;  // FLAT or HNSW
  uint32_t dim = 0;
  std::vector<std::pair<std::string, std::string>> vector_params;  // as given, upper-cased keys
};

struct IndexDef {
  std::string name;
  std::vector<std::string> prefixes;  // empty: every key
  double score = 1.0;
  std::vector<FieldDef> fields;
  std::vector<std::string> create_args;  // what FT.CREATE was given, after the name
  // Since the start: hashes whose vector field did not fit (counted under a shared lock).
  std::shared_ptr<std::atomic<uint64_t>> indexing_failures =
      std::make_shared<std::atomic<uint64_t>>(0);

  bool Covers(std::string_view key) const {
    if (prefixes.empty()) return true;
    for (const auto& p : prefixes) {
      if (key.substr(0, p.size()) == p) return true;
    }
    return false;
  }
  const FieldDef* Field(std::string_view alias) const {
    for (const auto& f : fields) {
      if (f.alias == alias) return &f;
    }
    return nullptr;
  }
  const FieldDef* VectorField() const {
    for (const auto& f : fields) {
      if (f.type == FieldType::kVector) return &f;
    }
    return nullptr;
  }
};

// What the front keeps of one hash under some index: its name and the values of the
// fields that some index filters on (TAG and NUMERIC).
struct Doc {
  std::string name;
  HashFields filter_fields;
};

// The search state of one org incarnation (a CacheService attachment).
class SearchState final : public OrgAttachment {
 public:
  std::shared_mutex mu;
  bool loaded = false;                                                 // GUARDED_BY(mu)
  std::map<std::string, IndexDef> indexes;                             // GUARDED_BY(mu)
  std::unordered_map<storage::Digest, Doc, storage::DigestHash> docs;  // GUARDED_BY(mu)

  // The fields of `fields` that an index covering `name` filters on; nullopt if no index
  // covers `name`. REQUIRES: mu held.
  std::optional<Doc> DocFor(std::string_view name, const HashFields& fields) const {
    std::optional<Doc> doc;
    for (const auto& [_, index] : indexes) {
      if (!index.Covers(name)) continue;
      if (!doc) doc = Doc{std::string(name), {}};
      for (const FieldDef& f : index.fields) {
        if (f.type != FieldType::kTag && f.type != FieldType::kNumeric) continue;
        for (const auto& field_value : fields) {
          const std::string& field = field_value.first;
          if (field != f.name) continue;
          const bool known = std::any_of(doc->filter_fields.begin(), doc->filter_fields.end(),
                                         [&](const auto& fv) { return fv.first == field; });
          if (!known) doc->filter_fields.push_back(field_value);
        }
      }
    }
    return doc;
  }
};

// ---- definitions: parse, encode, load ----------------------------------------------------------

// Parses FT.CREATE's arguments after the index name. `org_dim` is the org's dimension
// (0: not known yet).
Result<IndexDef> ParseCreate(std::string_view name, const std::vector<std::string>& a) {
  IndexDef def;
  def.name = std::string(name);
  def.create_args = a;
  size_t i = 0;
  auto need = [&](size_t n) { return i + n <= a.size(); };
  while (i < a.size() && Upper(a[i]) != "SCHEMA") {
    const std::string opt = Upper(a[i]);
    if (opt == "ON") {
      if (!need(2)) return Status::InvalidArgument("Syntax error: ON needs HASH");
      if (Upper(a[i + 1]) != "HASH") {
        return Status::InvalidArgument("only ON HASH indexes are supported (no JSON)");
      }
      i += 2;
    } else if (opt == "PREFIX") {
      auto n = need(2) ? ParseRedisInteger(a[i + 1]) : std::nullopt;
      if (!n || *n < 0 || !need(2 + static_cast<size_t>(*n))) {
        return Status::InvalidArgument("Bad arguments for PREFIX");
      }
      for (int64_t k = 0; k < *n; ++k) def.prefixes.push_back(a[i + 2 + k]);
      i += 2 + static_cast<size_t>(*n);
    } else if (opt == "SCORE") {
      auto v = need(2) ? ParseDouble(a[i + 1]) : std::nullopt;
      if (!v || *v < 0 || *v > 1) return Status::InvalidArgument("Invalid score");
      def.score = *v;
      i += 2;
    } else if (opt == "LANGUAGE" || opt == "LANGUAGE_FIELD" || opt == "SCORE_FIELD" ||
               opt == "PAYLOAD_FIELD") {
      if (!need(2)) return Status::InvalidArgument("Syntax error at " + a[i]);
      i += 2;
    } else if (opt == "MAXTEXTFIELDS" || opt == "NOOFFSETS" || opt == "NOHL" || opt == "NOFIELDS" ||
               opt == "NOFREQS" || opt == "SKIPINITIALSCAN") {
      i += 1;
    } else if (opt == "STOPWORDS") {
      auto n = need(2) ? ParseRedisInteger(a[i + 1]) : std::nullopt;
      if (!n || *n < 0 || !need(2 + static_cast<size_t>(*n))) {
        return Status::InvalidArgument("Bad arguments for STOPWORDS");
      }
      i += 2 + static_cast<size_t>(*n);
    } else {
      return Status::InvalidArgument("Unknown argument `" + a[i] + "`");
    }
  }
  if (i == a.size()) return Status::InvalidArgument("No schema found");
  ++i;  // SCHEMA
  if (i == a.size()) return Status::InvalidArgument("Fields arguments are missing");
  while (i < a.size()) {
    FieldDef f;
    f.name = f.alias = a[i++];
    if (i + 1 < a.size() && Upper(a[i]) == "AS") {
      f.alias = a[i + 1];
      i += 2;
    }
    if (i == a.size()) return Status::InvalidArgument("Field `" + f.name + "` has no type");
    const std::string type = Upper(a[i++]);
    if (type == "TEXT") {
      f.type = FieldType::kText;
    } else if (type == "TAG") {
      f.type = FieldType::kTag;
    } else if (type == "NUMERIC") {
      f.type = FieldType::kNumeric;
    } else if (type == "VECTOR") {
      f.type = FieldType::kVector;
      if (i + 1 >= a.size()) return Status::InvalidArgument("Bad arguments for vector similarity");
      f.algorithm = Upper(a[i]);
      if (f.algorithm != "FLAT" && f.algorithm != "HNSW") {
        return Status::InvalidArgument("Bad arguments for vector similarity algorithm: " + a[i]);
      }
      auto n = ParseRedisInteger(a[i + 1]);
      if (!n || *n < 0 || *n % 2 != 0 || i + 2 + static_cast<size_t>(*n) > a.size()) {
        return Status::InvalidArgument("Bad arguments for vector similarity " + f.algorithm +
                                       " index: expected an even number of attributes");
      }
      const size_t end = i + 2 + static_cast<size_t>(*n);
      for (size_t k = i + 2; k < end; k += 2) {
        f.vector_params.emplace_back(Upper(a[k]), a[k + 1]);
      }
      i = end;
      bool type_seen = false, metric_seen = false;
      for (const auto& [key, value] : f.vector_params) {
        if (key == "TYPE") {
          if (Upper(value) != "FLOAT32") {
            return Status::InvalidArgument("vector TYPE " + value +
                                           " is not supported: only FLOAT32");
          }
          type_seen = true;
        } else if (key == "DIM") {
          auto d = ParseRedisInteger(value);
          if (!d || *d <= 0 || *d > UINT32_MAX) return Status::InvalidArgument("Bad DIM " + value);
          f.dim = static_cast<uint32_t>(*d);
        } else if (key == "DISTANCE_METRIC") {
          if (Upper(value) != "COSINE") {
            return Status::InvalidArgument("DISTANCE_METRIC " + value +
                                           " is not supported: only COSINE");
          }
          metric_seen = true;
        } else if (key == "M" || key == "EF_CONSTRUCTION" || key == "EF_RUNTIME" ||
                   key == "INITIAL_CAP" || key == "BLOCK_SIZE" || key == "EPSILON") {
          if (!ParseDouble(value)) return Status::InvalidArgument("Bad " + key + " " + value);
        } else {
          return Status::InvalidArgument("Bad arguments for vector similarity " + f.algorithm +
                                         " index: unknown attribute " + key);
        }
      }
      if (!type_seen || f.dim == 0 || !metric_seen) {
        return Status::InvalidArgument("vector field `" + f.name +
                                       "` needs TYPE FLOAT32, DIM and DISTANCE_METRIC COSINE");
      }
      if (def.VectorField() != nullptr) {
        return Status::InvalidArgument("an index may have one VECTOR field here (the org's index)");
      }
    } else if (type == "GEO" || type == "GEOSHAPE") {
      return Status::InvalidArgument(type + " fields are not supported");
    } else {
      return Status::InvalidArgument("Invalid field type for field `" + f.name + "`");
    }
    // Field options, until the next field.
    while (i < a.size()) {
      const std::string opt = Upper(a[i]);
      if (opt == "WEIGHT" && f.type == FieldType::kText && i + 1 < a.size()) {
        auto w = ParseDouble(a[i + 1]);
        if (!w) return Status::InvalidArgument("Bad WEIGHT " + a[i + 1]);
        f.weight = *w;
        i += 2;
      } else if (opt == "SEPARATOR" && f.type == FieldType::kTag && i + 1 < a.size()) {
        if (a[i + 1].size() != 1)
          return Status::InvalidArgument("Tag separator must be a single character");
        f.separator = a[i + 1][0];
        i += 2;
      } else if (opt == "PHONETIC" && i + 1 < a.size()) {
        f.flags.push_back(opt);
        f.flags.push_back(a[i + 1]);
        i += 2;
      } else if (opt == "CASESENSITIVE" && f.type == FieldType::kTag) {
        f.case_sensitive = true;
        f.flags.push_back(opt);
        ++i;
      } else if (opt == "SORTABLE" || opt == "NOSTEM" || opt == "NOINDEX" || opt == "UNF" ||
                 opt == "WITHSUFFIXTRIE" || opt == "INDEXEMPTY" || opt == "INDEXMISSING") {
        f.flags.push_back(opt);
        ++i;
      } else {
        break;
      }
    }
    for (const auto& other : def.fields) {
      if (other.alias == f.alias)
        return Status::InvalidArgument("Duplicate field in schema - " + f.alias);
    }
    def.fields.push_back(std::move(f));
  }
  return def;
}

// The definitions file: a count of indexes, then each as its name and FT.CREATE arguments,
// every string as a u32 length and its bytes.
std::vector<uint8_t> EncodeDefinitions(const std::map<std::string, IndexDef>& indexes) {
  std::vector<uint8_t> out;
  auto put = [&](std::string_view s) {
    PutU32(out, s.size());
    PutBytes(out, s);
  };
  PutU32(out, indexes.size());
  for (const auto& [name, def] : indexes) {
    put(name);
    PutU32(out, def.create_args.size());
    for (const auto& arg : def.create_args) put(arg);
  }
  return out;
}

Result<std::map<std::string, IndexDef>> DecodeDefinitions(std::span<const uint8_t> in) {
  const Status bad = Status::Corruption("the search index definitions of this org are damaged");
  std::map<std::string, IndexDef> out;
  size_t at = 0;
  auto take = [&](std::string* s) {
    std::string_view bytes;
    if (!TakeString(in, &at, &bytes)) return false;
    s->assign(bytes);
    return true;
  };
  uint32_t count = 0;
  if (!TakeU32(in, &at, &count)) return bad;
  for (uint32_t k = 0; k < count; ++k) {
    std::string name;
    uint32_t nargs = 0;
    if (!take(&name) || !TakeU32(in, &at, &nargs) || nargs > in.size()) return bad;
    std::vector<std::string> args(nargs);
    for (auto& arg : args) {
      if (!take(&arg)) return bad;
    }
    auto def = ParseCreate(name, args);
    if (!def.ok()) return bad;
    out.emplace(name, std::move(def).value());
  }
  if (at != in.size()) return bad;
  return out;
}

// The org's search state, loaded on first use: definitions from the side file, then the
// filter values of every hash an index covers. Returns it with no lock held.
Result<std::shared_ptr<SearchState>> StateOf(Context& c) {
  SC_ASSIGN_OR_RETURN(std::shared_ptr<OrgAttachment> a, c.service->Attachment(c.s.session, [] {
    return std::make_shared<SearchState>();
  }));
  auto state = std::static_pointer_cast<SearchState>(a);
  {
    std::shared_lock<std::shared_mutex> lock(state->mu);
    if (state->loaded) return state;
  }
  std::unique_lock<std::shared_mutex> lock(state->mu);
  if (state->loaded) return state;
  auto bytes = c.service->ReadOrgFile(c.s.session, kDefinitionsFile);
  if (bytes.ok()) {
    SC_ASSIGN_OR_RETURN(state->indexes, DecodeDefinitions(*bytes));
  } else if (!bytes.status().IsNotFound()) {
    return bytes.status();
  }
  state->docs.clear();
  if (!state->indexes.empty()) {
    SC_RETURN_IF_ERROR(ForEachEntry(c, kLoadPageEntries, [&](const PagedEntry& e) {
      auto r = ParseRecord(e.payload);
      if (!r || r->type != RecordType::kHash) return Status::Ok();
      if (auto doc = state->DocFor(r->name, OwnedFields(*r)))
        state->docs[e.digest] = std::move(*doc);
      return Status::Ok();
    }));
  }
  state->loaded = true;
  return state;
}

Status SaveDefinitions(Context& c, const SearchState& state) {
  return c.service->WriteOrgFile(c.s.session, kDefinitionsFile, EncodeDefinitions(state.indexes));
}

// The vector in a hash field: `dim` little-endian float32s, finite and not all zero.
std::optional<std::vector<float>> VectorOf(std::string_view bytes, uint32_t dim) {
  if (bytes.size() != size_t{dim} * sizeof(float)) return std::nullopt;
  std::vector<float> v(dim);
  std::memcpy(v.data(), bytes.data(), bytes.size());
  bool nonzero = false;
  for (float x : v) {
    if (!std::isfinite(x)) return std::nullopt;
    nonzero |= x != 0.0f;
  }
  if (!nonzero) return std::nullopt;
  return v;
}

// ---- queries ------------------------------------------------------------------------------------

// A filter of FT.SEARCH's query language (DIALECT 2 subset).
struct Node {
  enum class Kind { kAll, kAnd, kOr, kNot, kTag, kNumeric, kVectorRange };
  Kind kind = Kind::kAll;
  std::vector<Node> kids;
  std::string field;              // the alias in the query
  std::vector<std::string> tags;  // kTag
  double lo = 0, hi = 0;          // kNumeric
  bool lo_exclusive = false, hi_exclusive = false;
  double radius = 0;              // kVectorRange
  std::string vector_param;       // kVectorRange
  std::string yield_distance_as;  // kVectorRange
};

struct Knn {
  int64_t k = 0;
  std::string field;
  std::string vector_param;
  std::string alias;  // AS; default "__<field>_score"
};

struct Query {
  Node filter;
  std::optional<Knn> knn;
};

// FT.SEARCH's PARAMS: names and values, views of the request's arguments.
using QueryParams = std::map<std::string_view, std::string_view, std::less<>>;

class QueryParser {
 public:
  QueryParser(std::string_view q, const QueryParams& params) : q_(q), params_(params) {}

  Result<Query> Parse() {
    Query out;
    SkipSpace();
    if (Peek('*')) {
      ++at_;
      out.filter.kind = Node::Kind::kAll;
    } else {
      SC_ASSIGN_OR_RETURN(out.filter, Union());
    }
    SkipSpace();
    if (Consume("=>")) {
      SkipSpace();
      if (!Consume("[")) return Error("expected [KNN ...] after =>");
      SC_ASSIGN_OR_RETURN(out.knn, ParseKnn());
      SkipSpace();
      if (!Consume("]")) return Error("expected ] after KNN");
    }
    SkipSpace();
    if (at_ != q_.size()) return Error("unexpected `" + std::string(q_.substr(at_, 20)) + "`");
    return out;
  }

 private:
  Status Error(const std::string& what) const {
    return Status::InvalidArgument("Syntax error at offset " + std::to_string(at_) + " near " +
                                   what);
  }
  void SkipSpace() {
    while (at_ < q_.size() && std::isspace(static_cast<unsigned char>(q_[at_]))) ++at_;
  }
  bool Peek(char ch) const { return at_ < q_.size() && q_[at_] == ch; }
  bool Consume(std::string_view s) {
    if (q_.substr(at_, s.size()) != s) return false;
    at_ += s.size();
    return true;
  }
  bool ConsumeWord(std::string_view w) {
    if (at_ + w.size() > q_.size() || !EqualsIgnoreCase(q_.substr(at_, w.size()), w)) return false;
    const size_t end = at_ + w.size();
    if (end < q_.size() && (std::isalnum(static_cast<unsigned char>(q_[end])) || q_[end] == '_')) {
      return false;
    }
    at_ = end;
    return true;
  }
  std::string Word() {
    const size_t start = at_;
    while (at_ < q_.size() &&
           (std::isalnum(static_cast<unsigned char>(q_[at_])) || q_[at_] == '_' || q_[at_] == '.' ||
            q_[at_] == '-' || q_[at_] == '+' || q_[at_] == '$')) {
      ++at_;
    }
    return std::string(q_.substr(start, at_ - start));
  }
  // A number, or $param naming one.
  Result<double> Number(bool allow_inf) {
    SkipSpace();
    std::string w = Word();
    if (!w.empty() && w[0] == '$') {
      auto it = params_.find(w.substr(1));
      if (it == params_.end())
        return Status::InvalidArgument("No such parameter `" + w.substr(1) + "`");
      w = it->second;
    }
    const std::string lower = Lower(w);
    if (allow_inf && (lower == "inf" || lower == "+inf")) return HUGE_VAL;
    if (allow_inf && lower == "-inf") return -HUGE_VAL;
    auto v = ParseDouble(w);
    if (!v || !std::isfinite(*v)) return Error("a number, got `" + w + "`");
    return *v;
  }

  Result<Node> Union() {
    SC_ASSIGN_OR_RETURN(Node first, Intersection());
    SkipSpace();
    if (!Peek('|')) return first;
    Node out;
    out.kind = Node::Kind::kOr;
    out.kids.push_back(std::move(first));
    while (Peek('|')) {
      ++at_;
      SC_ASSIGN_OR_RETURN(Node next, Intersection());
      out.kids.push_back(std::move(next));
      SkipSpace();
    }
    return out;
  }

  Result<Node> Intersection() {
    Node out;
    out.kind = Node::Kind::kAnd;
    for (;;) {
      SkipSpace();
      if (at_ == q_.size() || Peek(')') || Peek('|') || q_.substr(at_, 2) == "=>") break;
      SC_ASSIGN_OR_RETURN(Node unit, Unit());
      out.kids.push_back(std::move(unit));
    }
    if (out.kids.empty()) return Error("an empty expression");
    if (out.kids.size() == 1) return std::move(out.kids[0]);
    return out;
  }

  Result<Node> Unit() {
    if (Peek('-')) {
      ++at_;
      SC_ASSIGN_OR_RETURN(Node inner, Unit());
      Node out;
      out.kind = Node::Kind::kNot;
      out.kids.push_back(std::move(inner));
      return out;
    }
    if (Peek('*')) {
      ++at_;
      return Node{};
    }
    if (Peek('(')) {
      ++at_;
      SC_ASSIGN_OR_RETURN(Node inner, Union());
      SkipSpace();
      if (!Consume(")")) return Error("expected )");
      return inner;
    }
    if (!Peek('@')) {
      return Status::InvalidArgument(
          "full-text queries are not supported: use *, @tag:{...}, @num:[lo hi] or a vector "
          "clause (server/RESP.md)");
    }
    ++at_;
    Node out;
    out.field = Word();
    if (out.field.empty() || !Consume(":")) return Error("expected @field:");
    SkipSpace();
    if (Peek('{')) {
      ++at_;
      out.kind = Node::Kind::kTag;
      SC_RETURN_IF_ERROR(Tags(&out.tags));
      return out;
    }
    if (!Consume("[")) {
      return Status::InvalidArgument("text field queries are not supported (server/RESP.md)");
    }
    SkipSpace();
    if (ConsumeWord("VECTOR_RANGE")) {
      out.kind = Node::Kind::kVectorRange;
      SC_ASSIGN_OR_RETURN(out.radius, Number(false));
      SkipSpace();
      std::string p = Word();
      if (p.size() < 2 || p[0] != '$') return Error("expected $param for VECTOR_RANGE's vector");
      out.vector_param = p.substr(1);
      SkipSpace();
      if (!Consume("]")) return Error("expected ]");
      SkipSpace();
      if (q_.substr(at_, 3) == "=>{") {
        at_ += 3;
        SC_RETURN_IF_ERROR(RangeAttributes(&out));
      }
      return out;
    }
    out.kind = Node::Kind::kNumeric;
    SC_RETURN_IF_ERROR(Bound(&out.lo, &out.lo_exclusive));
    SkipSpace();
    if (Peek(',')) ++at_;
    SC_RETURN_IF_ERROR(Bound(&out.hi, &out.hi_exclusive));
    SkipSpace();
    if (!Consume("]")) return Error("expected ] after a numeric range");
    return out;
  }

  // One end of a numeric range: a number, "(" before it for an exclusive bound.
  Status Bound(double* value, bool* exclusive) {
    SkipSpace();
    if (Peek('(')) {
      *exclusive = true;
      ++at_;
    }
    SC_ASSIGN_OR_RETURN(*value, Number(true));
    return Status::Ok();
  }

  // {a|b|c}: tag values, backslash escapes and spaces inside values kept.
  Status Tags(std::vector<std::string>* out) {
    std::string current;
    bool any = false;
    while (at_ < q_.size() && q_[at_] != '}') {
      char ch = q_[at_++];
      if (ch == '\\' && at_ < q_.size()) {
        current += q_[at_++];
        any = true;
      } else if (ch == '|') {
        out->push_back(Trim(current));
        current.clear();
      } else {
        current += ch;
        any = true;
      }
    }
    if (!Consume("}")) return Error("expected } after tags");
    if (any || !current.empty()) out->push_back(Trim(current));
    for (auto& t : *out) {
      if (!t.empty() && t[0] == '$') {
        auto it = params_.find(t.substr(1));
        if (it != params_.end()) t = it->second;
      }
    }
    return Status::Ok();
  }
  static std::string Trim(std::string s) {
    while (!s.empty() && s.back() == ' ') s.pop_back();
    size_t i = 0;
    while (i < s.size() && s[i] == ' ') ++i;
    return s.substr(i);
  }

  // {$YIELD_DISTANCE_AS: name} (also $EPSILON: x, ignored: the search is the org's).
  Status RangeAttributes(Node* out) {
    for (;;) {
      SkipSpace();
      if (Consume("}")) return Status::Ok();
      std::string key = Word();
      SkipSpace();
      if (!Consume(":")) return Error("expected : in {...}");
      SkipSpace();
      std::string value = Word();
      if (EqualsIgnoreCase(key, "$YIELD_DISTANCE_AS")) {
        if (!value.empty() && value[0] == '$') {
          auto it = params_.find(value.substr(1));
          if (it != params_.end()) value = it->second;
        }
        out->yield_distance_as = value;
      } else if (!EqualsIgnoreCase(key, "$EPSILON")) {
        return Error("unknown attribute " + key);
      }
      SkipSpace();
      if (Peek(';') || Peek(',')) ++at_;
    }
  }

  Result<Knn> ParseKnn() {
    SkipSpace();
    if (!ConsumeWord("KNN")) return Error("expected KNN");
    Knn knn;
    SC_ASSIGN_OR_RETURN(double k, Number(false));
    if (k < 0 || k != std::floor(k)) return Error("KNN needs a whole number");
    knn.k = static_cast<int64_t>(k);
    SkipSpace();
    if (!Consume("@")) return Error("expected @field in KNN");
    knn.field = Word();
    SkipSpace();
    std::string p = Word();
    if (p.size() < 2 || p[0] != '$') return Error("expected $param for KNN's vector");
    knn.vector_param = p.substr(1);
    for (;;) {
      SkipSpace();
      if (ConsumeWord("AS")) {
        SkipSpace();
        knn.alias = Word();
        if (knn.alias.empty()) return Error("expected a name after AS");
      } else if (ConsumeWord("EF_RUNTIME") || ConsumeWord("EPSILON")) {
        SC_RETURN_IF_ERROR(Number(false).status());
      } else {
        break;
      }
    }
    if (knn.alias.empty()) knn.alias = "__" + knn.field + "_score";
    return knn;
  }

  std::string_view q_;
  size_t at_ = 0;
  const QueryParams& params_;
};

bool TagMatches(std::string_view stored, const FieldDef& f,
                const std::vector<std::string>& wanted) {
  auto norm = [&](std::string s) { return f.case_sensitive ? s : Lower(s); };
  size_t start = 0;
  while (start <= stored.size()) {
    size_t end = stored.find(f.separator, start);
    if (end == std::string_view::npos) end = stored.size();
    std::string tag(stored.substr(start, end - start));
    while (!tag.empty() && tag.back() == ' ') tag.pop_back();
    while (!tag.empty() && tag.front() == ' ') tag.erase(tag.begin());
    for (const auto& w : wanted) {
      if (norm(tag) == norm(w)) return true;
    }
    start = end + 1;
  }
  return false;
}

// Whether `doc` passes `n` (vector clauses pass here: the search decides them).
bool Matches(const Node& n, const Doc& doc, const IndexDef& index) {
  switch (n.kind) {
    case Node::Kind::kAll:
    case Node::Kind::kVectorRange:
      return true;
    case Node::Kind::kAnd:
      return std::all_of(n.kids.begin(), n.kids.end(),
                         [&](const Node& k) { return Matches(k, doc, index); });
    case Node::Kind::kOr:
      return std::any_of(n.kids.begin(), n.kids.end(),
                         [&](const Node& k) { return Matches(k, doc, index); });
    case Node::Kind::kNot:
      return !Matches(n.kids[0], doc, index);
    case Node::Kind::kTag:
    case Node::Kind::kNumeric: {
      const FieldDef* f = index.Field(n.field);
      if (f == nullptr) return false;
      for (const auto& [field, value] : doc.filter_fields) {
        if (field != f->name) continue;
        if (n.kind == Node::Kind::kTag) return TagMatches(value, *f, n.tags);
        auto v = ParseDouble(value);
        if (!v) return false;
        const bool above = n.lo_exclusive ? *v > n.lo : *v >= n.lo;
        const bool below = n.hi_exclusive ? *v < n.hi : *v <= n.hi;
        return above && below;
      }
      return false;
    }
  }
  return false;
}

// Checks that every field a filter names is a TAG or NUMERIC field of the index, of the
// kind the clause needs; finds the one vector range clause (top level or in a top-level
// conjunction).
Status CheckFilter(const Node& n, const IndexDef& index, bool top, const Node** range) {
  switch (n.kind) {
    case Node::Kind::kAll:
      return Status::Ok();
    case Node::Kind::kVectorRange: {
      if (!top) return Status::InvalidArgument("VECTOR_RANGE must be a top-level clause here");
      if (*range != nullptr) return Status::InvalidArgument("only one vector clause per query");
      const FieldDef* f = index.Field(n.field);
      if (f == nullptr || f->type != FieldType::kVector) {
        return Status::InvalidArgument("Unknown vector field `" + n.field + "`");
      }
      *range = &n;
      return Status::Ok();
    }
    case Node::Kind::kAnd:
      for (const Node& k : n.kids) SC_RETURN_IF_ERROR(CheckFilter(k, index, top, range));
      return Status::Ok();
    case Node::Kind::kOr:
    case Node::Kind::kNot:
      for (const Node& k : n.kids) SC_RETURN_IF_ERROR(CheckFilter(k, index, false, range));
      return Status::Ok();
    case Node::Kind::kTag:
    case Node::Kind::kNumeric: {
      const FieldDef* f = index.Field(n.field);
      const FieldType want = n.kind == Node::Kind::kTag ? FieldType::kTag : FieldType::kNumeric;
      if (f == nullptr) return Status::InvalidArgument("Unknown field `" + n.field + "`");
      if (f->type != want) {
        return Status::InvalidArgument("field `" + n.field + "` is not a " +
                                       (want == FieldType::kTag ? "TAG" : "NUMERIC") + " field");
      }
      return Status::Ok();
    }
  }
  return Status::Ok();
}

std::string FormatDouble(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

std::optional<std::span<const float>> ParamVector(const QueryParams& params,
                                                  const std::string& name) {
  auto it = params.find(name);
  if (it == params.end() || it->second.size() % sizeof(float) != 0) return std::nullopt;
  return std::span<const float>(reinterpret_cast<const float*>(it->second.data()),
                                it->second.size() / sizeof(float));
}

// A row of FT.SEARCH's reply: views into the hits' payloads (or the hashes read for a query
// without a vector clause) and the distance texts, which outlive the rows; the payloads'
// fields are not copied before the reply is written.
using FieldViews = std::vector<std::pair<std::string_view, std::string_view>>;
struct ResultRow {
  std::string_view key;
  double distance = 0;  // cosine distance, for vector queries
  FieldViews fields;    // the hash's fields, the distance field added
};

// Reads the hash `name` at `digest` (nullopt if gone or no longer a hash of this name).
Result<std::optional<HashFields>> ReadHashAt(Context& c, const storage::Digest& digest,
                                             std::string_view name) {
  std::optional<HashFields> out;
  auto value = c.service->Read(c.s.session, digest);
  if (value.status().IsNotFound()) return out;
  if (!value.ok()) return value.status();
  auto r = ParseRecord(value->payload);
  if (r && r->type == RecordType::kHash && r->name == name) out = OwnedFields(*r);
  return out;
}

template <typename Fields>  // HashFields or FieldViews
void WriteHashFields(RespWriter& out, const Fields& fields) {
  out.MapHeader(fields.size());
  for (const auto& [f, v] : fields) {
    out.Bulk(f);
    out.Bulk(v);
  }
}

}  // namespace

// ---- hooks for the hash commands ------------------------------------------------------------

std::vector<float> VectorForHash(Context& c, std::string_view name, const HashFields& fields) {
  auto state = StateOf(c);
  if (!state.ok()) return {};
  std::shared_lock<std::shared_mutex> lock((*state)->mu);
  for (auto& [_, index] : (*state)->indexes) {
    const FieldDef* vf = index.VectorField();
    if (vf == nullptr || !index.Covers(name)) continue;
    for (const auto& [f, v] : fields) {
      if (f != vf->name) continue;
      if (auto vec = VectorOf(v, vf->dim)) return std::move(*vec);
      index.indexing_failures->fetch_add(1, std::memory_order_relaxed);
    }
  }
  return {};
}

std::function<void()> HashWrittenHook(Context& c, const storage::Digest& digest,
                                      std::string_view name, HashFields fields) {
  auto state = StateOf(c);
  if (!state.ok()) return {};  // loaded from the store at the next successful use
  return [state = std::move(state).value(), digest, name = std::string(name),
          fields = std::move(fields)] {
    std::unique_lock<std::shared_mutex> lock(state->mu);
    std::optional<Doc> doc;
    if (!fields.empty()) doc = state->DocFor(name, fields);
    if (doc) {
      state->docs[digest] = std::move(*doc);
    } else {
      state->docs.erase(digest);
    }
  };
}

void WriteSearchModule(RespWriter& out) {
  out.MapHeader(4);
  out.Bulk("name");
  out.Bulk(kModuleName);
  out.Bulk("ver");
  out.Integer(kModuleVersion);
  out.Bulk("path");
  out.Bulk("");
  out.Bulk("args");
  out.ArrayHeader(0);
}

// ---- FT.* commands ---------------------------------------------------------------------------

void FtList(Context& c) {
  auto state = StateOf(c);
  if (!state.ok()) return ReplyError(c.out, state.status(), c.args[0]);
  std::shared_lock<std::shared_mutex> lock((*state)->mu);
  c.out.SetHeader((*state)->indexes.size());
  for (const auto& [name, _] : (*state)->indexes) c.out.Bulk(name);
}

void FtCreate(Context& c) {
  const std::string& name = c.args[1];
  auto def = ParseCreate(name, std::vector<std::string>(c.args.begin() + 2, c.args.end()));
  if (!def.ok()) return c.out.Error(def.status().message());
  auto state = StateOf(c);
  if (!state.ok()) return ReplyError(c.out, state.status(), c.args[0]);
  // A vector field of another size than the org's vectors would never be searchable.
  if (const FieldDef* vf = def->VectorField()) {
    auto dim = c.service->Dimension(c.s.session);
    if (!dim.ok()) return ReplyError(c.out, dim.status(), c.args[0]);
    if (*dim != vf->dim) {
      return c.out.Error("ERR vector field `" + vf->name + "` has DIM " + std::to_string(vf->dim) +
                         " but the vectors of this org have dimension " + std::to_string(*dim));
    }
  }
  std::vector<std::pair<storage::Digest, std::string>> backfill;
  {
    std::unique_lock<std::shared_mutex> lock((*state)->mu);
    if ((*state)->indexes.count(name)) return c.out.Error("Index already exists");
    (*state)->indexes.emplace(name, *def);
    Status saved = SaveDefinitions(c, **state);
    if (!saved.ok()) {
      (*state)->indexes.erase(name);
      return ReplyError(c.out, saved, c.args[0]);
    }
    (*state)->loaded = false;  // the next use loads the hashes the new index covers
  }
  // Hashes written before the index: their vectors go into the org's index now, as
  // RediSearch indexes existing keys.
  if (def->VectorField() != nullptr) {
    Status st = ForEachEntry(c, kLoadPageEntries, [&](const PagedEntry& e) {
      auto r = ParseRecord(e.payload);
      if (r && r->type == RecordType::kHash && !e.has_vector && def->Covers(r->name)) {
        backfill.emplace_back(e.digest, std::string(r->name));
      }
      return Status::Ok();
    });
    if (!st.ok()) return ReplyError(c.out, st, c.args[0]);
  }
  for (const auto& item : backfill) {
    const std::string& key = item.second;  // named: lambdas cannot capture bindings (clang 14)
    const storage::Digest& digest = item.first;
    Status st =
        c.service->Update(c.s.session, digest, [&](const LiveEntry* e) -> Result<EntryChange> {
          EntryChange change;
          if (e == nullptr || e->has_vector) return change;
          auto r = ParseRecord(e->payload);
          if (!r || r->type != RecordType::kHash || r->name != key) return change;
          change.vector = VectorForHash(c, key, OwnedFields(*r));
          if (change.vector.empty()) return change;
          change.kind = EntryChange::Kind::kPut;
          change.payload.assign(e->payload.begin(), e->payload.end());
          change.keep_expiry = true;
          change.ttl_ms = c.facts->default_ttl_ms;
          return change;
        });
    if (!st.ok()) return ReplyError(c.out, st, c.args[0]);
  }
  c.out.SimpleString("OK");
}

void FtDropIndex(Context& c) {
  const std::string& name = c.args[1];
  if (c.args.size() > 3 || (c.args.size() == 3 && !EqualsIgnoreCase(c.args[2], "DD"))) {
    return c.out.Error("ERR syntax error");
  }
  const bool delete_docs = c.args.size() == 3;
  auto state = StateOf(c);
  if (!state.ok()) return ReplyError(c.out, state.status(), c.args[0]);
  std::vector<std::pair<storage::Digest, std::string>> doomed;
  {
    std::unique_lock<std::shared_mutex> lock((*state)->mu);
    auto it = (*state)->indexes.find(name);
    if (it == (*state)->indexes.end()) return c.out.Error(kUnknownIndex);
    if (delete_docs) {
      for (const auto& [digest, doc] : (*state)->docs) {
        if (it->second.Covers(doc.name)) doomed.emplace_back(digest, doc.name);
      }
    }
    IndexDef dropped = std::move(it->second);
    (*state)->indexes.erase(it);
    Status saved = SaveDefinitions(c, **state);
    if (!saved.ok()) {
      (*state)->indexes.emplace(name, std::move(dropped));
      return ReplyError(c.out, saved, c.args[0]);
    }
    (*state)->loaded = false;
  }
  for (const auto& item : doomed) {
    const std::string& key = item.second;
    const storage::Digest& digest = item.first;
    Status st = c.service->Update(c.s.session, digest, [&](const LiveEntry* e) {
      EntryChange change;
      auto r = e ? ParseRecord(e->payload) : std::nullopt;
      if (r && r->type == RecordType::kHash && r->name == key) {
        change.kind = EntryChange::Kind::kDelete;
      }
      return Result<EntryChange>(std::move(change));
    });
    if (!st.ok()) return ReplyError(c.out, st, c.args[0]);
  }
  c.out.SimpleString("OK");
}

// FT.INFO in RediSearch 2.8's order (node-redis 4 reads it by position).
void FtInfo(Context& c) {
  auto state = StateOf(c);
  if (!state.ok()) return ReplyError(c.out, state.status(), c.args[0]);
  std::shared_lock<std::shared_mutex> lock((*state)->mu);
  auto it = (*state)->indexes.find(c.args[1]);
  if (it == (*state)->indexes.end()) return c.out.Error(kUnknownIndex);
  const IndexDef& index = it->second;
  int64_t docs = 0;
  for (const auto& [_, doc] : (*state)->docs) docs += index.Covers(doc.name) ? 1 : 0;
  RespWriter& o = c.out;
  o.MapHeader(24);
  o.Bulk("index_name");
  o.Bulk(index.name);
  o.Bulk("index_options");
  o.ArrayHeader(0);
  o.Bulk("index_definition");
  o.MapHeader(3);
  o.Bulk("key_type");
  o.Bulk("HASH");
  o.Bulk("prefixes");
  o.ArrayHeader(index.prefixes.empty() ? 1 : index.prefixes.size());
  if (index.prefixes.empty()) o.Bulk("");
  for (const auto& p : index.prefixes) o.Bulk(p);
  o.Bulk("default_score");
  o.Bulk(FormatDouble(index.score));
  o.Bulk("attributes");
  o.ArrayHeader(index.fields.size());
  for (const FieldDef& f : index.fields) {
    std::vector<std::string> kv = {"identifier", f.name, "attribute", f.alias, "type"};
    switch (f.type) {
      case FieldType::kText:
        kv.insert(kv.end(), {"TEXT", "WEIGHT", FormatDouble(f.weight)});
        break;
      case FieldType::kTag:
        kv.insert(kv.end(), {"TAG", "SEPARATOR", std::string(1, f.separator)});
        break;
      case FieldType::kNumeric:
        kv.push_back("NUMERIC");
        break;
      case FieldType::kVector:
        kv.insert(kv.end(), {"VECTOR", "algorithm", f.algorithm, "data_type", "FLOAT32", "dim",
                             std::to_string(f.dim), "distance_metric", "COSINE"});
        for (const auto& [key, value] : f.vector_params) {
          if (key == "M" || key == "EF_CONSTRUCTION" || key == "EF_RUNTIME" || key == "EPSILON") {
            kv.push_back(key == "M" ? "M" : Lower(key));
            kv.push_back(value);
          }
        }
        break;
    }
    for (const auto& flag : f.flags) kv.push_back(flag);
    o.ArrayHeader(kv.size());
    for (const auto& s : kv) o.Bulk(s);
  }
  auto num = [&](const char* key, int64_t v) {
    o.Bulk(key);
    o.Integer(v);
  };
  auto dbl = [&](const char* key, double v) {
    o.Bulk(key);
    o.Bulk(FormatDouble(v));
  };
  num("num_docs", docs);
  num("max_doc_id", docs);
  num("num_terms", 0);
  num("num_records", docs);
  dbl("inverted_sz_mb", 0);
  dbl("vector_index_sz_mb", 0);
  num("total_inverted_index_blocks", 0);
  dbl("offset_vectors_sz_mb", 0);
  dbl("doc_table_size_mb", 0);
  dbl("sortable_values_size_mb", 0);
  dbl("key_table_size_mb", 0);
  dbl("records_per_doc_avg", docs > 0 ? 1 : 0);
  dbl("bytes_per_record_avg", 0);
  dbl("offsets_per_term_avg", 0);
  dbl("offset_bits_per_record_avg", 0);
  num("hash_indexing_failures", static_cast<int64_t>(index.indexing_failures->load()));
  num("indexing", 0);
  dbl("percent_indexed", 1);
  o.Bulk("gc_stats");
  o.MapHeader(7);
  for (const char* key :
       {"bytes_collected", "total_ms_run", "total_cycles", "average_cycle_time_ms",
        "last_run_time_ms", "gc_numeric_trees_missed", "gc_blocks_denied"}) {
    o.Bulk(key);
    o.Bulk("0");
  }
  o.Bulk("cursor_stats");
  o.MapHeader(4);
  for (const char* key : {"global_idle", "global_total", "index_capacity", "index_total"}) {
    o.Bulk(key);
    o.Integer(0);
  }
}

// FT.SEARCH index query [NOCONTENT] [VERBATIM] [NOSTOPWORDS] [RETURN n f [AS a]...]
//   [SORTBY f [ASC|DESC]] [LIMIT offset num] [PARAMS n k v...] [DIALECT d] [TIMEOUT t]
void FtSearch(Context& c) {
  const std::string& index_name = c.args[1];
  const std::string& query_text = c.args[2];
  bool no_content = false;
  std::optional<std::vector<std::pair<std::string, std::string>>> returns;  // field, as
  std::optional<std::string> sort_by;
  bool sort_ascending = true;
  int64_t offset = 0, limit = kDefaultLimit;
  QueryParams params;  // views of the request's arguments (a vector's bytes are not copied)
  for (size_t i = 3; i < c.args.size();) {
    const std::string opt = Upper(c.args[i]);
    const size_t left = c.args.size() - i - 1;
    if (opt == "NOCONTENT") {
      no_content = true;
      ++i;
    } else if (opt == "VERBATIM" || opt == "NOSTOPWORDS") {
      ++i;
    } else if ((opt == "DIALECT" || opt == "TIMEOUT") && left >= 1) {
      if (!ParseRedisInteger(c.args[i + 1]))
        return c.out.Error("ERR value is not an integer or out of range");
      i += 2;
    } else if (opt == "LIMIT" && left >= 2) {
      auto off = ParseRedisInteger(c.args[i + 1]);
      auto num = ParseRedisInteger(c.args[i + 2]);
      if (!off || !num || *off < 0 || *num < 0)
        return c.out.Error("LIMIT needs two non-negative integers");
      offset = *off;
      limit = *num;
      i += 3;
    } else if (opt == "SORTBY" && left >= 1) {
      sort_by = c.args[i + 1];
      if (!sort_by->empty() && (*sort_by)[0] == '@') sort_by->erase(0, 1);
      i += 2;
      if (i < c.args.size() && (Upper(c.args[i]) == "ASC" || Upper(c.args[i]) == "DESC")) {
        sort_ascending = Upper(c.args[i]) == "ASC";
        ++i;
      }
    } else if (opt == "RETURN" && left >= 1) {
      auto n = ParseRedisInteger(c.args[i + 1]);
      if (!n || *n < 0 || static_cast<size_t>(*n) > left - 1)
        return c.out.Error("Bad arguments for RETURN");
      returns.emplace();
      const size_t end = i + 2 + static_cast<size_t>(*n);
      for (size_t k = i + 2; k < end; ++k) {
        std::string field = c.args[k];
        if (!field.empty() && field[0] == '@') field.erase(0, 1);
        std::string as = field;
        if (k + 2 < end && Upper(c.args[k + 1]) == "AS") {
          as = c.args[k + 2];
          k += 2;
        }
        returns->emplace_back(field, as);
      }
      i = end;
    } else if (opt == "PARAMS" && left >= 1) {
      auto n = ParseRedisInteger(c.args[i + 1]);
      if (!n || *n < 0 || *n % 2 != 0 || static_cast<size_t>(*n) > left - 1) {
        return c.out.Error("Bad arguments for PARAMS: Expected an even number of arguments");
      }
      for (size_t k = i + 2; k < i + 2 + static_cast<size_t>(*n); k += 2) {
        params[c.args[k]] = c.args[k + 1];
      }
      i += 2 + static_cast<size_t>(*n);
    } else {
      return c.out.Error("Unknown argument `" + c.args[i] + "` (or not supported here)");
    }
  }
  auto parsed = QueryParser(query_text, params).Parse();
  if (!parsed.ok()) return c.out.Error(parsed.status().message());
  auto state = StateOf(c);
  if (!state.ok()) return ReplyError(c.out, state.status(), c.args[0]);

  std::vector<ResultRow> rows;
  std::string distance_field;
  // What the rows point into: the hits (their payloads), the keys and hashes of a query
  // without a vector clause, the distances' texts (a deque: its strings stay where they are).
  std::vector<SearchHit> hits;
  std::vector<std::pair<storage::Digest, std::string>> plain;  // no vector clause
  std::deque<HashFields> plain_fields;
  std::deque<std::string> distance_texts;
  {
    std::shared_lock<std::shared_mutex> lock((*state)->mu);
    auto it = (*state)->indexes.find(index_name);
    if (it == (*state)->indexes.end()) return c.out.Error(kUnknownIndex);
    const IndexDef& index = it->second;
    const Node* range = nullptr;
    Status checked = CheckFilter(parsed->filter, index, true, &range);
    if (!checked.ok()) return c.out.Error(checked.message());
    if (range != nullptr && parsed->knn) return c.out.Error("only one vector clause per query");
    const auto& docs = (*state)->docs;
    auto admit = [&](const storage::Digest& d) {
      auto doc = docs.find(d);
      return doc != docs.end() && index.Covers(doc->second.name) &&
             Matches(parsed->filter, doc->second, index);
    };
    if (range != nullptr || parsed->knn) {
      const std::string& field = range ? range->field : parsed->knn->field;
      const FieldDef* vf = index.Field(field);
      if (vf == nullptr || vf->type != FieldType::kVector) {
        return c.out.Error("Unknown vector field `" + field + "`");
      }
      const std::string& param = range ? range->vector_param : parsed->knn->vector_param;
      auto vector = ParamVector(params, param);
      if (!vector) return c.out.Error("No such parameter `" + param + "`, or not a FLOAT32 vector");
      if (vector->size() != vf->dim) {
        return c.out.Error("Error parsing vector similarity query: query vector blob size (" +
                           std::to_string(vector->size() * sizeof(float)) +
                           ") does not match index's expected size (" +
                           std::to_string(vf->dim * sizeof(float)) + ").");
      }
      SearchQuery q;
      q.vector = *vector;
      q.admit = admit;
      if (range != nullptr) {
        // Sorted by distance, the nearest offset + limit are all the reply can show: the
        // search asks for no more (RedisVL's check is LIMIT 0 1), and total counts those.
        const bool by_distance =
            sort_ascending && (!sort_by || *sort_by == range->yield_distance_as);
        const int64_t shown = offset + limit;
        q.k = by_distance && limit > 0 && shown < static_cast<int64_t>(kMaxRangeResults)
                  ? static_cast<size_t>(shown)
                  : kMaxRangeResults;
        q.min_score = static_cast<float>(1.0 - range->radius);
        distance_field = range->yield_distance_as;
      } else {
        if (parsed->knn->k == 0) {
          q.k = 0;
        } else {
          q.k = static_cast<size_t>(std::min<int64_t>(parsed->knn->k, kMaxRangeResults));
        }
        distance_field = parsed->knn->alias;
      }
      if (q.k > 0) {
        auto found = c.service->Search(c.s.session, q);
        if (!found.ok()) return ReplyError(c.out, found.status(), c.args[0]);
        hits = std::move(found).value();
      }
    } else {
      for (const auto& [digest, doc] : docs) {
        if (index.Covers(doc.name) && Matches(parsed->filter, doc, index)) {
          plain.emplace_back(digest, doc.name);
        }
      }
    }
    for (auto& h : hits) {
      auto r = ParseRecord(h.entry.payload);
      if (!r || r->type != RecordType::kHash) continue;
      ResultRow row;
      row.key = r->name;
      row.distance = std::clamp(1.0 - static_cast<double>(h.score), 0.0, 2.0);
      row.fields.reserve(r->fields.size() + 1);
      if (!distance_field.empty()) {
        row.fields.emplace_back(distance_field,
                                distance_texts.emplace_back(FormatDouble(row.distance)));
      }
      row.fields.insert(row.fields.end(), r->fields.begin(), r->fields.end());
      rows.push_back(std::move(row));
    }
    lock.unlock();
    for (const auto& [digest, key] : plain) {
      auto fields = ReadHashAt(c, digest, key);
      if (!fields.ok()) return ReplyError(c.out, fields.status(), c.args[0]);
      if (!*fields) continue;  // removed or expired since
      const HashFields& owned = plain_fields.emplace_back(std::move(**fields));
      rows.push_back({key, 0, FieldViews(owned.begin(), owned.end())});
    }
  }
  // Order: by the sort field if given (numbers as numbers), else by distance for vector
  // queries and by key for the others.
  auto field_of = [](const ResultRow& r, std::string_view f) -> const std::string_view* {
    for (const auto& [k, v] : r.fields) {
      if (k == f) return &v;
    }
    return nullptr;
  };
  if (sort_by && *sort_by != distance_field) {
    std::stable_sort(rows.begin(), rows.end(), [&](const ResultRow& a, const ResultRow& b) {
      const std::string_view* x = field_of(a, *sort_by);
      const std::string_view* y = field_of(b, *sort_by);
      if (x == nullptr || y == nullptr) return x != nullptr && y == nullptr;  // missing last
      auto nx = ParseDouble(*x), ny = ParseDouble(*y);
      const bool less = nx && ny ? *nx < *ny : *x < *y;
      const bool greater = nx && ny ? *nx > *ny : *x > *y;
      return sort_ascending ? less : greater;
    });
  } else if (!distance_field.empty()) {
    std::stable_sort(rows.begin(), rows.end(), [&](const ResultRow& a, const ResultRow& b) {
      return sort_ascending ? a.distance < b.distance : a.distance > b.distance;
    });
  } else {
    std::sort(rows.begin(), rows.end(),
              [](const ResultRow& a, const ResultRow& b) { return a.key < b.key; });
  }
  const size_t total = rows.size();
  const size_t first = std::min<size_t>(total, static_cast<size_t>(offset));
  const size_t count = std::min<size_t>(total - first, static_cast<size_t>(limit));
  // What each row answers: the RETURN fields (in that order, missing ones left out), else
  // every field.
  auto shown = [&](const ResultRow& r) {
    if (!returns) return r.fields;
    FieldViews out;
    for (const auto& [f, as] : *returns) {
      if (const std::string_view* v = field_of(r, f)) out.emplace_back(as, *v);
    }
    return out;
  };
  RespWriter& o = c.out;
  if (o.protocol() >= 3) {
    o.MapHeader(5);
    o.Bulk("attributes");
    o.ArrayHeader(0);
    o.Bulk("format");
    o.Bulk("STRING");
    o.Bulk("results");
    o.ArrayHeader(count);
    for (size_t i = first; i < first + count; ++i) {
      o.MapHeader(no_content ? 2 : 3);
      o.Bulk("id");
      o.Bulk(rows[i].key);
      if (!no_content) {
        o.Bulk("extra_attributes");
        WriteHashFields(o, shown(rows[i]));
      }
      o.Bulk("values");
      o.ArrayHeader(0);
    }
    o.Bulk("total_results");
    o.Integer(static_cast<int64_t>(total));
    o.Bulk("warning");
    o.ArrayHeader(0);
    return;
  }
  o.ArrayHeader(1 + count * (no_content ? 1 : 2));
  o.Integer(static_cast<int64_t>(total));
  for (size_t i = first; i < first + count; ++i) {
    o.Bulk(rows[i].key);
    if (no_content) continue;
    const FieldViews fields = shown(rows[i]);
    o.ArrayHeader(fields.size() * 2);
    for (const auto& [f, v] : fields) {
      o.Bulk(f);
      o.Bulk(v);
    }
  }
}

}  // namespace sealcache::server::internal::resp
