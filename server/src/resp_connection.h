// A connection of the Redis-protocol front (server/RESP.md): bytes in, requests parsed as
// Redis parses them, each executed in order and answered in order (Redis clients match
// replies by position), pipelined requests answered in one write. A protocol error is
// answered "-ERR Protocol error: ..." and closes the connection, as Redis does. The
// limits of the native port apply: connections without AUTH are held to the Hello deadline,
// the small request bound and the cap; bytes read and not yet answered count in the
// server's in-flight budget. Private to server/.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "connection.h"
#include "resp_commands.h"
#include "resp_parser.h"
#include "resp_writer.h"

namespace sealcache::server::internal {

// Bytes asked of the socket at once.
inline constexpr size_t kRespReadChunk = 16u << 10;
// Replies queued for a client, at most, before its connection stops reading: a client that
// pipelines without reading (small requests, large replies) cannot make the server buffer
// without bound (Redis: client-output-buffer-limit).
inline constexpr size_t kRespMaxQueuedReplyBytes = 1u << 20;
// Consecutive GETs of one read answered together, at most (RespCommands::ExecuteGets).
inline constexpr size_t kRespMaxGetBatch = 64;

template <typename Stream>
class RespConnection final : public ConnectionCore<Stream> {
  using Core = ConnectionCore<Stream>;

 public:
  RespConnection(Stream stream, ConnectionContext ctx,
                 std::function<void(ConnectionBase*)> on_close, uint64_t client_id)
      : Core(std::move(stream), ctx, std::move(on_close)),
        commands_(ctx.service, ctx.resp_facts),
        parser_(Limits(*ctx.options)),
        writer_(2) {
    session_.client_id = client_id;
    this->keep_written_buffers_ = true;  // (Flush swaps them in)
    this->write_immediately_ = true;     // -P 1 GETs: 11% less server CPU (bench/README.md)
  }
  ~RespConnection() override { this->ctx_.budget->Release(charged_); }

 private:
  static RespLimits Limits(const ServerOptions& o) {
    RespLimits limits;
    limits.max_bulk_bytes = o.max_frame_bytes;
    return limits;
  }

  // How many bytes a request may have buffered: the frame bound of the native port, the
  // small one before AUTH.
  size_t BufferLimit() const {
    return session_.session.authenticated ? this->ctx_.options->max_frame_bytes + kRespReadChunk
                                          : this->ctx_.options->max_unauthenticated_frame_bytes;
  }

  awaitable<void> ReadLoop() override {
    boost::system::error_code ec;
    std::vector<char> chunk(kRespReadChunk);
    for (;;) {
      if (this->draining_) co_return;
      // Replies the client has not taken yet hold reading back, so a connection buffers at
      // most this bound of replies (times max_connections server-wide); before AUTH the
      // Hello deadline still closes it.
      while (this->queued_bytes_ > kRespMaxQueuedReplyBytes && !this->draining_) {
        asio::steady_timer wait(this->strand_, kBackPressurePoll);
        co_await wait.async_wait(asio::redirect_error(use_awaitable, ec));
      }
      if (this->draining_) co_return;
      // Back-pressure: the bytes about to be read are charged first, and stay charged while
      // they sit in the buffer (waiting here is not idleness).
      while (!this->ctx_.budget->TryAcquire(kRespReadChunk)) {
        if (this->draining_) co_return;
        this->last_activity_ = Clock::now();
        asio::steady_timer wait(this->strand_, kBackPressurePoll);
        co_await wait.async_wait(asio::redirect_error(use_awaitable, ec));
      }
      charged_ += kRespReadChunk;
      const size_t n = co_await this->stream_.async_read_some(
          asio::buffer(chunk), asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;  // peer closed, idle timeout or shutdown
      this->last_activity_ = Clock::now();
      buffer_.append(chunk.data(), n);
      if (!ExecuteBuffered()) co_return;
      // Keep charged what the buffer holds (a partial request), release the rest.
      const size_t keep = std::min(charged_, buffer_.size());
      this->ctx_.budget->Release(charged_ - keep);
      charged_ = keep;
      if (session_.close_after_reply) co_return;
    }
  }

  // Executes every whole request in the buffer; false once the connection must close.
  // Consecutive GETs are answered together (RespCommands::ExecuteGets), in order with the
  // rest; an HSET and an EXPIRE of its key after it, together
  // (RespCommands::ExecuteWithExpiry). The writes among them reach the store's log in one
  // write, before any reply goes out (storage::LogFlushGroup), as Redis writes its
  // append-only file before replying.
  bool ExecuteBuffered() {
    std::unique_ptr<storage::LogFlushGroup> log_group;  // before the first command not a GET
    std::vector<RespCommand>& parsed = parsed_;
    size_t gets = 0;  // GETs parsed (the first of `parsed`) and not yet answered
    // The outcome of a request parsed ahead, after an HSET, into parsed[0] (gets is 0 then).
    std::optional<RespParser::Outcome> ahead;
    auto answer_gets = [&] {
      if (gets == 0) return;
      commands_.ExecuteGets(session_, std::span(parsed).first(gets), writer_);
      if (session_.session.authenticated) this->Uncount();
      gets = 0;
    };
    bool open = true;
    for (;;) {
      if (parsed.size() == gets) parsed.emplace_back();
      const size_t at = gets;
      RespCommand& args = parsed[at];
      const auto outcome =
          ahead ? *std::exchange(ahead, std::nullopt) : parser_.Parse(buffer_, &args);
      if (outcome == RespParser::Outcome::kCommand && RespCommands::IsGet(args)) {
        if (++gets == kRespMaxGetBatch) answer_gets();
        continue;
      }
      answer_gets();  // (before this request: replies go in order)
      if (outcome == RespParser::Outcome::kNeedMore) {
        if (buffer_.size() > BufferLimit()) {
          this->ctx_.service->CountConnectionError();
          writer_.Error(session_.session.authenticated
                            ? "ERR Protocol error: request exceeds max_frame_bytes"
                            : "ERR Protocol error: request too large before AUTH");
          open = false;
        }
        break;
      }
      if (outcome == RespParser::Outcome::kProtocolError) {
        this->ctx_.service->CountConnectionError();
        writer_.Error("ERR " + parser_.error());
        open = false;
        break;
      }
      if (log_group == nullptr) {
        auto opened = this->ctx_.service->store().OpenLogFlushGroup();
        if (opened.ok()) log_group = std::move(opened).value();
      }
      if (RespCommands::IsHashSet(args)) {
        // The request after it, if whole already, may be an EXPIRE to run with it. (It is
        // parsed[at], after the GETs before it; `args` may move with the vector here.)
        if (parsed.size() < at + 2) parsed.emplace_back();
        const auto next = parser_.Parse(buffer_, &parsed[at + 1]);
        if (next == RespParser::Outcome::kCommand &&
            commands_.ExecuteWithExpiry(session_, parsed[at], parsed[at + 1], writer_)) {
          if (session_.session.authenticated) this->Uncount();
          if (session_.close_after_reply) break;
          continue;
        }
        commands_.Execute(session_, parsed[at], writer_);
        if (session_.session.authenticated) this->Uncount();
        if (session_.close_after_reply) break;
        // The next request, handled as if parsed now (into parsed[0]: no GETs are pending).
        std::swap(parsed[0], parsed[at + 1]);
        ahead = next;
        continue;
      }
      commands_.Execute(session_, args, writer_);
      if (session_.session.authenticated) this->Uncount();
      if (session_.close_after_reply) break;
    }
    if (log_group != nullptr) {
      Status logged = log_group->Commit();
      if (!logged.ok()) {
        // Not one reply: the client must not take any of these writes as acknowledged.
        this->ctx_.service->CountConnectionError();
        writer_.buffer().clear();
        writer_.Error("ERR the writes of these requests may not be durable: " + logged.message());
        open = false;
      }
    }
    Flush();
    // Requests parsed here keep their memory for the next ones, but not a large argument's.
    for (RespCommand& args : parsed) {
      size_t bytes = 0;
      for (const std::string& arg : args) bytes += arg.capacity();
      if (bytes > kRespReadChunk) args = RespCommand();
    }
    return open;
  }

  void Flush() {
    std::vector<uint8_t>& bytes = writer_.buffer();
    if (bytes.empty()) return;
    this->Enqueue(std::exchange(bytes, this->TakeSpareBuffer()));
  }

  std::vector<uint8_t> ClosingError(const Status& why) override {
    const std::string line = "-ERR " + why.message() + "\r\n";
    return {line.begin(), line.end()};
  }

  RespCommands commands_;
  RespParser parser_;
  RespWriter writer_;
  RespSession session_;
  std::string buffer_;
  std::vector<RespCommand> parsed_;  // (ExecuteBuffered's, kept for their memory)
  size_t charged_ = 0;               // bytes charged to the in-flight budget
};

}  // namespace sealcache::server::internal
