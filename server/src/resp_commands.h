// The commands of the Redis-protocol front (server/RESP.md): one table of name, arity, flags
// and handler, as Redis's commands.def; unknown commands, wrong arity, missing
// authentication and missing permissions are answered in one place with Redis's wording.
// Handlers reach the store only through CacheService, with the session AUTH or HELLO bound,
// so a RESP session is checked on every command exactly like a native one. Private to
// server/.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "resp_parser.h"
#include "resp_writer.h"
#include "sealcache/server/service.h"

namespace sealcache::server::internal {

// What the front's INFO reports about the server, shared by its connections.
struct RespServerFacts {
  uint16_t port = 0;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::function<uint64_t()> connected_clients;  // every open connection, both ports
  std::atomic<uint64_t> commands_processed{0};
  std::atomic<uint64_t> connections_received{0};
  // The TTL of a write that names none (SET without EX/PX): every entry expires.
  int64_t default_ttl_ms = 86'400'000;
  // The longest TTL a write may set (the store's max_ttl_ms).
  int64_t max_ttl_ms = int64_t{365} * 86'400'000;
  // The most a MULTI may queue, its arguments' bytes (the server's max_frame_bytes).
  size_t max_transaction_bytes = 16u << 20;
};

// The state of one RESP connection.
struct RespSession {
  Session session;  // bound by AUTH or HELLO ... AUTH
  uint64_t client_id = 0;
  std::string client_name;
  bool close_after_reply = false;  // QUIT
  // MULTI ... EXEC: the commands queued so far, and whether one was refused while queuing
  // (EXEC then answers EXECABORT, as Redis does).
  bool in_multi = false;
  bool multi_refused = false;
  std::vector<RespCommand> queued;
  size_t queued_bytes = 0;  // of `queued`, bounded by max_transaction_bytes
};

// The expiry a hash write takes from the EXPIRE run with it (RespCommands::ExecuteWithExpiry):
// `ttl_ms` in place of the write's own; `applied` once the write is made with it.
struct WriteExpiry {
  int64_t ttl_ms = 0;
  bool applied = false;
};

class RespCommands {
 public:
  // `facts` must outlive the commands.
  RespCommands(CacheService* service, RespServerFacts* facts) : service_(service), facts_(facts) {}

  // Runs one request and writes its reply (exactly one) to `out`, whose protocol version it
  // may change (HELLO, RESET). REQUIRES: !args.empty().
  void Execute(RespSession& s, const RespCommand& args, RespWriter& out);
  // True if `args` is a GET of one key, which ExecuteGets answers with others.
  static bool IsGet(const RespCommand& args);
  // Execute of each of `gets` (IsGet) in order, their keys read together
  // (CacheService::ReadEachName): a client's pipelined GETs take their cache misses at once.
  void ExecuteGets(RespSession& s, std::span<const RespCommand> gets, RespWriter& out);
  // True if `args` is an HSET or HMSET, which ExecuteWithExpiry may run with the request after
  // it.
  static bool IsHashSet(const RespCommand& args);
  // `write` (IsHashSet) and `next`, the request after it, when `next` is `EXPIRE|PEXPIRE key
  // time` of the same key with a time a write may set: the way RedisVL, LiteLLM and LangChain
  // store an entry (pipelined). Outside MULTI (EXEC does the same with the queued ones) the
  // two run as one write of the hash with that expiry (instead of the hash written and then
  // rewritten, with its vector, by the EXPIRE), and both replies are written, in order, as
  // each would have been; if the write is refused, the EXPIRE runs on its own after it. True
  // once both are answered; false, with nothing run, when the two are not such a pair
  // (Execute each then).
  bool ExecuteWithExpiry(RespSession& s, const RespCommand& write, const RespCommand& next,
                         RespWriter& out);

 private:
  // ExecuteWithExpiry in or out of a transaction (EXEC runs its queue with it).
  bool RunWithExpiry(RespSession& s, const RespCommand& write, const RespCommand& next,
                     RespWriter& out);
  // Execute without the transaction commands: one command's reply.
  void Run(RespSession& s, const RespCommand& args, RespWriter& out, WriteExpiry* expiry = nullptr);

  CacheService* service_;
  RespServerFacts* facts_;
};

}  // namespace sealcache::server::internal
