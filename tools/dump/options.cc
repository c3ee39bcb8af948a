#include "options.h"

#include <charconv>
#include <set>

namespace sealcache::dump {
namespace {

const std::set<std::string>& Commands() {
  static const std::set<std::string> kCommands = {"files", "keys",   "orgs", "entries",
                                                  "entry", "verify", "stats"};
  return kCommands;
}

template <typename T>
Result<T> ParseNumber(const std::string& flag, const std::string& text) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return Status::InvalidArgument(flag + " needs a number, got '" + text + "'");
  }
  return value;
}

// Applies one "--flag [value]" at args[*i]; advances *i past a consumed value.
Status ApplyFlag(const std::vector<std::string>& args, size_t* i, DumpOptions* o) {
  const std::string& flag = args[*i];
  if (flag == "--json") return o->json = true, Status::Ok();
  if (flag == "--help" || flag == "-h") return o->help = true, Status::Ok();
  if (flag == "--expired") return o->include_expired = true, Status::Ok();
  if (*i + 1 >= args.size()) return Status::InvalidArgument(flag + " needs a value");
  const std::string& value = args[++*i];
  if (flag == "--master-key") {
    o->master_key_spec = value;
  } else if (flag == "--org") {
    o->org = value;
  } else if (flag == "--namespace") {
    o->name_space = value;
  } else if (flag == "--digest") {
    o->digest_hex = value;
  } else if (flag == "--limit") {
    SC_ASSIGN_OR_RETURN(o->limit, ParseNumber<uint64_t>(flag, value));
  } else if (flag == "--now-ms") {
    SC_ASSIGN_OR_RETURN(o->now_ms, ParseNumber<int64_t>(flag, value));
  } else if (flag == "--rotation-interval-days") {
    SC_ASSIGN_OR_RETURN(o->rotation_interval_days, ParseNumber<int64_t>(flag, value));
    if (o->rotation_interval_days <= 0) return Status::InvalidArgument(flag + " must be > 0");
  } else {
    --*i;
    return Status::InvalidArgument("unknown option " + flag);
  }
  return Status::Ok();
}

Status CheckCommandNeeds(const DumpOptions& o) {
  const bool needs_org = o.command == "entries" || o.command == "entry";
  if (needs_org && !o.org) return Status::InvalidArgument(o.command + " needs --org");
  if (o.command == "entry" && !o.digest_hex) return Status::InvalidArgument("entry needs --digest");
  const bool needs_key = o.command == "entry" || o.command == "verify";
  if (needs_key && !o.master_key_spec) {
    return Status::InvalidArgument(o.command + " needs --master-key");
  }
  return Status::Ok();
}

}  // namespace

Result<DumpOptions> ParseArgs(const std::vector<std::string>& args) {
  DumpOptions o;
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].size() > 1 && args[i][0] == '-') {
      SC_RETURN_IF_ERROR(ApplyFlag(args, &i, &o));
    } else {
      positional.push_back(args[i]);
    }
  }
  if (o.help) return o;
  if (positional.size() != 2) {
    return Status::InvalidArgument("expected <data-dir> <command>");
  }
  o.data_dir = positional[0];
  o.command = positional[1];
  if (!Commands().count(o.command)) {
    return Status::InvalidArgument("unknown command '" + o.command + "'");
  }
  SC_RETURN_IF_ERROR(CheckCommandNeeds(o));
  return o;
}

const char* UsageText() {
  return R"(usage: sealcache-dump <data-dir> <command> [options]

Offline, read-only inspection of a sealcache data directory. Safe beside a running server:
never takes the database or keystore lock and never changes a file (except that `entry`
appends one line to <data-dir>/audit.log).

Commands:
  files     every file: kind, org, format version, key scope + version from the header,
            logical/physical size, encrypted yes/no, verdict. Flags files that must be
            encrypted but are not, or whose header is damaged or names another org.
  keys      keystore metadata (scope, org, version, state, times) and the files and bytes
            on disk per key version; with --master-key also authenticates the keystore and
            counts the live SSTs per version.
  orgs      orgs with entry counts, bytes, dimension, index kind and key versions.
  entries   --org X [--namespace N] [--expired] [--limit N]: plaintext metadata of entries
            (digest, created, expires, ttl, namespace, payload size, hits, last hit).
            --expired also lists entries past their expiry that are not yet compacted away.
  entry     --org X --digest HEX --master-key SPEC: decrypts one entry (payload, vector
            summary) and the key version protecting it now; writes an audit line.
  verify    --master-key SPEC: decrypts every encrypted file end to end, checks every RocksDB
            block checksum and the WAL records; reports corrupt files and blocks.
  stats     totals per org and per key version; age of each active key versus the rotation
            interval (--rotation-interval-days, default 90).

Options:
  --json               one JSON document on stdout instead of text
  --master-key SPEC    file:PATH, env:VAR, pkcs11:URI or kmip://HOST:PORT/ID?client-cert=
                       PATH&client-key=PATH&ca=PATH (README, Keys). Without it, the
                       database is read as of its last flush: the WAL is encrypted under
                       the node key and is skipped, and payloads/vectors are not readable.
  --now-ms MS          evaluate expiry and key age at this time (default: now)
  --limit N            entries: at most N rows (default 100; 0 = no limit)

Exit codes:
  0  success, nothing wrong found
  1  problems found (files: unencrypted or bad-header files; verify: any corrupt or
     undecryptable file; keys: keystore fails authentication)
  2  bad command line
  3  could not inspect (no store, unknown org or entry, wrong master key, I/O error)
)";
}

}  // namespace sealcache::dump
