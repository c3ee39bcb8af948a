// sealcache-cli: every sealcached operation from the shell. `sealcache-cli --help` lists the
// commands, `sealcache-cli COMMAND --help` documents one; exit codes are in command.h.
#include <algorithm>
#include <iostream>

#include "command.h"
#include "session.h"

namespace sealcache::cli {
namespace {

constexpr char kProgram[] = "sealcache-cli";

std::string_view WireCodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk:
      return "OK";
    case Status::Code::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case Status::Code::kNotFound:
      return "NOT_FOUND";
    case Status::Code::kAlreadyExists:
      return "ALREADY_EXISTS";
    case Status::Code::kCorruption:
      return "CORRUPTION";
    case Status::Code::kPermissionDenied:
      return "PERMISSION_DENIED";
    case Status::Code::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case Status::Code::kIOError:
      return "IO_ERROR";
    case Status::Code::kNotSupported:
      return "NOT_SUPPORTED";
    case Status::Code::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case Status::Code::kUnauthenticated:
      return "UNAUTHENTICATED";
    case Status::Code::kInternal:
      return "INTERNAL";
    case Status::Code::kUnavailable:
      return "UNAVAILABLE";
    case Status::Code::kMoved:
      return "MOVED";
  }
  return "UNKNOWN";
}

std::string_view KindName(int exit_code) {
  if (exit_code == kExitUsage) return "USAGE";
  if (exit_code == kExitConnection) return "CONNECTION";
  return "";
}

// Prints the failure (stderr always; stdout too as JSON with --json) and returns its code.
int PrintFailure(const Failure& f, bool json, std::string_view command) {
  std::string code(KindName(f.exit_code));
  if (code.empty()) code = WireCodeName(f.status.code());
  const std::string& message = f.status.message();
  if (json) {
    Json err = Json::MakeObject();
    err.Set("code", code).Set("message", message).Set("exit_code", f.exit_code);
    std::cout << Json::MakeObject().Set("error", std::move(err)).Dump() << "\n";
  }
  std::cerr << kProgram << ": " << (f.exit_code == kExitUsage ? "" : code + ": ") << message
            << "\n";
  if (f.exit_code == kExitUsage) {
    std::cerr << "(see " << kProgram << (command.empty() ? "" : " ") << command << " --help)\n";
  }
  return f.exit_code;
}

const CommandSpec* FindSpec(std::string_view name) {
  for (const auto* list : {&EntryCommands(), &AdminCommands()}) {
    for (const CommandSpec& c : *list) {
      if (c.name == name) return &c;
    }
  }
  return nullptr;
}

// The index in `args` of the command: the first argument that is neither a global option
// nor a global option's value. args.size() when there is none.
size_t FindCommandIndex(const std::vector<std::string>& args,
                        const po::options_description& globals) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (!a.starts_with("-") || a == "-") return i;
    if (!a.starts_with("--") || a.find('=') != std::string::npos) continue;
    const auto* opt = globals.find_nothrow(a.substr(2), false);
    if (opt != nullptr && opt->semantic()->max_tokens() > 0) ++i;  // skip its value
  }
  return args.size();
}

void PrintCommandList(std::ostream& out, std::string_view title,
                      const std::vector<CommandSpec>& list) {
  out << title << "\n";
  size_t width = 0;
  for (const CommandSpec& c : list) width = std::max(width, c.name.size());
  for (const CommandSpec& c : list) {
    out << "  " << c.name << std::string(width + 2 - c.name.size(), ' ') << c.summary << "\n";
  }
}

void PrintUsage(std::ostream& out, const po::options_description& globals) {
  out << kProgram << ": the command-line client of sealcached.\n\n"
      << "usage: " << kProgram << " [global options] COMMAND [command options]\n\n";
  PrintCommandList(out, "Org commands (an org token):", EntryCommands());
  out << "\n";
  PrintCommandList(out, "Admin commands (the admin token):", AdminCommands());
  out << "\n"
      << globals << "\n"
      << "The token comes from --token, else --token-file, else $SEALCACHE_TOKEN; it is never\n"
      << "printed (except a new one that create-org or issue-token returns, shown once).\n"
      << "Vectors: floats separated by spaces or commas, or a JSON array, from a file or -\n"
      << "(stdin). Durations: 90s, 15m, 2h, 7d, or plain ms.\n"
      << "Output: text, or with --json one JSON document (errors: {\"error\": {...}}).\n"
      << "Exit codes: 0 ok, 1 server error (a get miss included), 2 usage error,\n"
      << "3 connection error.\n"
      << "Run '" << kProgram << " COMMAND --help' for a command's options.\n";
}

void PrintCommandHelp(std::ostream& out, const CommandSpec& spec,
                      const po::options_description& own, const po::options_description& globals) {
  out << "usage: " << kProgram << " [global options] " << spec.name
      << (spec.synopsis.empty() ? "" : " ") << spec.synopsis << "\n\n"
      << spec.summary << "\n";
  if (!spec.details.empty()) out << spec.details << "\n";
  if (!own.options().empty()) out << "\n" << own;
  out << "\n" << globals;
}

Status CheckGlobals(const GlobalOptions& g) {
  if (!g.tls && (!g.tls_ca.empty() || g.tls_no_verify)) {
    return Status::InvalidArgument("--tls-ca and --tls-no-verify need --tls");
  }
  return Status::Ok();
}

int Execute(const GlobalOptions& g, const Action& action, std::string_view command) {
  auto token = ResolveToken(g);
  if (!token.ok()) return PrintFailure({token.status(), kExitUsage}, g.json, command);
  auto connected = Connect(g, *token);
  if (auto* f = std::get_if<Failure>(&connected)) return PrintFailure(*f, g.json, command);
  auto& conn = std::get<Connection>(connected);
  Session session{*conn.client, conn.org, conn.admin};
  auto report = action(session);
  if (!report.ok()) {
    const Status& s = report.status();
    return PrintFailure({s, IsConnectionError(s) ? kExitConnection : kExitServer}, g.json, command);
  }
  std::cout << (g.json ? report->json.Dump() + "\n" : report->text);
  if (!g.json && !report->note.empty()) std::cerr << report->note << "\n";
  std::cout.flush();
  return report->exit_code;
}

int RunCommand(const CommandSpec& spec, std::vector<std::string> args, GlobalOptions& g,
               po::options_description& globals) {
  po::options_description own(std::string(spec.name) + " options");
  spec.add_options(own);
  po::options_description all;
  all.add(own).add(globals);
  po::positional_options_description positional;
  if (!spec.positional.empty()) positional.add(std::string(spec.positional).c_str(), 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    return PrintFailure({Status::InvalidArgument(e.what()), kExitUsage}, g.json, spec.name);
  }
  if (vm.count("help")) {
    PrintCommandHelp(std::cout, spec, own, globals);
    return kExitOk;
  }
  Status checked = CheckGlobals(g);
  if (!checked.ok()) return PrintFailure({checked, kExitUsage}, g.json, spec.name);
  auto action = spec.parse(vm);
  if (!action.ok()) return PrintFailure({action.status(), kExitUsage}, g.json, spec.name);
  return Execute(g, *action, spec.name);
}

// Global options alone (no command): --help, or a usage error.
int RunWithoutCommand(const std::vector<std::string>& args, GlobalOptions& g,
                      const po::options_description& globals) {
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(globals).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    return PrintFailure({Status::InvalidArgument(e.what()), kExitUsage}, g.json, "");
  }
  if (vm.count("help")) {
    PrintUsage(std::cout, globals);
    return kExitOk;
  }
  return PrintFailure({Status::InvalidArgument("no command given"), kExitUsage}, g.json, "");
}

int Main(std::vector<std::string> args) {
  GlobalOptions g;
  po::options_description globals("Global options (before or after the command)");
  AddGlobalOptions(globals, &g);
  const size_t at = FindCommandIndex(args, globals);
  if (at == args.size()) return RunWithoutCommand(args, g, globals);
  const CommandSpec* spec = FindSpec(args[at]);
  if (spec == nullptr) {
    const bool json = std::find(args.begin(), args.end(), "--json") != args.end();
    return PrintFailure({Status::InvalidArgument("unknown command '" + args[at] + "'"), kExitUsage},
                        json, "");
  }
  args.erase(args.begin() + static_cast<std::ptrdiff_t>(at));
  return RunCommand(*spec, std::move(args), g, globals);
}

}  // namespace

void AddNoOptions(po::options_description&) {}

std::string OptionText(const po::variables_map& vm, const std::string& name) {
  return vm.count(name) ? vm[name].as<std::string>() : std::string();
}

}  // namespace sealcache::cli

int main(int argc, char** argv) {
  return sealcache::cli::Main(std::vector<std::string>(argv + 1, argv + argc));
}
