#include <gtest/gtest.h>

#include <set>

#include "steper/reason.h"
#include "tiny_world.h"

namespace steper::reason {
namespace {

using testing::shared_tiny_world;

std::vector<data::Question> dev_questions(std::size_t n) {
  auto q = data::read_questions(shared_tiny_world().dev);
  if (q.size() > n) q.resize(n);
  return q;
}

void expect_well_formed(const data::Trace& t, const StrategyOptions& o) {
  SCOPED_TRACE(t.id);
  EXPECT_EQ(t.strategy, strategy_name(o.strategy));
  EXPECT_TRUE(t.stop == "answer" || t.stop == "max_steps") << t.stop;
  ASSERT_FALSE(t.steps.empty());
  EXPECT_LE(static_cast<int>(t.steps.size()), o.max_steps);
  for (const auto& s : t.steps) EXPECT_LE(static_cast<int>(s.retrieved.size()), o.k);
  if (t.stop == "answer") {
    EXPECT_NE(t.steps.back().output.find(o.strategy == Strategy::selfask ? o.selfask_marker : o.marker), std::string::npos);
  }
  // Round trip through the file format.
  data::Trace back = data::parse_trace(data::to_json(t));
  EXPECT_EQ(data::to_json(back), data::to_json(t));
}

TEST(Prompts, RenderLaysOutPassagesQuestionAndChain) {
  Templates t = default_templates();
  std::vector<retrieve::Hit> hits{{"a", "Alpha", "Alpha is a film.", 1}, {"b", "Beta", "Beta is a city.", 1}};
  EXPECT_EQ(render_reasoning(t, "Who?", hits) + render_chain({"One.", "Two."}),
            "Wikipedia Title: Alpha\nAlpha is a film.\n\nWikipedia Title: Beta\nBeta is a city.\n\nQ: Who?\nA: One. Two.");
  EXPECT_EQ(extract_answer("X was born in Y. So the answer is: Port Corburg.\nmore", "So the answer is:"), "Port Corburg");
  EXPECT_EQ(extract_answer("no marker", "So the answer is:"), "");
}

TEST(Prompts, FolderOverridesAndUnknownPlaceholdersAreNamed) {
  testing::TempDir dir;
  testing::write_file(dir / "reasoning.txt", "{passages}Question: {question}\nAnswer:\n");
  Templates t = load_templates(dir.path());
  EXPECT_EQ(render_reasoning(t, "Q?", {}), "Question: Q?\nAnswer:");
  EXPECT_EQ(t.passage, default_templates().passage);
  testing::write_file(dir / "passage.txt", "{title}: {body}");
  try {
    load_templates(dir.path());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("passage.txt: unknown placeholder {body}"), std::string::npos) << e.what();
  }
}

TEST(Strategies, EachProducesWellFormedTraces) {
  const auto& w = shared_tiny_world();
  auto model_owner = lm::open_local(w.model);
  lm::LocalModel& model = *model_owner;
  auto retriever = retrieve::open_retriever(w.index);
  const auto questions = dev_questions(8);
  for (Strategy s : {Strategy::ircot, Strategy::selfask, Strategy::onestep, Strategy::noretrieval}) {
    StrategyOptions o;
    o.strategy = s;
    o.max_steps = 3;
    o.step_tokens = 24;
    o.answer_tokens = 48;
    auto traces = answer(o, model, retriever.get(), questions);
    ASSERT_EQ(traces.size(), questions.size());
    for (std::size_t i = 0; i < traces.size(); ++i) {
      EXPECT_EQ(traces[i].id, questions[i].id);
      expect_well_formed(traces[i], o);
      if (s == Strategy::noretrieval) {
        EXPECT_TRUE(traces[i].steps[0].retrieved.empty());
      } else {
        EXPECT_EQ(traces[i].steps[0].query, questions[i].question);
      }
      if (s == Strategy::onestep || s == Strategy::noretrieval) {
        EXPECT_EQ(traces[i].steps.size(), 1u);
      }
    }
    if (s == Strategy::ircot) {
      // Reasoning as query: each later step searched with the step before it.
      for (const auto& t : traces) {
        for (std::size_t k = 1; k < t.steps.size(); ++k) EXPECT_EQ(t.steps[k].query, t.steps[k - 1].output);
      }
    }
  }
}

TEST(Strategies, TrainedModelReasonsInSentences) {
  // The tiny model saw the gold chains; with the gold passages at hand its
  // first step should at least be a sentence, not noise.
  const auto& w = shared_tiny_world();
  auto model_owner = lm::open_local(w.model);
  lm::LocalModel& model = *model_owner;
  auto retriever = retrieve::open_retriever(w.index);
  StrategyOptions o;
  auto traces = answer(o, model, retriever.get(), dev_questions(16));
  int sentences = 0;
  for (const auto& t : traces) sentences += t.steps[0].output.size() > 10 && t.steps[0].output.back() == '.';
  EXPECT_GE(sentences, 8);
}

// A prompt longer than the context ends that question with the reason in
// its trace; the questions beside it are answered as usual.
TEST(Strategies, APromptOverTheContextEndsItsTraceWithTheReason) {
  const auto& w = shared_tiny_world();
  auto model_owner = lm::open_local(w.model);
  lm::LocalModel& model = *model_owner;
  auto retriever = retrieve::open_retriever(w.index);
  auto questions = dev_questions(2);
  std::string huge;
  for (int i = 0; i < 3000; ++i) huge += "Which film came first? ";
  questions[1].question = huge;
  StrategyOptions o;
  o.max_steps = 2;
  auto traces = answer(o, model, retriever.get(), questions);
  ASSERT_EQ(traces.size(), 2u);
  EXPECT_NE(traces[0].stop, "error");
  EXPECT_TRUE(traces[0].error.empty());
  EXPECT_EQ(traces[1].stop, "error");
  EXPECT_NE(traces[1].error.find("context"), std::string::npos) << traces[1].error;
  EXPECT_EQ(data::parse_trace(data::to_json(traces[1])).error, traces[1].error);
}

TEST(Runner, ResumeAfterStopsAndATornLineEndsWithEveryQuestionOnce) {
  const auto& w = shared_tiny_world();
  testing::TempDir dir;
  auto model_owner = lm::open_local(w.model);
  lm::LocalModel& model = *model_owner;
  auto retriever = retrieve::open_retriever(w.index);
  StrategyOptions o;
  o.max_steps = 2;
  o.step_tokens = 16;
  const std::string out = dir / "traces.jsonl";
  RunOptions ro;
  ro.in_flight = 4;
  int rounds = 0;
  ro.on_progress = [&](const RunProgress&) { return ++rounds < 3; };  // a stop after 3 rounds
  RunStats first = run(o, model, retriever.get(), w.dev, out, ro);
  EXPECT_FALSE(first.complete);
  const std::uint64_t written = first.progress.done;
  {  // a crash in the middle of a write
    std::ofstream f(out, std::ios::app);
    f << R"({"id":"dev-0)";
  }
  ro.on_progress = nullptr;
  RunStats second = run(o, model, retriever.get(), w.dev, out, ro);
  EXPECT_TRUE(second.complete);
  EXPECT_EQ(second.progress.skipped, written);
  std::multiset<std::string> ids;
  data::RecordReader<data::Trace> reader(out, data::parse_trace);
  data::Trace t;
  while (reader.next(t)) ids.insert(t.id);
  std::set<std::string> expected;
  for (const auto& q : data::read_questions(w.dev)) expected.insert(q.id);
  EXPECT_EQ(ids.size(), expected.size());
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()), expected);
}

TEST(Replay, KeepsTheStepsOwnPassagesAmongK) {
  const auto& w = shared_tiny_world();
  auto retriever = retrieve::open_retriever(w.index);
  data::Trace gold;
  gold.steps.push_back({"was born in the city", {"person-0"}, "x"});
  data::Trace r = replay(gold, *retriever, 3);
  ASSERT_EQ(r.steps[0].retrieved.size(), 3u);
  EXPECT_NE(std::find(r.steps[0].retrieved.begin(), r.steps[0].retrieved.end(), "person-0"), r.steps[0].retrieved.end());
}

}  // namespace
}  // namespace steper::reason
