// The student is trained on the byte-identical strings it is asked: the
// prompts `steper run --chat` sends at each step (recorded here from a real
// run of the tiny model through a chat template) against the samples
// `steper stepwise` cuts from that run's traces through the same template.
#include <gtest/gtest.h>

#include <filesystem>

#include "steper/distill.h"
#include "steper/io.h"
#include "tiny_world.h"

namespace steper::distill {
namespace {

// Forwards to the model and keeps every prompt it was sent, in order.
class Recording : public lm::LanguageModel {
 public:
  explicit Recording(lm::LanguageModel& inner) : inner_(inner) {}
  std::vector<lm::Completion> complete(const std::vector<std::string>& prompts, const lm::CompletionOptions& o) override {
    for (const auto& p : prompts) {
      sent.push_back(p);
      chat_rendered.push_back(o.chat_rendered);
    }
    return inner_.complete(prompts, o);
  }
  std::string name() const override { return inner_.name(); }
  int parallelism() const override { return 1; }
  std::vector<std::string> sent;
  std::vector<bool> chat_rendered;

 private:
  lm::LanguageModel& inner_;
};

// A template that writes the assistant's message right after its header,
// with a BOS of its own, as Llama-3's and Qwen2.5's do.
const char* const kTemplate =
    "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>\n{{ m.content | trim }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}";

TEST(ChatPrompts, EachSamplePromptIsThePromptTheRunSentAtThatStep) {
  const auto& w = testing::shared_tiny_world();
  testing::TempDir dir;
  testing::write_file(dir / "chat.jinja", kTemplate);
  testing::write_file(dir / "tokenizer_config.json", R"({"bos_token": "<s>"})");
  lm::LocalOptions lo;
  lo.chat_template = dir / "chat.jinja";
  auto local_owner = lm::open_local(w.model, lo);
  lm::LocalModel& local = *local_owner;
  ASSERT_NE(local.chat_template(), nullptr);
  auto retriever = retrieve::open_retriever(w.index);
  std::map<std::string, retrieve::Hit> passages;
  {
    data::RecordReader<data::Passage> corpus(w.corpus, data::parse_passage);
    data::Passage p;
    while (corpus.next(p)) passages[p.id] = {p.id, p.title, p.text, 0};
  }
  reason::StrategyOptions so;
  so.max_steps = 3;
  so.step_tokens = 24;
  so.format.chat = local.chat_template();
  so.format.system = "Answer step by step.";
  auto questions = data::read_questions(w.dev);
  int compared = 0;
  for (std::size_t q = 0; q < 6 && q < questions.size(); ++q) {
    Recording model(local);
    auto traces = reason::answer(so, model, retriever.get(), {questions[q]});
    ASSERT_EQ(traces.size(), 1u);
    for (bool flag : model.chat_rendered) EXPECT_TRUE(flag);  // no BOS added: the template wrote it
    EXPECT_EQ(model.sent[0].rfind("<s><|system|>\nAnswer step by step.<|end|>\n<|user|>\n", 0), 0u) << model.sent[0];
    for (bool last_step_only : {true, false}) {
      StepwiseOptions o;
      o.keep = "all";
      o.max_passages = so.max_passages;
      o.format = so.format;
      o.last_step_only = last_step_only;
      for (const Sample& s : cut_trace(traces[0], passages, questions[q].answers, o)) {
        ASSERT_LE(static_cast<std::size_t>(s.step), model.sent.size());
        const std::string& asked = model.sent[static_cast<std::size_t>(s.step - 1)];
        EXPECT_TRUE(s.chat);
        if (last_step_only) {
          EXPECT_EQ(s.prompt, asked) << s.id << " step " << s.step;
        } else {
          // The chain before step s is the start of the target: prompt and
          // that start are, byte for byte, what step s was asked.
          ASSERT_GE(asked.size(), s.prompt.size());
          EXPECT_EQ(asked.compare(0, s.prompt.size(), s.prompt), 0) << s.id << " step " << s.step;
          EXPECT_EQ(s.target.compare(0, asked.size() - s.prompt.size(), asked.substr(s.prompt.size())), 0)
              << s.id << " step " << s.step << "\n asked: " << asked << "\n target: " << s.target;
        }
        ++compared;
      }
    }
  }
  EXPECT_GT(compared, 6);
}

}  // namespace
}  // namespace steper::distill

namespace steper::distill {
namespace {

// A real run writes its settings into every trace; stepwise, told nothing
// but the traces and the questions, cuts the prompts that run sent, byte for
// byte, with passage texts read from the index the run recorded. The
// settings here are all off their defaults, so a sample cut with a default
// would differ.
TEST(RunRecord, StepwiseCutsThePromptsTheRunSentFromItsRecordAlone) {
  const auto& w = testing::shared_tiny_world();
  testing::TempDir dir;
  const std::string prompts = dir / "prompts";
  std::filesystem::create_directories(prompts);
  testing::write_file(prompts + "/passage.txt", "[{title}] {text}\n");
  testing::write_file(prompts + "/reasoning.txt", "{passages}Q: {question}\nA:");
  auto model_owner = lm::open_local(w.model);
  auto retriever = retrieve::open_retriever(w.index);
  reason::StrategyOptions so;
  so.max_steps = 3;
  so.step_tokens = 24;
  so.max_passages = 3;
  so.templates = reason::load_templates(prompts);
  so.templates.max_passage_words = 12;
  so.marker = "So the answer is:";
  auto questions = data::read_questions(w.dev);
  questions.resize(std::min<std::size_t>(questions.size(), 5));
  {
    io::JsonlWriter q(dir / "q.jsonl", io::JsonlWriter::Mode::truncate);
    for (const auto& x : questions) q.write(data::to_json(x));
  }
  Recording model(*model_owner);
  reason::RunOptions ro;
  ro.in_flight = 1;  // one question at a time: sent[] is in trace order
  reason::run(so, model, retriever.get(), dir / "q.jsonl", dir / "t.jsonl", ro);

  StepwiseOptions o;
  o.keep = "all";
  o.last_step_only = true;  // each sample's prompt is then exactly what its step was sent
  auto st = build_stepwise(dir / "t.jsonl", dir / "q.jsonl", "", dir / "s.jsonl", o);
  ASSERT_GT(st.kept, 0u);
  // The prompts sent for each question, in order: step 1, 2, ... (and, after
  // the step limit, the request for an answer).
  std::map<std::string, std::vector<std::string>> sent;
  data::RecordReader<data::Trace> traces(dir / "t.jsonl", data::parse_trace);
  data::Trace t;
  while (traces.next(t)) {
    ASSERT_TRUE(t.run.is_object());
    EXPECT_EQ(t.run["max_passages"], 3);
    EXPECT_EQ(t.run["index"], w.index);
    for (const auto& p : model.sent) {
      if (p.find("Q: " + t.question + "\nA:") != std::string::npos) sent[t.id].push_back(p);
    }
  }
  int compared = 0;
  data::RecordReader<Sample> samples(dir / "s.jsonl", parse_sample);
  Sample s;
  while (samples.next(s)) {
    EXPECT_EQ(s.prompt, sent.at(s.id).at(static_cast<std::size_t>(s.step - 1))) << s.id << " step " << s.step;
    ++compared;
  }
  EXPECT_GT(compared, 5);

  // A stated setting that differs from the run's is refused, naming it.
  StepwiseOptions wrong = o;
  wrong.max_passages = 15;
  wrong.stated_max_passages = true;
  try {
    build_stepwise(dir / "t.jsonl", dir / "q.jsonl", "", dir / "s2.jsonl", wrong);
    FAIL() << "a --max-passages other than the run's was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--max-passages 15 was given, but the run that made these traces used 3"), std::string::npos)
        << e.what();
  }
  // Templates edited since the run are refused too.
  testing::write_file(prompts + "/reasoning.txt", "{passages}Question: {question}\nAnswer:");
  EXPECT_THROW(build_stepwise(dir / "t.jsonl", dir / "q.jsonl", "", dir / "s3.jsonl", o), InputError);
  EXPECT_FALSE(std::filesystem::exists(dir / "s3.jsonl"));

  // Appending to these traces with other settings would mix two runs.
  reason::StrategyOptions other = so;
  other.max_passages = 4;
  try {
    reason::run(other, *model_owner, retriever.get(), dir / "q.jsonl", dir / "t.jsonl", ro);
    FAIL() << "a run with other settings appended to another run's traces";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("max_passages 4 against 3"), std::string::npos) << e.what();
  }

  // A trace without a record (written elsewhere) among recorded ones is
  // refused with a hint at what such traces need.
  {
    data::json bare = data::json::parse(testing::read_file(dir / "t.jsonl").substr(0, testing::read_file(dir / "t.jsonl").find('\n')));
    bare.erase("run");
    bare["id"] = "bare";
    io::JsonlWriter append(dir / "t.jsonl", io::JsonlWriter::Mode::append);
    append.write(bare);
  }
  try {
    build_stepwise(dir / "t.jsonl", dir / "q.jsonl", "", dir / "s4.jsonl", o);
    FAIL() << "a trace without a run record was mixed in";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("one carries the run record, the other does not"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("need --corpus"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace steper::distill
