#include <gtest/gtest.h>

#include <xapian.h>

#include "steper/retrieve.h"
#include "test_util.h"

namespace steper::retrieve {
namespace {

using testing::TempDir;
using testing::write_file;

std::string corpus_line(const std::string& id, const std::string& title, const std::string& text) {
  return data::to_json(data::Passage{id, title, text}).dump() + "\n";
}

// A small corpus where each query has one clearly right answer.
std::string toy_corpus() {
  return corpus_line("d1", "Shirley Temple", "Shirley Temple was an actress and later a diplomat, Chief of Protocol.") +
         corpus_line("d2", "Kiss and Tell", "Kiss and Tell is a 1945 comedy film starring Shirley Temple as Corliss Archer.") +
         corpus_line("d3", "Neil Peart", "Neil Peart was the drummer of the Canadian rock band Rush.") +
         corpus_line("d4", "Rush (band)", "Rush was a Canadian rock band formed in Toronto.") +
         corpus_line("d5", "Toronto", "Toronto is the capital city of the province of Ontario.");
}

std::vector<std::string> ids(const std::vector<Hit>& hits) {
  std::vector<std::string> out;
  for (const auto& h : hits) out.push_back(h.id);
  return out;
}

class IndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir / "corpus.jsonl", toy_corpus());
    IndexStats s = build_index(dir / "corpus.jsonl", dir / "index");
    ASSERT_TRUE(s.complete);
    ASSERT_EQ(s.documents, 5u);
  }
  TempDir dir;
};

TEST_F(IndexTest, SearchFindsTheRightPassageWithItsFields) {
  auto r = open_retriever(dir / "index");
  auto hits = r->search("Who was the drummer of Rush?", 3);
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(hits[0].id, "d3");
  EXPECT_EQ(hits[0].title, "Neil Peart");
  EXPECT_EQ(hits[0].text, "Neil Peart was the drummer of the Canadian rock band Rush.");
  for (std::size_t i = 1; i < hits.size(); ++i) EXPECT_LE(hits[i].score, hits[i - 1].score);
  // Stemming joins "drummers" and "drummer"; case does not matter.
  EXPECT_EQ(r->search("DRUMMERS", 1)[0].id, "d3");
}

TEST_F(IndexTest, TitleIsSearchable) {
  auto r = open_retriever(dir / "index");
  // "Ontario" is only in d5's text, "Toronto" in d4's text and d5's title.
  EXPECT_EQ(r->search("Kiss Tell", 1)[0].id, "d2");
  write_file(dir / "t.jsonl", corpus_line("x", "Zanzibar", "An island.") + corpus_line("y", "Other", "Nothing here."));
  build_index(dir / "t.jsonl", dir / "t");
  EXPECT_EQ(ids(open_retriever(dir / "t")->search("zanzibar", 5)), std::vector<std::string>{"x"});
}

TEST_F(IndexTest, KIsRespectedAndEmptyQueriesGiveNothing) {
  auto r = open_retriever(dir / "index");
  EXPECT_EQ(r->search("Canadian rock band Toronto Shirley", 2).size(), 2u);
  EXPECT_TRUE(r->search("", 5).empty());
  EXPECT_TRUE(r->search("?!", 5).empty());
  EXPECT_TRUE(r->search("Rush", 0).empty());
  EXPECT_THROW(r->search("Rush", -1), InputError);
  // All stopwords: falls back to keeping them rather than returning nothing.
  EXPECT_FALSE(r->search("the of", 5).empty());
}

TEST_F(IndexTest, Bm25ParametersChangeScores) {
  SearchOptions a, b;
  b.bm25.k1 = 0.1;
  b.bm25.b = 0.0;
  double sa = open_retriever(dir / "index", a)->search("Canadian rock band", 1)[0].score;
  double sb = open_retriever(dir / "index", b)->search("Canadian rock band", 1)[0].score;
  EXPECT_GT(std::abs(sa - sb), 1e-6);
  SearchOptions bad;
  bad.bm25.b = 1.5;
  EXPECT_THROW(open_retriever(dir / "index", bad), InputError);
}

TEST_F(IndexTest, BatchSearchWithThreadsMatchesOneByOne) {
  SearchOptions options;
  options.threads = 2;
  auto r = open_retriever(dir / "index", options);
  std::vector<std::string> queries{"drummer", "Toronto capital", "Shirley Temple film", "rock band", "comedy", "nothing"};
  auto batch = r->search_batch(queries, 3);
  ASSERT_EQ(batch.size(), queries.size());
  for (std::size_t i = 0; i < queries.size(); ++i) EXPECT_EQ(ids(batch[i]), ids(r->search(queries[i], 3))) << queries[i];
}

TEST_F(IndexTest, RerunIsANoOpAndOtherCorpusIsRefused) {
  IndexStats again = build_index(dir / "corpus.jsonl", dir / "index");
  EXPECT_TRUE(again.already_complete);
  EXPECT_EQ(again.documents, 5u);
  write_file(dir / "other.jsonl", corpus_line("z", "Z", "zzz"));
  EXPECT_THROW(build_index(dir / "other.jsonl", dir / "index"), InputError);
  IndexOptions overwrite;
  overwrite.overwrite = true;
  EXPECT_EQ(build_index(dir / "other.jsonl", dir / "index", overwrite).documents, 1u);
  EXPECT_EQ(ids(open_retriever(dir / "index")->search("zzz", 5)), std::vector<std::string>{"z"});
}

TEST_F(IndexTest, InfoReportsWhatTheIndexIs) {
  IndexInfo info = read_index_info(dir / "index");
  EXPECT_EQ(info.documents, 5u);
  EXPECT_TRUE(info.complete);
  EXPECT_EQ(info.stemmer, "english");
  EXPECT_EQ(info.corpus, dir / "corpus.jsonl");
}

TEST(Index, CompactedIndexIsSmallerAndSearchesTheSame) {
  TempDir dir;
  std::string corpus;
  for (int i = 0; i < 300; ++i) corpus += corpus_line("p" + std::to_string(i), "T", "alpha beta word" + std::to_string(i % 37));
  write_file(dir / "c.jsonl", corpus);
  build_index(dir / "c.jsonl", dir / "plain");
  IndexOptions options;
  options.compact = true;
  IndexStats s = build_index(dir / "c.jsonl", dir / "compact", options);
  EXPECT_GT(s.bytes_before_compaction, 0u);
  EXPECT_FALSE(std::filesystem::exists(dir / "compact.compacting"));
  EXPECT_TRUE(read_index_info(dir / "compact").complete);  // metadata survives compaction
  auto a = open_retriever(dir / "plain")->search("word5 beta", 10);
  auto b = open_retriever(dir / "compact")->search("word5 beta", 10);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_DOUBLE_EQ(a[i].score, b[i].score);
  EXPECT_TRUE(build_index(dir / "c.jsonl", dir / "compact", options).already_complete);
}

TEST(Index, InterruptedBuildIsValidAndResumes) {
  TempDir dir;
  std::string corpus;
  for (int i = 0; i < 100; ++i) {
    corpus += corpus_line("p" + std::to_string(i), "Title " + std::to_string(i), "word" + std::to_string(i) + " common text");
  }
  write_file(dir / "c.jsonl", corpus);
  IndexOptions options;
  options.batch_documents = 30;
  int calls = 0;
  options.progress = [&](const IndexProgress&) { return ++calls < 2; };  // stop after the second commit
  IndexStats first = build_index(dir / "c.jsonl", dir / "idx", options);
  EXPECT_FALSE(first.complete);
  EXPECT_EQ(first.documents, 60u);
  // What was committed is searchable; the index says it is incomplete.
  EXPECT_FALSE(read_index_info(dir / "idx").complete);
  EXPECT_EQ(open_retriever(dir / "idx")->search("word42", 1)[0].id, "p42");

  options.progress = nullptr;
  IndexStats second = build_index(dir / "c.jsonl", dir / "idx", options);
  EXPECT_TRUE(second.complete);
  EXPECT_TRUE(second.resumed);
  EXPECT_EQ(second.added, 40u);
  EXPECT_EQ(second.documents, 100u);
  EXPECT_EQ(second.duplicates, 0u);
  EXPECT_TRUE(read_index_info(dir / "idx").complete);
  EXPECT_EQ(open_retriever(dir / "idx")->search("word99", 1)[0].id, "p99");
}

// A build stopped between two of its commits (a bad line, a kill) may have
// let Xapian flush the passages after the last commit; resumed, they are
// added again, and must not be called repeated ids (they once were).
TEST(Index, PassagesWrittenBeforeAStopAreNotCalledRepeatsOnResume) {
  TempDir dir;
  std::string corpus;
  for (int i = 0; i < 60; ++i) corpus += corpus_line("p" + std::to_string(i), "T", "word" + std::to_string(i));
  write_file(dir / "c.jsonl", corpus + "{\"id\": 3}\n" + corpus_line("last", "T", "final"));
  IndexOptions options;
  options.batch_documents = 40;  // committed: 40; flushed on the way out: 20 more
  EXPECT_THROW(build_index(dir / "c.jsonl", dir / "idx", options), InputError);
  options.skip_bad = true;
  IndexStats resumed = build_index(dir / "c.jsonl", dir / "idx", options);
  EXPECT_TRUE(resumed.resumed);
  EXPECT_EQ(resumed.documents, 61u);
  EXPECT_EQ(resumed.duplicates, 0u);
  write_file(dir / "d.jsonl", corpus_line("a", "T", "one") + corpus_line("a", "T", "two"));
  EXPECT_EQ(build_index(dir / "d.jsonl", dir / "idx2", options).duplicates, 1u);  // a real repeat still counts
}

TEST(Index, BadLinesStopOrAreSkipped) {
  TempDir dir;
  write_file(dir / "c.jsonl", corpus_line("a", "A", "alpha") + "{\"id\": 3, \"text\": \"x\"}\n" + corpus_line("b", "B", "beta") +
                                  corpus_line("a", "A2", "alpha again"));
  try {
    build_index(dir / "c.jsonl", dir / "i1");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("c.jsonl:2: field 'id': expected a string"), std::string::npos) << e.what();
  }
  IndexOptions skip;
  skip.skip_bad = true;
  IndexStats s = build_index(dir / "c.jsonl", dir / "i2", skip);
  EXPECT_EQ(s.skipped, 1u);
  EXPECT_EQ(s.duplicates, 1u);
  EXPECT_EQ(s.documents, 2u);  // the repeated id replaced the first
  EXPECT_EQ(open_retriever(dir / "i2")->search("again", 1)[0].title, "A2");
}

TEST(Index, CrlfCorpusAndJsonArrayCorpus) {
  TempDir dir;
  EXPECT_EQ(build_index(testing::fixture("corpus_crlf.jsonl"), dir / "i").documents, 2u);
  write_file(dir / "arr.json", "[" + data::to_json(data::Passage{"a", "A", "x"}).dump() + "]");
  EXPECT_THROW(build_index(dir / "arr.json", dir / "j"), InputError);
}

TEST(Open, MissingOrForeignIndexIsAClearError) {
  TempDir dir;
  try {
    open_retriever(dir / "nope");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("not found"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("steper index"), std::string::npos);
  }
  { Xapian::WritableDatabase plain(dir / "plain", Xapian::DB_CREATE_OR_OPEN); plain.commit(); }
  try {
    open_retriever(dir / "plain");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("not a steper index"), std::string::npos) << e.what();
  }
  std::filesystem::create_directories(dir / "empty");
  EXPECT_THROW(open_retriever(dir / "empty"), InputError);
  EXPECT_THROW(open_retriever(dir / "plain,"), InputError);
  EXPECT_THROW(open_retriever("tcp://127.0.0.1"), InputError);
  EXPECT_THROW(open_retriever("tcp://127.0.0.1:99999"), InputError);
}

TEST(Open, UnknownStemmerIsRefused) {
  TempDir dir;
  write_file(dir / "c.jsonl", corpus_line("a", "A", "x"));
  IndexOptions options;
  options.stemmer = "klingon";
  EXPECT_THROW(build_index(dir / "c.jsonl", dir / "i", options), InputError);
}

}  // namespace
}  // namespace steper::retrieve
