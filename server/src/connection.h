// What every client connection of sealcached does whatever its wire protocol: the TLS
// handshake, the write queue, the watchdog (idle timeout, Hello deadline), the accounting of
// connections without a Hello and their eviction, draining at shutdown and the close. The
// native protocol (server.cc) and the Redis protocol (resp_connection.h) derive from
// ConnectionCore and add how they read requests and answer them. Private to server/.
#pragma once

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <utility>  // before asio in C++20
#include <vector>

#include "sealcache/server/server.h"

namespace sealcache::server::internal {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

inline constexpr auto kWatchdogPeriod = std::chrono::milliseconds(200);
// How often a paused connection checks again for room (in-flight cap or byte budget).
inline constexpr auto kBackPressurePoll = std::chrono::milliseconds(1);
// A written buffer at most this large is kept for the connection's next replies
// (TakeSpareBuffer); a larger one (a big reply) goes back to the heap.
inline constexpr size_t kMaxSpareBufferBytes = 256u << 10;

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

struct RespServerFacts;  // resp_commands.h

// State shared by every connection.
struct ConnectionContext {
  CacheService* service;
  const ServerOptions* options;
  asio::any_io_executor pool;  // where requests run (native requests but Hello)
  RequestBudget* budget;
  // Open connections that have not yet completed a Hello (each counts itself once).
  std::atomic<uint32_t>* unauthenticated;
  // The Redis front's server facts; null on the native port.
  RespServerFacts* resp_facts = nullptr;
  // Where the connection's socket, strand and timers run: one of the server's I/O threads,
  // each with its own event loop, so a connection's events never cross threads.
  asio::any_io_executor io{};
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
class ConnectionCore : public ConnectionBase,
                       public std::enable_shared_from_this<ConnectionCore<Stream>> {
 public:
  // REQUIRES: the caller counted this connection in *ctx.unauthenticated.
  ConnectionCore(Stream stream, ConnectionContext ctx,
                 std::function<void(ConnectionBase*)> on_close)
      : stream_(std::move(stream)),
        strand_(asio::make_strand(ctx.io)),
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

 protected:
  static constexpr bool kTls = !std::is_same_v<Stream, tcp::socket>;

  // The protocol: reads and dispatches requests until the peer closes, an error ends the
  // connection or draining_ is set. Runs on the strand.
  virtual awaitable<void> ReadLoop() = 0;
  // The bytes of the one error a connection gets before it is closed for a limit.
  virtual std::vector<uint8_t> ClosingError(const Status& why) = 0;

  tcp::socket& Lowest() {
    if constexpr (kTls) {
      return stream_.next_layer();
    } else {
      return stream_;
    }
  }

  // Sends bytes, in order: at once if the connection writes immediately, nothing is being
  // written and the socket takes them all (plain TCP), else queued for the write loop.
  // REQUIRES: on the strand.
  void Enqueue(std::vector<uint8_t> bytes) {
    size_t sent_now = 0;
    if constexpr (!kTls) {
      // No write coroutine, strand dispatch and reactor round for a reply the socket's
      // buffer takes at once: an unpipelined client's every round trip had them.
      if (write_immediately_ && !writing_ && !bytes.empty()) {
        boost::system::error_code ec;
        const size_t sent = stream_.write_some(asio::buffer(bytes), ec);  // non-blocking
        if (!ec && sent == bytes.size()) {
          KeepForReuse(std::move(bytes));
          MaybeClose();
          return;
        }
        // The rest (or all, after would_block or an error the write loop meets again),
        // from where the socket stopped: nothing else is queued (the loop is not running).
        if (!ec) sent_now = front_sent_ = sent;
      }
    }
    queued_bytes_ += bytes.size() - sent_now;
    out_.push_back(std::move(bytes));
    if (writing_) return;
    writing_ = true;
    auto self = this->shared_from_this();
    asio::co_spawn(
        strand_, [self]() { return self->WriteLoop(); }, asio::detached);
  }

  // Answers `why` and closes once it is written. REQUIRES: on the strand.
  void CloseUnauthenticated(const Status& why) {
    boost::system::error_code ec;
    // Cancel the read first: a cancel also aborts writes already started.
    draining_ = true;
    Lowest().cancel(ec);
    ctx_.service->CountConnectionError();
    Enqueue(ClosingError(why));
  }

  // The connection has completed a Hello (or closes): it no longer counts as unauthenticated.
  void Uncount() {
    if (counted_unauthenticated_.exchange(false)) ctx_.unauthenticated->fetch_sub(1);
  }

  // A written buffer becomes the spare one if the connection reuses them.
  void KeepForReuse(std::vector<uint8_t>&& bytes) {
    if (!keep_written_buffers_ || bytes.capacity() > kMaxSpareBufferBytes) return;
    bytes.clear();
    spare_ = std::move(bytes);
  }

  // The buffer of the last write done, emptied (capacity kept), or an empty one: a
  // connection that builds its replies in a buffer of its own swaps it for this one, so
  // neither is copied nor allocated again. REQUIRES: on the strand.
  std::vector<uint8_t> TakeSpareBuffer() { return std::exchange(spare_, {}); }

  void MaybeClose() {
    if (!reading_done_ || inflight_ > 0 || writing_ || closed_) return;
    Finish();
  }

  Stream stream_;
  asio::strand<asio::any_io_executor> strand_;
  ConnectionContext ctx_;
  asio::steady_timer watchdog_;
  std::function<void(ConnectionBase*)> on_close_;
  std::deque<std::vector<uint8_t>> out_;
  // Bytes of out_.front() already sent (by Enqueue, when the socket took only part of it).
  size_t front_sent_ = 0;
  std::vector<uint8_t> spare_;  // TakeSpareBuffer
  // Set by a connection that calls TakeSpareBuffer: others do not keep a written buffer.
  bool keep_written_buffers_ = false;
  // Set by a connection whose replies Enqueue sends at once when it can (plain TCP): both
  // fronts, which queue the replies of a read's requests together (bench/README.md,
  // sessions 20 and 21).
  bool write_immediately_ = false;
  size_t queued_bytes_ = 0;  // of out_ and the write under way
  uint32_t inflight_ = 0;
  bool writing_ = false, reading_done_ = false, draining_ = false, closed_ = false;
  std::atomic<bool> counted_unauthenticated_{true};  // until the first successful Hello
  const Clock::time_point accepted_;
  Clock::time_point last_activity_;

 private:
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
    if (!kTls && write_immediately_) {
      // Enqueue's immediate writes must not block the strand's thread.
      Lowest().non_blocking(true, ec);
      if (ec) {
        ctx_.service->CountConnectionError();
        co_return Finish();
      }
    }
    co_await ReadLoop();
    reading_done_ = true;
    MaybeClose();
  }

  awaitable<void> WriteLoop() {
    boost::system::error_code ec;
    while (!out_.empty()) {
      std::vector<uint8_t> bytes = std::move(out_.front());
      out_.pop_front();
      const size_t from = std::exchange(front_sent_, 0);
      co_await asio::async_write(stream_, asio::buffer(bytes.data() + from, bytes.size() - from),
                                 asio::redirect_error(use_awaitable, ec));
      queued_bytes_ -= bytes.size() - from;
      KeepForReuse(std::move(bytes));
      if (ec) {
        for (const auto& unsent : out_) queued_bytes_ -= unsent.size();
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
};

}  // namespace sealcache::server::internal
