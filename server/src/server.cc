#include "sealcache/server/server.h"

#include <omp.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <deque>
#include <mutex>
#include <set>
#include <thread>
#include <utility>  // before asio in C++20

#include "sealcache/server/frame.h"

namespace sealcache::server {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxHttpRequestBytes = 8192;
constexpr auto kWatchdogPeriod = std::chrono::milliseconds(200);
// How often a paused connection checks again for room (in-flight cap or byte budget).
constexpr auto kBackPressurePoll = std::chrono::milliseconds(1);
// A refused connection: how long the server waits for the client to close after the
// error frame. Closing a socket with unread input sends a reset, which can destroy the
// error frame before the client reads it; draining until the client closes avoids that.
constexpr auto kRejectLinger = std::chrono::seconds(2);

// Bytes of request frames being processed, server-wide. Frames are charged from the moment
// their length is known until their response is queued.
class RequestBudget {
 public:
  explicit RequestBudget(size_t capacity) : capacity_(capacity) {}
  // Charges `n` bytes if they fit. REQUIRES: n <= capacity.
  bool TryAcquire(size_t n) {
    size_t used = used_.load(std::memory_order_relaxed);
    do {
      if (used + n > capacity_) return false;
    } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_acq_rel));
    size_t peak = peak_.load(std::memory_order_relaxed);
    while (used + n > peak && !peak_.compare_exchange_weak(peak, used + n)) {
    }
    return true;
  }
  void Release(size_t n) { used_.fetch_sub(n, std::memory_order_acq_rel); }
  size_t used() const { return used_.load(); }
  size_t peak() const { return peak_.load(); }
  size_t capacity() const { return capacity_; }

 private:
  const size_t capacity_;
  std::atomic<size_t> used_{0};
  std::atomic<size_t> peak_{0};
};

class ServerImpl;

// State shared by every connection.
struct ConnectionContext {
  CacheService* service;
  const ServerOptions* options;
  asio::any_io_executor pool;  // where requests run
  RequestBudget* budget;
  // Open connections that have not yet completed a Hello (each counts itself once).
  std::atomic<uint32_t>* unauthenticated;
};

class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  virtual void StopReading() = 0;
  // True until the connection completes a Hello (or closes). Any thread.
  virtual bool Unauthenticated() const = 0;
  // Closes the connection with an error if it still has not completed a Hello. Any thread.
  virtual void EvictUnauthenticated() = 0;
};

template <typename Stream>
class Connection final : public ConnectionBase,
                         public std::enable_shared_from_this<Connection<Stream>> {
 public:
  // REQUIRES: the caller counted this connection in *ctx.unauthenticated.
  Connection(Stream stream, ConnectionContext ctx, std::function<void(ConnectionBase*)> on_close)
      : stream_(std::move(stream)),
        strand_(asio::make_strand(ctx.pool)),
        ctx_(ctx),
        watchdog_(strand_),
        on_close_(std::move(on_close)),
        accepted_(Clock::now()) {}

  void Start() {
    auto self = this->shared_from_this();
    asio::co_spawn(
        strand_, [self]() { return self->Run(); }, asio::detached);
  }

  void StopReading() override {
    auto self = this->shared_from_this();
    asio::post(strand_, [self] {
      self->draining_ = true;
      boost::system::error_code ec;
      self->Lowest().cancel(ec);  // aborts the pending read; in-flight work continues
    });
  }

  bool Unauthenticated() const override { return counted_unauthenticated_.load(); }

  void EvictUnauthenticated() override {
    auto self = this->shared_from_this();
    asio::post(strand_, [self] {
      if (!self->counted_unauthenticated_ || self->draining_ || self->closed_) return;
      self->CloseUnauthenticated(Status::ResourceExhausted(
          "closed: too many connections without a Hello (max_unauthenticated_connections " +
          std::to_string(self->ctx_.options->max_unauthenticated_connections) +
          "), and this was the oldest"));
    });
  }

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, tcp::socket>;

  tcp::socket& Lowest() {
    if constexpr (kTls) {
      return stream_.next_layer();
    } else {
      return stream_;
    }
  }

  awaitable<void> Run() {
    last_activity_ = Clock::now();
    auto self = this->shared_from_this();  // keeps the connection alive while any coroutine runs
    asio::co_spawn(
        strand_, [self]() { return self->Watchdog(); }, asio::detached);
    boost::system::error_code ec;
    if constexpr (kTls) {
      co_await stream_.async_handshake(asio::ssl::stream_base::server,
                                       asio::redirect_error(use_awaitable, ec));
      if (ec) {
        ctx_.service->CountConnectionError();
        co_return Finish();
      }
    }
    co_await ReadLoop();
    reading_done_ = true;
    MaybeClose();
  }

  awaitable<void> ReadLoop() {
    boost::system::error_code ec;
    for (;;) {
      while (inflight_ >= ctx_.options->max_inflight_per_connection && !draining_) {
        asio::steady_timer wait(strand_, kBackPressurePoll);
        co_await wait.async_wait(asio::redirect_error(use_awaitable, ec));
      }
      if (draining_) co_return;
      uint8_t header[kFrameHeaderSize];
      co_await asio::async_read(stream_, asio::buffer(header),
                                asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;  // peer closed, idle timeout or shutdown
      const uint32_t n = DecodeFrameLength(header);
      const bool authenticated = session_.authenticated;
      const size_t limit = authenticated ? ctx_.options->max_frame_bytes
                                         : ctx_.options->max_unauthenticated_frame_bytes;
      if (n > limit) {
        ctx_.service->CountConnectionError();
        Enqueue(CacheService::ErrorResponse(
            0, Status::ResourceExhausted(
                   "frame of " + std::to_string(n) + " bytes exceeds " +
                   (authenticated ? "max_frame_bytes (" : "the limit before Hello (") +
                   std::to_string(limit) + "); closing the connection")));
        co_return;
      }
      // Back-pressure: the frame's bytes are charged before they are read. Waiting here is
      // not idleness (the client has a frame on the way), so the idle clock is held.
      while (!ctx_.budget->TryAcquire(n)) {
        if (draining_) co_return;
        last_activity_ = Clock::now();
        asio::steady_timer wait(strand_, kBackPressurePoll);
        co_await wait.async_wait(asio::redirect_error(use_awaitable, ec));
      }
      auto body = std::make_shared<std::vector<uint8_t>>(n);
      co_await asio::async_read(stream_, asio::buffer(*body),
                                asio::redirect_error(use_awaitable, ec));
      if (ec) {
        ctx_.budget->Release(n);
        co_return;
      }
      last_activity_ = Clock::now();
      Dispatch(std::move(body));
    }
  }

  // Hello changes the session, so it runs here, in order; everything else runs on the pool
  // with a copy of the session and is answered whenever it finishes.
  // Releases the frame's budget charge once its response is built.
  void Dispatch(std::shared_ptr<std::vector<uint8_t>> body) {
    const size_t charged = body->size();
    auto request = VerifyRequest(*body);
    if (!request.ok() || (*request)->body_type() == protocol::RequestBody::HelloRequest) {
      auto response = ctx_.service->Handle(session_, *body);
      body.reset();
      ctx_.budget->Release(charged);
      if (session_.authenticated) Uncount();
      Enqueue(std::move(response));
      return;
    }
    ++inflight_;
    auto self = this->shared_from_this();
    asio::post(ctx_.pool, [self, body = std::move(body), charged, session = session_]() mutable {
      auto response = self->ctx_.service->Handle(session, *body);
      body.reset();
      self->ctx_.budget->Release(charged);
      asio::post(self->strand_, [self, response = std::move(response)]() mutable {
        --self->inflight_;
        self->last_activity_ = Clock::now();
        self->Enqueue(std::move(response));
      });
    });
  }

  void Enqueue(std::vector<uint8_t> response) {
    out_.push_back(EncodeFrame(response));
    if (writing_) return;
    writing_ = true;
    auto self = this->shared_from_this();
    asio::co_spawn(
        strand_, [self]() { return self->WriteLoop(); }, asio::detached);
  }

  awaitable<void> WriteLoop() {
    boost::system::error_code ec;
    while (!out_.empty()) {
      std::vector<uint8_t> frame = std::move(out_.front());
      out_.pop_front();
      co_await asio::async_write(stream_, asio::buffer(frame),
                                 asio::redirect_error(use_awaitable, ec));
      if (ec) {
        out_.clear();
        reading_done_ = true;
        draining_ = true;
        break;
      }
    }
    writing_ = false;
    MaybeClose();
  }

  awaitable<void> Watchdog() {
    boost::system::error_code ec;
    const auto idle = std::chrono::milliseconds(ctx_.options->idle_timeout_ms);
    const auto hello_deadline =
        accepted_ + std::chrono::milliseconds(ctx_.options->hello_timeout_ms);
    while (!closed_) {
      watchdog_.expires_after(kWatchdogPeriod);
      co_await watchdog_.async_wait(asio::redirect_error(use_awaitable, ec));
      if (closed_ || draining_) break;
      if (counted_unauthenticated_ && Clock::now() > hello_deadline) {
        CloseUnauthenticated(Status::Unauthenticated(
            "no Hello within " + std::to_string(ctx_.options->hello_timeout_ms) +
            " ms of connecting; closing the connection"));
        break;
      }
      if (inflight_ == 0 && !writing_ && Clock::now() - last_activity_ > idle) {
        draining_ = true;
        Lowest().cancel(ec);
      }
    }
  }

  // Answers `why` (id 0) and closes once it is written. REQUIRES: on the strand.
  void CloseUnauthenticated(const Status& why) {
    boost::system::error_code ec;
    // Cancel the read first: a cancel also aborts writes already started.
    draining_ = true;
    Lowest().cancel(ec);
    ctx_.service->CountConnectionError();
    Enqueue(CacheService::ErrorResponse(0, why));
  }

  // The connection has completed a Hello (or closes): it no longer counts as unauthenticated.
  void Uncount() {
    if (counted_unauthenticated_.exchange(false)) ctx_.unauthenticated->fetch_sub(1);
  }

  void MaybeClose() {
    if (!reading_done_ || inflight_ > 0 || writing_ || closed_) return;
    Finish();
  }

  void Finish() {
    if (closed_) return;
    closed_ = true;
    Uncount();
    boost::system::error_code ec;
    watchdog_.cancel();
    Lowest().shutdown(tcp::socket::shutdown_both, ec);
    Lowest().close(ec);
    on_close_(this);
  }

  Stream stream_;
  asio::strand<asio::any_io_executor> strand_;
  ConnectionContext ctx_;
  asio::steady_timer watchdog_;
  std::function<void(ConnectionBase*)> on_close_;
  Session session_;
  std::deque<std::vector<uint8_t>> out_;
  uint32_t inflight_ = 0;
  bool writing_ = false, reading_done_ = false, draining_ = false, closed_ = false;
  std::atomic<bool> counted_unauthenticated_{true};  // until the first successful Hello
  const Clock::time_point accepted_;
  Clock::time_point last_activity_;
};

class ServerImpl final : public Server {
 public:
  ServerImpl(ServerOptions options, std::unique_ptr<CacheService> service)
      : options_(std::move(options)),
        service_(std::move(service)),
        acceptor_(io_),
        metrics_acceptor_(io_),
        budget_(options_.max_inflight_request_bytes) {}

  ~ServerImpl() override { (void)Shutdown(); }

  Status Init() {
    if (options_.max_unauthenticated_connections == 0) {
      options_.max_unauthenticated_connections = std::max(1u, options_.max_connections / 4);
    }
    if (options_.max_unauthenticated_connections >= options_.max_connections) {
      return Status::InvalidArgument("max_unauthenticated_connections (" +
                                     std::to_string(options_.max_unauthenticated_connections) +
                                     ") must be below max_connections (" +
                                     std::to_string(options_.max_connections) +
                                     "): authenticated clients need room");
    }
    if (options_.hello_timeout_ms <= 0) {
      return Status::InvalidArgument("hello_timeout_ms must be positive");
    }
    if (options_.max_unauthenticated_frame_bytes > options_.max_frame_bytes) {
      return Status::InvalidArgument(
          "max_unauthenticated_frame_bytes must not exceed "
          "max_frame_bytes");
    }
    if (options_.max_frame_bytes > options_.max_inflight_request_bytes) {
      return Status::InvalidArgument(
          "max_inflight_request_bytes (" + std::to_string(options_.max_inflight_request_bytes) +
          ") must be at least max_frame_bytes (" + std::to_string(options_.max_frame_bytes) +
          "): a largest frame could never be read");
    }
    if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
      SC_RETURN_IF_ERROR(InitTls());
    }
    SC_RETURN_IF_ERROR(Listen(acceptor_, options_.port, "service"));
    if (options_.metrics_port != 0 || metrics_requested_ephemeral_) {
      SC_RETURN_IF_ERROR(Listen(metrics_acceptor_, options_.metrics_port, "metrics"));
      asio::co_spawn(accept_strand_, MetricsLoop(), asio::detached);
    }
    asio::co_spawn(accept_strand_, AcceptLoop(), asio::detached);
    int n = options_.threads > 0
                ? options_.threads
                : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this] {
        omp_set_num_threads(1);  // one query, one core: FAISS's OpenMP would oversubscribe
        io_.run();
      });
    }
    return Status::Ok();
  }

  uint16_t port() const override { return bound_port_; }
  uint16_t metrics_port() const override { return bound_metrics_port_; }
  CacheService& service() override { return *service_; }

  Status Shutdown() override {
    std::lock_guard<std::mutex> once(shutdown_mu_);
    if (shut_down_) return Status::Ok();
    shut_down_ = true;
    asio::post(accept_strand_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      metrics_acceptor_.close(ec);
    });
    {
      std::lock_guard<std::mutex> lock(conn_mu_);
      for (auto& [ptr, conn] : connections_) conn->StopReading();
    }
    const auto deadline = Clock::now() + std::chrono::milliseconds(options_.drain_timeout_ms);
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(conn_mu_);
        if (connections_.empty() || Clock::now() > deadline) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    Status flushed = service_->Flush();
    io_.stop();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    return flushed;
  }

 private:
  Status InitTls() {
    if (options_.tls_cert_file.empty() || options_.tls_key_file.empty()) {
      return Status::InvalidArgument("TLS needs both --tls-cert and --tls-key");
    }
    ssl_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    ssl_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                      asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                      asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
    boost::system::error_code ec;
    ssl_->use_certificate_chain_file(options_.tls_cert_file, ec);
    if (ec) return Status::InvalidArgument("cannot load TLS certificate: " + ec.message());
    ssl_->use_private_key_file(options_.tls_key_file, asio::ssl::context::pem, ec);
    if (ec) return Status::InvalidArgument("cannot load TLS private key: " + ec.message());
    return Status::Ok();
  }

  Status Listen(tcp::acceptor& acceptor, uint16_t port, std::string_view what) {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(options_.listen_address, ec);
    if (ec) return Status::InvalidArgument("bad listen address " + options_.listen_address);
    tcp::endpoint endpoint(address, port);
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::IOError("cannot listen for " + std::string(what) + " on " +
                             options_.listen_address + ":" + std::to_string(port) + ": " +
                             ec.message());
    }
    (&acceptor == &acceptor_ ? bound_port_ : bound_metrics_port_) =
        acceptor.local_endpoint().port();
    return Status::Ok();
  }

  awaitable<void> AcceptLoop() {
    ConnectionContext ctx{service_.get(), &options_, io_.get_executor(), &budget_,
                          &unauthenticated_};
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (!acceptor_.is_open()) co_return;
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      auto on_close = [this](ConnectionBase* c) {
        std::lock_guard<std::mutex> lock(conn_mu_);
        connections_.erase(c);
      };
      std::lock_guard<std::mutex> lock(conn_mu_);
      if (connections_.size() >= options_.max_connections) {
        std::string refusal = "server busy: too many connections (max_connections " +
                              std::to_string(options_.max_connections) + "); try again later";
        rejected_connections_.fetch_add(1, std::memory_order_relaxed);
        // On a strand of its own: the linger timer and the read touch the same socket.
        auto strand = asio::make_strand(io_);
        const auto protocol = socket.local_endpoint(ec).protocol();
        const auto handle = socket.release(ec);
        if (ec) continue;  // the socket is closed either way
        asio::co_spawn(strand, Reject(tcp::socket(strand, protocol, handle), std::move(refusal)),
                       asio::detached);
        continue;
      }
      // Past the cap, the oldest connection without a Hello makes room: clients that never
      // authenticate cannot hold more than the cap, and cannot keep new clients out.
      DropAuthenticatedFromOrder();
      if (unauthenticated_.fetch_add(1) >= options_.max_unauthenticated_connections) {
        EvictOldestUnauthenticated();
      }
      if (ssl_) {
        auto c = std::make_shared<Connection<asio::ssl::stream<tcp::socket>>>(
            asio::ssl::stream<tcp::socket>(std::move(socket), *ssl_), ctx, on_close);
        connections_.emplace(c.get(), c);
        unauthenticated_order_.push_back(c);
        c->Start();
      } else {
        auto c = std::make_shared<Connection<tcp::socket>>(std::move(socket), ctx, on_close);
        connections_.emplace(c.get(), c);
        unauthenticated_order_.push_back(c);
        c->Start();
      }
    }
  }

  // Forgets the oldest entries of unauthenticated_order_ that completed a Hello or closed.
  // The front entry is then one without a Hello, which its deadline closes within
  // hello_timeout_ms, so the order holds at most the connections of that long.
  // REQUIRES: conn_mu_ held.
  void DropAuthenticatedFromOrder() {
    while (!unauthenticated_order_.empty()) {
      auto front = unauthenticated_order_.front().lock();
      if (front && front->Unauthenticated()) return;
      unauthenticated_order_.pop_front();
    }
  }

  // REQUIRES: conn_mu_ held.
  void EvictOldestUnauthenticated() {
    while (!unauthenticated_order_.empty()) {
      auto oldest = unauthenticated_order_.front().lock();
      unauthenticated_order_.pop_front();
      if (oldest && oldest->Unauthenticated()) {
        oldest->EvictUnauthenticated();
        return;
      }
    }
  }

  // Answers a connection over max_connections with an error frame, then waits (bounded) for
  // the client to close before closing: see kRejectLinger.
  // REQUIRES: runs on the socket's strand.
  awaitable<void> Reject(tcp::socket accepted, std::string refusal) {
    auto socket_ptr = std::make_shared<tcp::socket>(std::move(accepted));
    tcp::socket& socket = *socket_ptr;
    boost::system::error_code ec;
    const auto frame =
        EncodeFrame(CacheService::ErrorResponse(0, Status::ResourceExhausted(refusal)));
    co_await asio::async_write(socket, asio::buffer(frame),
                               asio::redirect_error(use_awaitable, ec));
    socket.shutdown(tcp::socket::shutdown_send, ec);
    asio::steady_timer linger(socket.get_executor(), kRejectLinger);
    linger.async_wait([socket_ptr](const boost::system::error_code&) {
      boost::system::error_code ignored;
      socket_ptr->cancel(ignored);
    });
    std::array<uint8_t, 512> sink;
    while (!ec) {
      co_await socket.async_read_some(asio::buffer(sink), asio::redirect_error(use_awaitable, ec));
    }
    linger.cancel();
    socket.close(ec);
  }

  // The transport's own gauges, appended to the service's metrics.
  std::string ServerMetricsText() {
    size_t open = 0;
    {
      std::lock_guard<std::mutex> lock(conn_mu_);
      open = connections_.size();
    }
    std::string out;
    auto line = [&out](const char* name, const char* type, const char* help, uint64_t value) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
             name + " " + std::to_string(value) + "\n";
    };
    line("sealcache_connections_open", "gauge", "Open client connections.", open);
    line("sealcache_connections_rejected_total", "counter",
         "Connections refused because max_connections (or max_unauthenticated_connections) "
         "were open.",
         rejected_connections_.load());
    line("sealcache_connections_unauthenticated", "gauge",
         "Open connections that have not completed a Hello.", unauthenticated_.load());
    line("sealcache_inflight_request_bytes", "gauge",
         "Bytes of request frames read and not yet answered.", budget_.used());
    line("sealcache_inflight_request_bytes_peak", "gauge",
         "Highest sealcache_inflight_request_bytes since start.", budget_.peak());
    line("sealcache_inflight_request_bytes_limit", "gauge",
         "max_inflight_request_bytes: reading pauses above it.", budget_.capacity());
    return out;
  }

  awaitable<void> MetricsLoop() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket =
          co_await metrics_acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (!metrics_acceptor_.is_open()) co_return;
        continue;
      }
      std::string request;
      co_await asio::async_read_until(socket, asio::dynamic_buffer(request, kMaxHttpRequestBytes),
                                      "\r\n\r\n", asio::redirect_error(use_awaitable, ec));
      std::string response;
      if (!ec && request.rfind("GET /metrics", 0) == 0) {
        std::string body = service_->MetricsText() + ServerMetricsText();
        response =
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\n\r\n" + body;
      } else {
        response = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
      }
      co_await asio::async_write(socket, asio::buffer(response),
                                 asio::redirect_error(use_awaitable, ec));
      socket.close(ec);
    }
  }

  ServerOptions options_;
  std::unique_ptr<CacheService> service_;
  asio::io_context io_;
  // The accept loops and the close at shutdown: an acceptor is not safe to close on one
  // io thread while its loop runs on another (a data race TSan reported).
  asio::strand<asio::io_context::executor_type> accept_strand_ = asio::make_strand(io_);
  tcp::acceptor acceptor_, metrics_acceptor_;
  std::unique_ptr<asio::ssl::context> ssl_;
  uint16_t bound_port_ = 0, bound_metrics_port_ = 0;
  bool metrics_requested_ephemeral_ = false;
  std::vector<std::thread> threads_;
  std::mutex conn_mu_;
  std::map<ConnectionBase*, std::shared_ptr<ConnectionBase>> connections_;
  // Connections in accept order, for evicting the oldest without a Hello; entries that
  // authenticated or closed are skipped (and dropped) when met. GUARDED_BY(conn_mu_).
  std::deque<std::weak_ptr<ConnectionBase>> unauthenticated_order_;
  std::mutex shutdown_mu_;
  bool shut_down_ = false;
  RequestBudget budget_;
  std::atomic<uint64_t> rejected_connections_{0};
  std::atomic<uint32_t> unauthenticated_{0};
};

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(ServerOptions options,
                                              const crypto::SecretBytes& master_key) {
  SC_ASSIGN_OR_RETURN(auto service, CacheService::Open(options.service, master_key));
  auto server = std::make_unique<ServerImpl>(std::move(options), std::move(service));
  SC_RETURN_IF_ERROR(server->Init());
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace sealcache::server
