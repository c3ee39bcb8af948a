// Server: sealcached's network side. Boost.Asio with one io_context run by N threads, plain
// TCP or TLS, the length-prefixed protocol of server/PROTOCOL.md, pipelining (requests of
// one connection run concurrently and are answered as they finish, matched by id), and a
// Prometheus text endpoint.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "sealcache/server/service.h"

namespace sealcache::server {

// Cluster membership through etcd (server/CLUSTER.md); off when etcd_endpoint is empty.
struct ClusterOptions {
  // etcd's client URL, http://HOST:PORT (its v3 JSON gateway). Empty: a single node.
  std::string etcd_endpoint;
  // Every record of this cluster lives under this etcd key prefix. Default "/sealcache/".
  std::string prefix = "/sealcache/";
  // This node's id ([a-z0-9._-], at most 64). Empty: the one made at its first join and kept
  // in <data>/cluster.json.
  std::string node_id;
  // The host other nodes' redirects name for this node. Empty: the listen address.
  std::string advertise_host;
  // The node's lease in etcd, in s: a node that stops renewing it stops serving within this
  // time, and its orgs move after it. Default 3.
  int64_t lease_ttl_s = 3;
  // How often the records are read and this node's copies made to match, in ms. Default 1000.
  int64_t reconcile_period_ms = 1000;
  // One etcd call gives up after this long, in ms. Default 2000.
  int64_t etcd_timeout_ms = 2000;
  // Planned moves stream an org to its new owner over the native protocol: with TLS when
  // `peer_tls` (set by sealcached when its own listener uses TLS), trusting `peer_ca_file`
  // (empty: the system CAs).
  bool peer_tls = false;
  std::string peer_ca_file;
};

struct ServerOptions {
  ServiceOptions service;
  // Address to listen on. Default 127.0.0.1 (loopback only).
  std::string listen_address = "127.0.0.1";
  // TCP port; 0 picks a free one (see Server::port()). Default 7420.
  uint16_t port = 7420;
  // I/O and request threads. 0 = one per core. Each runs OpenMP with 1 thread.
  int threads = 0;
  // PEM certificate chain and private key; both set enables TLS (TLS 1.2+ only).
  std::string tls_cert_file;
  std::string tls_key_file;
  // Largest request frame, in bytes; a larger length closes the connection after an error
  // response. Default 16 MiB.
  size_t max_frame_bytes = 16u << 20;
  // Requests of one connection being processed at once; reading pauses at the cap.
  // Default 64.
  uint32_t max_inflight_per_connection = 64;
  // A connection with nothing in flight and no request for this long is closed, in ms.
  // Default 300000 (5 minutes).
  int64_t idle_timeout_ms = 300'000;
  // Open connections at most; more are answered with an error and closed. Default 1024.
  uint32_t max_connections = 1024;
  // Connections that have not yet completed a Hello, at most; more are answered with an
  // error and closed, so clients that never authenticate cannot take the slots of those
  // that do. 0 = max_connections / 4 (at least 1). Must be below max_connections.
  uint32_t max_unauthenticated_connections = 0;
  // A connection that has not completed a Hello this long after it was accepted gets an
  // UNAUTHENTICATED error and is closed, in ms. Default 5000.
  int64_t hello_timeout_ms = 5'000;
  // Largest frame a connection may send before it has completed a Hello, in bytes; a larger
  // length closes the connection after an error response. Default 4096 (a Hello is ~100).
  size_t max_unauthenticated_frame_bytes = 4096;
  // Bytes of request frames read and not yet answered, all connections together. A
  // connection whose next frame does not fit stops reading until it does (back-pressure),
  // so request memory stays bounded however many connections pipeline large frames. Must
  // be at least max_frame_bytes. Default 256 MiB.
  size_t max_inflight_request_bytes = 256u << 20;
  // The Redis-protocol front (server/RESP.md) on its own port, with every limit above and
  // the same TLS options. Default off; resp_port 0 picks a free one (see resp_port()).
  bool resp_enabled = false;
  uint16_t resp_port = 7421;
  // The TTL of a Redis-protocol write that names none (SET without EX/PX), in ms: every
  // sealcache entry expires. Default one day; at most the store's largest TTL.
  int64_t resp_default_ttl_ms = 86'400'000;
  // Prometheus text endpoint (GET /metrics) on this port; 0 = off. Default 0.
  uint16_t metrics_port = 0;
  ClusterOptions cluster;
  // How long Shutdown waits for in-flight requests, in ms. Default 10000.
  int64_t drain_timeout_ms = 10'000;
  // Called with a line for the operator's log when something happens that no client is told
  // of: a drain that ran out of time (connections then close without the answers they were
  // still owed). Empty: not reported.
  std::function<void(const std::string&)> on_event;
};

class Server {
 public:
  // Opens the service (store, keys, indexes), binds and starts serving.
  static Result<std::unique_ptr<Server>> Start(ServerOptions options,
                                               const crypto::SecretBytes& master_key);
  virtual ~Server() = default;
  virtual uint16_t port() const = 0;
  virtual uint16_t metrics_port() const = 0;
  // The bound port of the Redis-protocol front; 0 when it is off.
  virtual uint16_t resp_port() const = 0;
  virtual CacheService& service() = 0;
  // Stops accepting, lets in-flight requests finish and their responses go out, flushes
  // hits, snapshots and memtables, stops the threads. Idempotent.
  virtual Status Shutdown() = 0;
};

}  // namespace sealcache::server
