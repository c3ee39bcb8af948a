// Admin commands: create-org, drop-org, list-orgs, set-org-limits, rotate-key, rotate-master-key,
// key-status, issue-token, revoke-token, move-org, drain-node, rebalance. They need the admin token
// (<data>/admin.token on the server's first start).
#include "command.h"
#include "render.h"

namespace sealcache::cli {
namespace {

const char kTokenNotice[] =
    "The token is shown once: the server keeps only its hash. Store it now (e.g. in a file of "
    "mode 0600 for --token-file).";

void AddOrgPositional(po::options_description& d) {
  d.add_options()("org", po::value<std::string>(), "ORG: the org's name");
}

Result<std::string> OrgArgument(const po::variables_map& vm) {
  if (!vm.count("org")) return Status::InvalidArgument("this command needs ORG");
  return OptionText(vm, "org");
}

std::string Str(const flatbuffers::String* s) { return s != nullptr ? s->str() : ""; }

// ---- capacity limits (create-org, set-org-limits) ----

void AddLimitOptions(po::options_description& d) {
  d.add_options()("max-bytes", po::value<uint64_t>()->default_value(0),
                  "capacity: logical bytes of live entries at most (0 = no limit)")(
      "max-entries", po::value<uint64_t>()->default_value(0),
      "capacity: live entries at most (0 = no limit)")(
      "eviction-policy", po::value<std::string>()->default_value(""),
      "lru, lfu, ttl or noeviction (default: the server's --eviction-policy)");
}

Result<client::OrgLimitsArgs> ParseLimits(const po::variables_map& vm) {
  client::OrgLimitsArgs limits;
  limits.max_bytes = vm["max-bytes"].as<uint64_t>();
  limits.max_entries = vm["max-entries"].as<uint64_t>();
  limits.eviction_policy = OptionText(vm, "eviction-policy");
  const std::string& p = limits.eviction_policy;
  if (!p.empty() && p != "lru" && p != "lfu" && p != "ttl" && p != "noeviction") {
    return Status::InvalidArgument("--eviction-policy must be lru, lfu, ttl or noeviction, not '" +
                                   p + "'");
  }
  return limits;
}

void AddSetOrgLimitsOptions(po::options_description& d) {
  AddOrgPositional(d);
  AddLimitOptions(d);
}

Result<Action> ParseSetOrgLimits(const po::variables_map& vm) {
  SC_ASSIGN_OR_RETURN(std::string org, OrgArgument(vm));
  SC_ASSIGN_OR_RETURN(client::OrgLimitsArgs limits, ParseLimits(vm));
  return Action([=](Session& s) -> Result<Report> {
    SC_ASSIGN_OR_RETURN(uint64_t evicted, s.client.SetOrgLimits(org, limits));
    Report r;
    r.json.Set("org", org)
        .Set("max_bytes", limits.max_bytes)
        .Set("max_entries", limits.max_entries)
        .Set("eviction_policy", limits.eviction_policy)
        .Set("evicted", evicted);
    r.text = "limits of " + org + " set; " + std::to_string(evicted) +
             " entries evicted to reach them\n";
    return r;
  });
}

// ---- create-org ----

void AddCreateOrgOptions(po::options_description& d) {
  AddOrgPositional(d);
  d.add_options()("dim", po::value<uint32_t>(), "vector dimension, 1..4096 (required)")(
      "index", po::value<std::string>()->default_value("hnsw"), "index kind: hnsw or flat")(
      "m", po::value<uint32_t>()->default_value(0), "HNSW graph degree (0 = server default)")(
      "ef-construction", po::value<uint32_t>()->default_value(0),
      "HNSW build beam width (0 = server default)")(
      "ef-search", po::value<uint32_t>()->default_value(0),
      "HNSW search beam width: recall vs latency (0 = server default)")(
      "seal-threshold", po::value<uint32_t>()->default_value(0),
      "vectors searched exactly before a graph is built (0 = server default)");
  AddLimitOptions(d);
}

Result<Action> ParseCreateOrg(const po::variables_map& vm) {
  SC_ASSIGN_OR_RETURN(std::string org, OrgArgument(vm));
  if (!vm.count("dim")) return Status::InvalidArgument("create-org needs --dim N");
  const uint32_t dim = vm["dim"].as<uint32_t>();
  const std::string index = OptionText(vm, "index");
  if (index != "hnsw" && index != "flat") {
    return Status::InvalidArgument("--index must be hnsw or flat, not '" + index + "'");
  }
  client::OrgIndexOptions options;
  options.index_kind = index;
  options.hnsw_m = vm["m"].as<uint32_t>();
  options.ef_construction = vm["ef-construction"].as<uint32_t>();
  options.ef_search = vm["ef-search"].as<uint32_t>();
  options.seal_threshold = vm["seal-threshold"].as<uint32_t>();
  SC_ASSIGN_OR_RETURN(options.limits, ParseLimits(vm));
  return Action([=](Session& s) -> Result<Report> {
    SC_ASSIGN_OR_RETURN(client::OrgCreated created, s.client.CreateOrg(org, dim, options));
    Report r;
    r.json.Set("org", created.org)
        .Set("dimension", dim)
        .Set("index", index)
        .Set("token_id", created.token_id)
        .Set("token", created.token);
    r.text = KeyValueText(
        {{"org", created.org}, {"token_id", created.token_id}, {"token", created.token}});
    r.note = kTokenNotice;
    return r;
  });
}

// ---- drop-org, rotate-key ----

Result<Action> ParseDropOrg(const po::variables_map& vm) {
  SC_ASSIGN_OR_RETURN(std::string org, OrgArgument(vm));
  return Action([=](Session& s) -> Result<Report> {
    SC_RETURN_IF_ERROR(s.client.DropOrg(org));
    Report r;
    r.json.Set("org", org).Set("dropped", true);
    r.text = "dropped org " + org + ": its data, tokens and keys are destroyed\n";
    return r;
  });
}

Result<Action> ParseRotateKey(const po::variables_map& vm) {
  SC_ASSIGN_OR_RETURN(std::string org, OrgArgument(vm));
  return Action([=](Session& s) -> Result<Report> {
    SC_ASSIGN_OR_RETURN(uint32_t version, s.client.RotateKey(org));
    Report r;
    r.json.Set("org", org).Set("active_version", version);
    r.text = "org " + org + ": key version " + std::to_string(version) + " is now active\n";
    return r;
  });
}

Result<Action> ParseRotateMasterKey(const po::variables_map& vm) {
  if (!vm.count("to")) return Status::InvalidArgument("rotate-master-key needs --to SPEC");
  const std::string to = vm["to"].as<std::string>();
  return Action([=](Session& s) -> Result<Report> {
    SC_ASSIGN_OR_RETURN(std::string fingerprint, s.client.RotateMasterKey(to));
    Report r;
    r.json.Set("master_key_fingerprint", fingerprint);
    r.text = "master key rotated (fingerprint " + fingerprint +
             "): restart sealcached with --master-key " + to + "\n";
    return r;
  });
}

void AddRotateMasterKeyOptions(po::options_description& d) {
  d.add_options()("to", po::value<std::string>(),
                  "the new master key: file:PATH or pkcs11:URI, read on the server's machine");
}

// ---- key-status ----

Report KeyStatusReport(const protocol::KeyStatusResponse& ks) {
  Report r;
  Json versions = Json::MakeArray();
  r.text = "org: " + Str(ks.org()) + "\n";
  if (ks.versions() != nullptr) {
    for (const protocol::KeyVersion* v : *ks.versions()) {
      versions.Push(Json::MakeObject()
                        .Set("version", v->version())
                        .Set("state", Str(v->state()))
                        .Set("created_ms", v->created_ms())
                        .Set("rotated_ms", v->rotated_ms())
                        .Set("destroyed_ms", v->destroyed_ms())
                        .Set("live_files", v->live_files())
                        .Set("live_bytes", v->live_bytes())
                        .Set("max_expiry_ms", v->max_expiry_ms()));
      r.text += "\nversion " + std::to_string(v->version()) + "\n" +
                KeyValueText({{"  state", Str(v->state())},
                              {"  created", FormatTime(v->created_ms())},
                              {"  rotated", FormatTime(v->rotated_ms())},
                              {"  destroyed", FormatTime(v->destroyed_ms())},
                              {"  live_files", std::to_string(v->live_files())},
                              {"  live_bytes", std::to_string(v->live_bytes())},
                              {"  max_expiry", FormatTime(v->max_expiry_ms())}});
    }
  }
  r.json.Set("org", Str(ks.org())).Set("versions", std::move(versions));
  return r;
}

Result<Action> ParseKeyStatus(const po::variables_map& vm) {
  SC_ASSIGN_OR_RETURN(std::string org, OrgArgument(vm));
  return Action([=](Session& s) -> Result<Report> {
    SC_ASSIGN_OR_RETURN(auto frame, s.client.KeyStatus(org));
    return KeyStatusReport(*frame->body_as<protocol::KeyStatusResponse>());
  });
}

// ---- list-orgs ----

Report ListOrgsReport(const protocol::ListOrgsResponse& lo) {
  Report r;
  Json orgs = Json::MakeArray();
  // A cluster names each org's node: a NODE column then.
  bool cluster = false;
  if (lo.orgs() != nullptr) {
    for (const protocol::OrgSummary* o : *lo.orgs()) cluster |= !Str(o->node()).empty();
  }
  char line[320];
  std::snprintf(line, sizeof(line), "%-24s %6s %-8s %-6s %-20s %10s %12s %s\n", "ORG", "DIM",
                "METRIC", "INDEX", "CREATED", "ENTRIES", "BYTES", "LIMITS");
  r.text = cluster ? std::string("NODE") + std::string(12, ' ') + line : line;
  if (lo.orgs() != nullptr) {
    for (const protocol::OrgSummary* o : *lo.orgs()) {
      Json org = Json::MakeObject();
      if (cluster) org.Set("node", Str(o->node()));
      org.Set("org", Str(o->org()))
          .Set("dimension", o->dimension())
          .Set("metric", Str(o->metric()))
          .Set("index", Str(o->index_kind()))
          .Set("created_ms", o->created_ms())
          .Set("hnsw_m", o->hnsw_m())
          .Set("ef_construction", o->ef_construction())
          .Set("ef_search", o->ef_search())
          .Set("seal_threshold", o->seal_threshold())
          .Set("entries", o->entries())
          .Set("bytes", o->bytes())
          .Set("max_bytes", o->max_bytes())
          .Set("max_entries", o->max_entries())
          .Set("eviction_policy", Str(o->eviction_policy()));
      orgs.Push(std::move(org));
      const std::string limits =
          (o->max_bytes() ? "max_bytes=" + std::to_string(o->max_bytes()) + " " : "") +
          (o->max_entries() ? "max_entries=" + std::to_string(o->max_entries()) + " " : "") +
          Str(o->eviction_policy());
      std::snprintf(line, sizeof(line), "%-24s %6u %-8s %-6s %-20s %10llu %12llu %s\n",
                    Str(o->org()).c_str(), o->dimension(), Str(o->metric()).c_str(),
                    Str(o->index_kind()).c_str(), FormatTime(o->created_ms()).c_str(),
                    static_cast<unsigned long long>(o->entries()),
                    static_cast<unsigned long long>(o->bytes()), limits.c_str());
      if (cluster) {
        char node[64];
        std::snprintf(node, sizeof(node), "%-15s ", Str(o->node()).c_str());
        r.text += node;
      }
      r.text += line;
    }
  }
  r.json.Set("orgs", std::move(orgs));
  return r;
}

Result<Action> ParseListOrgs(const po::variables_map&) {
  return Action([](Session& s) -> Result<Report> {
    SC_ASSIGN_OR_RETURN(auto frame, s.client.ListOrgs());
    return ListOrgsReport(*frame->body_as<protocol::ListOrgsResponse>());
  });
}

// ---- issue-token, revoke-token ----

void AddIssueTokenOptions(po::options_description& d) {
  AddOrgPositional(d);
  d.add_options()("admin", po::bool_switch(), "issue a new admin token instead (no ORG)");
}

Result<Action> ParseIssueToken(const po::variables_map& vm) {
  const bool admin = vm["admin"].as<bool>();
  if (admin == (vm.count("org") > 0)) {
    return Status::InvalidArgument("issue-token needs ORG, or --admin for an admin token");
  }
  const std::string org = OptionText(vm, "org");  // empty asks for an admin token
  return Action([=](Session& s) -> Result<Report> {
    SC_ASSIGN_OR_RETURN(auto issued, s.client.IssueToken(org));
    const auto& [token, token_id] = issued;
    Report r;
    r.json.Set("org", org).Set("admin", admin).Set("token_id", token_id).Set("token", token);
    r.text = KeyValueText(
        {{admin ? "admin" : "org", admin ? "yes" : org}, {"token_id", token_id}, {"token", token}});
    r.note = kTokenNotice;
    return r;
  });
}

void AddRevokeTokenOptions(po::options_description& d) {
  AddOrgPositional(d);
  d.add_options()("id", po::value<std::string>(),
                  "TOKEN_ID: the token to revoke (default: every token of ORG)");
}

Result<Action> ParseRevokeToken(const po::variables_map& vm) {
  SC_ASSIGN_OR_RETURN(std::string org, OrgArgument(vm));
  const std::string id = OptionText(vm, "id");
  if (vm.count("id") && id.empty()) return Status::InvalidArgument("--id needs a token id");
  return Action([=](Session& s) -> Result<Report> {
    SC_ASSIGN_OR_RETURN(uint64_t revoked, s.client.RevokeToken(org, id));
    Report r;
    r.json.Set("org", org).Set("revoked", revoked);
    if (!id.empty()) r.json.Set("token_id", id);
    r.text = "revoked " + std::to_string(revoked) + " token(s) of org " + org + "\n";
    return r;
  });
}

// ---- move-org, drain-node (a cluster) ----

void AddMoveOrgOptions(po::options_description& d) {
  AddOrgPositional(d);
  d.add_options()("to", po::value<std::string>(),
                  "NODE: the node to move it to (default: the one placement picks)");
}

Result<Action> ParseMoveOrg(const po::variables_map& vm) {
  SC_ASSIGN_OR_RETURN(std::string org, OrgArgument(vm));
  const std::string to = OptionText(vm, "to");
  if (vm.count("to") && to.empty()) return Status::InvalidArgument("--to needs a node id");
  return Action([=](Session& s) -> Result<Report> {
    SC_ASSIGN_OR_RETURN(auto moved, s.client.MoveOrg(org, to));
    Report r;
    r.json.Set("org", org).Set("node", moved.first).Set("bytes", moved.second);
    r.text = "org " + org + " moved to node " + moved.first + " (" + std::to_string(moved.second) +
             " bytes of files streamed)\n";
    return r;
  });
}

void AddDrainNodeOptions(po::options_description& d) {
  d.add_options()("node", po::value<std::string>(),
                  "NODE: the node to drain (default: the node connected to)");
}

Result<Action> ParseDrainNode(const po::variables_map& vm) {
  const std::string node = OptionText(vm, "node");
  return Action([=](Session& s) -> Result<Report> {
    SC_ASSIGN_OR_RETURN(uint64_t moved, s.client.DrainNode(node));
    Report r;
    r.json.Set("node", node).Set("moved", moved);
    r.text = "drained" + (node.empty() ? std::string() : " node " + node) + ": " +
             std::to_string(moved) + " org(s) moved to other nodes\n";
    return r;
  });
}

Result<Action> ParseRebalance(const po::variables_map&) {
  return Action([](Session& s) -> Result<Report> {
    SC_ASSIGN_OR_RETURN(uint64_t moved, s.client.Rebalance());
    Report r;
    r.json.Set("moved", moved);
    r.text = "rebalanced: " + std::to_string(moved) + " org(s) moved\n";
    return r;
  });
}

}  // namespace

const std::vector<CommandSpec>& AdminCommands() {
  static const std::vector<CommandSpec> kCommands = {
      {"create-org",
       "ORG --dim N [--index hnsw|flat] [--m M] [--ef-construction E] [--ef-search E] "
       "[--seal-threshold N] [--max-bytes N] [--max-entries N] [--eviction-policy P]",
       "create an org and print its first token (shown once)",
       "ORG matches [a-z0-9][a-z0-9_-]{0,63}. Vectors are compared by cosine similarity.", "org",
       AddCreateOrgOptions, ParseCreateOrg},
      {"drop-org", "ORG", "destroy an org: its data, tokens and every key version", "", "org",
       AddOrgPositional, ParseDropOrg},
      {"list-orgs", "", "list the orgs with their entries, bytes and limits", "", "", AddNoOptions,
       ParseListOrgs},
      {"set-org-limits", "ORG [--max-bytes N] [--max-entries N] [--eviction-policy P]",
       "replace an org's capacity limits, at once",
       "Omitted limits become none. An org over a lower limit is evicted down to it now "
       "(with noeviction, only its new writes are refused).",
       "org", AddSetOrgLimitsOptions, ParseSetOrgLimits},
      {"rotate-key", "ORG", "make a new key version active for the org's new data",
       "Older versions retire and are destroyed once no live file uses them.", "org",
       AddOrgPositional, ParseRotateKey},
      {"rotate-master-key", "--to SPEC", "re-wrap every key version under a new master key, online",
       "One atomic replacement of the keystore; no data file is rewritten. Afterwards the old "
       "master key is no longer needed; restart with --master-key SPEC. SPEC is file:PATH, "
       "pkcs11:URI or kmip://HOST:PORT/ID (TLS files from sealcached's --kmip-* options "
       "or the URI's client-cert=, client-key=, ca=).",
       "", AddRotateMasterKeyOptions, ParseRotateMasterKey},
      {"key-status", "ORG", "show the org's key versions and what still uses them", "", "org",
       AddOrgPositional, ParseKeyStatus},
      {"issue-token", "ORG | --admin", "issue another token for an org (or an admin token)",
       "The token is printed once; only its hash is kept by the server.", "org",
       AddIssueTokenOptions, ParseIssueToken},
      {"revoke-token", "ORG [--id TOKEN_ID]", "revoke one token of an org, or all of them", "",
       "org", AddRevokeTokenOptions, ParseRevokeToken},
      {"move-org", "ORG [--to NODE]", "move an org, entries and all, to another node (a cluster)",
       "The owner streams the org's encrypted files and wrapped key ring to the new node and "
       "hands it over; meanwhile its requests answer UNAVAILABLE (retry). server/CLUSTER.md.",
       "org", AddMoveOrgOptions, ParseMoveOrg},
      {"drain-node", "[NODE]", "move every org of a node elsewhere; it takes no new orgs",
       "NODE defaults to the node connected to. server/CLUSTER.md.", "node", AddDrainNodeOptions,
       ParseDrainNode},
      {"rebalance", "", "move orgs until every node owns within one org of the others",
       "Nodes that are draining are left out. Each move is run by the org's owner. "
       "server/CLUSTER.md.",
       "", AddNoOptions, ParseRebalance},
  };
  return kCommands;
}

}  // namespace sealcache::cli
