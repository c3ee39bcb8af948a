// The C++ client of sealcached: synchronous calls, plus pipelining (send many requests,
// then receive responses in whatever order the server answers, matched by id).
//
//   auto c = Client::Connect({.host = "127.0.0.1", .port = 7420});
//   (*c)->Hello(token);
//   (*c)->Put({.digest = d, .vector = v, .payload = p, .ttl_ms = 3600000});
//   auto hits = (*c)->Lookup({.vector = q, .k = 3, .min_score = 0.9f});
//
// Not thread-safe: one Client per thread (connections are cheap).
//
// In a cluster (server/CLUSTER.md) a call answered MOVED is sent again, up to 3 times, to
// the node the answer names, after a Hello there with the token of the last Hello.
// Pipelined requests (Send/Receive) see MOVED answers as they are.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "protocol_generated.h"
#include "sealcache/status.h"

namespace sealcache::client {

using Digest = std::array<uint8_t, 32>;

struct ClientOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 7420;
  bool tls = false;
  // PEM file of the CA (or the self-signed server certificate) to trust; empty: system CAs.
  std::string tls_ca_file;
  // Verify the server certificate (and host name against `host`). Default true.
  bool tls_verify = true;
  // Largest response frame accepted, in bytes. Default 64 MiB.
  size_t max_frame_bytes = 64u << 20;
  // Sending a request or reading a response gives up after this long, in ms, with IOError
  // "timed out" (a server that stopped answering: paused, or cut off); the connection is
  // closed then, and the outcome of requests without a response is unknown. 0 = wait
  // forever. Default 0.
  int64_t timeout_ms = 0;
};

struct PutArgs {
  Digest digest{};
  std::span<const float> vector;
  std::span<const uint8_t> payload;
  int64_t ttl_ms = 0;
  std::string_view name_space;
};

struct EntryInfo {
  Digest digest{};
  int64_t created_ms = 0, expires_ms = 0, ttl_ms = 0;
  std::string name_space;
  uint32_t payload_size = 0;
  uint64_t hits = 0;
  int64_t last_hit_ms = 0;
  std::vector<uint8_t> payload;
};

struct LookupArgs {
  std::span<const float> vector;
  uint32_t k = 1;
  float min_score = 0.0f;
  std::optional<std::string> name_space = std::nullopt;
  bool with_payload = true;
};

struct LookupHit {
  float score = 0;
  EntryInfo entry;
};

struct PutInfo {
  uint64_t slot = 0;
  bool replaced = false;
  int64_t expires_ms = 0;
};

// An org's capacity limits (0 = none) and eviction policy ("lru", "lfu", "ttl",
// "noeviction"; empty = the server's default).
struct OrgLimitsArgs {
  uint64_t max_bytes = 0;
  uint64_t max_entries = 0;
  std::string eviction_policy;
};

// Per-org index parameters for CreateOrg (0 = the server's default), and its limits.
struct OrgIndexOptions {
  std::string index_kind = "hnsw";  // or "flat" (exact)
  uint32_t hnsw_m = 0;
  uint32_t ef_construction = 0;
  uint32_t ef_search = 0;
  uint32_t seal_threshold = 0;
  OrgLimitsArgs limits;
};

struct OrgCreated {
  std::string org, token, token_id;
};

// A response as received: the frame bytes and its verified root.
class ResponseFrame {
 public:
  ResponseFrame(std::vector<uint8_t> bytes, const protocol::Response* root)
      : bytes_(std::move(bytes)), root_(root) {}
  const protocol::Response& operator*() const { return *root_; }
  const protocol::Response* operator->() const { return root_; }
  uint64_t id() const { return root_->id(); }
  Status status() const;

 private:
  std::vector<uint8_t> bytes_;
  const protocol::Response* root_;
};

class Client {
 public:
  static Result<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  virtual ~Client() = default;

  // Pipelining: `build` fills a Request body into the builder and returns its type and
  // offset; Send assigns the id, frames and writes it, and returns the id.
  using BodyBuilder = std::function<std::pair<protocol::RequestBody, flatbuffers::Offset<void>>(
      flatbuffers::FlatBufferBuilder&)>;
  virtual Result<uint64_t> Send(const BodyBuilder& build) = 0;
  // Sends raw bytes as they are (tests of hostile input).
  virtual Status SendRaw(std::span<const uint8_t> bytes) = 0;
  // The next response, whichever request it answers.
  virtual Result<ResponseFrame> Receive() = 0;
  // Send + wait for that id's response (buffering others that arrive first).
  Result<ResponseFrame> Call(const BodyBuilder& build);

  Result<std::pair<std::string, bool>> Hello(std::string_view token);  // (org, admin)
  Result<PutInfo> Put(const PutArgs& args);
  Result<std::vector<Status>> PutBatch(std::span<const PutArgs> items);
  Result<EntryInfo> Get(const Digest& digest, bool with_payload = true);
  Result<std::vector<LookupHit>> Lookup(const LookupArgs& args);
  Result<uint64_t> Delete(const Digest& digest);
  // Moves a live entry's expiry to `expires_ms` (ms since the epoch) or, with expires_ms 0,
  // to now + ttl_ms on the server's clock; returns the new expiry.
  Result<int64_t> SetExpiry(const Digest& digest, int64_t expires_ms, int64_t ttl_ms = 0);
  Result<uint64_t> Invalidate(std::optional<std::string> name_space,
                              std::optional<int64_t> older_than_ms);
  Result<ResponseFrame> Stats();
  Result<int64_t> Ping();
  // Admin.
  Result<OrgCreated> CreateOrg(std::string_view org, uint32_t dimension,
                               std::string_view index_kind = "hnsw");
  Result<OrgCreated> CreateOrg(std::string_view org, uint32_t dimension,
                               const OrgIndexOptions& index);
  Status DropOrg(std::string_view org);
  Result<uint32_t> RotateKey(std::string_view org);
  // Replaces the org's capacity limits; returns how many entries were evicted to reach them.
  Result<uint64_t> SetOrgLimits(std::string_view org, const OrgLimitsArgs& limits);
  // Re-wraps every key version under the master key of `to` (a --master-key spec on the
  // server's machine); returns the new key's fingerprint.
  Result<std::string> RotateMasterKey(std::string_view to);
  Result<ResponseFrame> KeyStatus(std::string_view org);
  Result<ResponseFrame> ListOrgs();
  Result<std::pair<std::string, std::string>> IssueToken(std::string_view org);  // token, id
  Result<uint64_t> RevokeToken(std::string_view org, std::string_view token_id);
  // Cluster (server/CLUSTER.md): moves the org, entries and all, to `to_node` (empty: the
  // node placement picks); returns the new owner and the bytes streamed. DrainNode moves
  // every org of `node` (empty: the node connected to) elsewhere; returns how many.
  Result<std::pair<std::string, uint64_t>> MoveOrg(std::string_view org, std::string_view to_node);
  Result<uint64_t> DrainNode(std::string_view node);
  // Evens out the orgs over the nodes that are not draining; returns how many moved.
  Result<uint64_t> Rebalance();

 protected:
  std::vector<ResponseFrame> pending_;  // received while waiting for another id
};

// Builders for request bodies, shared by the client, tests and benches.
flatbuffers::Offset<protocol::PutRequest> BuildPut(flatbuffers::FlatBufferBuilder& fbb,
                                                   const PutArgs& args);
EntryInfo ToEntryInfo(const protocol::EntryMeta* meta, const flatbuffers::Vector<uint8_t>* payload);

}  // namespace sealcache::client
