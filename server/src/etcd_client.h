// EtcdClient: the few etcd v3 calls the cluster needs (server/CLUSTER.md), spoken to etcd's
// JSON gateway over HTTP/1.1 (Boost.Beast): leases, ranges, compare-and-set transactions and
// the election service. Keys and values are bytes (base64 on the wire, as the gateway wants);
// int64 fields travel as decimal strings. Each call opens its own connection, so one client
// may be used from any number of threads. Given the members of an etcd cluster, a call that
// cannot connect to one tries the next (and later calls start from the one that answered).
// No call throws; no member reachable, or a deadline passed, is Unavailable.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "sealcache/status.h"

namespace sealcache::server::cluster {

struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

class EtcdClient {
 public:
  // `endpoints`: "http://host:port" or "host:port", several separated by commas (the
  // members of one etcd cluster). Every call gives up after `timeout`.
  static Result<EtcdClient> Create(std::string_view endpoints, std::chrono::milliseconds timeout);
  EtcdClient(EtcdClient&& other) noexcept
      : endpoints_(std::move(other.endpoints_)),
        timeout_(other.timeout_),
        preferred_(other.preferred_.load()) {}

  // A new lease of `ttl_seconds`; returns its id and the TTL etcd granted.
  Result<std::pair<int64_t, int64_t>> GrantLease(int64_t ttl_seconds) const;
  // Renews the lease once; returns the TTL it has now. NotFound once etcd has expired it.
  Result<int64_t> KeepAlive(int64_t lease) const;
  Status RevokeLease(int64_t lease) const;

  // Unconditional write (lease 0: none) and delete.
  Status Put(const std::string& key, const std::string& value, int64_t lease = 0) const;
  Status Delete(const std::string& key) const;
  // The key (NotFound if absent), and every key that starts with `prefix`, in key order.
  Result<EtcdKeyValue> Get(const std::string& key) const;
  Result<std::vector<EtcdKeyValue>> GetPrefix(const std::string& prefix) const;
  // Compare-and-set: writes `value` only if the key's mod revision is `mod_revision` (0: only
  // if the key does not exist). Returns whether it was written.
  Result<bool> PutIf(const std::string& key, const std::string& value, int64_t mod_revision,
                     int64_t lease = 0) const;
  // Deletes the key only if its mod revision is `mod_revision`. Returns whether it did.
  Result<bool> DeleteIf(const std::string& key, int64_t mod_revision) const;

  // etcd's election recipe, as its election service runs it: a candidate's key is
  // `<election>/<lease in hex>` under its lease, and the leader is the candidate whose key
  // was made first. Stand makes this lease's candidacy if it is not there yet and answers
  // whether it leads now; it never waits. A leader stays the leader until its lease ends.
  Result<bool> Stand(const std::string& election, int64_t lease, const std::string& value) const;

  // "host:port,host:port" of the members, for messages.
  std::string Describe() const;

 private:
  struct Endpoint {
    std::string host;
    uint16_t port = 0;
  };
  enum class Outcome { kReply, kNoConnection, kFailed };
  EtcdClient(std::vector<Endpoint> endpoints, std::chrono::milliseconds timeout)
      : endpoints_(std::move(endpoints)), timeout_(timeout) {}
  // One POST to one member; kNoConnection when it could not be reached at all (the next
  // member is tried), kFailed when it was reached but the exchange failed or timed out.
  Outcome CallOne(const Endpoint& e, const std::string& path, const std::string& body,
                  std::chrono::milliseconds timeout, std::string* reply, Status* why) const;
  // POSTs `body` (JSON) to `path`; returns the first JSON document of the reply. Streaming
  // replies (lease keep-alive) are cut after their first message.
  Result<std::string> Call(const std::string& path, const std::string& body,
                           std::chrono::milliseconds timeout) const;

  std::vector<Endpoint> endpoints_;
  std::chrono::milliseconds timeout_;
  mutable std::atomic<size_t> preferred_{0};  // the member that answered last
};

// Base64 (RFC 4648, padded), as etcd's gateway encodes bytes.
std::string Base64Encode(std::string_view bytes);
Result<std::string> Base64Decode(std::string_view text);

}  // namespace sealcache::server::cluster
