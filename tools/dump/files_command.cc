// `files`: every file of the data directory with what its location requires and what its
// header says. Needs no key.
#include "commands.h"
#include "sealcache/storage/file_check.h"
#include "sealcache/storage/file_header.h"
#include "text_format.h"

namespace sealcache::dump {
namespace {

Json FileJson(const storage::DataFileReport& f) {
  Json j = Json::MakeObject();
  j.Set("path", f.path).Set("kind", f.kind).Set("org", f.org.empty() ? Json() : Json(f.org));
  j.Set("must_encrypt", f.must_encrypt).Set("encrypted", f.encrypted);
  j.Set("format_version", f.encrypted ? Json(f.format_version) : Json());
  j.Set("layout", f.encrypted ? Json(f.layout) : Json());
  j.Set("key_scope", f.key_ring ? Json(crypto::KeyScopeName(f.key_ring->scope)) : Json());
  j.Set("key_org", f.key_ring && !f.key_ring->org.empty() ? Json(f.key_ring->org) : Json());
  j.Set("key_version", f.encrypted ? Json(f.key_version) : Json());
  j.Set("logical_bytes", f.logical_bytes).Set("physical_bytes", f.physical_bytes);
  j.Set("verdict", storage::FileVerdictName(f.verdict))
      .Set("problem", storage::IsProblem(f.verdict));
  j.Set("detail", f.detail.empty() ? Json() : Json(f.detail));
  return j;
}

std::string KeyColumn(const storage::DataFileReport& f) {
  if (!f.key_ring) return "-";
  return f.key_ring->ToString() + " v" + std::to_string(f.key_version);
}

}  // namespace

Result<CommandOutput> RunFiles(const CommandContext& ctx) {
  SC_ASSIGN_OR_RETURN(auto files, storage::CheckDataFiles(ctx.layout));
  CommandOutput out;
  Json list = Json::MakeArray();
  TextTable table({"PATH", "KIND", "ORG", "FMT", "KEY", "LOGICAL", "PHYSICAL", "ENC", "VERDICT"});
  std::string details;
  uint64_t problems = 0;
  for (const auto& f : files) {
    list.Push(FileJson(f));
    table.Add({f.path, f.kind, f.org.empty() ? "-" : f.org,
               f.encrypted ? "v" + std::to_string(f.format_version) + " " + f.layout : "-",
               KeyColumn(f), std::to_string(f.logical_bytes), std::to_string(f.physical_bytes),
               f.encrypted ? "yes" : "no", std::string(storage::FileVerdictName(f.verdict))});
    if (storage::IsProblem(f.verdict)) {
      ++problems;
      details += "PROBLEM " + f.path + ": " + f.detail + "\n";
    }
  }
  out.json.Set("data_dir", ctx.layout.data_dir()).Set("files", std::move(list));
  out.json.Set("file_count", files.size()).Set("problem_count", problems);
  out.text = table.Render() + details + std::to_string(files.size()) + " files, " +
             std::to_string(problems) + " problem(s)\n";
  if (problems > 0) out.exit_code = kExitProblems;
  return out;
}

}  // namespace sealcache::dump
