// sealcache-cli exit codes and error reporting: 1 server error, 2 usage, 3 connection; help;
// the token never appears in output; TLS.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cli_fixture.h"

namespace sealcache::cli::testing {
namespace {

constexpr const char* kAllCommands[] = {
    "ping",          "put",         "put-batch",    "get",
    "lookup",        "delete",      "invalidate",   "stats",
    "create-org",    "drop-org",    "list-orgs",    "rotate-key",
    "key-status",    "issue-token", "revoke-token", "rotate-master-key",
    "set-org-limits"};

// A port nobody listens on: bound to an ephemeral port, then closed.
std::string DeadPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  return std::to_string(ntohs(addr.sin_port));
}

TEST_F(CliTest, AMissOnGetExits1WithTheServersMessage) {
  const std::string org = CreateOrg("acme");
  CliRun r = Cli(org, {"get", "--digest-of", "never stored"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("NOT_FOUND: "), std::string::npos) << r.err;
  CliRun j = Cli(org, {"--json", "get", "--digest-of", "never stored"});
  EXPECT_EQ(j.exit_code, 1);
  EXPECT_EQ(j.json()["error"]["code"].string(), "NOT_FOUND");
  EXPECT_EQ(j.json()["error"]["exit_code"].number(), 1);
}

TEST_F(CliTest, AServerRefusalExits1) {
  const std::string org = CreateOrg("acme");
  CliRun admin_op = Cli(org, {"list-orgs"});  // an org token cannot run admin commands
  EXPECT_EQ(admin_op.exit_code, 1);
  EXPECT_NE(admin_op.err.find("PERMISSION_DENIED"), std::string::npos) << admin_op.err;
  CliRun wrong_dim =
      Cli(org, {"put", "--digest-of", "x", "--vector", "-", "--payload-text", "p", "--ttl", "1h"},
          "1 2 3");
  EXPECT_EQ(wrong_dim.exit_code, 1);
  EXPECT_NE(wrong_dim.err.find("INVALID_ARGUMENT"), std::string::npos) << wrong_dim.err;
  WriteFile(dir_ + "/bad.token", "sc_0000");
  CliRun bad_token = Cli(dir_ + "/bad.token", {"ping"});
  EXPECT_EQ(bad_token.exit_code, 1);
  EXPECT_NE(bad_token.err.find("UNAUTHENTICATED"), std::string::npos) << bad_token.err;
}

TEST_F(CliTest, UsageErrorsExit2BeforeConnecting) {
  // A dead port: exit 2 (not 3) proves the arguments were refused before any connection.
  const std::string port = DeadPort();
  WriteFile(dir_ + "/t", "sc_x");
  WriteFile(dir_ + "/v", "0.1 0.2");
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"frobnicate"},
      {"get"},                     // no digest
      {"get", "--digest", "abc"},  // not 64 hex chars
      {"get", "--digest-of", "a", "--digest", std::string(64, 'a')},
      {"put", "--digest-of", "a", "--vector", dir_ + "/v", "--payload-text", "p"},  // no ttl
      {"put", "--digest-of", "a", "--vector", dir_ + "/v", "--payload-text", "p", "--ttl", "5y"},
      {"put", "--digest-of", "a", "--vector", "-", "--payload", "-", "--ttl", "1h"},
      {"put", "--digest-of", "a", "--vector", dir_ + "/missing", "--payload-text", "p", "--ttl",
       "1h"},
      {"lookup", "--vector", dir_ + "/v", "--k", "0"},
      {"lookup", "--vector", dir_ + "/v", "--min-score", "2"},
      {"lookup", "--vector", dir_ + "/v", "--k", "many"},
      {"lookup", "--vector", dir_ + "/v", "--bogus"},
      {"invalidate"},
      {"create-org", "acme"},  // no --dim
      {"create-org", "acme", "--dim", "8", "--index", "ivf"},
      {"create-org", "a", "b", "--dim", "8"},  // two positionals
      {"drop-org"},
      {"issue-token"},
      {"put-batch", dir_ + "/v"},  // not JSON lines
      {"ping", "--tls-no-verify"},
  };
  for (const auto& args : bad) {
    std::vector<std::string> full = {"--port", port, "--token-file", dir_ + "/t"};
    full.insert(full.end(), args.begin(), args.end());
    CliRun r = RunCli(dir_, full);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(r.exit_code, 2) << joined << "\nstderr: " << r.err;
    EXPECT_FALSE(r.err.empty()) << joined;
  }
  CliRun vector_stdin = RunCli(
      dir_, {"--port", port, "--token-file", dir_ + "/t", "lookup", "--vector", "-"}, "0.1 zero");
  EXPECT_EQ(vector_stdin.exit_code, 2);
  EXPECT_NE(vector_stdin.err.find("'zero' is not a number"), std::string::npos) << vector_stdin.err;
  CliRun no_token = RunCli(dir_, {"--port", port, "ping"});
  EXPECT_EQ(no_token.exit_code, 2);
  EXPECT_NE(no_token.err.find("no token"), std::string::npos) << no_token.err;
}

TEST_F(CliTest, UsageErrorsWithJsonPrintAJsonErrorDocument) {
  CliRun r = RunCli(dir_, {"--json", "get"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.json()["error"]["code"].string(), "USAGE");
}

TEST_F(CliTest, ADeadPortExits3) {
  const std::string port = DeadPort();
  CliRun r = RunCli(dir_, {"--port", port, "ping"}, "", {"SEALCACHE_TOKEN=sc_whatever"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("cannot connect"), std::string::npos) << r.err;
  CliRun j = RunCli(dir_, {"--port", port, "--json", "stats"}, "", {"SEALCACHE_TOKEN=sc_x"});
  EXPECT_EQ(j.exit_code, 3);
  EXPECT_EQ(j.json()["error"]["code"].string(), "CONNECTION");
}

TEST_F(CliTest, TheTokenInUseIsNeverPrinted) {
  const std::string org_file = CreateOrg("acme");
  const std::string token = ReadAll(org_file), admin = AdminToken();
  const std::vector<std::vector<std::string>> runs = {{"ping"},
                                                      {"--json", "ping"},
                                                      {"stats"},
                                                      {"--json", "stats"},
                                                      {"get", "--digest-of", "x"},
                                                      {"list-orgs"},
                                                      {"--json", "--bogus"}};
  for (const auto& args : runs) {
    for (const auto& [file, secret] : {std::pair{org_file, token}, {admin_token_file_, admin}}) {
      CliRun r = Cli(file, args);
      EXPECT_EQ(r.out.find(secret), std::string::npos) << r.out;
      EXPECT_EQ(r.err.find(secret), std::string::npos) << r.err;
    }
  }
  CliRun by_flag =
      RunCli(dir_, {"--port", std::to_string(server_->port()), "--token", token, "--json", "ping"});
  ASSERT_EQ(by_flag.exit_code, 0) << by_flag.err;
  EXPECT_EQ(by_flag.out.find(token), std::string::npos);
}

TEST_F(CliTest, HelpDocumentsEveryCommand) {
  CliRun top = RunCli(dir_, {"--help"});
  ASSERT_EQ(top.exit_code, 0);
  for (const char* command : kAllCommands) {
    EXPECT_NE(top.out.find(std::string("  ") + command + " "), std::string::npos) << command;
    CliRun help = RunCli(dir_, {command, "--help"});
    EXPECT_EQ(help.exit_code, 0) << command;
    EXPECT_NE(help.out.find(std::string("usage: sealcache-cli [global options] ") + command),
              std::string::npos)
        << help.out;
    EXPECT_NE(help.out.find("--token-file"), std::string::npos) << command;
  }
  EXPECT_NE(RunCli(dir_, {"put", "--help"}).out.find("--payload-text"), std::string::npos);
  EXPECT_NE(top.out.find("Exit codes"), std::string::npos);
}

TEST_F(CliTest, GlobalOptionsWorkAfterTheCommand) {
  CreateOrg("acme");
  CliRun r = RunCli(dir_, {"ping", "--json", "--token-file", dir_ + "/acme.token", "--port",
                           std::to_string(server_->port())});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.json()["org"].string(), "acme");
}

class CliTlsTest : public CliTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    cert_ = dir_ + "/cert.pem";
    const std::string key = dir_ + "/key.pem";
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout " +
        key + " -out " + cert_ + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    auto o = Options();
    o.tls_cert_file = cert_;
    o.tls_key_file = key;
    StartServer(o);
    admin_token_file_ = dir_ + "/data/admin.token";
  }
  std::string cert_;
};

TEST_F(CliTlsTest, TlsWithTheServersCertificateWorksAndUntrustedFailsWithExit3) {
  CliRun trusted = Admin({"--tls", "--tls-ca", cert_, "--json", "ping"});
  ASSERT_EQ(trusted.exit_code, 0) << trusted.err;
  EXPECT_TRUE(trusted.json()["admin"].boolean());
  CliRun untrusted = Admin({"--tls", "--tls-ca", "/etc/ssl/certs/ca-certificates.crt", "ping"});
  EXPECT_EQ(untrusted.exit_code, 3) << untrusted.err;
  CliRun no_verify = Admin({"--tls", "--tls-no-verify", "ping"});
  EXPECT_EQ(no_verify.exit_code, 0) << no_verify.err;
  CliRun plaintext = Admin({"ping"});
  EXPECT_EQ(plaintext.exit_code, 3) << plaintext.err;
}

}  // namespace
}  // namespace sealcache::cli::testing
