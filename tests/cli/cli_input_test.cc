// Unit tests of what sealcache-cli parses: vectors, durations, digests, printable text, the
// put-batch format, and its JSON reader/writer.
#include <gtest/gtest.h>

#include "batch_file.h"
#include "input.h"
#include "json.h"
#include "sealcache/crypto/master_key.h"

namespace sealcache::cli {
namespace {

TEST(CliVector, AcceptsSpacesCommasNewlinesAndJsonArrays) {
  const std::vector<float> want = {0.5f, -1.0f, 2.0f};
  for (std::string_view text :
       {"0.5 -1 2", "0.5,-1,2", "0.5, -1,\n2\n", "[0.5, -1, 2]", " [ 0.5,-1 ,2e0 ] \n"}) {
    auto v = ParseVector(text);
    ASSERT_TRUE(v.ok()) << text << ": " << v.status().ToString();
    EXPECT_EQ(*v, want) << text;
  }
}

TEST(CliVector, RejectsEmptyNonNumbersNonFiniteAndUnclosedArrays) {
  for (std::string_view text : {"", " \n", "[]", "1 two 3", "1 nan", "inf", "[1, 2", "1;2"}) {
    EXPECT_FALSE(ParseVector(text).ok()) << text;
  }
}

TEST(CliDuration, ReadsUnitsAndPlainMilliseconds) {
  EXPECT_EQ(*ParseDuration("1500"), 1500);
  EXPECT_EQ(*ParseDuration("250ms"), 250);
  EXPECT_EQ(*ParseDuration("90s"), 90'000);
  EXPECT_EQ(*ParseDuration("15m"), 900'000);
  EXPECT_EQ(*ParseDuration("2h"), 7'200'000);
  EXPECT_EQ(*ParseDuration("7d"), 604'800'000);
  EXPECT_EQ(*ParseDuration("1.5h"), 5'400'000);
  for (std::string_view bad : {"", "0", "-5s", "5y", "h", "1 h", "0.1ms", "1e30d", "nan"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
}

TEST(CliDigest, HexMustBe32BytesAndDigestOfIsSha256) {
  EXPECT_TRUE(ParseDigestHex(std::string(64, 'a')).ok());
  EXPECT_FALSE(ParseDigestHex(std::string(62, 'a')).ok());
  EXPECT_FALSE(ParseDigestHex(std::string(64, 'g')).ok());
  // SHA-256("abc"), FIPS 180-2 appendix B.1.
  EXPECT_EQ(crypto::ToHex(DigestOf("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(CliPrintable, TextIsValidUtf8WithoutControlCharacters) {
  EXPECT_TRUE(IsPrintableText("plain text\nwith\ttabs"));
  EXPECT_TRUE(IsPrintableText("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_TRUE(IsPrintableText(""));
  EXPECT_FALSE(IsPrintableText(std::string("a\0b", 3)));
  EXPECT_FALSE(IsPrintableText("bell\x07"));
  EXPECT_FALSE(IsPrintableText("\xff\xfe"));
  EXPECT_FALSE(IsPrintableText("\xc0\xaf"));      // overlong '/'
  EXPECT_FALSE(IsPrintableText("\xed\xa0\x80"));  // surrogate
  EXPECT_FALSE(IsPrintableText("\xe2\x82"));      // truncated
}

TEST(CliJson, EscapesOnWriteAndReadsBackTheSameStrings) {
  const std::string tricky = "quote\" backslash\\ newline\n tab\t bell\x07 caf\xc3\xa9";
  Json doc = Json::MakeObject();
  doc.Set("s", tricky).Set("n", -42).Set("u", uint64_t{1} << 63).Set("f", Json::FromFloat(0.1f));
  doc.Set("a", Json::MakeArray().Push(true).Push(Json()));
  const std::string text = doc.Dump();
  EXPECT_EQ(text.find('\n'), std::string::npos);
  EXPECT_NE(text.find("\\u0007"), std::string::npos) << text;
  EXPECT_NE(text.find("\"f\":0.1"), std::string::npos) << text;
  auto back = Json::Parse(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ((*back)["s"].string(), tricky);
  EXPECT_EQ((*back)["n"].number(), -42);
  EXPECT_TRUE((*back)["a"].array()[0].boolean());
  EXPECT_TRUE((*back)["a"].array()[1].is_null());
}

TEST(CliJson, ParsesUnicodeEscapesAndRejectsMalformedDocuments) {
  auto s = Json::Parse(R"(["\u00e9\ud83d\ude00\/"])");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->array()[0].string(), "\xc3\xa9\xf0\x9f\x98\x80/");
  for (std::string bad : {"", "{", "[1,]", "{\"a\" 1}", "\"\\x\"", "[1] 2", "\"\\ud800\"", "tru",
                          "{\"a\":1,}", "\"a\nb\""}) {
    EXPECT_FALSE(Json::Parse(bad).ok()) << bad;
  }
  EXPECT_FALSE(Json::Parse(std::string(1000, '[') + std::string(1000, ']')).ok());
}

TEST(CliBatchFile, ReadsEveryFieldFormAndSkipsBlankAndCommentLines) {
  auto items = ParseBatchFile(
      "# header\n"
      "{\"digest_of\":\"abc\",\"vector\":[1,2],\"payload_text\":\"t\",\"ttl\":\"2h\","
      "\"namespace\":\"ns\"}\n"
      "\n"
      "{\"digest\":\"" +
      std::string(64, '0') + "\",\"vector\":\"3 4\",\"payload_hex\":\"00ff\",\"ttl_ms\":5}\n");
  ASSERT_TRUE(items.ok()) << items.status().ToString();
  ASSERT_EQ(items->size(), 2u);
  const BatchItem& a = (*items)[0];
  EXPECT_EQ(a.line, 2u);
  EXPECT_EQ(a.digest, DigestOf("abc"));
  EXPECT_EQ(a.vector, (std::vector<float>{1, 2}));
  EXPECT_EQ(a.payload, "t");
  EXPECT_EQ(a.ttl_ms, 7'200'000);
  EXPECT_EQ(a.name_space, "ns");
  const BatchItem& b = (*items)[1];
  EXPECT_EQ(b.line, 4u);
  EXPECT_EQ(b.payload, std::string("\x00\xff", 2));
  EXPECT_EQ(b.ttl_ms, 5);
  EXPECT_EQ(b.vector, (std::vector<float>{3, 4}));
}

TEST(CliBatchFile, NamesTheLineOfTheFirstBadEntry) {
  const std::string good =
      "{\"digest_of\":\"a\",\"vector\":[1],\"payload_text\":\"p\",\"ttl\":1}\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"digest_of\":\"a\",\"vector\":[1],\"payload_text\":\"p\"}", "ttl"},
      {"{\"digest_of\":\"a\",\"vector\":[],\"payload_text\":\"p\",\"ttl\":1}", "vector"},
      {"{\"vector\":[1],\"payload_text\":\"p\",\"ttl\":1}", "digest"},
      {"{\"digest_of\":\"a\",\"vector\":[1],\"payload_text\":\"p\",\"payload_hex\":\"00\","
       "\"ttl\":1}",
       "payload"},
      {"{\"digest_of\":\"a\",\"vector\":[1],\"payload_text\":\"p\",\"ttl\":1,\"nmespace\":\"x\"}",
       "unknown field \"nmespace\""},
      {"[1, 2]", "object"},
      {"not json", "JSON"},
  };
  for (const auto& [line, what] : cases) {
    auto r = ParseBatchFile(good + line + "\n");
    ASSERT_FALSE(r.ok()) << line;
    EXPECT_NE(r.status().message().find("line 2: "), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status().message();
  }
  EXPECT_FALSE(ParseBatchFile("# only a comment\n\n").ok());
}

}  // namespace
}  // namespace sealcache::cli
