// The student is trained on the byte-identical strings it is asked: the
// prompts `steper run --chat` sends at each step (recorded here from a real
// run of the tiny model through a chat template) against the samples
// `steper stepwise` cuts from that run's traces through the same template.
#include <gtest/gtest.h>

#include "steper/distill.h"
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
