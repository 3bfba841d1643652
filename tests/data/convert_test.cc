#include <gtest/gtest.h>

#include <set>
#include <unordered_map>

#include "steper/data.h"
#include "test_util.h"

namespace steper::data {
namespace {

using testing::fixture;
using testing::shared_data;
using testing::TempDir;

struct Converted {
  ConvertStats stats;
  std::vector<Question> questions;
  std::vector<Passage> corpus;
};

Converted run(Format format, const std::string& input, const TempDir& dir, ConvertOptions options = {}) {
  Converted c;
  c.stats = convert(format, input, dir / "out", options);
  c.questions = read_questions(dir / "out/questions.jsonl");
  RecordReader<Passage> r(dir / "out/corpus.jsonl", parse_passage);
  Passage p;
  while (r.next(p)) c.corpus.push_back(p);
  return c;
}

// Invariants every conversion must keep: ids unique, no passage twice,
// supporting ids point into the corpus at passages with the supporting titles.
void expect_well_formed(const Converted& c) {
  std::unordered_map<std::string, const Passage*> by_id;
  std::set<std::pair<std::string, std::string>> contents;
  for (const auto& p : c.corpus) {
    EXPECT_TRUE(by_id.emplace(p.id, &p).second) << "duplicate id " << p.id;
    EXPECT_TRUE(contents.emplace(p.title, p.text).second) << "passage stored twice: " << p.title;
  }
  std::set<std::string> qids;
  for (const auto& q : c.questions) {
    EXPECT_TRUE(qids.insert(q.id).second) << "duplicate question " << q.id;
    EXPECT_FALSE(q.question.empty());
    for (const auto& id : q.supporting_ids) {
      auto it = by_id.find(id);
      ASSERT_NE(it, by_id.end()) << q.id << " cites missing passage " << id;
      EXPECT_NE(std::find(q.supporting_titles.begin(), q.supporting_titles.end(), it->second->title),
                q.supporting_titles.end());
    }
  }
  EXPECT_EQ(c.stats.questions, c.questions.size());
  EXPECT_EQ(c.stats.passages, c.corpus.size());
}

TEST(ConvertReal, IrcotHotpotqaSample) {
  TempDir dir;
  Converted c = run(Format::ircot, shared_data("ircot/hotpotqa_dev_subsampled.jsonl"), dir);
  expect_well_formed(c);
  ASSERT_EQ(c.questions.size(), 500u);
  EXPECT_EQ(c.stats.paragraphs_seen, 4931u);
  EXPECT_LT(c.corpus.size(), 4931u);  // shared paragraphs pooled
  const Question& q = c.questions[0];
  EXPECT_EQ(q.id, "5a8c7595554299585d9e36b6");
  EXPECT_EQ(q.answers, std::vector<std::string>{"Chief of Protocol"});
  EXPECT_EQ(q.dataset, "hotpotqa");  // guessed from the file name
  EXPECT_EQ(q.supporting_titles.size(), 2u);
  for (const auto& question : c.questions) EXPECT_FALSE(question.answers.empty()) << question.id;
}

TEST(ConvertReal, RawHotpotqaSample) {
  TempDir dir;
  Converted c = run(Format::hotpotqa, shared_data("raw/hotpotqa_dev_distractor_sample.json"), dir);
  expect_well_formed(c);
  ASSERT_EQ(c.questions.size(), 200u);
  EXPECT_EQ(c.questions[0].answers, std::vector<std::string>{"Rush"});
  EXPECT_EQ(c.questions[0].type, "bridge");
  EXPECT_EQ(c.questions[0].supporting_titles, (std::vector<std::string>{"Nobody's Hero", "Neil Peart"}));
  // HotpotQA sentences carry their leading space: joined, no double spaces.
  for (const auto& p : c.corpus) {
    if (p.title == "Jeff Porcaro") {
      EXPECT_EQ(p.text.rfind("Jeffrey Thomas Porcaro (April 1, 1954", 0), 0u);
      EXPECT_NE(p.text.find("Toto. Porcaro is one"), std::string::npos) << p.text;
    }
  }
}

TEST(ConvertReal, Raw2WikiSample) {
  TempDir dir;
  Converted c = run(Format::twowiki, shared_data("raw/2wikimultihopqa_dev_sample.json"), dir);
  expect_well_formed(c);
  ASSERT_EQ(c.questions.size(), 164u);
  std::set<std::string> types;
  for (const auto& q : c.questions) types.insert(q.type);
  EXPECT_EQ(types, (std::set<std::string>{"bridge_comparison", "comparison", "compositional", "inference"}));
  EXPECT_EQ(c.questions[0].dataset, "2wikimultihopqa");
  // 2Wiki sentences lack leading spaces: joined with one.
  for (const auto& p : c.corpus) {
    if (p.title == "Pál Gábor") {
      EXPECT_NE(p.text.find("screenwriter. He directed 20 films"), std::string::npos);
    }
  }
}

TEST(ConvertReal, RawMusiqueSample) {
  TempDir dir;
  Converted c = run(Format::musique, shared_data("raw/musique_ans_dev_sample200.jsonl"), dir);
  expect_well_formed(c);
  ASSERT_EQ(c.questions.size(), 200u);
  EXPECT_EQ(c.questions[0].type, "2hop");
  EXPECT_EQ(c.questions[0].answers[0], "Stanley");
  for (const auto& q : c.questions) {
    EXPECT_GE(q.supporting_ids.size(), 2u) << q.id;  // every MuSiQue question has 2 to 4 hops
  }
}

TEST(ConvertSmall, HotpotqaPoolsSharedParagraphs) {
  TempDir dir;
  Converted c = run(Format::hotpotqa, fixture("hotpotqa_small.json"), dir, ConvertOptions{false, "toy", "", {}});
  expect_well_formed(c);
  ASSERT_EQ(c.questions.size(), 2u);
  EXPECT_EQ(c.corpus.size(), 3u);  // Freedonia and Sylvania appear in both questions
  EXPECT_EQ(c.corpus[0].id, "toy-0");
  EXPECT_EQ(c.corpus[0].text, "Freedonia is a country. Its capital is Fredville.");
  EXPECT_EQ(c.questions[0].supporting_titles, (std::vector<std::string>{"Freedonia", "Duck Band"}));
  EXPECT_EQ(c.questions[0].supporting_ids, (std::vector<std::string>{"toy-0", "toy-1"}));
  EXPECT_EQ(c.questions[1].supporting_ids, (std::vector<std::string>{"toy-2"}));
}

TEST(ConvertSmall, TwoWikiAddsAliases) {
  TempDir dir;
  ConvertOptions options;
  options.aliases_path = fixture("2wiki_aliases.jsonl");
  Converted c = run(Format::twowiki, fixture("2wiki_small.json"), dir, options);
  expect_well_formed(c);
  EXPECT_EQ(c.questions[0].answers, (std::vector<std::string>{"Karl Ode", "K. Ode", "Karl O."}));
  EXPECT_EQ(c.questions[1].answers, std::vector<std::string>{"Blue Film"});
  EXPECT_EQ(c.corpus[1].text, "Ana Ode is a director. Her father is Karl Ode.");
}

TEST(ConvertSmall, MusiqueKeepsSameTitleParagraphsApart) {
  TempDir dir;
  Converted c = run(Format::musique, fixture("musique_small.jsonl"), dir);
  expect_well_formed(c);
  EXPECT_EQ(c.corpus.size(), 3u);  // two "Birch County" paragraphs, one "Oak Town" shared
  EXPECT_EQ(c.questions[0].answers, (std::vector<std::string>{"Elm City", "Elm"}));
  EXPECT_EQ(c.questions[0].supporting_ids.size(), 2u);
  EXPECT_EQ(c.questions[1].type, "3hop1");
}

void expect_error(Format format, const std::string& file, const std::string& expected) {
  TempDir dir;
  try {
    convert(format, fixture(file), dir / "out");
    FAIL() << "expected an InputError for " << file;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
  }
  // Nothing half-written is left behind under the final names.
  EXPECT_FALSE(std::filesystem::exists(dir / "out/questions.jsonl"));
  EXPECT_FALSE(std::filesystem::exists(dir / "out/questions.jsonl.partial"));
}

TEST(ConvertBad, ErrorsNameFileLineAndField) {
  expect_error(Format::hotpotqa, "hotpotqa_bad.json", "hotpotqa_bad.json:3 (record 2): field 'question': expected a string, got number");
  expect_error(Format::twowiki, "2wiki_bad.json", "2wiki_bad.json:2 (record 2): field 'context[0][1]': expected an array of sentences");
  expect_error(Format::musique, "musique_bad.jsonl", "musique_bad.jsonl:2: invalid JSON");
  expect_error(Format::ircot, "musique_small.jsonl", "field 'question_id': missing");
}

TEST(ConvertBad, SkipBadCountsAndCarriesOn) {
  TempDir dir;
  ConvertOptions options;
  options.skip_bad = true;
  Converted c = run(Format::musique, fixture("musique_bad.jsonl"), dir, options);
  EXPECT_EQ(c.questions.size(), 2u);
  EXPECT_EQ(c.stats.skipped, 2u);
  EXPECT_NE(c.stats.first_error.find("musique_bad.jsonl:2"), std::string::npos) << c.stats.first_error;
  TempDir dir2;
  Converted h = run(Format::hotpotqa, fixture("hotpotqa_bad.json"), dir2, options);
  EXPECT_EQ(h.questions.size(), 2u);
  EXPECT_EQ(h.corpus.size(), 2u);  // the bad record's paragraph is not half-added
}

TEST(ConvertBad, UnknownFormatAndMissingInput) {
  EXPECT_THROW(parse_format("squad"), InputError);
  TempDir dir;
  EXPECT_THROW(convert(Format::ircot, dir / "missing.jsonl", dir / "out"), InputError);
  EXPECT_FALSE(std::filesystem::exists(dir / "out"));
}

}  // namespace
}  // namespace steper::data
