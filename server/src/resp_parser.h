// RespParser: requests of the Redis protocol (RESP2 and RESP3 clients send the same request
// form), as Redis reads them (src/networking.c): multibulk arrays of bulk strings
// ("*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n") and inline commands ("PING hi\r\n", words split
// like redis-cli's, with "..." and '...' quoting). Private to server/.
//
// Incremental: Parse() consumes whole requests from the front of a buffer and leaves a
// partial one for the next call. A malformed request is a ProtocolError with Redis's own
// wording; after one, the connection must answer "-ERR <message>" and close, as Redis does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sealcache::server::internal {

struct RespLimits {
  // Most arguments in one request (Redis: 1024 * 1024).
  size_t max_arguments = 1024 * 1024;
  // Largest bulk string argument, in bytes (Redis's proto-max-bulk-len: 512 MiB).
  size_t max_bulk_bytes = 512u << 20;
  // Longest inline request or count line without its end, in bytes (Redis: 64 KiB).
  size_t max_inline_bytes = 64u << 10;
};

using RespCommand = std::vector<std::string>;

class RespParser {
 public:
  explicit RespParser(RespLimits limits = {}) : limits_(limits) {}

  enum class Outcome {
    kCommand,        // *command holds one request; its bytes were consumed
    kNeedMore,       // the buffer holds no whole request yet (what it holds stays)
    kProtocolError,  // error() says why; the connection must be closed after replying
  };

  // Parses one request from the front of `buffer`, erasing the bytes it consumed. Empty
  // requests (a bare "\r\n", "*0\r\n", a negative count) are consumed and skipped.
  Outcome Parse(std::string& buffer, RespCommand* command);

  // "Protocol error: ..." (without "ERR "), after kProtocolError.
  const std::string& error() const { return error_; }

 private:
  Outcome ParseInline(std::string& buffer, RespCommand* command);
  Outcome ParseMultibulk(std::string& buffer, RespCommand* command);
  Outcome Fail(std::string message);

  const RespLimits limits_;
  std::string error_;
};

// Splits an inline request into words like Redis's sdssplitargs; nullopt for unbalanced
// quotes or a closing quote not followed by a space.
std::optional<RespCommand> SplitInlineArguments(std::string_view line);

// An integer as Redis reads one (its string2ll): the whole of `s`, an optional '-', then "0"
// alone or digits without a leading zero; no '+', no spaces; nullopt if not, or out of range.
std::optional<int64_t> ParseRedisInteger(std::string_view s);

}  // namespace sealcache::server::internal
