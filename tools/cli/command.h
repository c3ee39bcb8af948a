// The commands of sealcache-cli. Each command is a CommandSpec: its options (Boost
// program_options, so `<command> --help` documents them), and a parse step that checks the
// arguments and reads input files BEFORE any connection is made, returning an Action that
// then runs against a connected, authenticated client. So a usage error exits 2 without
// touching the network, and every failure has one exit code:
//   0 ok, 1 the server refused or failed (or a get missed), 2 usage or local input error,
//   3 no connection (refused, TLS failure, connection lost).
#pragma once

#include <boost/program_options.hpp>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "json.h"
#include "sealcache/client/client.h"
#include "sealcache/status.h"

namespace sealcache::cli {

namespace po = boost::program_options;

inline constexpr int kExitOk = 0;
inline constexpr int kExitServer = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitConnection = 3;

// What a command prints: both forms are built, the global --json picks one.
struct Report {
  Json json = Json::MakeObject();
  std::string text;
  std::string note;         // a remark for a person: printed to stderr in text mode only
  int exit_code = kExitOk;  // kExitServer when a batch was only partly stored
};

// A connection that said Hello: which org it is bound to, or admin.
struct Session {
  client::Client& client;
  std::string org;
  bool admin = false;
};

// A command whose arguments have been checked, ready to run on a session.
using Action = std::function<Result<Report>(Session&)>;

struct CommandSpec {
  std::string_view name;
  std::string_view synopsis;    // arguments, e.g. "ORG --dim N [--index hnsw|flat]"
  std::string_view summary;     // one line for the command list
  std::string_view details;     // more lines for `<command> --help`; may be empty
  std::string_view positional;  // the one positional argument's option name, or empty
  void (*add_options)(po::options_description&);
  Result<Action> (*parse)(const po::variables_map&);
};

// Admin commands (need the admin token): create-org, drop-org, list-orgs, rotate-key,
// key-status, issue-token, revoke-token.
const std::vector<CommandSpec>& AdminCommands();
// Org commands (need an org token): ping, put, put-batch, get, lookup, delete, invalidate,
// stats. ping works with any token.
const std::vector<CommandSpec>& EntryCommands();

// For commands without options of their own.
void AddNoOptions(po::options_description& desc);

// The value of string option `name`, or empty when absent.
std::string OptionText(const po::variables_map& vm, const std::string& name);

}  // namespace sealcache::cli
