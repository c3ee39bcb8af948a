// Org commands: ping, put, put-batch, get, lookup, delete, invalidate, stats.
#include <fstream>
#include <iostream>

#include "batch_file.h"
#include "command.h"
#include "input.h"
#include "render.h"

namespace sealcache::cli {
namespace {

// The server takes at most this many items per PutBatch request.
constexpr size_t kBatchChunk = 1000;

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

void AddDigestOptions(po::options_description& d) {
  d.add_options()("digest", po::value<std::string>(), "the entry's digest, 64 hex characters")(
      "digest-of", po::value<std::string>(),
      "TEXT: use the SHA-256 of TEXT as the digest (e.g. the prompt itself)");
}

Result<client::Digest> DigestOption(const po::variables_map& vm) {
  const bool hex = vm.count("digest") > 0, text = vm.count("digest-of") > 0;
  if (hex == text) return Status::InvalidArgument("give exactly one of --digest and --digest-of");
  if (text) return DigestOf(OptionText(vm, "digest-of"));
  return ParseDigestHex(OptionText(vm, "digest"));
}

Result<std::vector<float>> VectorOption(const po::variables_map& vm) {
  if (!vm.count("vector")) return Status::InvalidArgument("--vector FILE|- is required");
  const std::string source = OptionText(vm, "vector");
  SC_ASSIGN_OR_RETURN(std::string text, ReadSource(source));
  auto v = ParseVector(text);
  if (!v.ok()) return v.status().WithContext(source == "-" ? "stdin" : source);
  return v;
}

std::optional<std::string> NamespaceOption(const po::variables_map& vm) {
  if (!vm.count("namespace")) return std::nullopt;
  return OptionText(vm, "namespace");
}

// ---- ping ----

Result<Action> ParsePing(const po::variables_map&) {
  return Action([](Session& s) -> Result<Report> {
    SC_ASSIGN_OR_RETURN(int64_t now, s.client.Ping());
    Report r;
    r.json.Set("ok", true).Set("org", s.org).Set("admin", s.admin).Set("server_time_ms", now);
    r.text = KeyValueText(
        {{"session", s.admin ? "admin" : "org " + s.org}, {"server_time", FormatTime(now)}});
    return r;
  });
}

// ---- put ----

void AddPutOptions(po::options_description& d) {
  AddDigestOptions(d);
  d.add_options()("vector", po::value<std::string>(),
                  "FILE|-: the embedding (floats separated by spaces/commas, or a JSON array)")(
      "payload", po::value<std::string>(), "FILE|-: the payload bytes")(
      "payload-text", po::value<std::string>(), "TEXT: the payload, given inline")(
      "ttl", po::value<std::string>(), "time to live: 90s, 15m, 2h, 7d or plain ms (required)")(
      "namespace", po::value<std::string>(), "namespace of the entry (default: none)");
}

Result<std::string> PayloadOption(const po::variables_map& vm) {
  const bool file = vm.count("payload") > 0, text = vm.count("payload-text") > 0;
  if (file == text) {
    return Status::InvalidArgument("give exactly one of --payload FILE|- and --payload-text");
  }
  if (text) return OptionText(vm, "payload-text");
  return ReadSource(OptionText(vm, "payload"));
}

Result<Action> ParsePut(const po::variables_map& vm) {
  if (OptionText(vm, "vector") == "-" && OptionText(vm, "payload") == "-") {
    return Status::InvalidArgument("--vector and --payload cannot both come from stdin");
  }
  if (!vm.count("ttl")) return Status::InvalidArgument("--ttl is required (e.g. --ttl 1h)");
  SC_ASSIGN_OR_RETURN(int64_t ttl, ParseDuration(OptionText(vm, "ttl")));
  SC_ASSIGN_OR_RETURN(client::Digest digest, DigestOption(vm));
  SC_ASSIGN_OR_RETURN(std::vector<float> vector, VectorOption(vm));
  SC_ASSIGN_OR_RETURN(std::string payload, PayloadOption(vm));
  const std::string ns = OptionText(vm, "namespace");
  return Action([=](Session& s) -> Result<Report> {
    SC_ASSIGN_OR_RETURN(auto put, s.client.Put({.digest = digest,
                                                .vector = vector,
                                                .payload = Bytes(payload),
                                                .ttl_ms = ttl,
                                                .name_space = ns}));
    Report r;
    r.json.Set("digest", DigestHex(digest))
        .Set("replaced", put.replaced)
        .Set("expires_ms", put.expires_ms);
    r.text = KeyValueText({{"stored", DigestHex(digest)},
                           {"replaced", put.replaced ? "yes" : "no"},
                           {"expires", FormatTime(put.expires_ms)}});
    return r;
  });
}

// ---- put-batch ----

void AddPutBatchOptions(po::options_description& d) {
  d.add_options()("file", po::value<std::string>(), "FILE|-: JSON lines, one entry a line");
}

Report BatchReport(const std::vector<BatchItem>& items, const std::vector<Status>& results) {
  Report r;
  Json errors = Json::MakeArray();
  std::string error_text;
  for (size_t i = 0; i < items.size(); ++i) {
    if (results[i].ok()) continue;
    errors.Push(Json::MakeObject()
                    .Set("line", items[i].line)
                    .Set("digest", DigestHex(items[i].digest))
                    .Set("error", results[i].ToString()));
    error_text += "line " + std::to_string(items[i].line) + ": " + results[i].ToString() + "\n";
  }
  const size_t failed = errors.array().size();
  r.json.Set("stored", items.size() - failed).Set("failed", failed).Set("errors", errors);
  r.text = "stored " + std::to_string(items.size() - failed) + " of " +
           std::to_string(items.size()) + " entries\n" + error_text;
  if (failed > 0) r.exit_code = kExitServer;
  return r;
}

Result<std::vector<Status>> PutChunks(client::Client& c, const std::vector<BatchItem>& items) {
  std::vector<Status> results;
  for (size_t start = 0; start < items.size(); start += kBatchChunk) {
    std::vector<client::PutArgs> args;
    for (size_t i = start; i < std::min(items.size(), start + kBatchChunk); ++i) {
      const BatchItem& it = items[i];
      args.push_back({.digest = it.digest,
                      .vector = it.vector,
                      .payload = Bytes(it.payload),
                      .ttl_ms = it.ttl_ms,
                      .name_space = it.name_space});
    }
    SC_ASSIGN_OR_RETURN(std::vector<Status> chunk, c.PutBatch(args));
    if (chunk.size() != args.size()) {
      return Status::Internal("the server answered " + std::to_string(chunk.size()) +
                              " results for " + std::to_string(args.size()) + " items");
    }
    results.insert(results.end(), chunk.begin(), chunk.end());
  }
  return results;
}

Result<Action> ParsePutBatch(const po::variables_map& vm) {
  if (!vm.count("file")) return Status::InvalidArgument("put-batch needs FILE (or - for stdin)");
  const std::string source = OptionText(vm, "file");
  SC_ASSIGN_OR_RETURN(std::string text, ReadSource(source));
  auto items = ParseBatchFile(text);
  if (!items.ok()) return items.status().WithContext(source == "-" ? "stdin" : source);
  return Action([items = std::move(items).value()](Session& s) -> Result<Report> {
    SC_ASSIGN_OR_RETURN(std::vector<Status> results, PutChunks(s.client, items));
    return BatchReport(items, results);
  });
}

// ---- get ----

void AddGetOptions(po::options_description& d) {
  AddDigestOptions(d);
  d.add_options()("no-payload", po::bool_switch(), "fetch the metadata only")(
      "out", po::value<std::string>(),
      "FILE: write the raw payload bytes to FILE (- : to stdout, and print nothing else)");
}

Status WritePayload(const std::string& path, const std::vector<uint8_t>& payload) {
  if (path == "-") {
    std::cout.write(reinterpret_cast<const char*>(payload.data()), payload.size());
    std::cout.flush();
    return std::cout ? Status::Ok() : Status::IOError("cannot write the payload to stdout");
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(payload.data()), payload.size());
  out.close();
  if (!out) return Status::IOError("cannot write the payload to " + path);
  return Status::Ok();
}

Result<Action> ParseGet(const po::variables_map& vm) {
  SC_ASSIGN_OR_RETURN(client::Digest digest, DigestOption(vm));
  const bool with_payload = !vm["no-payload"].as<bool>();
  const std::string out = OptionText(vm, "out");
  if (!out.empty() && !with_payload) {
    return Status::InvalidArgument("--out needs the payload: drop --no-payload");
  }
  if (out == "-" && vm["json"].as<bool>()) {
    return Status::InvalidArgument("--out - writes raw bytes to stdout: it excludes --json");
  }
  return Action([=](Session& s) -> Result<Report> {
    SC_ASSIGN_OR_RETURN(client::EntryInfo e, s.client.Get(digest, with_payload));
    Report r;
    if (!out.empty()) SC_RETURN_IF_ERROR(WritePayload(out, e.payload));
    if (out == "-") return r;  // stdout holds the payload alone
    const bool show_payload = with_payload && out.empty();
    r.json = EntryJson(e, show_payload);
    if (out.empty()) {
      r.text = EntryText(e, show_payload);
    } else {
      r.json.Set("written_to", out);
      r.text = EntryText(e, false, {{"written_to", out}});
    }
    return r;
  });
}

// ---- lookup ----

void AddLookupOptions(po::options_description& d) {
  d.add_options()("vector", po::value<std::string>(), "FILE|-: the query embedding")(
      "k", po::value<uint32_t>()->default_value(1), "hits to return at most")(
      "min-score", po::value<float>()->default_value(0.0f),
      "least cosine similarity of a hit, in [-1, 1]")(
      "namespace", po::value<std::string>(), "only entries of this namespace (default: any)")(
      "no-payload", po::bool_switch(), "return metadata and scores only");
}

Result<Action> ParseLookup(const po::variables_map& vm) {
  SC_ASSIGN_OR_RETURN(std::vector<float> vector, VectorOption(vm));
  const uint32_t k = vm["k"].as<uint32_t>();
  const float min_score = vm["min-score"].as<float>();
  if (k == 0) return Status::InvalidArgument("--k must be at least 1");
  if (!(min_score >= -1.0f && min_score <= 1.0f)) {
    return Status::InvalidArgument("--min-score must be in [-1, 1]");
  }
  const auto ns = NamespaceOption(vm);
  const bool with_payload = !vm["no-payload"].as<bool>();
  return Action([=](Session& s) -> Result<Report> {
    SC_ASSIGN_OR_RETURN(auto hits, s.client.Lookup({.vector = vector,
                                                    .k = k,
                                                    .min_score = min_score,
                                                    .name_space = ns,
                                                    .with_payload = with_payload}));
    Report r;
    r.json = HitsJson(hits, with_payload);
    r.text = HitsText(hits, with_payload);
    return r;
  });
}

// ---- delete ----

Result<Action> ParseDelete(const po::variables_map& vm) {
  SC_ASSIGN_OR_RETURN(client::Digest digest, DigestOption(vm));
  return Action([=](Session& s) -> Result<Report> {
    SC_ASSIGN_OR_RETURN(uint64_t removed, s.client.Delete(digest));
    Report r;
    r.json.Set("digest", DigestHex(digest)).Set("removed", removed);
    r.text = "deleted " + DigestHex(digest) + "\n";
    return r;
  });
}

// ---- invalidate ----

void AddInvalidateOptions(po::options_description& d) {
  d.add_options()("namespace", po::value<std::string>(), "entries of this namespace")(
      "older-than", po::value<std::string>(),
      "AGE: entries created more than AGE ago (90s, 15m, 2h, 7d or plain ms), measured on "
      "the server's clock")("created-before", po::value<int64_t>(),
                            "EPOCH_MS: entries created before this time (ms since the epoch)");
}

Result<Action> ParseInvalidate(const po::variables_map& vm) {
  const auto ns = NamespaceOption(vm);
  std::optional<int64_t> age, before;
  if (vm.count("older-than")) {
    SC_ASSIGN_OR_RETURN(age, ParseDuration(OptionText(vm, "older-than")));
  }
  if (vm.count("created-before")) before = vm["created-before"].as<int64_t>();
  if (age && before) return Status::InvalidArgument("give --older-than or --created-before");
  if (before && *before <= 0) return Status::InvalidArgument("--created-before must be > 0");
  if (!ns && !age && !before) {
    return Status::InvalidArgument(
        "invalidate needs --namespace and/or --older-than/--created-before");
  }
  return Action([=](Session& s) mutable -> Result<Report> {
    if (age) {
      SC_ASSIGN_OR_RETURN(int64_t now, s.client.Ping());
      before = now - *age;
    }
    SC_ASSIGN_OR_RETURN(uint64_t removed, s.client.Invalidate(ns, before));
    Report r;
    r.json.Set("removed", removed);
    if (before) r.json.Set("created_before_ms", *before);
    r.text = "invalidated " + std::to_string(removed) + " entries\n";
    return r;
  });
}

// ---- stats ----

Report StatsReport(const protocol::StatsResponse& st) {
  const std::vector<std::pair<std::string, uint64_t>> counters = {
      {"entries", st.entries()},
      {"vectors", st.vectors()},
      {"puts", st.puts()},
      {"gets", st.gets()},
      {"lookups", st.lookups()},
      {"hits", st.hits()},
      {"misses", st.misses()},
      {"deletes", st.deletes()},
      {"decrypt_failures", st.decrypt_failures()},
      {"sst_bytes", st.sst_bytes()},
      {"flat_segments", st.flat_segments()},
      {"hnsw_segments", st.hnsw_segments()},
      {"index_build_failures", st.index_build_failures()},
      {"bytes", st.bytes()},
      {"max_bytes", st.max_bytes()},
      {"max_entries", st.max_entries()},
      {"evictions_org_limit", st.evictions_org_limit()},
      {"evictions_server_limit", st.evictions_server_limit()}};
  Report r;
  const std::string org = st.org() ? st.org()->str() : "";
  r.json.Set("org", org);
  std::vector<std::pair<std::string, std::string>> rows = {{"org", org}};
  for (const auto& [name, value] : counters) {
    r.json.Set(name, value);
    rows.emplace_back(name, std::to_string(value));
  }
  const std::string policy = st.eviction_policy() ? st.eviction_policy()->str() : "";
  r.json.Set("eviction_policy", policy);
  rows.emplace_back("eviction_policy", policy);
  r.json.Set("active_key_version", st.active_key_version())
      .Set("active_key_age_ms", st.active_key_age_ms());
  rows.emplace_back("active_key_version", std::to_string(st.active_key_version()));
  rows.emplace_back("active_key_age", FormatAge(st.active_key_age_ms()));
  r.text = KeyValueText(rows);
  return r;
}

Result<Action> ParseStats(const po::variables_map&) {
  return Action([](Session& s) -> Result<Report> {
    SC_ASSIGN_OR_RETURN(auto frame, s.client.Stats());
    return StatsReport(*frame->body_as<protocol::StatsResponse>());
  });
}

}  // namespace

const std::vector<CommandSpec>& EntryCommands() {
  static const std::vector<CommandSpec> kCommands = {
      {"ping", "", "check the connection and the token",
       "Prints the session (org or admin) "
       "and the server's clock.",
       "", AddNoOptions, ParsePing},
      {"put",
       "--digest HEX|--digest-of TEXT --vector FILE|- --payload FILE|-|--payload-text "
       "TEXT --ttl DURATION [--namespace NS]",
       "store an entry (replaces one with the same digest)",
       "The vector and the payload cannot both come from stdin.", "", AddPutOptions, ParsePut},
      {"put-batch", "FILE|-", "store many entries from a JSON-lines file",
       "One JSON object a line (blank lines and # comments skipped):\n"
       "  {\"digest\": HEX | \"digest_of\": TEXT, \"vector\": [floats],\n"
       "   \"payload_text\": TEXT | \"payload_hex\": HEX, \"ttl\": \"2h\" | ms,"
       " \"namespace\": NS}\n"
       "Sent 1000 entries a request. Exit 1 if any entry was refused (listed by line).",
       "file", AddPutBatchOptions, ParsePutBatch},
      {"get", "--digest HEX|--digest-of TEXT [--no-payload] [--out FILE]",
       "fetch one entry by digest (a miss exits 1)", "", "", AddGetOptions, ParseGet},
      {"lookup", "--vector FILE|- [--k N] [--min-score S] [--namespace NS] [--no-payload]",
       "find the entries nearest to a vector", "No hit is not an error: an empty list, exit 0.", "",
       AddLookupOptions, ParseLookup},
      {"delete", "--digest HEX|--digest-of TEXT", "delete one entry (absent exits 1)", "", "",
       AddDigestOptions, ParseDelete},
      {"invalidate", "[--namespace NS] [--older-than AGE | --created-before EPOCH_MS]",
       "delete every entry of a namespace and/or created before a time",
       "With both, entries matching either are removed.", "", AddInvalidateOptions,
       ParseInvalidate},
      {"stats", "", "counters of the token's org", "", "", AddNoOptions, ParseStats},
  };
  return kCommands;
}

}  // namespace sealcache::cli
