// sealcache-cli org commands against a live server: put (files, stdin, inline), put-batch,
// get, lookup, delete, invalidate, stats.
#include <chrono>
#include <thread>

#include "cli_fixture.h"

namespace sealcache::cli::testing {
namespace {

using server::testing::MakeVector;

class CliEntriesTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    token_ = CreateOrg("acme");
  }
  CliRun Org(std::vector<std::string> args, std::string_view input = "") {
    return Cli(token_, std::move(args), input);
  }
  // Puts vector `seed` with an inline payload under SHA-256(`key`).
  void PutText(const std::string& key, uint64_t seed, const std::string& payload,
               const std::string& ns = "") {
    std::vector<std::string> args = {"put",
                                     "--digest-of",
                                     key,
                                     "--vector",
                                     VectorFile(MakeVector(kDim, seed), key + ".vec"),
                                     "--payload-text",
                                     payload,
                                     "--ttl",
                                     "1h"};
    if (!ns.empty()) args.insert(args.end(), {"--namespace", ns});
    CliRun r = Org(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::string token_;
};

TEST_F(CliEntriesTest, PutFromFilesThenGetReturnsPayloadAndMetadata) {
  WriteFile(dir_ + "/payload.txt", "the answer\nis 42");
  CliRun put = Org({"--json", "put", "--digest-of", "question", "--vector",
                    VectorFile(MakeVector(kDim, 1), "v1"), "--payload", dir_ + "/payload.txt",
                    "--ttl", "2h", "--namespace", "faq"});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  EXPECT_FALSE(put.json()["replaced"].boolean());
  const std::string digest = put.json()["digest"].string();
  EXPECT_EQ(digest.size(), 64u);

  CliRun get = Org({"--json", "get", "--digest", digest});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  Json e = get.json();
  EXPECT_EQ(e["payload_text"].string(), "the answer\nis 42");
  EXPECT_EQ(e["namespace"].string(), "faq");
  EXPECT_EQ(e["ttl_ms"].number(), 7'200'000);
  EXPECT_EQ(e["expires_ms"].number() - e["created_ms"].number(), 7'200'000);
  EXPECT_EQ(e["payload_size"].number(), 16);

  CliRun text = Org({"get", "--digest-of", "question"});  // same digest, by its text
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("payload:      the answer\nis 42"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("ttl:          2h"), std::string::npos) << text.out;
}

TEST_F(CliEntriesTest, PutTakesTheVectorOrThePayloadFromStdin) {
  CliRun vec =
      Org({"put", "--digest-of", "a", "--vector", "-", "--payload-text", "from a", "--ttl", "90s"},
          "1, 2, 3, 4, 5, 6, 7, 8\n");
  ASSERT_EQ(vec.exit_code, 0) << vec.err;
  CliRun pay = Org({"put", "--digest-of", "b", "--vector", VectorFile(MakeVector(kDim, 2), "v"),
                    "--payload", "-", "--ttl", "15m"},
                   "payload from stdin");
  ASSERT_EQ(pay.exit_code, 0) << pay.err;
  EXPECT_EQ(Org({"--json", "get", "--digest-of", "b"}).json()["payload_text"].string(),
            "payload from stdin");
  EXPECT_EQ(Org({"--json", "get", "--digest-of", "a"}).json()["ttl_ms"].number(), 90'000);
  // The stdin vector is the one stored: it is its own nearest neighbour.
  CliRun near = Org({"--json", "lookup", "--vector", "-", "--k", "1"}, "[1,2,3,4,5,6,7,8]");
  ASSERT_EQ(near.exit_code, 0) << near.err;
  EXPECT_EQ(near.json()["hits"].array()[0]["payload_text"].string(), "from a");
}

TEST_F(CliEntriesTest, BinaryPayloadIsHexInJsonAndRawBytesWithOut) {
  const std::string binary("\x00\x01\xfe\xff", 4);
  CliRun put = Org({"put", "--digest-of", "bin", "--vector", VectorFile(MakeVector(kDim, 3), "v"),
                    "--payload", "-", "--ttl", "1h"},
                   binary);
  ASSERT_EQ(put.exit_code, 0) << put.err;
  Json e = Org({"--json", "get", "--digest-of", "bin"}).json();
  EXPECT_EQ(e["payload_hex"].string(), "0001feff");
  EXPECT_TRUE(e["payload_text"].is_null());

  CliRun out = Org({"get", "--digest-of", "bin", "--out", dir_ + "/out.bin"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(ReadAll(dir_ + "/out.bin"), binary);
  CliRun raw = Org({"get", "--digest-of", "bin", "--out", "-"});
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_EQ(raw.out, binary);
}

TEST_F(CliEntriesTest, GetNoPayloadReturnsMetadataOnly) {
  PutText("q", 1, "secret answer");
  CliRun r = Org({"--json", "get", "--digest-of", "q", "--no-payload"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.json()["payload_text"].is_null());
  EXPECT_EQ(r.json()["payload_size"].number(), 13);
  EXPECT_EQ(r.out.find("secret"), std::string::npos);
}

TEST_F(CliEntriesTest, LookupReturnsNearestFirstAndAnEmptyListWhenNoneQualify) {
  PutText("one", 1, "first", "n1");
  PutText("two", 2, "second", "n2");
  PutText("three", 3, "third", "n1");
  const std::string query = VectorFile(MakeVector(kDim, 2), "query");
  CliRun r = Org({"--json", "lookup", "--vector", query, "--k", "3", "--min-score=-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json doc = r.json();
  ASSERT_EQ(doc["count"].number(), 3);
  const auto& hits = doc["hits"].array();
  EXPECT_EQ(hits[0]["payload_text"].string(), "second");
  EXPECT_NEAR(hits[0]["score"].number(), 1.0, 1e-4);
  EXPECT_GE(hits[0]["score"].number(), hits[1]["score"].number());
  EXPECT_GE(hits[1]["score"].number(), hits[2]["score"].number());

  CliRun ns = Org({"--json", "lookup", "--vector", query, "--k", "3", "--min-score=-1",
                   "--namespace", "n1", "--no-payload"});
  ASSERT_EQ(ns.exit_code, 0) << ns.err;
  ASSERT_EQ(ns.json()["count"].number(), 2);
  const Json ns_doc = ns.json();
  for (const Json& h : ns_doc["hits"].array()) {
    EXPECT_EQ(h["namespace"].string(), "n1");
    EXPECT_TRUE(h["payload_text"].is_null());
  }
  CliRun none = Org({"--json", "lookup", "--vector", query, "--namespace", "nowhere"});
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.json()["count"].number(), 0);
  EXPECT_TRUE(none.json()["hits"].array().empty());
  CliRun none_text = Org({"lookup", "--vector", query, "--namespace", "nowhere"});
  EXPECT_EQ(none_text.exit_code, 0);
  EXPECT_EQ(none_text.out, "0 hits\n");
}

TEST_F(CliEntriesTest, DeleteRemovesTheEntryAndASecondDeleteExits1) {
  PutText("gone", 1, "x");
  CliRun del = Org({"--json", "delete", "--digest-of", "gone"});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  EXPECT_EQ(del.json()["removed"].number(), 1);
  EXPECT_EQ(Org({"get", "--digest-of", "gone"}).exit_code, 1);
  CliRun again = Org({"delete", "--digest-of", "gone"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("NOT_FOUND"), std::string::npos) << again.err;
}

TEST_F(CliEntriesTest, InvalidateByNamespaceThenByAge) {
  PutText("a", 1, "a", "old");
  PutText("b", 2, "b", "old");
  PutText("c", 3, "c", "keep");
  CliRun ns = Org({"--json", "invalidate", "--namespace", "old"});
  ASSERT_EQ(ns.exit_code, 0) << ns.err;
  EXPECT_EQ(ns.json()["removed"].number(), 2);
  EXPECT_EQ(Org({"get", "--digest-of", "c"}).exit_code, 0);
  // Created more than an hour ago: none yet.
  CliRun young = Org({"--json", "invalidate", "--older-than", "1h"});
  ASSERT_EQ(young.exit_code, 0) << young.err;
  EXPECT_EQ(young.json()["removed"].number(), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CliRun aged = Org({"--json", "invalidate", "--older-than", "10ms"});
  ASSERT_EQ(aged.exit_code, 0) << aged.err;
  EXPECT_EQ(aged.json()["removed"].number(), 1);
  EXPECT_EQ(Org({"get", "--digest-of", "c"}).exit_code, 1);
}

TEST_F(CliEntriesTest, StatsCountTheSessionsOperations) {
  PutText("a", 1, "a");
  PutText("b", 2, "b");
  ASSERT_EQ(Org({"get", "--digest-of", "a"}).exit_code, 0);
  ASSERT_EQ(Org({"get", "--digest-of", "missing"}).exit_code, 1);
  CliRun r = Org({"--json", "stats"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json s = r.json();
  EXPECT_EQ(s["org"].string(), "acme");
  EXPECT_EQ(s["entries"].number(), 2);
  EXPECT_EQ(s["puts"].number(), 2);
  EXPECT_EQ(s["gets"].number(), 2);
  EXPECT_EQ(s["misses"].number(), 1);
  EXPECT_EQ(s["active_key_version"].number(), 1);
  CliRun text = Org({"stats"});
  EXPECT_NE(text.out.find("entries:"), std::string::npos) << text.out;
}

TEST_F(CliEntriesTest, PutBatchStoresGoodLinesAndReportsRefusedOnesByLine) {
  const std::string batch =
      "# two good entries, one the server refuses (wrong dimension)\n"
      "{\"digest_of\": \"k1\", \"vector\": [1,0,0,0,0,0,0,0], \"payload_text\": \"one\", "
      "\"ttl\": \"1h\", \"namespace\": \"b\"}\n"
      "\n"
      "{\"digest_of\": \"k2\", \"vector\": \"0 1 0 0 0 0 0 0\", \"payload_hex\": \"00ff\", "
      "\"ttl\": 60000}\n"
      "{\"digest_of\": \"k3\", \"vector\": [1,2,3], \"payload_text\": \"bad\", \"ttl_ms\": 5000}\n";
  WriteFile(dir_ + "/batch.jsonl", batch);
  CliRun r = Org({"--json", "put-batch", dir_ + "/batch.jsonl"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  Json doc = r.json();
  EXPECT_EQ(doc["stored"].number(), 2);
  EXPECT_EQ(doc["failed"].number(), 1);
  ASSERT_EQ(doc["errors"].array().size(), 1u);
  EXPECT_EQ(doc["errors"].array()[0]["line"].number(), 5);
  EXPECT_EQ(Org({"--json", "get", "--digest-of", "k2"}).json()["payload_hex"].string(), "00ff");
  EXPECT_EQ(Org({"--json", "get", "--digest-of", "k1"}).json()["namespace"].string(), "b");

  CliRun good = Org({"put-batch", "-"}, batch.substr(0, batch.rfind("{\"digest_of\": \"k3\"")));
  EXPECT_EQ(good.exit_code, 0) << good.err;
  EXPECT_EQ(good.out, "stored 2 of 2 entries\n");
}

TEST_F(CliEntriesTest, PutReplacesAnEntryWithTheSameDigest) {
  PutText("same", 1, "old");
  CliRun r = Org({"--json", "put", "--digest-of", "same", "--vector",
                  VectorFile(MakeVector(kDim, 1), "v"), "--payload-text", "new", "--ttl", "1h"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.json()["replaced"].boolean());
  EXPECT_EQ(Org({"--json", "get", "--digest-of", "same"}).json()["payload_text"].string(), "new");
}

}  // namespace
}  // namespace sealcache::cli::testing
