// The commands of sealcache-dump. Each returns one report as a JSON document and as text;
// main() prints the one asked for and exits with the report's code.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "json.h"
#include "options.h"
#include "sealcache/crypto/secret_bytes.h"
#include "sealcache/status.h"
#include "sealcache/storage/data_layout.h"
#include "sealcache/storage/inspect.h"

namespace sealcache::dump {

struct CommandContext {
  DumpOptions options;
  storage::DataLayout layout;
  int64_t now_ms = 0;
  std::optional<crypto::SecretBytes> master_key;  // loaded from --master-key, if given
};

struct CommandOutput {
  Json json = Json::MakeObject();
  std::string text;
  int exit_code = kExitOk;
};

Result<CommandOutput> RunFiles(const CommandContext& ctx);
Result<CommandOutput> RunKeys(const CommandContext& ctx);
Result<CommandOutput> RunOrgs(const CommandContext& ctx);
Result<CommandOutput> RunStats(const CommandContext& ctx);
Result<CommandOutput> RunEntries(const CommandContext& ctx);
Result<CommandOutput> RunEntry(const CommandContext& ctx);
Result<CommandOutput> RunVerify(const CommandContext& ctx);

// Shared by the commands that read the database.
Result<std::unique_ptr<storage::StoreView>> OpenView(const CommandContext& ctx);
// What a view includes, for operators: "keyless", "keyed" or "plaintext-benchmark".
std::string ViewMode(const storage::StoreView& view);
// One sentence on what the view can and cannot show.
std::string ViewNote(const storage::StoreView& view);

}  // namespace sealcache::dump
