// sealcached: the sealcache server. `sealcached --help` lists every option with its default
// and unit; options can also come from a config file (--config, one "name = value" a line).
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "sealcache/clock.h"
#include "sealcache/crypto/master_key.h"
#include "sealcache/server/server.h"
#include "sealcache/storage/audit_log.h"
#include "sealcache/storage/data_layout.h"

// Only the test-only sealcached_faults defines this: the shipped binary has no crash points
// and never reads SEALCACHE_CRASH_AT.
#ifdef SEALCACHE_FAULT_POINTS
#include "crash_point_env.h"
#endif

namespace po = boost::program_options;
using sealcache::Status;

namespace {

constexpr char kPlaintextEnv[] = "SEALCACHE_ALLOW_PLAINTEXT_BENCHMARK";

int Fail(const std::string& message) {
  std::fprintf(stderr, "sealcached: %s\n", message.c_str());
  return 1;
}

// A master key that does not load is an audit event too, in a data directory that has an
// audit log already (a first start that fails leaves nothing behind). Best effort: the start
// fails either way, with the reason on stderr.
void RecordKeyLoadFailure(const std::string& data_dir, const std::string& provider,
                          const Status& why) {
  const std::string path = sealcache::storage::DataLayout(data_dir).audit_log_path();
  if (!std::filesystem::exists(path)) return;
  static const sealcache::SystemClock clock;
  auto log = sealcache::storage::AuditLog::Open(path, &clock);
  if (!log.ok()) return;
  (void)(*log)->Record("master_key_load_failed",
                       {{"provider", provider}, {"error", why.ToString()}});
}

// SIGTERM's and SIGINT's handler, run only on a thread that does not block them: a thread a
// library started before main (OpenBLAS's pool, loaded with FAISS) inherited no mask, and the
// kernel hands a process-directed signal to such a thread whenever the main thread is not
// waiting in sigwait yet (still starting, or printing its banner); the default action there
// would end the process without draining. Sends the signal on to the main thread (its id is
// the process id), which blocks it until its sigwait takes it. Async-signal-safe.
void ForwardToMainThread(int sig) {
  const int saved_errno = errno;
  syscall(SYS_tgkill, getpid(), getpid(), sig);
  errno = saved_errno;
}

}  // namespace

int main(int argc, char** argv) {
  // Everything this process creates (data files, directories, logs) is private to its user.
  // The store also sets 0600/0700 on what it creates; this covers every other file.
  umask(0077);
  sealcache::server::ServerOptions o;
  o.on_event = [](const std::string& line) {
    std::fprintf(stderr, "sealcached: %s\n", line.c_str());
  };
  std::string data_dir, master_spec, config_file;
  bool dev = false, plaintext = false;
  constexpr int64_t kRotationDays = 90;
  constexpr int64_t kMsPerDay = int64_t{24} * 3600 * 1000;
  int64_t rotation_days = kRotationDays;
  std::string eviction_policy;
  po::options_description desc("sealcached options");
  desc.add_options()("help", "show this help")("config", po::value(&config_file),
                                               "config file of name = value lines")(
      "data", po::value(&data_dir), "data directory (created if missing)")(
      "master-key", po::value(&master_spec),
      "master key: file:PATH (mode 0600, 32 raw bytes or 64 hex), env:VAR (development), "
      "pkcs11:URI (an HSM) or kmip://HOST:PORT/KEY_ID (a KMS); see the README's Keys")(
      "kmip-client-cert", po::value(&o.service.kmip_client_cert),
      "PEM certificate this server presents to a KMIP server")(
      "kmip-client-key", po::value(&o.service.kmip_client_key),
      "PEM private key of --kmip-client-cert (mode 0600)")(
      "kmip-ca", po::value(&o.service.kmip_ca), "PEM CA certificate the KMIP server's chains to")(
      "dev", po::bool_switch(&dev),
      "development default: --data ./data and a generated ./data/master.key (0600) if none")(
      "listen", po::value(&o.listen_address)->default_value(o.listen_address), "listen address")(
      "port", po::value(&o.port)->default_value(o.port), "TCP port")(
      "threads", po::value(&o.threads)->default_value(0),
      "I/O loops (one thread each) and request pool threads, each; 0 = cores")(
      "tls-cert", po::value(&o.tls_cert_file), "PEM certificate chain; enables TLS with --tls-key")(
      "tls-key", po::value(&o.tls_key_file), "PEM private key")(
      "resp", po::bool_switch(&o.resp_enabled),
      "serve the Redis protocol (server/RESP.md) on --resp-port; on with --dev")(
      "resp-port", po::value(&o.resp_port)->default_value(o.resp_port),
      "TCP port of the Redis protocol")(
      "resp-default-ttl-ms",
      po::value(&o.resp_default_ttl_ms)->default_value(o.resp_default_ttl_ms),
      "TTL of a Redis-protocol write that names none (SET without EX/PX), ms")(
      "metrics-port", po::value(&o.metrics_port)->default_value(0),
      "Prometheus endpoint port (GET /metrics); 0 = off")(
      "max-frame-bytes", po::value(&o.max_frame_bytes)->default_value(o.max_frame_bytes),
      "largest request frame, bytes")("max-inflight",
                                      po::value(&o.max_inflight_per_connection)->default_value(64),
                                      "requests processed at once per connection")(
      "idle-timeout-ms", po::value(&o.idle_timeout_ms)->default_value(o.idle_timeout_ms),
      "close idle connections after this many ms")(
      "max-connections", po::value(&o.max_connections)->default_value(o.max_connections),
      "open connections at most")(
      "max-unauthenticated-connections",
      po::value(&o.max_unauthenticated_connections)->default_value(0),
      "open connections without a completed Hello at most; 0 = max-connections / 4")(
      "hello-timeout-ms", po::value(&o.hello_timeout_ms)->default_value(o.hello_timeout_ms),
      "close a connection with no completed Hello after this many ms")(
      "max-unauthenticated-frame-bytes",
      po::value(&o.max_unauthenticated_frame_bytes)
          ->default_value(o.max_unauthenticated_frame_bytes),
      "largest frame before a completed Hello, bytes")(
      "max-inflight-bytes",
      po::value(&o.max_inflight_request_bytes)->default_value(o.max_inflight_request_bytes),
      "request bytes being processed, all connections together; reading pauses above it")(
      "max-k", po::value(&o.service.max_k)->default_value(o.service.max_k), "largest Lookup k")(
      "max-payload-bytes",
      po::value(&o.service.store.max_payload_bytes)
          ->default_value(o.service.store.max_payload_bytes),
      "largest payload, bytes")("block-cache-bytes",
                                po::value(&o.service.store.block_cache_bytes)
                                    ->default_value(o.service.store.block_cache_bytes),
                                "RocksDB block cache shared by all orgs, bytes")(
      "value-cache-bytes",
      po::value(&o.service.store.value_cache_bytes)
          ->default_value(o.service.store.value_cache_bytes),
      "recently read entries (and written ones while it has room), all orgs, bytes; 0 = off")(
      "memtable-budget-bytes",
      po::value(&o.service.store.memtable_budget_bytes)
          ->default_value(o.service.store.memtable_budget_bytes),
      "RocksDB memtables of all orgs together, bytes")(
      "max-data-bytes",
      po::value(&o.service.store.max_data_bytes)->default_value(o.service.store.max_data_bytes),
      "capacity of the whole server: logical bytes of every org's live entries at most; a "
      "write past it evicts from the orgs furthest over their fair share (0 = no limit)")(
      "eviction-policy", po::value(&eviction_policy)->default_value("lru"),
      "eviction policy of orgs that name none: lru, lfu, ttl or noeviction")(
      "sync", po::bool_switch(&o.service.store.sync_writes),
      "fsync the WAL before acknowledging each write")(
      "reaper-period-ms",
      po::value(&o.service.store.reaper_period_ms)->default_value(o.service.store.reaper_period_ms),
      "key reaper period, ms")(
      "rotation-interval-days", po::value(&rotation_days)->default_value(kRotationDays),
      "rotate every org's key when its active version is this old, days (0 = off)")(
      "hit-flush-ms",
      po::value(&o.service.hit_flush_period_ms)->default_value(o.service.hit_flush_period_ms),
      "how often hit counts are written, ms")(
      "etcd", po::value(&o.cluster.etcd_endpoint),
      "join the cluster whose records live in this etcd: http://HOST:PORT, or its members "
      "separated by commas (server/CLUSTER.md)")(
      "cluster-prefix", po::value(&o.cluster.prefix)->default_value(o.cluster.prefix),
      "etcd key prefix of the cluster's records")(
      "node-id", po::value(&o.cluster.node_id),
      "this node's id in the cluster ([a-z0-9._-]); default: made at the first join and kept "
      "in <data>/cluster.json")(
      "advertise-host", po::value(&o.cluster.advertise_host),
      "host other nodes' redirects name for this node; default: --listen")(
      "cluster-lease-s", po::value(&o.cluster.lease_ttl_s)->default_value(o.cluster.lease_ttl_s),
      "the node's etcd lease, s: it stops serving this long after it cannot renew it")(
      "cluster-reconcile-ms",
      po::value(&o.cluster.reconcile_period_ms)->default_value(o.cluster.reconcile_period_ms),
      "how often the cluster's records are read and applied, ms")(
      "cluster-peer-ca", po::value(&o.cluster.peer_ca_file),
      "PEM CA that the other nodes' --tls-cert chains to, trusted when this node streams an "
      "org to another in a planned move (over TLS when --tls-cert is set); default: the "
      "system CAs")(
      "insecure-plaintext-for-benchmarks", po::bool_switch(&plaintext),
      "BENCHMARKS ONLY: store payloads and vectors unencrypted (also needs the environment "
      "variable SEALCACHE_ALLOW_PLAINTEXT_BENCHMARK=1)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("config")) {
      po::store(po::parse_config_file(vm["config"].as<std::string>().c_str(), desc), vm);
    }
    po::notify(vm);
  } catch (const std::exception& e) {
    return Fail(std::string(e.what()) + " (see --help)");
  }
  // The nodes of a cluster are configured alike: a node that serves TLS streams to its
  // peers over TLS.
  o.cluster.peer_tls = !o.tls_cert_file.empty();
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  if (dev) {
    o.resp_enabled = true;
    if (data_dir.empty()) data_dir = "./data";
    if (master_spec.empty()) {
      std::filesystem::create_directories(data_dir);
      const std::string key = data_dir + "/master.key";
      if (!std::filesystem::exists(key)) {
        Status s = sealcache::crypto::CreateMasterKeyFile(key);
        if (!s.ok()) return Fail(s.ToString());
        std::fprintf(stderr,
                     "sealcached: WARNING: generated a development master key at %s (mode 0600). "
                     "It sits next to the data it protects: use a key kept elsewhere in "
                     "production.\n",
                     key.c_str());
      }
      master_spec = "file:" + key;
    }
  }
  if (data_dir.empty() || master_spec.empty()) {
    return Fail("--data and --master-key are required (or --dev for a local default)");
  }
  if (plaintext) {
    const char* allow = std::getenv(kPlaintextEnv);
    if (allow == nullptr || std::string(allow) != "1") {
      return Fail("--insecure-plaintext-for-benchmarks is refused unless " +
                  std::string(kPlaintextEnv) + "=1 is set");
    }
    std::fprintf(stderr,
                 "sealcached: WARNING: BENCHMARK MODE: payloads and vectors are stored "
                 "UNENCRYPTED in %s\n",
                 data_dir.c_str());
    o.service.store.insecure_plaintext_for_benchmarks = true;
  }
  o.service.store.data_dir = data_dir;
  auto policy = sealcache::storage::ParseEvictionPolicy(eviction_policy);
  if (!policy.ok()) return Fail("--eviction-policy: " + policy.status().message());
  o.service.store.default_eviction_policy = *policy;
  if (rotation_days < 0) return Fail("--rotation-interval-days must be 0 (off) or more");
  if (o.service.hit_flush_period_ms < 1) return Fail("--hit-flush-ms must be 1 or more");
  o.service.store.rotation_interval_ms = rotation_days * kMsPerDay;
#ifdef SEALCACHE_FAULT_POINTS
  if (Status s = sealcache::server::InstallCrashPointFromEnvironment(&o.service.store); !s.ok()) {
    return Fail(s.ToString());
  }
  std::fprintf(stderr, "sealcached: TEST BUILD with fault points\n");
#endif

  sealcache::crypto::MasterKeyOptions key_options;
  key_options.envelope_dir = sealcache::storage::DataLayout(data_dir).keys_dir();
  key_options.keystore_path = sealcache::storage::DataLayout(data_dir).keystore_path();
  key_options.kmip_client_cert = o.service.kmip_client_cert;
  key_options.kmip_client_key = o.service.kmip_client_key;
  key_options.kmip_ca = o.service.kmip_ca;
  auto provider = sealcache::crypto::MasterKeyProviderFromSpec(master_spec, key_options);
  if (!provider.ok()) return Fail(provider.status().ToString());
  auto master = (*provider)->Load();
  if (!master.ok()) {
    RecordKeyLoadFailure(data_dir, (*provider)->Describe(), master.status());
    return Fail("master key " + (*provider)->Describe() + ": " + master.status().ToString());
  }
  o.service.store.master_key_provider = (*provider)->Describe();
  for (const auto& w : master->warnings)
    std::fprintf(stderr, "sealcached: WARNING: %s\n", w.c_str());

  // Signals are waited for by this thread; every thread started from here on inherits the
  // blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // Then, never before (this thread would forward to itself forever), the handler for the
  // threads that started before main.
  struct sigaction forward = {};
  forward.sa_handler = ForwardToMainThread;
  sigemptyset(&forward.sa_mask);
  sigaction(SIGTERM, &forward, nullptr);
  sigaction(SIGINT, &forward, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto server = sealcache::server::Server::Start(o, master->key);
  if (!server.ok()) return Fail(server.status().ToString());
  const std::string& token_path = (*server)->service().admin_token_path();
  if (!token_path.empty()) {
    std::fprintf(stderr, "sealcached: first start: admin token written to %s (mode 0600)\n",
                 token_path.c_str());
  }
  std::fprintf(stderr, "sealcached: serving %s on %s:%u%s\n", data_dir.c_str(),
               o.listen_address.c_str(), (*server)->port(),
               o.tls_cert_file.empty() ? "" : " (TLS)");
  if ((*server)->resp_port() != 0) {
    std::fprintf(stderr, "sealcached: Redis protocol on %s:%u%s\n", o.listen_address.c_str(),
                 (*server)->resp_port(), o.tls_cert_file.empty() ? "" : " (TLS)");
  }
  if (!o.cluster.etcd_endpoint.empty()) {
    std::fprintf(stderr, "sealcached: cluster member through etcd at %s\n",
                 o.cluster.etcd_endpoint.c_str());
  }
  if ((*server)->metrics_port() != 0) {
    std::fprintf(stderr, "sealcached: metrics on http://%s:%u/metrics\n", o.listen_address.c_str(),
                 (*server)->metrics_port());
  }
  std::fflush(stderr);
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "sealcached: %s received: draining and flushing\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT");
  Status s = (*server)->Shutdown();
  server->reset();
  if (!s.ok()) return Fail("shutdown: " + s.ToString());
  std::fprintf(stderr, "sealcached: stopped cleanly\n");
  return 0;
}
