#include <gtest/gtest.h>

#include <map>
#include <set>
#include <unordered_map>

#include "steper/data.h"
#include "test_util.h"

namespace steper::data {
namespace {

class WorldTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { world_ = new World(generate_world(WorldOptions{7, 3000})); }
  static void TearDownTestSuite() { delete world_; }
  static const World& w() { return *world_; }
  static std::unordered_map<std::string, const Passage*> passages() {
    std::unordered_map<std::string, const Passage*> out;
    for (const auto& p : w().corpus) out[p.id] = &p;
    return out;
  }
  static World* world_;
};
World* WorldTest::world_ = nullptr;

bool is_chain(const std::string& type) { return type.rfind("compositional", 0) == 0 || type == "inference"; }

TEST_F(WorldTest, SizesTypesAndSplits) {
  EXPECT_EQ(w().questions.size(), 3000u);
  std::map<std::string, int> types, splits;
  for (const auto& q : w().questions) {
    ++types[q.question.type];
    ++splits[q.split];
  }
  EXPECT_EQ(types.size(), 6u);
  EXPECT_EQ(splits["train"], 1200);
  EXPECT_EQ(splits["distill"], 900);
  EXPECT_EQ(splits["dev"], 450);
  EXPECT_EQ(splits["test"], 450);
}

TEST_F(WorldTest, EveryHopIsStatedByThePassageItCites) {
  auto by_id = passages();
  for (const auto& wq : w().questions) {
    ASSERT_EQ(wq.gold.steps.size(), wq.hops.size()) << wq.question.id;
    for (std::size_t i = 0; i < wq.hops.size(); ++i) {
      const WorldHop& hop = wq.hops[i];
      auto it = by_id.find(hop.passage_id);
      ASSERT_NE(it, by_id.end()) << wq.question.id << " cites " << hop.passage_id;
      EXPECT_EQ(it->second->title, hop.subject) << wq.question.id;
      EXPECT_NE(it->second->text.find(hop.object), std::string::npos)
          << wq.question.id << ": passage '" << it->second->text << "' does not state " << hop.relation << " = " << hop.object;
      const Step& step = wq.gold.steps[i];
      EXPECT_EQ(step.retrieved, std::vector<std::string>{hop.passage_id});
      EXPECT_NE(step.output.find(hop.subject), std::string::npos) << step.output;
      EXPECT_NE(step.output.find(hop.object), std::string::npos) << step.output;
      // Reasoning as query: each step's query is the previous sentence.
      EXPECT_EQ(step.query, i == 0 ? wq.question.question : wq.gold.steps[i - 1].output);
    }
    const std::string& last = wq.gold.steps.back().output;
    EXPECT_NE(last.find(std::string(kAnswerMarker) + " " + wq.question.answers[0] + "."), std::string::npos) << last;
    EXPECT_EQ(wq.gold.prediction, wq.question.answers[0]);
    for (const auto& id : wq.question.supporting_ids) EXPECT_TRUE(by_id.count(id));
  }
}

// Reading questions: one fact each, stated by the passage they cite, only
// facts the train split's chains use, and never a chain's question.
TEST_F(WorldTest, ReadingQuestionsAskOneFactOfTheTrainChains) {
  auto by_id = passages();
  std::set<std::string> train_facts, chain_questions, texts;
  for (const auto& wq : w().questions) {
    chain_questions.insert(wq.question.question);
    if (wq.split != "train") continue;
    for (const auto& h : wq.hops) train_facts.insert(h.passage_id + "|" + h.relation);
  }
  ASSERT_GT(w().reading.size(), 500u);
  for (const auto& r : w().reading) {
    ASSERT_EQ(r.hops.size(), 1u);
    ASSERT_EQ(r.gold.steps.size(), 1u);
    const WorldHop& h = r.hops[0];
    EXPECT_TRUE(train_facts.count(h.passage_id + "|" + h.relation)) << r.question.question;
    EXPECT_FALSE(chain_questions.count(r.question.question)) << r.question.question;
    EXPECT_TRUE(texts.insert(r.question.question).second) << "asked twice: " << r.question.question;
    EXPECT_EQ(r.question.supporting_ids, std::vector<std::string>{h.passage_id});
    EXPECT_EQ(r.question.answers, std::vector<std::string>{h.object});
    EXPECT_NE(by_id.at(h.passage_id)->text.find(h.object), std::string::npos) << r.question.question;
    EXPECT_NE(r.question.question.find(h.subject), std::string::npos);
    EXPECT_NE(r.gold.steps[0].output.find(std::string(kAnswerMarker) + " " + h.object + "."), std::string::npos);
  }
}

// Drills rename a reading fact's entities: the answer is in the renamed
// passage and nowhere in the corpus's knowledge, and asking for drills
// changes nothing else of the world.
TEST(World, CopyDrillsRenameTheFactAndLeaveTheWorldAsItWas) {
  const World plain = generate_world(WorldOptions{3, 400, 0, 0});
  const World drilled = generate_world(WorldOptions{3, 400, 0, 2});
  EXPECT_TRUE(plain.drills.empty());
  ASSERT_EQ(drilled.drills.size(), 2 * drilled.reading.size());
  ASSERT_EQ(plain.corpus.size(), drilled.corpus.size());
  for (std::size_t i = 0; i < plain.corpus.size(); ++i) EXPECT_EQ(plain.corpus[i].text, drilled.corpus[i].text);
  ASSERT_EQ(plain.questions.size(), drilled.questions.size());
  for (std::size_t i = 0; i < plain.questions.size(); ++i) EXPECT_EQ(plain.questions[i].question.question, drilled.questions[i].question.question);
  for (std::size_t i = 0; i < drilled.drills.size(); ++i) {
    const Drill& d = drilled.drills[i];
    const WorldHop& real = drilled.reading[i / 2].hops[0];
    ASSERT_EQ(d.passages.size(), 2u);
    const Passage& gold = d.passages[0].id == d.question.supporting_ids[0] ? d.passages[0] : d.passages[1];
    ASSERT_EQ(gold.id, d.question.supporting_ids[0]);
    const std::string& answer = d.question.answers[0];
    EXPECT_NE(answer, real.object);
    EXPECT_NE(gold.text.find(answer), std::string::npos) << gold.text << " / " << answer;
    EXPECT_EQ(gold.text.find(real.object), std::string::npos) << gold.text;
    EXPECT_NE(d.question.question.find(gold.title), std::string::npos);
    EXPECT_NE(gold.title, real.subject);
    EXPECT_EQ(d.target.substr(d.target.size() - answer.size() - 1), answer + ".");
    EXPECT_EQ(parse_drill(to_json(d)).target, d.target);
  }
}

// The answer is derived here again from the stated facts alone.
TEST_F(WorldTest, EveryAnswerFollowsFromTheFacts) {
  for (const auto& wq : w().questions) {
    const auto& h = wq.hops;
    const std::string& answer = wq.question.answers[0];
    const std::string& text = wq.question.question;
    if (is_chain(wq.question.type)) {
      for (std::size_t i = 1; i < h.size(); ++i) EXPECT_EQ(h[i].subject, h[i - 1].object) << text;
      EXPECT_EQ(answer, h.back().object) << text;
      std::size_t hops = wq.question.type == "compositional_3hop" ? 3 : wq.question.type == "compositional_4hop" ? 4 : 2;
      EXPECT_EQ(h.size(), hops) << text;
    } else if (wq.question.type == "comparison") {
      ASSERT_EQ(h.size(), 2u);
      if (h[0].relation == "birthplace") {
        EXPECT_EQ(answer, h[0].object == h[1].object ? "yes" : "no") << text;
      } else {
        int a = std::stoi(h[0].object), b = std::stoi(h[1].object);
        ASSERT_NE(a, b);
        EXPECT_EQ(answer, a < b ? h[0].subject : h[1].subject) << text;
      }
    } else {
      ASSERT_EQ(wq.question.type, "bridge_comparison");
      ASSERT_EQ(h.size(), 4u);
      EXPECT_EQ(h[0].relation, "director");
      EXPECT_EQ(h[1].subject, h[0].object);
      EXPECT_EQ(h[3].subject, h[2].object);
      int a = std::stoi(h[1].object), b = std::stoi(h[3].object);
      bool earlier = text.find("born earlier") != std::string::npos;
      EXPECT_EQ(answer, (earlier ? a < b : a > b) ? h[0].subject : h[2].subject) << text;
    }
  }
}

TEST_F(WorldTest, SplitsShareNoQuestionAndNoAnchorEntity) {
  std::map<std::string, std::set<std::string>> anchors, texts;
  std::set<std::string> ids;
  for (const auto& wq : w().questions) {
    EXPECT_TRUE(ids.insert(wq.question.id).second);
    EXPECT_TRUE(texts[wq.split].insert(wq.question.question).second);
    anchors[wq.split].insert(wq.hops[0].passage_id);
    if (wq.question.type.find("comparison") != std::string::npos) anchors[wq.split].insert(wq.hops[wq.hops.size() / 2].passage_id);
  }
  for (const char* held_out : {"dev", "test", "distill"}) {
    for (const auto& a : anchors[held_out]) EXPECT_FALSE(anchors["train"].count(a)) << held_out << " reuses train anchor " << a;
    for (const auto& t : texts[held_out]) EXPECT_FALSE(texts["train"].count(t));
  }
}

TEST_F(WorldTest, TitlesAreUniqueButAlike) {
  std::set<std::string> titles;
  std::map<std::string, int> last_words;
  for (const auto& p : w().corpus) {
    EXPECT_TRUE(titles.insert(p.title).second) << p.title;
    ++last_words[p.title.substr(p.title.find_last_of(' ') + 1)];
  }
  int shared = 0;
  for (const auto& [word, n] : last_words) shared += n > 1 ? n : 0;
  EXPECT_GT(shared, static_cast<int>(w().corpus.size() / 2));  // most names share a word with another
}

TEST(World, FewerEntitiesThanQuestionsKeepTheCorpusAndAnchorSeveralQuestions) {
  const World small = generate_world({5, 1000});
  WorldOptions o{5, 3000};
  o.entities = 1000;
  const World many = generate_world(o);
  EXPECT_EQ(many.corpus.size(), small.corpus.size());  // the same knowledge base
  EXPECT_EQ(many.questions.size(), 3000u);
  std::map<std::string, int> per_anchor;
  std::set<std::string> texts, train_anchors;
  for (const auto& q : many.questions) {
    EXPECT_TRUE(texts.insert(q.question.question).second) << q.question.question;
    ++per_anchor[q.hops[0].passage_id];
    if (q.split == "train") train_anchors.insert(q.hops[0].passage_id);
  }
  EXPECT_LT(per_anchor.size(), 3000u * 3 / 4);  // entities anchor several questions each
  for (const auto& q : many.questions) {  // and still no anchor crosses from train
    if (q.split != "train") {
      EXPECT_FALSE(train_anchors.count(q.hops[0].passage_id)) << q.question.id;
    }
  }
}

TEST(World, SameSeedSameBytesOtherSeedOtherWorld) {
  testing::TempDir dir;
  write_world(generate_world({11, 500}), dir / "a");
  write_world(generate_world({11, 500}), dir / "b");
  write_world(generate_world({12, 500}), dir / "c");
  for (const char* f : {"corpus.jsonl", "train.jsonl", "distill.jsonl", "dev.jsonl", "test.jsonl", "gold_traces.jsonl"}) {
    std::string a = testing::read_file(dir / "a/" + f);
    EXPECT_FALSE(a.empty()) << f;
    EXPECT_EQ(a, testing::read_file(dir / "b/" + f)) << f;
    EXPECT_NE(a, testing::read_file(dir / "c/" + f)) << f;
  }
  // The files read back in steper's formats.
  EXPECT_EQ(read_questions(dir / "a/dev.jsonl").size(), 75u);
  RecordReader<Trace> traces(dir / "a/gold_traces.jsonl", parse_trace);
  Trace t;
  std::size_t n = 0;
  while (traces.next(t)) ++n;
  EXPECT_EQ(n, 500u);
}

}  // namespace
}  // namespace steper::data
