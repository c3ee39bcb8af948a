// sealcache-bench: load generator over the real protocol. Loads O orgs x N entries, then
// runs lookups (and optional gets/puts) from C connections for a bounded time, and reports
// throughput, latency percentiles, hit rate, false hits, recall@1 against exact search,
// server RSS and bytes on disk per entry. --compare-plain runs the same workload against a
// plaintext benchmark server in the same invocation, alternating rounds, and prints the
// encrypted/plain ratios. See bench/README.md.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "get_bench.h"
#include "sealcache/client/client.h"
#include "sealcache/crypto/master_key.h"
#include "workload.h"

namespace po = boost::program_options;
namespace sealcache::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;
// The lowest min_score a Lookup takes (cosine similarity): every one of the k nearest.
constexpr float kNoThreshold = -1.0f;

struct Options {
  WorkloadOptions workload;
  std::string host = "127.0.0.1";
  uint16_t port = 7420;
  std::string admin_token_file;
  bool spawn = false;
  std::string sealcached = "build/server/sealcached";
  bool compare_plain = false;
  // Runs the same lookups as FT.SEARCH over the Redis-protocol front (hashes loaded with
  // HSET into orgs of their own on the same server) beside native Lookups; prints ratios.
  bool compare_resp_search = false;
  // The FT.SEARCH query: "range" is RedisVL's semantic-cache check (a VECTOR_RANGE of the
  // distance min_score means, nearest first, LIMIT k), against Lookups with min_score;
  // "knn" is LangChain's vector-store search (`*=>[KNN k ...]`, no threshold), against
  // Lookups of the k nearest with no threshold. Hits are counted alike: the top answer's
  // score >= min_score.
  std::string resp_query = "range";
  uint32_t connections = 16;
  double duration_s = 20;
  uint64_t max_requests = 0;
  uint32_t rounds = 2;
  double get_pct = 0, put_pct = 0, fresh_pct = 10;
  uint32_t k_max = 5;
  float min_score = 0.9f;
  double target_qps = 0;  // 0 = as fast as possible (closed loop)
  uint32_t recall_sample = 200;
  uint32_t batch = 256;
  bool skip_load = false;
  bool no_wait_index = false;
  bool json = false;
  int server_threads = 0;
  // Writes the workload's stored vectors and round 1's queries to this directory for an
  // in-process peer (bench/faiss_peer.py) and exits.
  std::string export_dir;
  // Exact Gets of org 0's entries as redis-benchmark sends GETs (get_bench.h): `rounds`
  // passes of max_requests (default 200,000) Gets, `pipeline` per connection at a time,
  // after loading the entries without vectors (exact-only, as SET stores them).
  bool get_bench = false;
  uint32_t pipeline = 1;
};

// ---- a spawned server -----------------------------------------------------------------------

struct SpawnedServer {
  pid_t pid = -1;
  std::string dir;
  uint16_t port = 0;
  uint16_t resp_port = 0;
  ~SpawnedServer() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
  // The admin token the server wrote on its first start.
  std::string AdminToken() const {
    std::ifstream in(dir + "/data/admin.token");
    std::string token;
    in >> token;
    return token;
  }
  // CPU seconds the server has used (user and system, every thread): per request, steadier
  // than a rate on a shared machine.
  double CpuSeconds() const {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // After the command name (which may hold spaces, in parentheses): state, then fields 4-13,
    // then utime and stime in clock ticks.
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string skip;
    for (int i = 3; i <= 13; ++i) fields >> skip;
    double utime = 0, stime = 0;
    fields >> utime >> stime;
    return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  uint64_t RssBytes() const {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
    }
    return 0;
  }
  uint64_t DiskBytes() const {
    uint64_t total = 0;
    std::error_code ec;
    for (auto& e : std::filesystem::recursive_directory_iterator(dir + "/data", ec)) {
      if (e.is_regular_file(ec)) total += e.file_size(ec);
    }
    return total;
  }
};

// A loopback port the kernel found free a moment ago (bound to port 0, then released). A
// port nobody listens on may still be another socket's local port (an outgoing connection),
// which the server could then not bind; Spawn retries on another port if that happens.
uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

// Starts the server once on s.port; true once it accepts connections, false if it exited
// (a port taken meanwhile, say) or did not listen within `timeout`.
bool SpawnOnce(SpawnedServer& server, const Options& o, bool plaintext,
               std::chrono::seconds timeout) {
  SpawnedServer* s = &server;
  s->pid = fork();
  if (s->pid == 0) {
    if (plaintext) setenv("SEALCACHE_ALLOW_PLAINTEXT_BENCHMARK", "1", 1);
    std::string data = s->dir + "/data", key = "file:" + s->dir + "/master.key";
    std::string port = std::to_string(s->port), threads = std::to_string(o.server_threads);
    std::string log = s->dir + "/sealcached.log";
    freopen(log.c_str(), "w", stderr);
    if (plaintext) {
      execl(o.sealcached.c_str(), o.sealcached.c_str(), "--data", data.c_str(), "--master-key",
            key.c_str(), "--port", port.c_str(), "--threads", threads.c_str(),
            "--insecure-plaintext-for-benchmarks", static_cast<char*>(nullptr));
    } else if (s->resp_port != 0) {
      std::string resp_port = std::to_string(s->resp_port);
      execl(o.sealcached.c_str(), o.sealcached.c_str(), "--data", data.c_str(), "--master-key",
            key.c_str(), "--port", port.c_str(), "--threads", threads.c_str(), "--resp",
            "--resp-port", resp_port.c_str(), static_cast<char*>(nullptr));
    } else {
      execl(o.sealcached.c_str(), o.sealcached.c_str(), "--data", data.c_str(), "--master-key",
            key.c_str(), "--port", port.c_str(), "--threads", threads.c_str(),
            static_cast<char*>(nullptr));
    }
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    client::ClientOptions co;
    co.port = s->port;
    // An answer, not only a connect: a connect to a port nobody listens on yet can succeed as
    // a TCP self-connect. Before Hello the server answers a Ping with Unauthenticated.
    if (auto c = client::Client::Connect(co); c.ok()) {
      auto pong = (*c)->Ping();
      if (pong.ok() || pong.status().code() == Status::Code::kUnauthenticated) return true;
    }
    if (waitpid(s->pid, nullptr, WNOHANG) == s->pid) {
      s->pid = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(s->pid, SIGKILL);
  waitpid(s->pid, nullptr, 0);
  s->pid = -1;
  return false;
}

std::unique_ptr<SpawnedServer> Spawn(const Options& o, bool plaintext) {
  auto s = std::make_unique<SpawnedServer>();
  s->dir = (std::filesystem::temp_directory_path() / "sealcache-bench-XXXXXX").string();
  if (mkdtemp(s->dir.data()) == nullptr) return nullptr;
  if (!crypto::CreateMasterKeyFile(s->dir + "/master.key").ok()) return nullptr;
  constexpr int kAttempts = 3;
  constexpr auto kStartTimeout = std::chrono::seconds(60);
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    s->port = FreePort();
    if (o.compare_resp_search) s->resp_port = FreePort();
    if (SpawnOnce(*s, o, plaintext, kStartTimeout)) return s;
    std::ifstream in(s->dir + "/sealcached.log");
    const std::string log{std::istreambuf_iterator<char>(in), {}};
    std::fprintf(stderr, "bench: sealcached did not start (attempt %d of %d); its log:\n%s\n",
                 attempt, kAttempts, log.c_str());
    std::filesystem::remove_all(s->dir + "/data");
  }
  return nullptr;
}

// ---- results ------------------------------------------------------------------------------

struct OpStats {
  std::vector<uint32_t> latencies_us;
  uint64_t errors = 0;
  void Merge(const OpStats& o) {
    latencies_us.insert(latencies_us.end(), o.latencies_us.begin(), o.latencies_us.end());
    errors += o.errors;
  }
  double Percentile(double p) {
    if (latencies_us.empty()) return 0;
    size_t i =
        std::min(latencies_us.size() - 1, static_cast<size_t>(p / 100.0 * latencies_us.size()));
    std::nth_element(latencies_us.begin(), latencies_us.begin() + i, latencies_us.end());
    return latencies_us[i] / 1000.0;
  }
};

struct RoundResult {
  double seconds = 0;
  // With puts: seconds from the end of the round until its new vectors were in HNSW graphs
  // (-1: not waited for).
  double index_settle_s = -1;
  double server_cpu_s = -1;  // the spawned server's CPU seconds in the round (-1: not spawned)
  OpStats lookup, get, put;
  uint64_t expected_hits = 0, hits_on_expected = 0, false_hits = 0, fresh = 0;

  // Adds another connection's or round's requests (not its seconds).
  void Merge(const RoundResult& o) {
    lookup.Merge(o.lookup);
    get.Merge(o.get);
    put.Merge(o.put);
    expected_hits += o.expected_hits;
    hits_on_expected += o.hits_on_expected;
    false_hits += o.false_hits;
    fresh += o.fresh;
  }
};

// ---- a minimal Redis-protocol client, for --compare-resp-search ----------------------------

// Blocking RESP2: commands as arrays of bulk strings, replies read whole and flattened: every
// scalar, at any depth, in order (a nil as "").
class RespConn {
 public:
  static std::unique_ptr<RespConn> Connect(uint16_t port, const std::string& user,
                                           const std::string& password) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return nullptr;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd);
      return nullptr;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto c = std::unique_ptr<RespConn>(new RespConn(fd));
    std::vector<std::string> reply;
    std::string error;
    if (!c->Call({"AUTH", user, password}, &reply, &error)) {
      std::fprintf(stderr, "bench: RESP AUTH: %s\n", error.c_str());
      return nullptr;
    }
    return c;
  }
  ~RespConn() { close(fd_); }

  void Append(const std::vector<std::string_view>& args) {
    out_ += "*" + std::to_string(args.size()) + "\r\n";
    for (auto a : args) {
      out_ += "$" + std::to_string(a.size()) + "\r\n";
      out_.append(a);
      out_ += "\r\n";
    }
  }
  bool Flush() {
    size_t sent = 0;
    while (sent < out_.size()) {
      ssize_t n = send(fd_, out_.data() + sent, out_.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    out_.clear();
    return true;
  }
  // One reply: false on an error reply (its text in `error`) or a broken connection.
  bool Read(std::vector<std::string>* top, std::string* error) {
    top->clear();
    return ReadValue(top, error, 0);
  }
  bool Call(const std::vector<std::string_view>& args, std::vector<std::string>* top,
            std::string* error) {
    Append(args);
    return Flush() && Read(top, error);
  }

 private:
  explicit RespConn(int fd) : fd_(fd) {}
  bool Fill() {
    char buf[1 << 16];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    in_.append(buf, static_cast<size_t>(n));
    return true;
  }
  bool Line(std::string* line) {
    size_t end;
    while ((end = in_.find("\r\n", pos_)) == std::string::npos) {
      if (!Fill()) return false;
    }
    line->assign(in_, pos_, end - pos_);
    pos_ = end + 2;
    return true;
  }
  bool ReadValue(std::vector<std::string>* top, std::string* error, int depth) {
    if (depth == 0 && pos_ > (1u << 20)) in_.erase(0, pos_), pos_ = 0;
    std::string line;
    if (!Line(&line) || line.empty()) return false;
    const std::string body = line.substr(1);
    switch (line[0]) {
      case '-':
        *error = body;
        return false;
      case '+':
      case ':':
        top->push_back(body);
        return true;
      case '$': {
        const long n = std::stol(body);
        if (n < 0) {
          top->push_back("");
          return true;
        }
        while (in_.size() - pos_ < static_cast<size_t>(n) + 2) {
          if (!Fill()) return false;
        }
        top->push_back(in_.substr(pos_, static_cast<size_t>(n)));
        pos_ += static_cast<size_t>(n) + 2;
        return true;
      }
      case '*': {
        const long n = std::stol(body);
        for (long i = 0; i < n; ++i) {
          if (!ReadValue(top, error, depth + 1)) return false;
        }
        return true;
      }
      default:
        *error = "unexpected reply " + line;
        return false;
    }
  }

  int fd_;
  std::string out_, in_;
  size_t pos_ = 0;
};

std::string_view FloatBytes(const std::vector<float>& v) {
  return {reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)};
}
constexpr char kRespIndex[] = "bench";
std::string RespKey(uint32_t entry) { return "e:" + std::to_string(entry); }

// ---- the target ---------------------------------------------------------------------------

class Target {
 public:
  Target(std::string name, std::string host, uint16_t port, std::string admin_token,
         uint16_t resp_port = 0)
      : name_(std::move(name)),
        host_(std::move(host)),
        port_(port),
        admin_(std::move(admin_token)),
        resp_port_(resp_port) {}

  // A target whose lookups are FT.SEARCH over the Redis front (orgs "r" + the usual name).
  bool resp() const { return resp_port_ != 0; }
  std::string OrgName(const Workload& w, uint32_t org) const {
    return (resp() ? "r" : "") + w.OrgName(org);
  }
  std::unique_ptr<RespConn> ConnectResp(const Workload& w, uint32_t org) const {
    return RespConn::Connect(resp_port_, OrgName(w, org), tokens_[org]);
  }

  std::unique_ptr<client::Client> Connect(const std::string& token) const {
    client::ClientOptions o;
    o.host = host_;
    o.port = port_;
    auto c = client::Client::Connect(o);
    if (!c.ok()) {
      std::fprintf(stderr, "bench: %s\n", c.status().ToString().c_str());
      return nullptr;
    }
    auto h = (*c)->Hello(token);
    if (!h.ok()) {
      std::fprintf(stderr, "bench: hello: %s\n", h.status().ToString().c_str());
      return nullptr;
    }
    return std::move(c).value();
  }

  bool PrepareOrgs(const Workload& w) {
    auto admin = Connect(admin_);
    if (!admin) return false;
    for (uint32_t o = 0; o < w.options().orgs; ++o) {
      auto created = admin->CreateOrg(OrgName(w, o), w.options().dim);
      if (created.ok()) {
        tokens_.push_back(created->token);
      } else if (created.status().code() == Status::Code::kAlreadyExists) {
        auto issued = admin->IssueToken(OrgName(w, o));
        if (!issued.ok()) return false;
        tokens_.push_back(issued->first);
      } else {
        std::fprintf(stderr, "bench: create org: %s\n", created.status().ToString().c_str());
        return false;
      }
    }
    return true;
  }

  const std::string& token(uint32_t org) const { return tokens_[org]; }
  const std::string& name() const { return name_; }

 private:
  std::string name_, host_;
  uint16_t port_;
  std::string admin_;
  uint16_t resp_port_;
  std::vector<std::string> tokens_;
};

// The live progress line: "load" counts entries, "query" counts requests.
void Progress(const char* phase, uint64_t done, double seconds, double p99_ms) {
  const bool load = std::string_view(phase) == "load";
  std::fprintf(stderr, "\r%-6s %10llu %-8s %9.0f/s", phase, static_cast<unsigned long long>(done),
               load ? "entries" : "requests", seconds > 0 ? done / seconds : 0.0);
  if (!load) std::fprintf(stderr, "  p99 so far %7.2f ms", p99_ms);
  std::fprintf(stderr, "   ");
  std::fflush(stderr);
}

// Loads every entry from `connections` threads in (org, [first, last)) chunks of `batch`
// entries (a chunk never spans orgs): each thread makes its connections with `connect(org)`
// and loads a chunk with `load(conn, org, first, last)`, false on failure. Returns entries
// per second.
template <typename Connect, typename LoadChunk>
double LoadInChunks(const Workload& w, const Options& o, Connect connect, LoadChunk load) {
  const uint32_t orgs = w.options().orgs, n = w.options().entries;
  const uint64_t chunks_per_org = (n + o.batch - 1) / o.batch;
  const uint64_t chunks = orgs * chunks_per_org;
  std::atomic<uint64_t> next{0}, done{0}, errors{0};
  auto start = SteadyClock::now();
  std::vector<std::thread> threads;
  for (uint32_t c = 0; c < o.connections; ++c) {
    threads.emplace_back([&, c] {
      std::vector<decltype(connect(0))> conns(orgs);
      for (uint32_t org = 0; org < orgs; ++org) conns[org] = connect(org);
      for (uint64_t chunk; (chunk = next.fetch_add(1)) < chunks;) {
        const uint32_t org = static_cast<uint32_t>(chunk / chunks_per_org);
        const uint32_t first = static_cast<uint32_t>((chunk % chunks_per_org) * o.batch);
        const uint32_t last = std::min<uint32_t>(n, first + o.batch);
        if (!conns[org] || !load(*conns[org], org, first, last)) errors++;
        done += last - first;
        if (c == 0) {
          Progress("load", done, std::chrono::duration<double>(SteadyClock::now() - start).count(),
                   0);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::fprintf(stderr, "\n");
  if (errors) {
    std::fprintf(stderr, "bench: %llu load batches failed\n",
                 static_cast<unsigned long long>(errors.load()));
  }
  return done / std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// Loads every entry over the Redis front: an index per org, then pipelined HSETs of the
// payload and the vector, `batch` per round trip. Returns entries per second.
double LoadResp(const Target& t, const Workload& w, const Options& o) {
  const std::string dim = std::to_string(w.options().dim);
  for (uint32_t org = 0; org < w.options().orgs; ++org) {
    auto c = t.ConnectResp(w, org);
    std::vector<std::string> reply;
    std::string error;
    if (!c || !c->Call({"FT.CREATE", kRespIndex, "ON",   "HASH", "PREFIX",          "1",     "e:",
                        "SCHEMA",    "payload",  "TEXT", "v",    "VECTOR",          "HNSW",  "6",
                        "TYPE",      "FLOAT32",  "DIM",  dim,    "DISTANCE_METRIC", "COSINE"},
                       &reply, &error)) {
      std::fprintf(stderr, "bench: FT.CREATE: %s\n", error.c_str());
      return 0;
    }
  }
  return LoadInChunks(
      w, o, [&](uint32_t org) { return t.ConnectResp(w, org); },
      [&](RespConn& conn, uint32_t org, uint32_t first, uint32_t last) {
        for (uint32_t i = first; i < last; ++i) {
          const auto v = w.EntryVector(org, i);
          const auto p = w.Payload(org, i);
          conn.Append({"HSET", RespKey(i), "payload", p, "v", FloatBytes(v)});
        }
        std::vector<std::string> reply;
        std::string error;
        bool ok = conn.Flush();
        for (uint32_t i = first; ok && i < last; ++i) ok = conn.Read(&reply, &error);
        return ok;
      });
}

// Loads every entry with PutBatch from `connections` threads (without vectors for
// --get-bench: exact-only entries). Returns entries per second.
double Load(const Target& t, const Workload& w, const Options& o) {
  if (t.resp()) return LoadResp(t, w, o);
  return LoadInChunks(
      w, o, [&](uint32_t org) { return t.Connect(t.token(org)); },
      [&](client::Client& conn, uint32_t org, uint32_t first, uint32_t last) {
        std::vector<std::vector<float>> vecs(last - first);
        std::vector<client::PutArgs> items;
        if (!o.get_bench) {
          for (uint32_t i = first; i < last; ++i) vecs[i - first] = w.EntryVector(org, i);
        }
        for (uint32_t i = first; i < last; ++i) {
          auto p = w.Payload(org, i);
          items.push_back({w.DigestOf(org, i),
                           vecs[i - first],
                           {reinterpret_cast<const uint8_t*>(p.data()), p.size()},
                           int64_t{7} * 24 * 3600 * 1000,
                           ""});
        }
        auto r = conn.PutBatch(items);
        return r.ok() && std::all_of(r->begin(), r->end(), [](const Status& s) { return s.ok(); });
      });
}

// Lookups a round sends, drawn before its clock starts: drawing a 384-d near-duplicate
// costs the client ~35 us of Gaussian sampling, which on a small machine would take CPU from
// the server being measured.
struct Query {
  uint32_t entry;
  bool fresh;
  uint32_t k;
  std::vector<float> vector;
};
constexpr size_t kQueriesPerOrg = 2048;

std::vector<std::vector<Query>> DrawQueries(const Workload& w, const Options& o,
                                            uint64_t round_seed) {
  std::vector<std::vector<Query>> pools(w.options().orgs);
  std::mt19937_64 rng(round_seed * 104729 + 17);
  std::uniform_real_distribution<double> pct(0, 100);
  for (uint32_t org = 0; org < w.options().orgs; ++org) {
    for (size_t i = 0; i < kQueriesPerOrg; ++i) {
      Query q;
      q.entry = static_cast<uint32_t>(rng() % w.options().entries);
      q.fresh = pct(rng) < o.fresh_pct;
      q.vector = q.fresh ? w.Fresh(org, rng()) : w.NearDuplicate(org, q.entry, rng());
      q.k = 1 + static_cast<uint32_t>(rng() % o.k_max);
      pools[org].push_back(std::move(q));
    }
  }
  return pools;
}

RoundResult RunRound(const Target& t, const Workload& w, const Options& o, uint64_t round_seed) {
  const std::vector<std::vector<Query>> queries = DrawQueries(w, o, round_seed);
  RoundResult total;
  std::mutex mu;
  std::atomic<uint64_t> requests{0};
  std::atomic<bool> stop{false};
  const auto start = SteadyClock::now();
  const auto deadline = start + std::chrono::duration<double>(o.duration_s);
  std::vector<std::thread> threads;
  for (uint32_t c = 0; c < o.connections; ++c) {
    threads.emplace_back([&, c] {
      const uint32_t org = c % w.options().orgs;
      auto conn = t.Connect(t.token(org));
      if (!conn) return;
      std::unique_ptr<RespConn> resp = t.resp() ? t.ConnectResp(w, org) : nullptr;
      if (t.resp() && !resp) return;
      std::vector<std::string> reply;
      std::string resp_error;
      const std::string radius = std::to_string(1.0 - o.min_score);
      const bool knn = o.resp_query == "knn";
      std::mt19937_64 rng(round_seed * 7919 + c);
      std::uniform_real_distribution<double> pct(0, 100);
      RoundResult mine;
      uint64_t put_next = uint64_t{w.options().entries} + round_seed * 1'000'000 + c * 100'000;
      size_t next_query = rng() % kQueriesPerOrg;
      const double interval = o.target_qps > 0 ? o.connections / o.target_qps : 0;
      // Paced connections start out of phase, so the server sees an even stream rather
      // than all of them at once every interval.
      auto next_send =
          SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                   std::chrono::duration<double>(interval * c / o.connections));
      while (!stop) {
        if (interval > 0) {
          next_send += std::chrono::duration_cast<SteadyClock::duration>(
              std::chrono::duration<double>(interval));
          std::this_thread::sleep_until(next_send);
        }
        const double roll = pct(rng);
        const uint32_t entry = static_cast<uint32_t>(rng() % w.options().entries);
        auto t0 = SteadyClock::now();
        if (roll < o.get_pct) {
          auto e = conn->Get(w.DigestOf(org, entry));
          auto us = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - t0);
          mine.get.latencies_us.push_back(static_cast<uint32_t>(us.count()));
          if (!e.ok()) mine.get.errors++;
        } else if (roll < o.get_pct + o.put_pct) {
          uint64_t id = put_next++;
          auto v = w.EntryVector(org, static_cast<uint32_t>(id));
          auto p = w.Payload(org, static_cast<uint32_t>(id));
          auto r = conn->Put({w.DigestOf(org, static_cast<uint32_t>(id)),
                              v,
                              {reinterpret_cast<const uint8_t*>(p.data()), p.size()},
                              3'600'000,
                              ""});
          auto us = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - t0);
          mine.put.latencies_us.push_back(static_cast<uint32_t>(us.count()));
          if (!r.ok()) mine.put.errors++;
        } else {
          const Query& q = queries[org][next_query++ % kQueriesPerOrg];
          const bool fresh = q.fresh;
          // The top hit with a score >= min_score: true and whether it is q.entry's.
          std::optional<bool> top_is_source;
          bool failed = false;
          if (resp) {
            // What a semantic cache asks (range, RedisVL's check): the entries within the
            // distance that min_score means, nearest first, at most k; what a vector store
            // asks (knn, LangChain's RedisVectorStore): the k nearest, whatever their
            // distance. Both with payload and distance.
            const std::string k = std::to_string(q.k);
            const std::string query = knn ? "*=>[KNN " + k + " @v $q AS d]"
                                          : "@v:[VECTOR_RANGE $r $q]=>{$YIELD_DISTANCE_AS: d}";
            const std::string_view vector = FloatBytes(q.vector);
            std::vector<std::string_view> args = {
                "FT.SEARCH",     kRespIndex, query, "RETURN", "2", "payload", "d",
                "SORTBY",        "d",        "ASC", "LIMIT",  "0", k,         "PARAMS",
                knn ? "2" : "4", "q",        vector};
            if (!knn) args.insert(args.end(), {"r", radius});
            args.insert(args.end(), {"DIALECT", "2"});
            failed = !resp->Call(args, &reply, &resp_error);
            // Flattened: total, key, "payload", payload, "d", distance, ...: the nearest
            // first. A hit counts as Lookup's does, with a score (1 - distance) >= min_score.
            if (!failed && reply.size() >= 6 && reply[0] != "0" && reply[4] == "d" &&
                1.0 - std::stod(reply[5]) >= o.min_score) {
              top_is_source = reply[1] == RespKey(q.entry);
            }
          } else {
            auto hits = conn->Lookup({.vector = q.vector,
                                      .k = q.k,
                                      .min_score = knn ? kNoThreshold : o.min_score,
                                      .name_space = {}});
            failed = !hits.ok();
            if (!failed && !hits->empty() && hits->front().score >= o.min_score) {
              top_is_source = hits->front().entry.digest == w.DigestOf(org, q.entry);
            }
          }
          auto us = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - t0);
          mine.lookup.latencies_us.push_back(static_cast<uint32_t>(us.count()));
          if (failed) {
            mine.lookup.errors++;
          } else if (fresh) {
            mine.fresh++;
            if (top_is_source) mine.false_hits++;
          } else {
            mine.expected_hits++;
            if (top_is_source) {
              if (*top_is_source) {
                mine.hits_on_expected++;
              } else {
                mine.false_hits++;
              }
            }
          }
        }
        uint64_t n = ++requests;
        if (SteadyClock::now() >= deadline || (o.max_requests && n >= o.max_requests)) stop = true;
        if (c == 0 && n % 512 == 0) {
          const OpStats& shown = mine.lookup.latencies_us.empty() ? mine.get : mine.lookup;
          Progress("query", n, std::chrono::duration<double>(SteadyClock::now() - start).count(),
                   OpStats(shown).Percentile(99));
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      total.Merge(mine);
    });
  }
  for (auto& th : threads) th.join();
  std::fprintf(stderr, "\n");
  total.seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  return total;
}

// Recall@1 of the server's top-1 against exact search over each org's stored vectors, for
// near-duplicate queries and for fresh ones (whose exact top-1 is a far, weakly similar
// entry: the harder case for a graph walk). -1 where not measured.
struct RecallResult {
  double near_duplicate = -1, fresh = -1;
};
RecallResult Recall(const Target& t, const Workload& w, const Options& o) {
  if (o.recall_sample == 0 || t.resp()) return {};
  uint64_t agree[2] = {0, 0}, total[2] = {0, 0};
  const uint32_t n = w.options().entries;
  for (uint32_t org = 0; org < w.options().orgs; ++org) {
    auto conn = t.Connect(t.token(org));
    if (!conn) return {};
    std::vector<std::vector<float>> stored(n);
    for (uint32_t i = 0; i < n; ++i) stored[i] = w.EntryVector(org, i);
    std::mt19937_64 rng(o.workload.seed + org);
    for (uint32_t s = 0; s < 2 * o.recall_sample; ++s) {
      const int fresh = s % 2;
      uint32_t src = static_cast<uint32_t>(rng() % n);
      auto q = fresh ? w.Fresh(org, rng()) : w.NearDuplicate(org, src, rng());
      uint32_t best = 0;
      float best_score = -2;
      for (uint32_t i = 0; i < n; ++i) {
        float d = Dot(q, stored[i]);
        if (d > best_score) best_score = d, best = i;
      }
      auto hits = conn->Lookup(
          {.vector = q, .k = 1, .min_score = -1.0f, .name_space = {}, .with_payload = false});
      total[fresh]++;
      if (hits.ok() && !hits->empty() && hits->front().entry.digest == w.DigestOf(org, best))
        agree[fresh]++;
    }
  }
  return {static_cast<double>(agree[0]) / total[0], static_cast<double>(agree[1]) / total[1]};
}

// Waits until every org's vectors are in HNSW graphs (at most the mutable segment left to
// scan exactly) and returns the seconds that took; lookups measured before that would time
// the exact scans of a graph still being built.
double WaitForIndex(const Target& t, const Workload& w) {
  constexpr auto kPoll = std::chrono::milliseconds(500);
  const auto start = SteadyClock::now();
  for (uint32_t org = 0; org < w.options().orgs; ++org) {
    auto conn = t.Connect(t.token(org));
    if (!conn) return -1;
    while (true) {
      auto frame = conn->Stats();
      if (!frame.ok()) return -1;
      const auto* st = (*frame)->body_as<protocol::StatsResponse>();
      if (st->flat_segments() <= 1 && st->index_build_failures() == 0) break;
      const double waited = std::chrono::duration<double>(SteadyClock::now() - start).count();
      std::fprintf(stderr, "\rbench: waiting for %s's index: %u segments still flat, %.0f s   ",
                   w.OrgName(org).c_str(), st->flat_segments(), waited);
      std::this_thread::sleep_for(kPoll);
    }
  }
  std::fprintf(stderr, "\n");
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

struct Report {
  std::string target;
  double load_rate = 0, recall = -1, recall_fresh = -1;
  // Seconds from the end of the load until every org's vectors were in HNSW graphs, and the
  // entries per second that makes end to end (stored and indexed): the sustained put rate
  // with index update.
  double index_settle_s = -1, indexed_rate = 0;
  // The same for the puts of the rounds, while lookups were served: puts / (the rounds'
  // seconds + the wait after each for its vectors to be in graphs).
  double serving_index_settle_s = -1, serving_indexed_rate = 0;
  double lookup_qps = 0, get_qps = 0, put_qps = 0;
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
  double get_p99 = 0, put_p99 = 0;
  double hit_rate = 0, false_hit_rate = 0;
  double server_cpu_us = -1;  // the server's CPU per request in the rounds (-1: not measured)
  uint64_t errors = 0, rss = 0, disk_bytes = 0, entries = 0;
};

Report Summarise(const std::string& name, RoundResult& r) {
  Report rep;
  rep.target = name;
  rep.lookup_qps = r.lookup.latencies_us.size() / r.seconds;
  rep.get_qps = r.get.latencies_us.size() / r.seconds;
  rep.put_qps = r.put.latencies_us.size() / r.seconds;
  rep.p50 = r.lookup.Percentile(50);
  rep.p90 = r.lookup.Percentile(90);
  rep.p99 = r.lookup.Percentile(99);
  rep.max = r.lookup.Percentile(100);
  rep.get_p99 = r.get.Percentile(99);
  rep.put_p99 = r.put.Percentile(99);
  if (r.index_settle_s >= 0 && !r.put.latencies_us.empty()) {
    rep.serving_index_settle_s = r.index_settle_s;
    rep.serving_indexed_rate = r.put.latencies_us.size() / (r.seconds + r.index_settle_s);
  }
  rep.hit_rate = r.expected_hits ? static_cast<double>(r.hits_on_expected) / r.expected_hits : 0;
  uint64_t answered = r.expected_hits + r.fresh;
  rep.false_hit_rate = answered ? static_cast<double>(r.false_hits) / answered : 0;
  rep.errors = r.lookup.errors + r.get.errors + r.put.errors;
  const size_t requests =
      r.lookup.latencies_us.size() + r.get.latencies_us.size() + r.put.latencies_us.size();
  if (r.server_cpu_s >= 0 && requests > 0) rep.server_cpu_us = r.server_cpu_s * 1e6 / requests;
  return rep;
}

void PrintText(const Report& r) {
  std::printf("[%s]\n", r.target.c_str());
  if (r.load_rate > 0) std::printf("  load            %10.0f entries/s\n", r.load_rate);
  if (r.index_settle_s >= 0) {
    std::printf("  indexed         %10.0f entries/s  (graphs done %.1f s after the load)\n",
                r.indexed_rate, r.index_settle_s);
  }
  std::printf("  lookup          %10.0f /s   p50 %.3f  p90 %.3f  p99 %.3f  max %.3f ms\n",
              r.lookup_qps, r.p50, r.p90, r.p99, r.max);
  if (r.get_qps > 0)
    std::printf("  get             %10.0f /s   p99 %.3f ms\n", r.get_qps, r.get_p99);
  if (r.put_qps > 0)
    std::printf("  put             %10.0f /s   p99 %.3f ms\n", r.put_qps, r.put_p99);
  if (r.serving_index_settle_s >= 0) {
    std::printf(
        "  put and indexed %10.0f /s   while serving lookups (graphs done %.1f s after "
        "the rounds)\n",
        r.serving_indexed_rate, r.serving_index_settle_s);
  }
  if (r.server_cpu_us >= 0) {
    std::printf("  server CPU      %10.1f us per request (background work included)\n",
                r.server_cpu_us);
  }
  std::printf("  hit rate        %10.4f  (near-duplicates answered with their source)\n",
              r.hit_rate);
  std::printf("  false hits      %10.4f  (of all lookups)\n", r.false_hit_rate);
  if (r.recall >= 0) {
    std::printf("  recall@1        %10.4f  near-duplicates, %.4f fresh (vs exact search)\n",
                r.recall, r.recall_fresh);
  }
  if (r.rss) std::printf("  server RSS      %10.1f MiB\n", r.rss / 1048576.0);
  if (r.disk_bytes && r.entries) {
    std::printf("  disk per entry  %10.0f bytes\n", static_cast<double>(r.disk_bytes) / r.entries);
  }
  if (r.errors)
    std::printf("  errors          %10llu\n", static_cast<unsigned long long>(r.errors));
}

std::string Json(const Report& r) {
  char buf[1024];
  std::snprintf(
      buf, sizeof(buf),
      "{\"target\":\"%s\",\"load_entries_per_s\":%.1f,\"lookup_qps\":%.1f,"
      "\"get_qps\":%.1f,\"put_qps\":%.1f,\"lookup_p50_ms\":%.4f,\"lookup_p90_ms\":%.4f,"
      "\"lookup_p99_ms\":%.4f,\"lookup_max_ms\":%.4f,\"get_p99_ms\":%.4f,"
      "\"put_p99_ms\":%.4f,\"hit_rate\":%.5f,\"false_hit_rate\":%.5f,\"recall_at_1\":%.5f,"
      "\"recall_at_1_fresh\":%.5f,\"server_rss_bytes\":%llu,\"disk_bytes_per_entry\":%.1f,"
      "\"errors\":%llu,"
      "\"index_settle_s\":%.2f,\"indexed_entries_per_s\":%.1f,"
      "\"serving_index_settle_s\":%.2f,\"serving_indexed_entries_per_s\":%.1f,"
      "\"server_cpu_us_per_request\":%.2f}",
      r.target.c_str(), r.load_rate, r.lookup_qps, r.get_qps, r.put_qps, r.p50, r.p90, r.p99, r.max,
      r.get_p99, r.put_p99, r.hit_rate, r.false_hit_rate, r.recall, r.recall_fresh,
      static_cast<unsigned long long>(r.rss),
      r.entries ? static_cast<double>(r.disk_bytes) / r.entries : 0.0,
      static_cast<unsigned long long>(r.errors), r.index_settle_s, r.indexed_rate,
      r.serving_index_settle_s, r.serving_indexed_rate, r.server_cpu_us);
  return buf;
}

// The files bench/faiss_peer.py reads: meta.json; per org orgN.vectors (entries x dim
// float32, little-endian, row i = entry i), orgN.queries (the same x dim float32 rows as
// round 1 draws) and orgN.queries.txt (one line per query: source entry, 1 if fresh, k).
bool ExportWorkload(const Workload& w, const Options& o) {
  std::error_code ec;
  std::filesystem::create_directories(o.export_dir, ec);
  const auto write_rows = [](std::ofstream& out, const std::vector<float>& v) {
    out.write(reinterpret_cast<const char*>(v.data()),
              static_cast<std::streamsize>(v.size() * sizeof(float)));
  };
  const auto queries = DrawQueries(w, o, 1);
  for (uint32_t org = 0; org < w.options().orgs; ++org) {
    const std::string base = o.export_dir + "/org" + std::to_string(org);
    std::ofstream vectors(base + ".vectors", std::ios::binary);
    for (uint32_t i = 0; i < w.options().entries; ++i) write_rows(vectors, w.EntryVector(org, i));
    std::ofstream rows(base + ".queries", std::ios::binary), lines(base + ".queries.txt");
    for (const Query& q : queries[org]) {
      write_rows(rows, q.vector);
      lines << q.entry << ' ' << (q.fresh ? 1 : 0) << ' ' << q.k << '\n';
    }
    if (!vectors || !rows || !lines) {
      std::fprintf(stderr, "bench: cannot write %s\n", base.c_str());
      return false;
    }
  }
  std::ofstream meta(o.export_dir + "/meta.json");
  meta << "{\"orgs\": " << w.options().orgs << ", \"entries\": " << w.options().entries
       << ", \"dim\": " << w.options().dim << ", \"min_score\": " << o.min_score << "}\n";
  return static_cast<bool>(meta);
}

// The admin token in --admin-token-file; empty (and a message) if there is none.
std::string AdminToken(const Options& o) {
  std::ifstream in(o.admin_token_file);
  std::string token;
  in >> token;
  if (token.empty()) std::fprintf(stderr, "bench: no admin token (--admin-token-file)\n");
  return token;
}

// --get-bench: loads org 0 (unless --skip-load) and runs the passes of Gets; prints each
// pass's rate. Exit status 1 if any Get missed or failed.
int RunGetBenchPasses(const Options& o, const Workload& w) {
  const std::string admin = AdminToken(o);
  if (admin.empty()) return 2;
  Target t("server", o.host, o.port, admin);
  if (!t.PrepareOrgs(w)) return 3;
  if (!o.skip_load) {
    const double rate = Load(t, w, o);
    std::fprintf(stderr, "bench: loaded %u exact-only entries at %.0f /s\n", w.options().entries,
                 rate);
  }
  GetBenchOptions g;
  g.host = o.host;
  g.port = o.port;
  g.token = t.token(0);
  g.connections = o.connections;
  g.pipeline = o.pipeline;
  g.requests = o.max_requests > 0 ? o.max_requests : 200'000;
  g.keys = w.options().entries;
  uint64_t failed = 0;
  if (o.json) std::printf("{\"pipeline\":%u,\"get_qps\":[", o.pipeline);
  for (uint32_t r = 0; r < o.rounds; ++r) {
    g.seed = r + 1;
    const GetBenchResult res = RunGetBench(g, w);
    failed += res.misses + res.errors;
    if (o.json) {
      std::printf("%s%.0f", r ? "," : "", res.rate());
    } else {
      std::printf(
          "get pass %u: %.0f /s (%u connections, pipeline %u, %llu hits, %llu misses, "
          "%llu errors)\n",
          r + 1, res.rate(), g.connections, g.pipeline, static_cast<unsigned long long>(res.hits),
          static_cast<unsigned long long>(res.misses), static_cast<unsigned long long>(res.errors));
    }
  }
  if (o.json) std::printf("],\"failed\":%llu}\n", static_cast<unsigned long long>(failed));
  return failed ? 1 : 0;
}

int Run(const Options& o) {
  Workload w(o.workload);
  if (!o.export_dir.empty()) return ExportWorkload(w, o) ? 0 : 1;
  if (o.get_bench) return RunGetBenchPasses(o, w);
  std::vector<std::unique_ptr<SpawnedServer>> spawned;
  std::vector<Target> targets;
  std::vector<const SpawnedServer*> server_of;  // each target's spawned server, if any
  if (o.compare_resp_search) {
    if (o.compare_plain || o.get_pct > 0 || o.put_pct > 0) {
      std::fprintf(stderr, "bench: --compare-resp-search runs lookups only, on one server\n");
      return 2;
    }
    if (o.resp_query != "range" && o.resp_query != "knn") {
      std::fprintf(stderr, "bench: --resp-query is range or knn\n");
      return 2;
    }
    auto s = Spawn(o, false);
    if (!s) {
      std::fprintf(stderr, "bench: could not start %s\n", o.sealcached.c_str());
      return 3;
    }
    const std::string token = s->AdminToken();
    targets.emplace_back("native Lookup", "127.0.0.1", s->port, token);
    targets.emplace_back("RESP FT.SEARCH", "127.0.0.1", s->port, token, s->resp_port);
    server_of = {s.get(), s.get()};
    spawned.push_back(std::move(s));
  }
  const int kinds = o.compare_resp_search ? 0 : o.compare_plain ? 2 : 1;
  for (int i = 0; i < kinds; ++i) {
    const bool plain = i == 1;
    if (o.spawn || o.compare_plain) {
      auto s = Spawn(o, plain);
      if (!s) {
        std::fprintf(stderr, "bench: could not start %s\n", o.sealcached.c_str());
        return 3;
      }
      targets.emplace_back(plain ? "plain" : "encrypted", "127.0.0.1", s->port, s->AdminToken());
      server_of.push_back(s.get());
      spawned.push_back(std::move(s));
    } else {
      const std::string token = AdminToken(o);
      if (token.empty()) return 2;
      targets.emplace_back("server", o.host, o.port, token);
      server_of.push_back(nullptr);
    }
  }
  std::vector<Report> reports(targets.size());
  std::vector<std::vector<RoundResult>> rounds(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    if (!targets[i].PrepareOrgs(w)) return 3;
    std::fprintf(stderr, "bench: loading %s\n", targets[i].name().c_str());
    if (!o.skip_load) {
      reports[i].load_rate = Load(targets[i], w, o);
      if (!o.no_wait_index) {
        reports[i].index_settle_s = WaitForIndex(targets[i], w);
        const double entries = static_cast<double>(o.workload.orgs) * o.workload.entries;
        reports[i].indexed_rate =
            entries / (entries / reports[i].load_rate + reports[i].index_settle_s);
      }
    }
  }
  // Alternate A/B rounds so drift on a shared machine hits both alike.
  for (uint32_t r = 0; r < o.rounds; ++r) {
    for (size_t i = 0; i < targets.size(); ++i) {
      std::fprintf(stderr, "bench: round %u on %s\n", r + 1, targets[i].name().c_str());
      const SpawnedServer* server = server_of[i];
      const double cpu_before = server != nullptr ? server->CpuSeconds() : 0;
      rounds[i].push_back(RunRound(targets[i], w, o, r + 1));
      if (server != nullptr) rounds[i].back().server_cpu_s = server->CpuSeconds() - cpu_before;
      if (o.put_pct > 0 && !o.no_wait_index) {
        rounds[i].back().index_settle_s = WaitForIndex(targets[i], w);
      }
    }
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    RoundResult merged;
    for (auto& rr : rounds[i]) {
      merged.Merge(rr);
      merged.seconds += rr.seconds;
      if (rr.server_cpu_s >= 0)
        merged.server_cpu_s = std::max(merged.server_cpu_s, 0.0) + rr.server_cpu_s;
      if (rr.index_settle_s >= 0)
        merged.index_settle_s = std::max(merged.index_settle_s, 0.0) + rr.index_settle_s;
    }
    const Report loaded = reports[i];
    reports[i] = Summarise(targets[i].name(), merged);
    reports[i].load_rate = loaded.load_rate;
    reports[i].index_settle_s = loaded.index_settle_s;
    reports[i].indexed_rate = loaded.indexed_rate;
    const RecallResult recall = Recall(targets[i], w, o);
    reports[i].recall = recall.near_duplicate;
    reports[i].recall_fresh = recall.fresh;
    if (i < spawned.size()) {
      reports[i].rss = spawned[i]->RssBytes();
      reports[i].disk_bytes = spawned[i]->DiskBytes();
      reports[i].entries = uint64_t{o.workload.orgs} * o.workload.entries;
    }
  }
  if (o.json) {
    std::printf("{\"results\":[");
    for (size_t i = 0; i < reports.size(); ++i)
      std::printf("%s%s", i ? "," : "", Json(reports[i]).c_str());
    std::printf("]");
    if (reports.size() == 2) {
      // encrypted/plain, or FT.SEARCH/Lookup.
      const Report& a = reports[o.compare_resp_search ? 1 : 0];
      const Report& b = reports[o.compare_resp_search ? 0 : 1];
      std::printf(",\"ratios\":{\"lookup_qps\":%.4f,\"lookup_p99\":%.4f,\"load\":%.4f}",
                  a.lookup_qps / b.lookup_qps, a.p99 / b.p99, a.load_rate / b.load_rate);
    }
    std::printf("}\n");
  } else {
    for (auto& r : reports) PrintText(r);
    if (reports.size() == 2) {
      if (o.compare_resp_search) {
        std::printf("FT.SEARCH/Lookup: lookup throughput %.3f, lookup p99 %.3f, load %.3f",
                    reports[1].lookup_qps / reports[0].lookup_qps, reports[1].p99 / reports[0].p99,
                    reports[1].load_rate / reports[0].load_rate);
        if (reports[0].server_cpu_us > 0 && reports[1].server_cpu_us > 0) {
          std::printf(", server CPU per lookup %.3f",
                      reports[1].server_cpu_us / reports[0].server_cpu_us);
        }
        std::printf("\n");
      } else {
        std::printf("encrypted/plain: load %.3f", reports[0].load_rate / reports[1].load_rate);
        if (reports[0].lookup_qps > 0) {
          std::printf(", lookup throughput %.3f, lookup p99 %.3f",
                      reports[0].lookup_qps / reports[1].lookup_qps,
                      reports[0].p99 / reports[1].p99);
        }
        if (reports[0].get_qps > 0)
          std::printf(", get throughput %.3f", reports[0].get_qps / reports[1].get_qps);
        if (reports[0].server_cpu_us > 0 && reports[1].server_cpu_us > 0) {
          std::printf(", server CPU per request %.3f",
                      reports[0].server_cpu_us / reports[1].server_cpu_us);
        }
        std::printf("\n");
      }
    }
  }
  uint64_t errors = 0;
  for (auto& r : reports) errors += r.errors;
  return errors ? 1 : 0;
}

}  // namespace
}  // namespace sealcache::bench

int main(int argc, char** argv) {
  sealcache::bench::Options o;
  auto& w = o.workload;
  po::options_description desc("sealcache-bench options");
  desc.add_options()("help", "show this help")("host", po::value(&o.host)->default_value(o.host),
                                               "server address (without --spawn)")(
      "port", po::value(&o.port)->default_value(o.port), "server port (without --spawn)")(
      "admin-token-file", po::value(&o.admin_token_file), "admin token (without --spawn)")(
      "spawn", po::bool_switch(&o.spawn), "start a sealcached of our own in a temp dir")(
      "sealcached", po::value(&o.sealcached)->default_value(o.sealcached), "server binary")(
      "server-threads", po::value(&o.server_threads)->default_value(0),
      "--threads of spawned servers")(
      "compare-plain", po::bool_switch(&o.compare_plain),
      "also run a plaintext benchmark server; alternate rounds; print encrypted/plain ratios")(
      "compare-resp-search", po::bool_switch(&o.compare_resp_search),
      "on one spawned server, also load hashes over the Redis front and run the lookups as "
      "FT.SEARCH (see --resp-query); alternate rounds; print FT.SEARCH/Lookup ratios")(
      "resp-query", po::value(&o.resp_query)->default_value(o.resp_query),
      "with --compare-resp-search: range (RedisVL's VECTOR_RANGE check, against Lookups with "
      "--min-score) or knn (LangChain's KNN search, against Lookups with no threshold)")(
      "orgs", po::value(&w.orgs)->default_value(w.orgs), "organisations")(
      "entries", po::value(&w.entries)->default_value(w.entries), "entries per org")(
      "dim", po::value(&w.dim)->default_value(w.dim), "embedding dimension")(
      "centres", po::value(&w.centres)->default_value(w.centres), "cluster centres per org")(
      "payload-bytes", po::value(&w.payload_bytes)->default_value(w.payload_bytes), "payload size")(
      "seed", po::value(&w.seed)->default_value(w.seed), "workload seed")(
      "connections", po::value(&o.connections)->default_value(o.connections), "client connections")(
      "duration", po::value(&o.duration_s)->default_value(o.duration_s), "seconds per round")(
      "max-requests", po::value(&o.max_requests)->default_value(0),
      "stop a round after N (0 = no cap)")("rounds", po::value(&o.rounds)->default_value(o.rounds),
                                           "rounds per target")(
      "get-pct", po::value(&o.get_pct)->default_value(0), "percent of exact Gets")(
      "put-pct", po::value(&o.put_pct)->default_value(0), "percent of Puts of new entries")(
      "fresh-pct", po::value(&o.fresh_pct)->default_value(10),
      "percent of lookups that should miss")("k-max", po::value(&o.k_max)->default_value(5),
                                             "lookups ask for k uniform in 1..k-max")(
      "min-score", po::value(&o.min_score)->default_value(0.9f), "lookup min_score")(
      "target-qps", po::value(&o.target_qps)->default_value(0), "pace requests (0 = closed loop)")(
      "recall-sample", po::value(&o.recall_sample)->default_value(200), "recall queries per org")(
      "batch", po::value(&o.batch)->default_value(256), "entries per PutBatch while loading")(
      "skip-load", po::bool_switch(&o.skip_load), "the orgs are loaded already")(
      "no-wait-index", po::bool_switch(&o.no_wait_index),
      "start lookups right after the load, while HNSW graphs are still being built (and, with "
      "--put-pct, do not wait after each round for its puts to be in graphs)")(
      "json", po::bool_switch(&o.json), "one JSON document on stdout")(
      "get-bench", po::bool_switch(&o.get_bench),
      "exact Gets of org 0 as redis-benchmark sends GETs: one thread, --connections "
      "connections, --pipeline Gets each at a time, --rounds passes of --max-requests "
      "(default 200000); loads the entries without vectors unless --skip-load")(
      "pipeline", po::value(&o.pipeline)->default_value(1), "Gets in flight per connection")(
      "export-workload", po::value(&o.export_dir),
      "write the stored vectors and round 1's queries to DIR for bench/faiss_peer.py; exit");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sealcache-bench: %s\n", e.what());
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  signal(SIGPIPE, SIG_IGN);
  return sealcache::bench::Run(o);
}
