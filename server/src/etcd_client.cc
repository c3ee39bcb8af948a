#include "etcd_client.h"

#include <openssl/evp.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <cstdio>
#include <functional>
#include <utility>  // before asio in C++20

#include "sealcache/json.h"

namespace sealcache::server::cluster {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

// How a call that ran out of time says so.
constexpr std::string_view kDidNotAnswer = "did not answer";
// etcd's replies are small (a range of the cluster's records is a few KiB per org).
constexpr size_t kMaxReplyBytes = 64u << 20;

std::string Quote(std::string_view s) { return JsonQuote(s); }
std::string Int(int64_t v) { return "\"" + std::to_string(v) + "\""; }

// An int64 field as the gateway writes it (a decimal string; absent means 0).
int64_t IntField(const Json& object, std::string_view name) {
  const Json& v = object[name];
  if (v.is_number()) return static_cast<int64_t>(v.number());
  if (!v.is_string()) return 0;
  int64_t out = 0;
  const std::string& s = v.string();
  std::from_chars(s.data(), s.data() + s.size(), out);
  return out;
}

// The gateway answers errors as {"error": ..., "message": ..., "code": N} (gRPC codes).
Status ErrorOf(const Json& reply, std::string_view call) {
  if (reply["error"].is_null() && reply["code"].is_null()) return Status::Ok();
  const std::string message =
      reply["message"].is_string() ? reply["message"].string() : std::string("unknown error");
  const int64_t code = IntField(reply, "code");
  constexpr int64_t kGrpcNotFound = 5;
  if (code == kGrpcNotFound) return Status::NotFound("etcd " + std::string(call) + ": " + message);
  return Status::Unavailable("etcd " + std::string(call) + ": " + message);
}

Result<Json> ParseReply(const std::string& text, std::string_view call) {
  auto json = Json::Parse(text);
  if (!json.ok() || !json->is_object()) {
    return Status::Unavailable("etcd " + std::string(call) + ": unreadable reply");
  }
  SC_RETURN_IF_ERROR(ErrorOf(*json, call));
  return json;
}

Result<EtcdKeyValue> KeyValueOf(const Json& kv) {
  EtcdKeyValue out;
  SC_ASSIGN_OR_RETURN(out.key, Base64Decode(kv["key"].is_string() ? kv["key"].string() : ""));
  if (kv["value"].is_string()) {
    SC_ASSIGN_OR_RETURN(out.value, Base64Decode(kv["value"].string()));
  }
  out.create_revision = IntField(kv, "create_revision");
  out.mod_revision = IntField(kv, "mod_revision");
  out.lease = IntField(kv, "lease");
  return out;
}

// The smallest key greater than every key that starts with `prefix` (etcd's range_end).
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    if (static_cast<unsigned char>(prefix.back()) < 0xff) {
      prefix.back() = static_cast<char>(prefix.back() + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');  // every key
}

std::string PutOp(const std::string& key, const std::string& value, int64_t lease) {
  std::string op = R"({"request_put":{"key":)" + Quote(Base64Encode(key)) + R"(,"value":)" +
                   Quote(Base64Encode(value));
  if (lease != 0) op += R"(,"lease":)" + Int(lease);
  return op + "}}";
}

std::string ModCompare(const std::string& key, int64_t mod_revision) {
  // mod_revision 0 compares the key's create revision with 0: true only when it is absent.
  if (mod_revision == 0) {
    return R"({"key":)" + Quote(Base64Encode(key)) +
           R"(,"target":"CREATE","result":"EQUAL","create_revision":"0"})";
  }
  return R"({"key":)" + Quote(Base64Encode(key)) +
         R"(,"target":"MOD","result":"EQUAL","mod_revision":)" + Int(mod_revision) + "}";
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return Status::Corruption("etcd reply: bad base64 length");
  std::string out(3 * (text.size() / 4), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return Status::Corruption("etcd reply: bad base64");
  // EVP_DecodeBlock counts the padding as zero bytes.
  size_t size = static_cast<size_t>(n);
  for (size_t i = text.size(); i > 0 && text[i - 1] == '='; --i) --size;
  out.resize(size);
  return out;
}

Result<EtcdClient> EtcdClient::Create(std::string_view endpoints,
                                      std::chrono::milliseconds timeout) {
  std::vector<Endpoint> parsed;
  std::string_view list = endpoints;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view rest = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    const std::string given(rest);
    if (rest.starts_with("http://")) rest.remove_prefix(7);
    if (rest.starts_with("https://")) {
      return Status::InvalidArgument("etcd endpoint " + given +
                                     ": TLS to etcd is not supported; give http://host:port");
    }
    while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    const size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Status::InvalidArgument("etcd endpoint " + given + ": expected http://host:port");
    }
    const std::string_view port_text = rest.substr(colon + 1);
    uint32_t port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return Status::InvalidArgument("etcd endpoint " + given + ": bad port");
    }
    parsed.push_back({std::string(rest.substr(0, colon)), static_cast<uint16_t>(port)});
  }
  if (parsed.empty()) return Status::InvalidArgument("no etcd endpoint given");
  return EtcdClient(std::move(parsed), timeout);
}

std::string EtcdClient::Describe() const {
  std::string out;
  for (const auto& e : endpoints_) {
    out += (out.empty() ? "" : ",") + e.host + ":" + std::to_string(e.port);
  }
  return out;
}

Result<std::string> EtcdClient::Call(const std::string& path, const std::string& body,
                                     std::chrono::milliseconds timeout) const {
  const size_t first = preferred_.load(std::memory_order_relaxed);
  Status why;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    const size_t at = (first + i) % endpoints_.size();
    std::string reply;
    switch (CallOne(endpoints_[at], path, body, timeout, &reply, &why)) {
      case Outcome::kReply:
        preferred_.store(at, std::memory_order_relaxed);
        return reply;
      case Outcome::kFailed:
        return why;
      case Outcome::kNoConnection:
        break;  // the next member
    }
  }
  return why;
}

EtcdClient::Outcome EtcdClient::CallOne(const Endpoint& e, const std::string& path,
                                        const std::string& body, std::chrono::milliseconds timeout,
                                        std::string* out, Status* why) const {
  asio::io_context io;
  beast::tcp_stream stream(io);
  tcp::resolver resolver(io);
  http::request<http::string_body> request{http::verb::post, path, 11};
  request.set(http::field::host, e.host);
  request.set(http::field::content_type, "application/json");
  request.body() = body;
  request.prepare_payload();
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxReplyBytes);
  boost::system::error_code failure;
  bool connected = false, complete = false;

  // The reply is complete when the message ends or, for a stream, once its body holds one
  // whole JSON document.
  std::function<void(boost::system::error_code)> on_read = [&](boost::system::error_code ec) {
    if (ec) {
      failure = ec;
      return;
    }
    if (parser.is_done() || Json::Parse(parser.get().body()).ok()) {
      complete = true;
      return;
    }
    http::async_read_some(stream, buffer, parser,
                          [&](boost::system::error_code e, size_t) { on_read(e); });
  };
  stream.expires_after(timeout);
  resolver.async_resolve(
      e.host, std::to_string(e.port),
      [&](boost::system::error_code ec, const tcp::resolver::results_type& endpoints) {
        if (ec) {
          failure = ec;
          return;
        }
        stream.async_connect(endpoints, [&](boost::system::error_code ec, const auto&) {
          if (ec) {
            failure = ec;
            return;
          }
          connected = true;
          http::async_write(stream, request, [&](boost::system::error_code ec, size_t) {
            if (ec) {
              failure = ec;
              return;
            }
            http::async_read_header(stream, buffer, parser,
                                    [&](boost::system::error_code e, size_t) { on_read(e); });
          });
        });
      });
  io.run();
  boost::system::error_code ignored;
  stream.socket().close(ignored);
  const std::string where = "etcd at " + e.host + ":" + std::to_string(e.port);
  if (!complete) {
    if (!connected) {
      *why = Status::Unavailable("cannot reach " + where + ": " + failure.message());
      return Outcome::kNoConnection;
    }
    if (failure == beast::error::timeout) {
      *why = Status::Unavailable(where + " " + std::string(kDidNotAnswer) + " " + path +
                                 " within " + std::to_string(timeout.count()) + " ms");
    } else {
      *why = Status::Unavailable(where + " broke off " + path + ": " + failure.message());
    }
    return Outcome::kFailed;
  }
  const unsigned code = parser.get().result_int();
  *out = std::move(parser.get().body());
  // Errors carry a JSON body with the reason (ErrorOf reads it); anything else is unknown.
  if (code != 200 && out->find("\"message\"") == std::string::npos) {
    *why = Status::Unavailable(where + " answered HTTP " + std::to_string(code) + " to " + path);
    return Outcome::kFailed;
  }
  return Outcome::kReply;
}

Result<std::pair<int64_t, int64_t>> EtcdClient::GrantLease(int64_t ttl_seconds) const {
  SC_ASSIGN_OR_RETURN(std::string text,
                      Call("/v3/lease/grant", R"({"TTL":)" + Int(ttl_seconds) + "}", timeout_));
  SC_ASSIGN_OR_RETURN(Json reply, ParseReply(text, "lease grant"));
  const int64_t id = IntField(reply, "ID");
  if (id == 0) return Status::Unavailable("etcd lease grant: no lease id in the reply");
  return std::make_pair(id, IntField(reply, "TTL"));
}

Result<int64_t> EtcdClient::KeepAlive(int64_t lease) const {
  SC_ASSIGN_OR_RETURN(std::string text,
                      Call("/v3/lease/keepalive", R"({"ID":)" + Int(lease) + "}", timeout_));
  SC_ASSIGN_OR_RETURN(Json reply, ParseReply(text, "lease keep-alive"));
  const Json& result = reply["result"];
  SC_RETURN_IF_ERROR(ErrorOf(result, "lease keep-alive"));
  const int64_t ttl = IntField(result, "TTL");
  if (ttl <= 0) return Status::NotFound("etcd lease " + std::to_string(lease) + " has expired");
  return ttl;
}

Status EtcdClient::RevokeLease(int64_t lease) const {
  SC_ASSIGN_OR_RETURN(std::string text,
                      Call("/v3/lease/revoke", R"({"ID":)" + Int(lease) + "}", timeout_));
  return ParseReply(text, "lease revoke").status();
}

Status EtcdClient::Put(const std::string& key, const std::string& value, int64_t lease) const {
  std::string body =
      R"({"key":)" + Quote(Base64Encode(key)) + R"(,"value":)" + Quote(Base64Encode(value));
  if (lease != 0) body += R"(,"lease":)" + Int(lease);
  SC_ASSIGN_OR_RETURN(std::string text, Call("/v3/kv/put", body + "}", timeout_));
  return ParseReply(text, "put").status();
}

Status EtcdClient::Delete(const std::string& key) const {
  SC_ASSIGN_OR_RETURN(
      std::string text,
      Call("/v3/kv/deleterange", R"({"key":)" + Quote(Base64Encode(key)) + "}", timeout_));
  return ParseReply(text, "delete").status();
}

Result<EtcdKeyValue> EtcdClient::Get(const std::string& key) const {
  SC_ASSIGN_OR_RETURN(
      std::string text,
      Call("/v3/kv/range", R"({"key":)" + Quote(Base64Encode(key)) + "}", timeout_));
  SC_ASSIGN_OR_RETURN(Json reply, ParseReply(text, "range"));
  const Json& kvs = reply["kvs"];
  if (!kvs.is_array() || kvs.array().empty()) return Status::NotFound("no such etcd key");
  return KeyValueOf(kvs.array().front());
}

Result<std::vector<EtcdKeyValue>> EtcdClient::GetPrefix(const std::string& prefix) const {
  SC_ASSIGN_OR_RETURN(std::string text,
                      Call("/v3/kv/range",
                           R"({"key":)" + Quote(Base64Encode(prefix)) + R"(,"range_end":)" +
                               Quote(Base64Encode(PrefixEnd(prefix))) + "}",
                           timeout_));
  SC_ASSIGN_OR_RETURN(Json reply, ParseReply(text, "range"));
  std::vector<EtcdKeyValue> out;
  const Json& kvs = reply["kvs"];
  if (!kvs.is_array()) return out;  // the gateway leaves out empty fields
  for (const Json& kv : kvs.array()) {
    SC_ASSIGN_OR_RETURN(EtcdKeyValue v, KeyValueOf(kv));
    out.push_back(std::move(v));
  }
  return out;
}

Result<bool> EtcdClient::PutIf(const std::string& key, const std::string& value,
                               int64_t mod_revision, int64_t lease) const {
  const std::string body = R"({"compare":[)" + ModCompare(key, mod_revision) + R"(],"success":[)" +
                           PutOp(key, value, lease) + "]}";
  SC_ASSIGN_OR_RETURN(std::string text, Call("/v3/kv/txn", body, timeout_));
  SC_ASSIGN_OR_RETURN(Json reply, ParseReply(text, "txn"));
  return reply["succeeded"].is_bool() && reply["succeeded"].boolean();
}

Result<bool> EtcdClient::DeleteIf(const std::string& key, int64_t mod_revision) const {
  const std::string body = R"({"compare":[)" + ModCompare(key, mod_revision) +
                           R"(],"success":[{"request_delete_range":{"key":)" +
                           Quote(Base64Encode(key)) + "}}]}";
  SC_ASSIGN_OR_RETURN(std::string text, Call("/v3/kv/txn", body, timeout_));
  SC_ASSIGN_OR_RETURN(Json reply, ParseReply(text, "txn"));
  return reply["succeeded"].is_bool() && reply["succeeded"].boolean();
}

Result<bool> EtcdClient::Stand(const std::string& election, int64_t lease,
                               const std::string& value) const {
  // The key etcd's election service gives a candidate: the election's name, '/', the lease
  // in lower-case hex. Made only if absent, so a standing candidacy keeps its place.
  char hex[2 * sizeof(int64_t) + 1];
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(lease));
  SC_ASSIGN_OR_RETURN(bool created, PutIf(election + "/" + hex, value, /*mod_revision=*/0, lease));
  (void)created;  // absent or already ours: either way this lease stands
  // The leader is the candidate whose key was made first (the service's Leader call).
  SC_ASSIGN_OR_RETURN(
      std::string text,
      Call("/v3/election/leader", R"({"name":)" + Quote(Base64Encode(election)) + "}", timeout_));
  auto json = Json::Parse(text);
  if (!json.ok() || !json->is_object()) {
    return Status::Unavailable("etcd election leader: unreadable reply");
  }
  if (!(*json)["kv"].is_object()) {
    // No candidate at all: ours went with its lease between the two calls.
    SC_RETURN_IF_ERROR(ErrorOf(*json, "election leader"));
    return false;
  }
  return IntField((*json)["kv"], "lease") == lease;
}

}  // namespace sealcache::server::cluster
