// `verify`: decrypts every encrypted file and checks every block checksum (master key).
#include "commands.h"
#include "sealcache/storage/file_check.h"

namespace sealcache::dump {

Result<CommandOutput> RunVerify(const CommandContext& ctx) {
  SC_ASSIGN_OR_RETURN(storage::VerifyReport report,
                      storage::VerifyDataFiles(ctx.layout, *ctx.master_key));
  CommandOutput out;
  Json problems = Json::MakeArray();
  std::string lines;
  for (const auto& p : report.problems) {
    problems.Push(Json::MakeObject()
                      .Set("path", p.path)
                      .Set("block_offset", p.block_offset ? Json(*p.block_offset) : Json())
                      .Set("error", p.error));
    lines += "CORRUPT " + p.path +
             (p.block_offset ? " block at offset " + std::to_string(*p.block_offset) : "") + ": " +
             p.error + "\n";
  }
  out.json.Set("data_dir", ctx.layout.data_dir()).Set("keystore_authenticated", report.keystore_ok);
  out.json.Set("files_checked", report.files_checked).Set("bytes_checked", report.bytes_checked);
  out.json.Set("problem_count", report.problems.size()).Set("problems", std::move(problems));
  out.text = std::string("keystore: ") + (report.keystore_ok ? "authenticated" : "FAILED") +
             "\nchecked " + std::to_string(report.files_checked) + " files, " +
             std::to_string(report.bytes_checked) + " bytes decrypted and verified\n" + lines +
             (report.problems.empty() ? "OK: no problems\n"
                                      : std::to_string(report.problems.size()) + " problem(s)\n");
  if (!report.problems.empty()) out.exit_code = kExitProblems;
  return out;
}

}  // namespace sealcache::dump
