// Connecting sealcache-cli to sealcached: the global options, the token (never printed),
// the connection and its Hello, and telling a lost connection from a server's refusal.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "command.h"
#include "sealcache/client/client.h"

namespace sealcache::cli {

struct GlobalOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 7420;
  std::string token;       // --token
  std::string token_file;  // --token-file
  bool tls = false;
  std::string tls_ca;
  bool tls_no_verify = false;
  bool json = false;
  // A server that does not answer within this long fails the command (exit CONNECTION).
  int64_t timeout_ms = 60'000;
};

// Registers the global options (accepted before or after the command).
void AddGlobalOptions(po::options_description& desc, GlobalOptions* o);

// The token from --token, else --token-file, else $SEALCACHE_TOKEN; InvalidArgument when
// none is given, both flags are, or the file cannot be read.
Result<std::string> ResolveToken(const GlobalOptions& o);

// True when `status` came from the transport (connect, TLS, a lost connection), not from an
// error response of the server.
bool IsConnectionError(const Status& status);

// A failure and the exit code it maps to.
struct Failure {
  Status status;
  int exit_code;
};

// Connects, says Hello with `token`, and returns the session's client and binding.
struct Connection {
  std::unique_ptr<client::Client> client;
  std::string org;
  bool admin = false;
};
std::variant<Connection, Failure> Connect(const GlobalOptions& o, const std::string& token);

}  // namespace sealcache::cli
