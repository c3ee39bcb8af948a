// Real key servers for the `keys` tests, each in a temporary directory its test owns: a
// SoftHSM2 token with an AES-256 key (softhsm2-util, pkcs11-tool), and a PyKMIP server on a
// loopback port with a CA, server and client certificates made here (openssl).
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "sealcache/client/client.h"
#include "sealcache/clock.h"
#include "sealcache/crypto/keystore.h"
#include "sealcache/crypto/master_key.h"

namespace sealcache::test {

// Runs a command line; returns its exit code. Output goes to `log`.
inline int RunCommand(const std::string& command, const std::string& log) {
  const int rc = std::system((command + " >>" + log + " 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Loads the master key of `spec` as sealcached would for data directory `dir` (envelopes
// and keystore in <dir>/keys); read-only tools pass create = false.
inline Result<crypto::LoadedMasterKey> LoadMasterKeyIn(const std::string& dir,
                                                       const std::string& spec, bool create) {
  crypto::MasterKeyOptions o;
  o.envelope_dir = dir + "/keys";
  o.keystore_path = dir + "/keys/keystore";
  o.create_envelope = create;
  auto p = crypto::MasterKeyProviderFromSpec(spec, o);
  if (!p.ok()) return p.status();
  return (*p)->Load();
}

// The keystore <dir>/keys/keystore under `key`, as a first start makes it.
inline void MakeKeystoreIn(const std::string& dir, const crypto::SecretBytes& key) {
  static const SystemClock clock;
  crypto::KeystoreOptions o;
  o.clock = &clock;
  auto ks = crypto::Keystore::Open(dir + "/keys/keystore", key, o);
  ASSERT_TRUE(ks.ok()) << ks.status().ToString();
}

// An entry of the keys tests: digest byte 0 = `id`, an 8-float vector, `text` as payload.
inline Status PutText(client::Client& c, uint8_t id, const std::string& text) {
  const std::vector<float> vector(8, 0.5f);
  client::PutArgs put;
  put.digest[0] = id;
  put.vector = vector;
  put.payload = {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
  put.ttl_ms = 3'600'000;
  return c.Put(put).status();
}

// The payload of entry `id` as text, or "<why not>".
inline std::string GetText(client::Client& c, uint8_t id) {
  client::Digest d{};
  d[0] = id;
  auto got = c.Get(d);
  if (!got.ok()) return "<" + got.status().ToString() + ">";
  return std::string(got->payload.begin(), got->payload.end());
}

inline int EnvelopesIn(const std::string& dir, const std::string& kind) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) n += e.path().extension() == kind;
  return n;
}

// A SoftHSM2 token labelled "sealcache" with the AES-256 key "sealcache-master" (sensitive),
// in <dir>/tokens. This process and the children given conf_env() see it.
class SoftHsmToken {
 public:
  static constexpr char kModule[] = "/usr/lib/softhsm/libsofthsm2.so";
  static constexpr char kPin[] = "pin-Q7x9Zt";  // never appears in a log by chance

  static bool Installed() {
    return std::filesystem::exists(kModule) && std::filesystem::exists("/usr/bin/softhsm2-util") &&
           std::filesystem::exists("/usr/bin/pkcs11-tool");
  }

  // Makes the token; false (with the tools' output in Log()) if a tool failed.
  bool Init(const std::string& dir) {
    dir_ = dir;
    log_ = dir + "/softhsm.log";
    std::filesystem::create_directories(dir + "/tokens");
    std::ofstream(dir + "/softhsm2.conf")
        << "directories.tokendir = " << dir << "/tokens\nobjectstore.backend = file\n";
    // This process loads the module too: it reads the configuration at C_Initialize.
    setenv("SOFTHSM2_CONF", (dir + "/softhsm2.conf").c_str(), 1);
    std::ofstream(pin_path()) << kPin << "\n";
    chmod(pin_path().c_str(), 0600);
    return RunCommand(
               "softhsm2-util --init-token --free --label sealcache --so-pin 87654321 --pin " +
                   std::string(kPin),
               log_) == 0 &&
           Keygen("sealcache-master", "AES:32") == 0;
  }

  int Keygen(const std::string& label, const std::string& type) {
    return RunCommand(Tool() + " --login --pin " + kPin + " --keygen --key-type " + type +
                          " --label " + label + " --sensitive",
                      log_);
  }
  // pkcs11-tool on this token, logged in.
  int Run(const std::string& args) {
    return RunCommand(Tool() + " --login --pin " + kPin + " " + args, log_);
  }
  std::string Tool() const {
    return std::string("pkcs11-tool --module ") + kModule + " --token-label sealcache";
  }
  std::string Uri(const std::string& object = "sealcache-master",
                  const std::string& pin_source = "") const {
    return "pkcs11:token=sealcache;object=" + object + "?module-path=" + kModule +
           "&pin-source=" + (pin_source.empty() ? "file:" + pin_path() : pin_source);
  }
  std::string pin_path() const { return dir_ + "/pin"; }
  std::string conf_env() const { return "SOFTHSM2_CONF=" + dir_ + "/softhsm2.conf"; }
  std::string Log() const { return ReadFile(log_); }
  const std::string& log_path() const { return log_; }

 private:
  std::string dir_, log_;
};

// A PyKMIP server (Debian's python3-pykmip) on 127.0.0.1 with mutual TLS 1.2: its own CA, a
// server certificate for IP 127.0.0.1, and a client certificate (CN=sealcache, mode 0600 key)
// that owns the keys made with Admin(). A second, unrelated CA and client certificate are
// made too, for the refusals.
class PyKmipServer {
 public:
  static constexpr char kServer[] = "/usr/bin/pykmip-server";
  static constexpr char kPython[] = "/usr/bin/python3";

  static bool Installed() {
    return std::filesystem::exists(kServer) && std::filesystem::exists(kPython) &&
           std::system("/usr/bin/python3 -c 'import kmip' >/dev/null 2>&1") == 0;
  }

  ~PyKmipServer() { Stop(); }

  // Makes the certificates and starts the server; false (see Log()) if anything failed.
  bool Init(const std::string& dir) {
    dir_ = dir;
    log_ = dir + "/kmip-tools.log";
    std::filesystem::create_directories(dir + "/policies");
    const std::string ext = dir + "/ext";
    auto make = [&](const std::string& name, const std::string& subject, const std::string& ca,
                    const std::string& extensions) {
      std::ofstream(ext) << extensions << "\n";
      return RunCommand(
                 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " +
                     dir + "/" + name + ".key -out " + dir + "/" + name + ".csr -subj " + subject,
                 log_) == 0 &&
             RunCommand("openssl x509 -req -in " + dir + "/" + name + ".csr -CA " + dir + "/" + ca +
                            ".pem -CAkey " + dir + "/" + ca + ".key -CAcreateserial -out " + dir +
                            "/" + name + ".pem -days 2 -extfile " + ext,
                        log_) == 0 &&
             chmod((dir + "/" + name + ".key").c_str(), 0600) == 0;
    };
    auto make_ca = [&](const std::string& name) {
      return RunCommand(
                 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                 "-keyout " +
                     dir + "/" + name + ".key -out " + dir + "/" + name +
                     ".pem -days 2 -subj /CN=" + name,
                 log_) == 0;
    };
    if (!make_ca("ca") || !make_ca("rogue-ca") ||
        !make("server", "/CN=127.0.0.1", "ca",
              "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth") ||
        !make("client", "/CN=sealcache", "ca", "extendedKeyUsage=clientAuth") ||
        !make("rogue-client", "/CN=sealcache", "rogue-ca", "extendedKeyUsage=clientAuth")) {
      return false;
    }
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port_ = a.local_endpoint().port();
    a.close();
    std::ofstream(dir + "/server.conf")
        << "[server]\nhostname=127.0.0.1\nport=" << port_ << "\ncertificate_path=" << dir
        << "/server.pem\nkey_path=" << dir << "/server.key\nca_path=" << dir
        << "/ca.pem\nauth_suite=TLS1.2\npolicy_path=" << dir
        << "/policies\nenable_tls_client_auth=True\ndatabase_path=" << dir << "/pykmip.db\n";
    return Start();
  }

  // Starts (again) on the same port and database; true once it accepts connections.
  bool Start() {
    if (pid_ > 0) return true;
    pid_ = fork();
    if (pid_ == 0) {
      const std::string out = dir_ + "/pykmip-server.out";
      std::freopen(out.c_str(), "a", stdout);
      std::freopen(out.c_str(), "a", stderr);
      execl(kPython, kPython, kServer, "-f", (dir_ + "/server.conf").c_str(), "-l",
            (dir_ + "/pykmip-server.log").c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      boost::asio::io_context io;
      boost::asio::ip::tcp::socket s(io);
      boost::system::error_code ec;
      s.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
      if (!ec) return true;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // Stops it as its documentation says (SIGINT); SIGKILL if it has not ended in 10 s.
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGINT);
    for (int i = 0; i < 200; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  // Runs kmip_keys.py (an operator's key administration with PyKMIP's own client) as the
  // client certificate's owner; its output's first line ("" on failure, see Log()).
  std::string Admin(const std::string& command) {
    const std::string out = dir_ + "/admin.out";
    const int rc =
        std::system((std::string(kPython) + " " + KMIP_KEYS_SCRIPT + " 127.0.0.1 " +
                     std::to_string(port_) + " " + file("client.pem") + " " + file("client.key") +
                     " " + file("ca.pem") + " " + command + " >" + out + " 2>>" + log_)
                        .c_str());
    std::string line;
    std::ifstream in(out);
    std::getline(in, line);
    return WIFEXITED(rc) && WEXITSTATUS(rc) == 0 ? line : "";
  }

  // A kmip:// spec for `key_id`, with the TLS files as query parameters unless `bare`.
  std::string Uri(const std::string& key_id, bool bare = false) const {
    std::string uri = "kmip://127.0.0.1:" + std::to_string(port_) + "/" + key_id;
    if (!bare) {
      uri += "?client-cert=" + file("client.pem") + "&client-key=" + file("client.key") +
             "&ca=" + file("ca.pem");
    }
    return uri;
  }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }
  uint16_t port() const { return port_; }
  std::string Log() const {
    return ReadFile(log_) + ReadFile(dir_ + "/pykmip-server.out") +
           ReadFile(dir_ + "/pykmip-server.log");
  }

 private:
  std::string dir_, log_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace sealcache::test
