// EtcdClient: the few etcd v3 calls the cluster needs (server/CLUSTER.md), spoken to etcd's
// JSON gateway over HTTP/1.1 (Boost.Beast): leases, ranges, compare-and-set transactions and
// the election service. Keys and values are bytes (base64 on the wire, as the gateway wants);
// int64 fields travel as decimal strings. Each call opens its own connection, so one client
// may be used from any number of threads. No call throws; an unreachable etcd or a deadline
// passed is Unavailable.
#pragma once

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
  // `endpoint`: "http://host:port" or "host:port". Every call gives up after `timeout`.
  static Result<EtcdClient> Create(std::string_view endpoint, std::chrono::milliseconds timeout);

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

  // etcd's election service: campaigns for `election` with `lease`; returns true once this
  // candidate leads, false if `wait` passed first (the candidacy is withdrawn then). A leader
  // stays the leader until its lease ends.
  Result<bool> Campaign(const std::string& election, int64_t lease, const std::string& value,
                        std::chrono::milliseconds wait) const;

  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }

 private:
  EtcdClient(std::string host, uint16_t port, std::chrono::milliseconds timeout)
      : host_(std::move(host)), port_(port), timeout_(timeout) {}
  // POSTs `body` (JSON) to `path`; returns the first JSON document of the reply. Streaming
  // replies (lease keep-alive) are cut after their first message.
  Result<std::string> Call(const std::string& path, const std::string& body,
                           std::chrono::milliseconds timeout) const;

  std::string host_;
  uint16_t port_ = 0;
  std::chrono::milliseconds timeout_;
};

// Base64 (RFC 4648, padded), as etcd's gateway encodes bytes.
std::string Base64Encode(std::string_view bytes);
Result<std::string> Base64Decode(std::string_view text);

}  // namespace sealcache::server::cluster
