#include "resp_fuzz_input.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <string>

#include "resp_commands.h"
#include "resp_parser.h"
#include "resp_writer.h"

namespace sealcache::fuzz {
namespace {

using server::internal::RespCommand;
using server::internal::RespCommands;
using server::internal::RespLimits;
using server::internal::RespParser;
using server::internal::RespServerFacts;
using server::internal::RespSession;
using server::internal::RespWriter;

constexpr size_t kMaxReadSize = 64;
// Smaller bounds than the server's defaults, so that inputs reach them.
constexpr size_t kMaxBulkBytes = 1u << 20;
constexpr size_t kMaxArguments = 4096;
constexpr int kMaxNesting = 8;

Status Broken(std::string_view what, const RespCommand& args) {
  std::string command;
  for (const auto& a : args) command += " " + a.substr(0, 32);
  return Status::Internal(std::string(what) + ":" + command);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<size_t> ReplyLength(std::string_view b, int depth) {
  if (b.empty() || depth > kMaxNesting) return std::nullopt;
  const size_t crlf = b.find("\r\n");
  if (crlf == std::string_view::npos) return std::nullopt;
  const std::string_view head = b.substr(1, crlf - 1);
  const size_t after = crlf + 2;
  switch (b[0]) {
    case '+':
    case '-':
    case ',':
      return head.find('\n') == std::string_view::npos ? std::optional(after) : std::nullopt;
    case ':':
      return ParseInt(head) ? std::optional(after) : std::nullopt;
    case '_':
      return head.empty() ? std::optional(after) : std::nullopt;
    case '#':
      return head == "t" || head == "f" ? std::optional(after) : std::nullopt;
    case '$':
    case '=': {
      auto n = ParseInt(head);
      if (!n) return std::nullopt;
      if (*n == -1 && b[0] == '$') return after;
      if (*n < 0 || b.size() < after + static_cast<size_t>(*n) + 2) return std::nullopt;
      if (b.substr(after + *n, 2) != "\r\n") return std::nullopt;
      return after + *n + 2;
    }
    case '*':
    case '~':
    case '%': {
      auto n = ParseInt(head);
      if (!n) return std::nullopt;
      if (*n == -1 && b[0] == '*') return after;
      if (*n < 0) return std::nullopt;
      const int64_t elements = b[0] == '%' ? 2 * *n : *n;
      size_t pos = after;
      for (int64_t i = 0; i < elements; ++i) {
        auto len = ReplyLength(b.substr(pos), depth + 1);
        if (!len) return std::nullopt;
        pos += *len;
      }
      return pos;
    }
    default:
      return std::nullopt;
  }
}

bool AllowedBeforeAuth(const std::string& name) {
  return name == "auth" || name == "hello" || name == "quit" || name == "reset";
}

RespServerFacts& Facts() {
  static RespServerFacts* facts = [] {
    auto* f = new RespServerFacts();
    f->connected_clients = [] { return uint64_t{1}; };
    return f;
  }();
  return *facts;
}

// Runs one request and checks the promises of resp_fuzz_input.h.
Status ExecuteOne(RespCommands& commands, RespSession& s, const RespCommand& args,
                  RespWriter& out) {
  const bool authenticated = s.session.authenticated;
  const bool admin = s.session.admin;
  const size_t before = out.buffer().size();
  commands.Execute(s, args, out);
  const std::string_view reply =
      std::string_view(reinterpret_cast<const char*>(out.buffer().data()), out.buffer().size())
          .substr(before);
  auto length = RespReplyLength(reply);
  if (!length || *length != reply.size()) return Broken("not exactly one RESP reply", args);
  const std::string name = Lower(args[0]);
  // Redis answers an unknown command or a wrong arity before it checks authentication;
  // anything else is NOAUTH.
  if (!authenticated && !AllowedBeforeAuth(name) && reply[0] != '-') {
    return Broken("an unauthenticated session got a reply that is not an error", args);
  }
  if (authenticated && !admin && name.rfind("sealcache.", 0) == 0 && reply[0] != '-') {
    return Broken("an org session ran an admin command", args);
  }
  out.buffer().clear();
  return Status::Ok();
}

}  // namespace

std::optional<size_t> RespReplyLength(std::string_view bytes) { return ReplyLength(bytes, 0); }

Result<FuzzInputSummary> RunRespFuzzInput(std::span<const uint8_t> input) {
  FuzzInputSummary summary;
  if (input.size() < 2) return summary;
  SC_ASSIGN_OR_RETURN(FuzzSession opened,
                      OpenFuzzSession(static_cast<SessionState>(input[0] % kSessionStates)));
  const size_t read_size = 1 + input[1] % kMaxReadSize;
  RespLimits limits;
  limits.max_bulk_bytes = kMaxBulkBytes;
  limits.max_arguments = kMaxArguments;
  RespParser parser(limits);
  RespWriter out(2);
  RespCommands commands(opened.service, &Facts());
  RespSession session;
  session.session = std::move(opened.session);
  std::string buffer;
  std::span<const uint8_t> rest = input.subspan(2);
  while (!rest.empty()) {
    const size_t n = std::min(read_size, rest.size());
    buffer.append(reinterpret_cast<const char*>(rest.data()), n);
    rest = rest.subspan(n);
    for (;;) {
      RespCommand args;
      const auto outcome = parser.Parse(buffer, &args);
      if (outcome == RespParser::Outcome::kNeedMore) break;
      if (outcome == RespParser::Outcome::kProtocolError) return summary;  // the server closes
      ++summary.frames;
      SC_RETURN_IF_ERROR(ExecuteOne(commands, session, args, out));
      if (session.close_after_reply) return summary;
    }
  }
  return summary;
}

}  // namespace sealcache::fuzz
