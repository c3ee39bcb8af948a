// CacheService: every protocol operation, independent of the transport. A connection owns
// a Session and passes each verified frame body to Handle(); the returned bytes are the
// response body. Thread-safe: any number of sessions may call Handle concurrently.
//
// Isolation: a session is bound by Hello to one org (or to admin) and every operation acts
// on that org only; admin operations need an admin session. Errors are responses, never
// exceptions; bad input changes nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sealcache/crypto/secret_bytes.h"
#include "sealcache/status.h"
#include "sealcache/storage/store.h"

namespace sealcache::server {

struct ServiceOptions {
  storage::StoreOptions store;
  // Largest k a Lookup may ask for. Default 100.
  uint32_t max_k = 100;
  // Largest number of items in one PutBatch. Default 1000.
  uint32_t max_batch_items = 1000;
  // How often accumulated hit counts are written to the store, in ms. Default 1000.
  int64_t hit_flush_period_ms = 1000;
  // Write an org's index snapshot after this many inserts since the last one. Default 50000.
  uint64_t snapshot_every_inserts = 50'000;
  // ... or after this long with any insert since the last one, in ms. Default 10 minutes.
  int64_t snapshot_period_ms = 600'000;
  // Index build parameters (0 = the index's defaults).
  uint32_t hnsw_m = 0;
  uint32_t ef_search = 0;
  // Write <data>/admin.token on first start. Default true.
  bool bootstrap_admin_token = true;
};

// What Hello bound a session to: its token and, for an org token, the one incarnation of
// the org that existed at Hello. Defined by the service; transports only copy the pointer.
struct SessionBinding;

// A connection's session. Checked on every request, not only at Hello: once a revoke-token,
// drop-org (or an admin token's revocation) is acknowledged, every session opened with that
// token or bound to that org gets UNAUTHENTICATED from its next request on, and a new org of
// the same name is a different tenant to every old session.
struct Session {
  bool authenticated = false;
  bool admin = false;
  std::string org;  // set when bound to an org
  std::shared_ptr<SessionBinding> binding;
};

class CacheService {
 public:
  static Result<std::unique_ptr<CacheService>> Open(ServiceOptions options,
                                                    const crypto::SecretBytes& master_key);
  virtual ~CacheService() = default;

  // One request frame body in, one response frame body out (a malformed frame gets an
  // error response with id 0).
  virtual std::vector<uint8_t> Handle(Session& session, std::span<const uint8_t> body) = 0;
  // OK if `session` is authenticated and its binding still holds (not revoked, its org not
  // dropped); else Unauthenticated. For transports whose commands do not all reach Handle.
  virtual Status CheckSession(const Session& session) const = 0;
  // The digest a key named by a client of the session's org maps to (Store::NameDigest):
  // for fronts whose clients name keys instead of sending digests.
  virtual Result<storage::Digest> NameDigest(const Session& session, std::string_view name) = 0;
  // An error response for a frame that never reached Handle (e.g. too large).
  static std::vector<uint8_t> ErrorResponse(uint64_t id, const Status& status);

  // Prometheus text exposition of every metric.
  virtual std::string MetricsText() = 0;
  // Writes pending hit counts, index snapshots and memtables. Called at shutdown.
  virtual Status Flush() = 0;
  // Where the admin token was written on first start ("" if it already existed).
  virtual const std::string& admin_token_path() const = 0;
  virtual storage::Store& store() = 0;
  // Records an authentication failure seen by the transport (counted in metrics).
  virtual void CountConnectionError() = 0;
};

}  // namespace sealcache::server
