// Runs the real sealcache-cli binary against an in-process sealcached (tests/server's
// fixture) and captures its exit code, stdout and stderr.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "json.h"
#include "server_fixture.h"

namespace sealcache::cli::testing {

struct CliRun {
  int exit_code = -1;
  std::string out, err;
  // stdout parsed as one JSON document; a failed expectation when it is not JSON.
  Json json() const {
    auto doc = Json::Parse(out);
    EXPECT_TRUE(doc.ok()) << doc.status().ToString() << "\nstdout: " << out;
    return doc.ok() ? *doc : Json();
  }
};

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void WriteFile(const std::string& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Runs `sealcache-cli args...` with `input` on stdin and `env` added to the environment.
// Everything exec needs is built before fork: the child only calls async-signal-safe code.
inline CliRun RunCli(const std::string& scratch, std::vector<std::string> args,
                     std::string_view input = "", std::vector<std::string> env = {}) {
  const std::string in_path = scratch + "/cli.stdin", out_path = scratch + "/cli.stdout",
                    err_path = scratch + "/cli.stderr";
  WriteFile(in_path, input);
  args.insert(args.begin(), SEALCACHE_CLI_BINARY);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (char** e = environ; *e != nullptr; ++e) {
    if (!std::string_view(*e).starts_with("SEALCACHE_TOKEN=")) env.push_back(*e);
  }
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int in = open(in_path.c_str(), O_RDONLY);
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0) _exit(126);
    dup2(in, 0), dup2(out, 1), dup2(err, 2);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  CliRun run;
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.out = ReadAll(out_path);
  run.err = ReadAll(err_path);
  return run;
}

class CliTest : public server::testing::ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    StartServer();
    admin_token_file_ = dir_ + "/data/admin.token";
  }

  // Runs the CLI against the test server with the token in `token_file`.
  CliRun Cli(const std::string& token_file, std::vector<std::string> args,
             std::string_view input = "") {
    args.insert(args.begin(),
                {"--port", std::to_string(server_->port()), "--token-file", token_file});
    return RunCli(dir_, std::move(args), input);
  }
  CliRun Admin(std::vector<std::string> args) { return Cli(admin_token_file_, std::move(args)); }

  // Creates `org` through the CLI; returns the path of a file holding its token.
  std::string CreateOrg(const std::string& org, uint32_t dim = kDim) {
    CliRun r = Admin({"--json", "create-org", org, "--dim", std::to_string(dim)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const std::string path = dir_ + "/" + org + ".token";
    WriteFile(path, r.json()["token"].string());
    return path;
  }

  // `v` as a file in the JSON-array syntax; returns its path.
  std::string VectorFile(const std::vector<float>& v, const std::string& name) {
    std::string text = "[";
    for (size_t i = 0; i < v.size(); ++i) text += (i ? ", " : "") + std::to_string(v[i]);
    WriteFile(dir_ + "/" + name, text + "]");
    return dir_ + "/" + name;
  }

  std::string admin_token_file_;
};

}  // namespace sealcache::cli::testing
