#include "session.h"

#include <cstdlib>
#include <fstream>

namespace sealcache::cli {
namespace {

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

Result<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("cannot read the token file " + path);
  std::string token;
  std::getline(in, token);
  token = Trim(token);
  if (token.empty()) return Status::InvalidArgument("the token file " + path + " is empty");
  return token;
}

Failure Fail(const Status& s) { return {s, IsConnectionError(s) ? kExitConnection : kExitServer}; }

}  // namespace

void AddGlobalOptions(po::options_description& d, GlobalOptions* o) {
  d.add_options()("host", po::value(&o->host)->default_value(o->host), "server address")(
      "port", po::value(&o->port)->default_value(o->port), "server TCP port")(
      "token", po::value(&o->token),
      "TOKEN: the org or admin token (visible in ps: prefer "
      "--token-file or SEALCACHE_TOKEN)")("token-file", po::value(&o->token_file),
                                          "PATH: read the token from this file")(
      "tls", po::bool_switch(&o->tls), "connect with TLS (1.2 or later)")(
      "tls-ca", po::value(&o->tls_ca),
      "FILE: PEM CA or server certificate to trust with --tls "
      "(default: the system CAs)")(
      "tls-no-verify", po::bool_switch(&o->tls_no_verify),
      "with --tls, do not verify the server certificate (testing only)")(
      "json", po::bool_switch(&o->json), "print one JSON document instead of text")(
      "timeout-ms", po::value(&o->timeout_ms)->default_value(o->timeout_ms),
      "give up on a server that does not answer within this long, ms (0 = wait forever)")(
      "help,h", "show help (after a command: that command's help)");
}

Result<std::string> ResolveToken(const GlobalOptions& o) {
  if (!o.token.empty() && !o.token_file.empty()) {
    return Status::InvalidArgument("give --token or --token-file, not both");
  }
  if (!o.token.empty()) return o.token;
  if (!o.token_file.empty()) return ReadTokenFile(o.token_file);
  const char* env = std::getenv("SEALCACHE_TOKEN");
  if (env != nullptr && *env != '\0') return Trim(env);
  return Status::InvalidArgument(
      "no token: pass --token-file PATH or --token TOKEN, or set SEALCACHE_TOKEN");
}

bool IsConnectionError(const Status& s) {
  if (s.code() != Status::Code::kIOError) return false;
  // The messages of the client library's transport errors (server/src/client.cc).
  static constexpr std::string_view kTransport[] = {"cannot resolve",  "cannot connect",
                                                    "cannot load TLS", "TLS handshake",
                                                    "send failed",     "connection closed"};
  for (std::string_view prefix : kTransport) {
    if (s.message().starts_with(prefix)) return true;
  }
  return false;
}

std::variant<Connection, Failure> Connect(const GlobalOptions& o, const std::string& token) {
  client::ClientOptions co;
  co.host = o.host;
  co.port = o.port;
  co.tls = o.tls;
  co.tls_ca_file = o.tls_ca;
  co.tls_verify = !o.tls_no_verify;
  co.timeout_ms = o.timeout_ms;
  auto c = client::Client::Connect(co);
  if (!c.ok()) return Failure{c.status(), kExitConnection};
  auto hello = (*c)->Hello(token);
  if (!hello.ok()) return Fail(hello.status());
  return Connection{std::move(c).value(), hello->first, hello->second};
}

}  // namespace sealcache::cli
