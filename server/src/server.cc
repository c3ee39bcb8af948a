#include "sealcache/server/server.h"

#include <omp.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>  // before asio in C++20

#include "cluster.h"
#include "connection.h"
#include "resp_connection.h"
#include "sealcache/server/frame.h"

namespace sealcache::server {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxHttpRequestBytes = 8192;
// A refused connection: how long the server waits for the client to close after the
// error frame. Closing a socket with unread input sends a reset, which can destroy the
// error frame before the client reads it; draining until the client closes avoids that.
constexpr auto kRejectLinger = std::chrono::seconds(2);

using internal::ConnectionBase;
using internal::ConnectionContext;
using internal::RequestBudget;

// A connection of the native protocol (server/PROTOCOL.md): length-prefixed flatbuffer
// frames, answered as they finish (matched by id).
template <typename Stream>
class NativeConnection final : public internal::ConnectionCore<Stream> {
  using Core = internal::ConnectionCore<Stream>;

 public:
  NativeConnection(Stream stream, ConnectionContext ctx,
                   std::function<void(ConnectionBase*)> on_close)
      : Core(std::move(stream), ctx, std::move(on_close)) {
    this->keep_written_buffers_ = true;  // (FlushReplies swaps them in)
    // Unpipelined Gets 1.2-1.4x faster (no write coroutine per round trip), lookups alike.
    this->write_immediately_ = true;
  }

 private:
  awaitable<void> ReadLoop() override {
    boost::system::error_code ec;
    in_.resize(kReadChunk);
    // The charge of a frame not yet whole goes back when the loop ends.
    struct ReleaseAtEnd {
      NativeConnection* c;
      ~ReleaseAtEnd() {
        if (std::exchange(c->head_charged_, false)) {
          c->ctx_.budget->Release(DecodeFrameLength(&c->in_[c->in_begin_]));
        }
      }
    } release_at_end{this};
    for (;;) {
      bool paused = false;
      const bool open = HandleBuffered(&paused);
      FlushReplies();
      if (!open || this->draining_) co_return;
      if (paused) {
        // Back-pressure: the connection's requests in flight are at their cap, or the
        // budget has no room for the next frame. Waiting here is not idleness (the client
        // has a frame on the way), so the idle clock is held.
        this->last_activity_ = Clock::now();
        asio::steady_timer wait(this->strand_, internal::kBackPressurePoll);
        co_await wait.async_wait(asio::redirect_error(use_awaitable, ec));
        continue;
      }
      // Room for the whole frame under way (its length is known once its header is here),
      // and at least a chunk: a read takes whatever the socket holds, later frames too.
      const size_t have = in_end_ - in_begin_;
      size_t room = kReadChunk;
      if (have >= kFrameHeaderSize) {
        room = std::max(room, kFrameHeaderSize + DecodeFrameLength(&in_[in_begin_]));
      }
      MakeRoom(room);
      const size_t got =
          co_await this->stream_.async_read_some(asio::buffer(&in_[in_end_], in_.size() - in_end_),
                                                 asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;  // peer closed, idle timeout or shutdown
      in_end_ += got;
      this->last_activity_ = Clock::now();
    }
  }

  // Handles every whole frame in the buffer, in order. Sets *paused and stops where the
  // connection may not start another request yet (its cap of requests in flight, or no
  // room in the budget for the next frame). False once it must close (the error is among
  // the replies).
  bool HandleBuffered(bool* paused) {
    const bool open = HandleWholeFrames(paused);
    AnswerGets();
    // A copy grown for a large body does not keep its memory.
    for (std::vector<uint8_t>& copy : gets_copies_) {
      if (copy.capacity() > kReadChunk) copy = {};
    }
    return open;
  }

  // HandleBuffered but for the Gets it leaves in gets_.
  bool HandleWholeFrames(bool* paused) {
    while (in_end_ - in_begin_ >= kFrameHeaderSize) {
      if (this->inflight_ >= this->ctx_.options->max_inflight_per_connection) {
        *paused = true;
        return true;
      }
      const uint32_t n = DecodeFrameLength(&in_[in_begin_]);
      const bool authenticated = session_.authenticated;
      const size_t limit = authenticated ? this->ctx_.options->max_frame_bytes
                                         : this->ctx_.options->max_unauthenticated_frame_bytes;
      if (n > limit) {
        this->ctx_.service->CountConnectionError();
        AnswerGets();  // (before the error: replies go in order)
        AppendFrame(CacheService::ErrorResponse(
                        0, Status::ResourceExhausted(
                               "frame of " + std::to_string(n) + " bytes exceeds " +
                               (authenticated ? "max_frame_bytes (" : "the limit before Hello (") +
                               std::to_string(limit) + "); closing the connection")),
                    &replies_);
        return false;
      }
      // A frame's body is charged from the moment its length is known until its response is
      // built (n <= max_frame_bytes <= the budget's capacity, so it always fits eventually).
      if (!head_charged_) {
        if (!this->ctx_.budget->TryAcquire(n)) {
          *paused = true;
          return true;
        }
        head_charged_ = true;
      }
      if (in_end_ - in_begin_ < kFrameHeaderSize + n) return true;  // the rest is on the way
      const std::span<const uint8_t> body(&in_[in_begin_ + kFrameHeaderSize], n);
      in_begin_ += kFrameHeaderSize + n;
      head_charged_ = false;
      Dispatch(body, n);
    }
    return true;
  }

  // Room in the buffer for `room` bytes from the start of what it holds, which moves to the
  // front. A buffer grown for a large frame shrinks back once that frame is handled.
  void MakeRoom(size_t room) {
    const size_t have = in_end_ - in_begin_;
    if (in_begin_ > 0) {
      std::memmove(in_.data(), &in_[in_begin_], have);
      in_begin_ = 0;
      in_end_ = have;
    }
    if (in_.size() < room) {
      in_.resize(room);
    } else if (in_.size() > kReadChunk && room <= kReadChunk) {
      in_.resize(kReadChunk);
      in_.shrink_to_fit();
    }
  }

  void FlushReplies() {
    if (!replies_.empty()) this->Enqueue(std::exchange(replies_, this->TakeSpareBuffer()));
  }

  std::vector<uint8_t> ClosingError(const Status& why) override {
    return EncodeFrame(CacheService::ErrorResponse(0, why));
  }

  // Hello changes the session, so it runs here, in order; so do the reads RunsInline names.
  // Their responses join the replies sent together once the buffer's frames are handled.
  // Everything else runs on the pool with a copy of the session and is answered whenever it
  // finishes. `charged` bytes of the budget are the request's until its response is built.
  // Consecutive Gets wait in gets_ (their bodies where they are, or copied aligned into
  // gets_copies_) to be answered together: CacheService::HandleFrames asks for the entries
  // they read at once, so a pipelining client's Gets take their cache misses together.
  void Dispatch(std::span<const uint8_t> body, size_t charged) {
    // flatbuffers reads aligned words: a body not 8-byte aligned in the buffer is copied.
    if (reinterpret_cast<uintptr_t>(body.data()) % kBodyAlignment != 0) {
      if (gets_copies_.size() <= gets_.size()) gets_copies_.resize(gets_.size() + 1);
      std::vector<uint8_t>& copy = gets_copies_[gets_.size()];
      copy.assign(body.begin(), body.end());
      body = copy;
    }
    auto request = VerifyRequest(body);
    if (!request.ok()) {
      AnswerGets();
      AppendFrame(CacheService::ErrorResponse(0, request.status()), &replies_);
      this->ctx_.budget->Release(charged);
      return;
    }
    if ((*request)->body_type() == protocol::RequestBody::GetEntryRequest) {
      gets_.push_back(*request);
      gets_charged_ += charged;
      if (gets_.size() == kMaxGetBatch) AnswerGets();
      return;
    }
    AnswerGets();  // (before this request: inline replies go in order)
    if (RunsInline((*request)->body_type())) {
      Session session = session_;  // as on the pool: a copy
      this->ctx_.service->HandleFrame(session, **request, builder_, &replies_);
      this->ctx_.budget->Release(charged);
      return;
    }
    if ((*request)->body_type() == protocol::RequestBody::HelloRequest) {
      this->ctx_.service->HandleFrame(session_, **request, builder_, &replies_);
      this->ctx_.budget->Release(charged);
      if (session_.authenticated) this->Uncount();
      return;
    }
    ++this->inflight_;
    auto self = std::static_pointer_cast<NativeConnection>(this->shared_from_this());
    asio::post(this->ctx_.pool, [self, owned = std::vector<uint8_t>(body.begin(), body.end()),
                                 charged, session = session_]() mutable {
      auto response = self->ctx_.service->Handle(session, owned);
      owned = {};
      self->ctx_.budget->Release(charged);
      asio::post(self->strand_, [self, response = std::move(response)]() mutable {
        --self->inflight_;
        self->last_activity_ = Clock::now();
        self->Enqueue(EncodeFrame(response));
      });
    });
  }

  // The Gets waiting in gets_, answered on the connection's loop (as RunsInline's).
  void AnswerGets() {
    if (gets_.empty()) return;
    Session session = session_;  // as on the pool: a copy
    this->ctx_.service->HandleFrames(session, gets_, builder_, &replies_);
    this->ctx_.budget->Release(std::exchange(gets_charged_, 0));
    gets_.clear();
  }

  // Requests answered on the connection's own loop instead of the pool: reads that wait for
  // nothing but the CPU and the block cache. A Get (gathered in gets_ first) is one store
  // read, as short as the two hand-overs between threads the pool would cost; a Lookup is a
  // graph walk of ~0.1-0.3 ms, and its two hand-overs cost 13% of the server's CPU at 4 x
  // 100k (wake-ups on 2 cores): inline, lookups ran 1.12-1.20x faster, p99 5.7-6.0 -> 3.6-4.2
  // ms. Writes, which can wait for the WAL or a stalled memtable, stay on the pool, as do
  // admin requests. The Redis front runs every command on its loop the same way.
  static bool RunsInline(protocol::RequestBody type) {
    return type == protocol::RequestBody::LookupRequest ||
           type == protocol::RequestBody::PingRequest;
  }

  // Read but not yet handled: in_[in_begin_, in_end_); the first frame there holds its
  // body's length of the budget once that length is known (head_charged_).
  static constexpr size_t kReadChunk = 16u << 10;
  static constexpr size_t kBodyAlignment = 8;
  std::vector<uint8_t> in_;
  size_t in_begin_ = 0, in_end_ = 0;
  bool head_charged_ = false;
  // Gets not yet answered (AnswerGets), at most kMaxGetBatch; the bytes of the budget they
  // hold; aligned copies of misaligned bodies, gets_copies_[i] the i-th Get's if it has one.
  static constexpr size_t kMaxGetBatch = 64;
  std::vector<const protocol::Request*> gets_;
  size_t gets_charged_ = 0;
  std::vector<std::vector<uint8_t>> gets_copies_;
  std::vector<uint8_t> replies_;  // response frames not yet queued
  flatbuffers::FlatBufferBuilder builder_;
  Session session_;
};

class ServerImpl final : public Server {
 public:
  ServerImpl(ServerOptions options, std::unique_ptr<CacheService> service)
      : options_(std::move(options)),
        service_(std::move(service)),
        budget_(options_.max_inflight_request_bytes),
        acceptor_(io_),
        metrics_acceptor_(io_),
        resp_acceptor_(io_) {}

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
    if (options_.resp_default_ttl_ms <= 0) {
      return Status::InvalidArgument("resp_default_ttl_ms must be positive");
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
    asio::co_spawn(accept_strand_, AcceptLoop(acceptor_, Front::kNative), asio::detached);
    if (options_.resp_enabled) {
      SC_RETURN_IF_ERROR(Listen(resp_acceptor_, options_.resp_port, "RESP"));
      resp_facts_.port = bound_resp_port_;
      resp_facts_.default_ttl_ms = options_.resp_default_ttl_ms;
      resp_facts_.max_ttl_ms = service_->store().max_ttl_ms();
      resp_facts_.max_transaction_bytes = options_.max_frame_bytes;
      resp_facts_.connected_clients = [this] {
        std::lock_guard<std::mutex> lock(conn_mu_);
        return static_cast<uint64_t>(connections_.size());
      };
      asio::co_spawn(accept_strand_, AcceptLoop(resp_acceptor_, Front::kResp), asio::detached);
    }
    if (!options_.cluster.etcd_endpoint.empty()) SC_RETURN_IF_ERROR(JoinCluster());
    int n = options_.threads > 0
                ? options_.threads
                : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (int i = 0; i < n; ++i) connection_loops_.push_back(std::make_unique<ConnectionLoop>());
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this] {
        omp_set_num_threads(1);  // one query, one core: FAISS's OpenMP would oversubscribe
        io_.run();
      });
    }
    for (auto& loop : connection_loops_) {
      threads_.emplace_back([&loop] {
        omp_set_num_threads(1);
        loop->io.run();
      });
    }
    return Status::Ok();
  }

  // Publishes this node's admin token, registers its addresses and reconciles its copies
  // with the records before the io threads run: nothing is served until then.
  Status JoinCluster() {
    const auto& c = options_.cluster;
    SC_ASSIGN_OR_RETURN(
        cluster_, cluster::ClusterNode::Create(c, service_->store().data_dir(), service_.get()));
    SC_RETURN_IF_ERROR(cluster_->CheckCanJoin());
    SC_RETURN_IF_ERROR(service_->SetCluster(cluster_.get()));
    const std::string host = c.advertise_host.empty() ? options_.listen_address : c.advertise_host;
    const std::string resp =
        bound_resp_port_ == 0 ? "" : host + ":" + std::to_string(bound_resp_port_);
    return cluster_->Join(host + ":" + std::to_string(bound_port_), resp);
  }

  uint16_t port() const override { return bound_port_; }
  uint16_t metrics_port() const override { return bound_metrics_port_; }
  uint16_t resp_port() const override { return bound_resp_port_; }
  CacheService& service() override { return *service_; }

  Status Shutdown() override {
    std::lock_guard<std::mutex> once(shutdown_mu_);
    if (shut_down_) return Status::Ok();
    shut_down_ = true;
    asio::post(accept_strand_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      metrics_acceptor_.close(ec);
      resp_acceptor_.close(ec);
    });
    {
      std::lock_guard<std::mutex> lock(conn_mu_);
      draining_ = true;
      for (auto& [ptr, conn] : connections_) conn->StopReading();
    }
    const auto deadline = Clock::now() + std::chrono::milliseconds(options_.drain_timeout_ms);
    size_t left = 0;  // connections the drain gave up on
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(conn_mu_);
        left = connections_.size();
        if (left == 0 || Clock::now() > deadline) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (left > 0 && options_.on_event) {
      options_.on_event("drain timed out after " + std::to_string(options_.drain_timeout_ms) +
                        " ms with " + std::to_string(left) +
                        " connection(s) still owed answers or writes: they close without them");
    }
    Status flushed = service_->Flush();
    // The lease goes last: until here this node still owned its orgs' records.
    if (cluster_) cluster_->Leave();
    io_.stop();
    for (auto& loop : connection_loops_) {
      loop->work.reset();
      loop->io.stop();
    }
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
    const uint16_t bound = acceptor.local_endpoint().port();
    if (&acceptor == &acceptor_) {
      bound_port_ = bound;
    } else if (&acceptor == &resp_acceptor_) {
      bound_resp_port_ = bound;
    } else {
      bound_metrics_port_ = bound;
    }
    return Status::Ok();
  }

  // Which protocol a listener speaks.
  enum class Front { kNative, kResp };

  // A new connection of `front` over `stream`, started.
  template <typename Stream>
  std::shared_ptr<ConnectionBase> StartConnection(Front front, Stream stream,
                                                  const ConnectionContext& ctx,
                                                  std::function<void(ConnectionBase*)> on_close) {
    if (front == Front::kResp) {
      auto c = std::make_shared<internal::RespConnection<Stream>>(
          std::move(stream), ctx, std::move(on_close), next_client_id_++);
      c->Start();
      return c;
    }
    auto c =
        std::make_shared<NativeConnection<Stream>>(std::move(stream), ctx, std::move(on_close));
    c->Start();
    return c;
  }

  awaitable<void> AcceptLoop(tcp::acceptor& acceptor, Front front) {
    ConnectionContext ctx{service_.get(), &options_, io_.get_executor(), &budget_,
                          &unauthenticated_};
    if (front == Front::kResp) ctx.resp_facts = &resp_facts_;
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (!acceptor.is_open()) co_return;
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      if (front == Front::kResp) resp_facts_.connections_received.fetch_add(1);
      auto on_close = [this](ConnectionBase* c) {
        std::lock_guard<std::mutex> lock(conn_mu_);
        connections_.erase(c);
      };
      std::lock_guard<std::mutex> lock(conn_mu_);
      if (draining_) {  // accepted before the acceptor closed: not served
        socket.close(ec);
        continue;
      }
      if (connections_.size() >= options_.max_connections) {
        // Redis's own words to a RESP client; an error frame to a native one.
        static constexpr std::string_view kRespRefusal = "-ERR max number of clients reached\r\n";
        std::vector<uint8_t> refusal =
            front == Front::kResp
                ? std::vector<uint8_t>(kRespRefusal.begin(), kRespRefusal.end())
                : EncodeFrame(CacheService::ErrorResponse(
                      0, Status::ResourceExhausted(
                             "server busy: too many connections (max_connections " +
                             std::to_string(options_.max_connections) + "); try again later")));
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
      // The connection's events run on one I/O loop, in turn: its socket moves there.
      ConnectionLoop& loop = *connection_loops_[next_loop_++ % connection_loops_.size()];
      const auto protocol = socket.local_endpoint(ec).protocol();
      const auto handle = ec ? tcp::socket::native_handle_type(-1) : socket.release(ec);
      if (ec) {
        unauthenticated_.fetch_sub(1);
        continue;  // the socket is closed either way
      }
      socket = tcp::socket(loop.io, protocol, handle);
      ctx.io = loop.io.get_executor();
      std::shared_ptr<ConnectionBase> c =
          ssl_ ? StartConnection(front, asio::ssl::stream<tcp::socket>(std::move(socket), *ssl_),
                                 ctx, on_close)
               : StartConnection(front, std::move(socket), ctx, on_close);
      connections_.emplace(c.get(), c);
      unauthenticated_order_.push_back(c);
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
  awaitable<void> Reject(tcp::socket accepted, std::vector<uint8_t> frame) {
    auto socket_ptr = std::make_shared<tcp::socket>(std::move(accepted));
    tcp::socket& socket = *socket_ptr;
    boost::system::error_code ec;
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
        if (cluster_) body += cluster_->MetricsText();
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
  // Declared after the service it reads and writes, so it stops first.
  std::unique_ptr<cluster::ClusterNode> cluster_;
  // What connections refer to (ConnectionContext), declared before both event loops below:
  // a connection can outlive connections_, held by work still queued in either loop when a
  // drain times out, and is then destroyed with that loop.
  RequestBudget budget_;
  std::atomic<uint32_t> unauthenticated_{0};
  internal::RespServerFacts resp_facts_;
  // The I/O loops of connections, one thread each (threads_), given to connections in turn:
  // a connection's reads, Redis commands and writes run on one thread, without the wake-ups
  // between threads that one loop shared by every thread costs on each request (measured
  // in bench/README.md). Before io_ and connections_, so that they outlive every connection:
  // a connection's socket, strand and timers belong to its loop.
  struct ConnectionLoop {
    asio::io_context io{1};
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{
        asio::make_work_guard(io)};
  };
  std::vector<std::unique_ptr<ConnectionLoop>> connection_loops_;
  // The request pool (native requests run here) and the accept loops. Destroyed before the
  // connection loops: a request still queued here when a drain timed out holds its
  // connection, which must be freed while its loop exists (freed after it, the connection
  // closed its socket and cancelled its timers through the loop's freed services: heap
  // corruption at exit; ServerTest.ShutdownWhoseDrainTimesOutWithRequestsQueuedFreesThemSafely).
  asio::io_context io_;
  size_t next_loop_ = 0;  // on the accept strand
  // The accept loops and the close at shutdown: an acceptor is not safe to close on one
  // io thread while its loop runs on another (a data race TSan reported).
  asio::strand<asio::io_context::executor_type> accept_strand_ = asio::make_strand(io_);
  tcp::acceptor acceptor_, metrics_acceptor_, resp_acceptor_;
  std::unique_ptr<asio::ssl::context> ssl_;
  uint16_t bound_port_ = 0, bound_metrics_port_ = 0, bound_resp_port_ = 0;
  uint64_t next_client_id_ = 1;  // CLIENT ID of RESP connections; on the accept strand
  bool metrics_requested_ephemeral_ = false;
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> rejected_connections_{0};
  std::mutex conn_mu_;
  std::map<ConnectionBase*, std::shared_ptr<ConnectionBase>> connections_;
  // Set by Shutdown with every open connection told to stop reading, under conn_mu_: a
  // connection accepted after that is closed at once (told nothing, it would keep the drain
  // waiting until its deadline and be served while the store flushes). GUARDED_BY(conn_mu_).
  bool draining_ = false;
  // Connections in accept order, for evicting the oldest without a Hello; entries that
  // authenticated or closed are skipped (and dropped) when met. GUARDED_BY(conn_mu_).
  std::deque<std::weak_ptr<ConnectionBase>> unauthenticated_order_;
  std::mutex shutdown_mu_;
  bool shut_down_ = false;
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
