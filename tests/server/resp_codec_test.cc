// The Redis protocol codec: requests parsed the way Redis parses them (tests/unit/protocol.tcl
// of Redis states the same cases), replies written in RESP2 and RESP3 the way Redis writes
// them.
#include <gtest/gtest.h>

#include "resp_parser.h"
#include "resp_writer.h"

namespace sealcache::server::internal {
namespace {

using Outcome = RespParser::Outcome;

RespCommand ParseOne(const std::string& bytes, Outcome want = Outcome::kCommand) {
  RespParser parser;
  std::string buffer = bytes;
  RespCommand command;
  EXPECT_EQ(parser.Parse(buffer, &command), want) << parser.error();
  return command;
}

std::string ErrorOf(const std::string& bytes, RespLimits limits = {}) {
  RespParser parser(limits);
  std::string buffer = bytes;
  RespCommand command;
  EXPECT_EQ(parser.Parse(buffer, &command), Outcome::kProtocolError);
  return parser.error();
}

TEST(RespParser, ReadsAMultibulkRequestWithBinaryArguments) {
  const std::string value("a\0\r\nb", 5);
  EXPECT_EQ(ParseOne("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\n" + value + "\r\n"),
            (RespCommand{"SET", "k", value}));
}

TEST(RespParser, WaitsForTheRestOfARequestFedByteByByte) {
  const std::string request = "*2\r\n$4\r\nECHO\r\n$11\r\nhello world\r\n";
  RespParser parser;
  std::string buffer;
  RespCommand command;
  for (size_t i = 0; i + 1 < request.size(); ++i) {
    buffer.push_back(request[i]);
    ASSERT_EQ(parser.Parse(buffer, &command), Outcome::kNeedMore) << "after byte " << i;
  }
  buffer.push_back(request.back());
  ASSERT_EQ(parser.Parse(buffer, &command), Outcome::kCommand);
  EXPECT_EQ(command, (RespCommand{"ECHO", "hello world"}));
  EXPECT_TRUE(buffer.empty());
}

TEST(RespParser, ReadsPipelinedRequestsOneAtATime) {
  RespParser parser;
  std::string buffer = "*1\r\n$4\r\nPING\r\nPING inline\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$3";
  RespCommand command;
  ASSERT_EQ(parser.Parse(buffer, &command), Outcome::kCommand);
  EXPECT_EQ(command, (RespCommand{"PING"}));
  ASSERT_EQ(parser.Parse(buffer, &command), Outcome::kCommand);
  EXPECT_EQ(command, (RespCommand{"PING", "inline"}));
  ASSERT_EQ(parser.Parse(buffer, &command), Outcome::kCommand);
  EXPECT_EQ(command, (RespCommand{"GET", "k"}));
  EXPECT_EQ(parser.Parse(buffer, &command), Outcome::kNeedMore);
  EXPECT_EQ(buffer, "*1\r\n$3");
}

TEST(RespParser, SkipsEmptyQueriesAndNonPositiveCountsAsRedisDoes) {
  EXPECT_EQ(ParseOne("\r\n*-10\r\n*0\r\n   \r\nPING\r\n"), (RespCommand{"PING"}));
}

TEST(RespParser, SplitsInlineRequestsLikeRedisCli) {
  EXPECT_EQ(ParseOne("SET \"a b\" 'c d' e\\x\r\n"), (RespCommand{"SET", "a b", "c d", "e\\x"}));
  EXPECT_EQ(ParseOne("ECHO \"\\x41\\n\\t\\\"q\\\"\"\n"), (RespCommand{"ECHO", "A\n\t\"q\""}));
  EXPECT_EQ(ParseOne("ECHO 'it\\'s'\r\n"), (RespCommand{"ECHO", "it's"}));
  EXPECT_EQ(ParseOne("ECHO \"\"\r\n"), (RespCommand{"ECHO", ""}));
}

TEST(RespParser, RefusesMalformedRequestsWithRedisWording) {
  EXPECT_EQ(ErrorOf("*20000000\r\n"), "Protocol error: invalid multibulk length");
  EXPECT_EQ(ErrorOf("*x\r\n"), "Protocol error: invalid multibulk length");
  EXPECT_EQ(ErrorOf("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n"),
            "Protocol error: expected '$', got 'f'");
  EXPECT_EQ(ErrorOf("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n"),
            "Protocol error: invalid bulk length");
  EXPECT_EQ(ErrorOf("*1\r\n$600000000\r\n"), "Protocol error: invalid bulk length");
  EXPECT_EQ(ErrorOf("SET \"unbalanced\r\n"), "Protocol error: unbalanced quotes in request");
  EXPECT_EQ(ErrorOf("SET \"a\"b\r\n"), "Protocol error: unbalanced quotes in request");
  EXPECT_EQ(ErrorOf(std::string(70'000, 'a')), "Protocol error: too big inline request");
  EXPECT_EQ(ErrorOf("*" + std::string(70'000, '1')), "Protocol error: too big mbulk count string");
  EXPECT_EQ(ErrorOf("*1\r\n$" + std::string(70'000, '1')),
            "Protocol error: too big bulk count string");
}

TEST(RespParser, LengthsAndIntegersAreRedisString2ll) {
  EXPECT_EQ(ErrorOf("*01\r\n$4\r\nPING\r\n"), "Protocol error: invalid multibulk length");
  EXPECT_EQ(ErrorOf("*1\r\n$04\r\nPING\r\n"), "Protocol error: invalid bulk length");
  EXPECT_EQ(ErrorOf("*1\r\n$+4\r\nPING\r\n"), "Protocol error: invalid bulk length");
  for (const char* integer : {"0", "-1", "12", "9223372036854775807", "-9223372036854775808"}) {
    EXPECT_EQ(ParseRedisInteger(integer), std::stoll(integer)) << integer;
  }
  for (const char* not_integer : {"", "-", "+5", "007", "-0", "-07", " 1", "1 ", "1.5", "0x1",
                                  "9223372036854775808", "-9223372036854775809"}) {
    EXPECT_EQ(ParseRedisInteger(not_integer), std::nullopt) << not_integer;
  }
}

TEST(RespParser, EnforcesItsConfiguredBounds) {
  RespLimits limits;
  limits.max_arguments = 2;
  limits.max_bulk_bytes = 4;
  EXPECT_EQ(ErrorOf("*3\r\n", limits), "Protocol error: invalid multibulk length");
  EXPECT_EQ(ErrorOf("*1\r\n$5\r\n", limits), "Protocol error: invalid bulk length");
}

std::string Written(int protocol, void (*write)(RespWriter&)) {
  RespWriter w(protocol);
  write(w);
  return std::string(w.buffer().begin(), w.buffer().end());
}

TEST(RespWriter, WritesEachTypeInRESP2AndRESP3) {
  auto map = [](RespWriter& w) {
    w.MapHeader(1);
    w.Bulk("k");
    w.Integer(-7);
  };
  EXPECT_EQ(Written(2, map), "*2\r\n$1\r\nk\r\n:-7\r\n");
  EXPECT_EQ(Written(3, map), "%1\r\n$1\r\nk\r\n:-7\r\n");
  auto nulls = [](RespWriter& w) {
    w.NullBulk();
    w.NullArray();
  };
  EXPECT_EQ(Written(2, nulls), "$-1\r\n*-1\r\n");
  EXPECT_EQ(Written(3, nulls), "_\r\n_\r\n");
  auto scalars = [](RespWriter& w) {
    w.Double(0.25);
    w.Boolean(true);
    w.SetHeader(0);
    w.Verbatim("txt", "a:b");
  };
  EXPECT_EQ(Written(2, scalars), "$4\r\n0.25\r\n:1\r\n*0\r\n$3\r\na:b\r\n");
  EXPECT_EQ(Written(3, scalars), ",0.25\r\n#t\r\n~0\r\n=7\r\ntxt:a:b\r\n");
  auto basics = [](RespWriter& w) {
    w.SimpleString("OK");
    w.Error("ERR bad\r\nline");
    w.Bulk("");
    w.ArrayHeader(2);
  };
  EXPECT_EQ(Written(2, basics), "+OK\r\n-ERR bad  line\r\n$0\r\n\r\n*2\r\n");
  EXPECT_EQ(Written(3, basics), Written(2, basics));
}

}  // namespace
}  // namespace sealcache::server::internal
