// sealcache-dump: offline, read-only inspection and verification of a data directory.
// Usage and exit codes: options.cc (UsageText) or `sealcache-dump --help`.
#include <filesystem>
#include <iostream>
#include <map>

#include "commands.h"
#include "sealcache/clock.h"
#include "sealcache/crypto/master_key.h"

namespace sealcache::dump {
namespace {

using CommandFn = Result<CommandOutput> (*)(const CommandContext&);

const std::map<std::string, CommandFn>& CommandTable() {
  static const std::map<std::string, CommandFn> kTable = {
      {"files", RunFiles}, {"keys", RunKeys},     {"orgs", RunOrgs},   {"entries", RunEntries},
      {"entry", RunEntry}, {"verify", RunVerify}, {"stats", RunStats},
  };
  return kTable;
}

// Never prints key material: only the provider's description and its warnings.
Result<crypto::SecretBytes> LoadMasterKey(const std::string& spec,
                                          const storage::DataLayout& layout) {
  crypto::MasterKeyOptions key_options;
  key_options.envelope_dir = layout.keys_dir();
  key_options.keystore_path = layout.keystore_path();
  key_options.create_envelope = false;  // read-only
  SC_ASSIGN_OR_RETURN(auto provider, crypto::MasterKeyProviderFromSpec(spec, key_options));
  auto loaded = provider->Load();
  if (!loaded.ok()) return loaded.status().WithContext("master key " + provider->Describe());
  for (const std::string& w : loaded->warnings) std::cerr << "warning: " << w << "\n";
  return std::move(loaded->key);
}

int Fail(const DumpOptions& options, const Status& status, int code) {
  if (options.json) {
    Json doc = Json::MakeObject();
    doc.Set("error", status.ToString());
    std::cout << doc.Dump() << "\n";
  }
  std::cerr << "sealcache-dump: " << status.ToString() << "\n";
  return code;
}

int Run(const DumpOptions& options) {
  std::error_code ec;
  std::string dir = std::filesystem::absolute(options.data_dir, ec).lexically_normal().string();
  if (ec || !std::filesystem::is_directory(dir)) {
    return Fail(options, Status::NotFound("no data directory at " + options.data_dir), kExitError);
  }
  CommandContext ctx{options, storage::DataLayout(dir), 0, std::nullopt};
  ctx.now_ms = options.now_ms ? *options.now_ms : SystemClock().NowMillis();
  if (options.master_key_spec) {
    auto key = LoadMasterKey(*options.master_key_spec, ctx.layout);
    if (!key.ok()) return Fail(options, key.status(), kExitError);
    ctx.master_key = std::move(key).value();
  }
  auto out = CommandTable().at(options.command)(ctx);
  if (!out.ok()) return Fail(options, out.status(), kExitError);
  std::cout << (options.json ? out->json.Dump() + "\n" : out->text);
  return out->exit_code;
}

}  // namespace
}  // namespace sealcache::dump

int main(int argc, char** argv) {
  using namespace sealcache::dump;
  std::vector<std::string> args(argv + 1, argv + argc);
  auto options = ParseArgs(args);
  if (!options.ok()) {
    std::cerr << "sealcache-dump: " << options.status().message() << "\n\n" << UsageText();
    return kExitUsage;
  }
  if (options->help) {
    std::cout << UsageText();
    return kExitOk;
  }
  return Run(*options);
}
