#include <gtest/gtest.h>

#include "steper/model.h"

namespace steper::model {
namespace {

// Characters as tokens: 0 pad, 1 BOS, 2 EOS, then the printable ASCII range.
class CharTokenizer final : public text::Tokenizer {
 public:
  std::vector<int> encode(const std::string& s) const override {
    std::vector<int> ids;
    for (unsigned char c : s) ids.push_back(c >= 32 && c < 127 ? c - 32 + 3 : 3);
    return ids;
  }
  std::string decode(const std::vector<int>& ids) const override {
    std::string s;
    for (int id : ids) {
      if (id >= 3) s.push_back(static_cast<char>(id - 3 + 32));
    }
    return s;
  }
  int vocab_size() const override { return 3 + 95; }
  int bos_id() const override { return 1; }
  int eos_id() const override { return 2; }
  bool add_bos() const override { return true; }
  std::string kind() const override { return "char"; }
};

ModelConfig char_config() {
  ModelConfig c;
  c.vocab_size = 98;
  c.hidden_size = 48;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  return c;
}

// A model that has learnt two sentences by heart, each ending with EOS.
CausalLM trained_model(const CharTokenizer& tok) {
  torch::manual_seed(0);
  CausalLM m(char_config());
  const std::vector<std::string> texts = {"the cat sat on the mat.", "a dog ran in the park!"};
  std::vector<torch::Tensor> rows;
  for (const auto& t : texts) {
    std::vector<std::int64_t> ids{1};
    for (int id : tok.encode(t)) ids.push_back(id);
    ids.push_back(2);
    ids.resize(25, 0);
    rows.push_back(torch::tensor(ids));
  }
  torch::Tensor batch = torch::stack(rows);
  torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(1e-2).weight_decay(0.0));
  for (int step = 0; step < 200; ++step) {
    torch::Tensor logits = m->forward(batch.narrow(1, 0, 24));
    torch::Tensor loss = torch::nn::functional::cross_entropy(
        logits.reshape({-1, 98}), batch.narrow(1, 1, 24).reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(0));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  return m;
}

class GenerateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = new CausalLM(trained_model(CharTokenizer())); }
  static void TearDownTestSuite() { delete model_; }
  static CausalLM& model() { return *model_; }
  static CausalLM* model_;
  CharTokenizer tok;
};
CausalLM* GenerateTest::model_ = nullptr;

TEST_F(GenerateTest, GreedyCompletesMemorisedTextAndStopsAtEos) {
  GenerateOptions o;
  o.max_new_tokens = 40;
  auto out = generate(model(), tok, {"the cat", "a dog ran"}, o);
  EXPECT_EQ(out[0].text, " sat on the mat.");
  EXPECT_EQ(out[0].finish, "eos");
  EXPECT_EQ(out[1].text, " in the park!");
  EXPECT_EQ(out[1].tokens.back(), 2);
  EXPECT_EQ(out[0].prompt_tokens, 8);  // BOS + 7 characters
}

TEST_F(GenerateTest, BatchedEqualsOneByOneForAnyPromptLengths) {
  GenerateOptions o;
  o.max_new_tokens = 12;
  o.stop_at_eos = false;
  std::vector<std::string> prompts = {"t", "the cat sat on", "a d", "zzz qq", "the mat"};
  auto together = generate(model(), tok, prompts, o);
  o.batch_size = 2;  // also across batch boundaries
  auto in_twos = generate(model(), tok, prompts, o);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    auto alone = generate(model(), tok, {prompts[i]}, o);
    EXPECT_EQ(together[i].tokens, alone[0].tokens) << prompts[i];
    EXPECT_EQ(in_twos[i].tokens, alone[0].tokens) << prompts[i];
  }
}

TEST_F(GenerateTest, CachedDecodingEqualsRecomputingEverything) {
  GenerateOptions o;
  o.max_new_tokens = 15;
  o.stop_at_eos = false;
  auto out = generate(model(), tok, {"a dog"}, o);
  std::vector<std::int64_t> ids{1};
  for (int id : tok.encode("a dog")) ids.push_back(id);
  torch::NoGradGuard no_grad;
  std::vector<int> naive;
  for (int i = 0; i < 15; ++i) {
    torch::Tensor logits = model()->forward(torch::tensor(ids).unsqueeze(0));
    auto next = logits[0][-1].argmax().item<std::int64_t>();
    naive.push_back(static_cast<int>(next));
    ids.push_back(next);
  }
  EXPECT_EQ(out[0].tokens, naive);
}

TEST_F(GenerateTest, PrefixReuseGivesTheCompletionsOfAFullPrefill) {
  GenerateOptions o;
  o.max_new_tokens = 12;
  o.stop_at_eos = false;
  // Extensions of earlier prompts, a repeat, a shared start that diverges,
  // and one with nothing in common; mixed lengths in one batch.
  const std::vector<std::string> first{"the cat sat", "a dog ran in", "zzz"};
  const std::vector<std::string> second{"the cat sat on the", "the cat sat", "a dog ran in the p", "a dog walked", "q the mat"};
  auto full = generate(model(), tok, second, o);
  PrefixCache cache(1000);
  o.prefix_cache = &cache;
  GenerateStats st;
  generate(model(), tok, first, o, &st);
  EXPECT_EQ(st.reused_tokens, 0);
  auto reused = generate(model(), tok, second, o, &st);
  // BOS + "the cat sat" (12) twice, "a dog ran in" (13), "a dog " (7); one
  // token of a repeated prompt is always recomputed, for its logits.
  EXPECT_EQ(st.reused_tokens, 12 + 11 + 13 + 7);
  // Every row runs to its budget in one batch: the 12th token needs no
  // forward pass of its own.
  EXPECT_EQ(st.new_tokens, 5 * 12);
  EXPECT_EQ(st.decode_steps, 11);
  EXPECT_GT(st.prefill_seconds, 0.0);
  EXPECT_LE(st.prefill_seconds, st.seconds);
  for (std::size_t i = 0; i < second.size(); ++i) EXPECT_EQ(reused[i].tokens, full[i].tokens) << second[i];
}

TEST(PrefixCache, KeepsTheMostRecentWithinItsBound) {
  auto kv = [](std::int64_t n) { return std::vector<torch::Tensor>{torch::full({1, 1, n, 2}, static_cast<float>(n))}; };
  auto ids = [](int first, int n) {
    std::vector<int> v(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = first + i;
    return v;
  };
  PrefixCache c(30);
  c.insert(ids(0, 10), kv(10), kv(10));
  c.insert(ids(100, 15), kv(15), kv(15));
  EXPECT_EQ(c.tokens(), 25);
  std::vector<torch::Tensor> k, v;
  EXPECT_EQ(c.match(ids(100, 20), 100, &k, &v), 15);  // the second is now the most recent
  EXPECT_EQ(k[0].size(2), 15);
  EXPECT_EQ(c.match(ids(100, 20), 4, &k, &v), 4);  // no more than the limit
  c.insert(ids(200, 10), kv(10), kv(10));           // over 30: the least recent (the first) goes
  EXPECT_EQ(c.tokens(), 25);
  EXPECT_EQ(c.match(ids(0, 10), 100, &k, &v), 0);
  EXPECT_TRUE(k.empty());
  c.insert(ids(200, 12), kv(12), kv(12));  // extends a stored prompt: replaces it
  EXPECT_EQ(c.tokens(), 27);
  EXPECT_EQ(c.match(ids(200, 12), 100, &k, &v), 12);
  c.insert(ids(300, 31), kv(31), kv(31));  // larger than the whole cache: not kept
  EXPECT_EQ(c.tokens(), 27);
}

TEST_F(GenerateTest, StopStringsCutTheTextBeforeThem) {
  GenerateOptions o;
  o.max_new_tokens = 40;
  o.stop = {"the", "!"};
  auto out = generate(model(), tok, {"the cat", "a dog"}, o);
  EXPECT_EQ(out[0].text, " sat on ");
  EXPECT_EQ(out[0].finish, "stop");
  EXPECT_EQ(out[1].text, " ran in ");
}

TEST_F(GenerateTest, SamplingIsReproducibleBySeed) {
  GenerateOptions o;
  o.max_new_tokens = 20;
  o.temperature = 1.5;
  o.stop_at_eos = false;
  o.seed = 7;
  auto a = generate(model(), tok, {"the", "a"}, o), b = generate(model(), tok, {"the", "a"}, o);
  EXPECT_EQ(a[0].tokens, b[0].tokens);
  EXPECT_EQ(a[1].tokens, b[1].tokens);
  o.seed = 8;
  auto c = generate(model(), tok, {"the", "a"}, o);
  EXPECT_TRUE(a[0].tokens != c[0].tokens || a[1].tokens != c[1].tokens);
  // A vanishing nucleus keeps only the top token: greedy again.
  o.top_p = 1e-6;
  GenerateOptions greedy;
  greedy.max_new_tokens = 20;
  greedy.stop_at_eos = false;
  EXPECT_EQ(generate(model(), tok, {"the"}, o)[0].tokens, generate(model(), tok, {"the"}, greedy)[0].tokens);
}


// A temperature near zero is greedy, not a NaN distribution (1e-300 once
// ended in a LibTorch backtrace, and the server answered 500).
TEST_F(GenerateTest, VanishingTemperatureIsGreedy) {
  GenerateOptions greedy;
  greedy.max_new_tokens = 20;
  greedy.stop_at_eos = false;
  for (double t : {1e-300, 1e-9, 5e-6}) {
    GenerateOptions o = greedy;
    o.temperature = t;
    o.seed = 3;
    EXPECT_EQ(generate(model(), tok, {"the", "a d"}, o)[1].tokens, generate(model(), tok, {"the", "a d"}, greedy)[1].tokens) << t;
  }
}
TEST_F(GenerateTest, ContextLimits) {
  GenerateOptions o;
  o.max_new_tokens = 50;
  o.stop_at_eos = false;
  try {
    generate(model(), tok, {"short", std::string(70, 'x')}, o);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("prompt 1 is 71 tokens; the model's context is 64"), std::string::npos) << e.what();
  }
  auto out = generate(model(), tok, {std::string(60, 'x')}, o);  // room for 3 more
  EXPECT_EQ(out[0].tokens.size(), 3u);
  EXPECT_EQ(out[0].finish, "length");
}

}  // namespace
}  // namespace steper::model

namespace steper::model {
namespace {

// Scores are the forward pass's own log-softmax at each next token, the
// memorised sentence is near-certain and greedy, and the top-k agree with a
// sort of the whole distribution; a model of a longer context is scored in
// blocks of rows that must join without a seam.
TEST_F(GenerateTest, ScoresAreTheForwardPassesLogProbabilities) {
  std::vector<int> ids{1};
  for (int id : tok.encode("the cat sat on the mat.")) ids.push_back(id);
  const SequenceScores s = score_sequence(model(), ids, 3);
  ASSERT_EQ(s.logprobs.size(0), static_cast<std::int64_t>(ids.size()) - 1);
  ASSERT_EQ(s.top_ids.sizes(), (std::vector<std::int64_t>{static_cast<std::int64_t>(ids.size()) - 1, 3}));
  torch::NoGradGuard no_grad;
  std::vector<std::int64_t> wide(ids.begin(), ids.end());
  const torch::Tensor logp = torch::log_softmax(model()->forward(torch::tensor(wide).unsqueeze(0)).squeeze(0), -1);
  for (std::size_t t = 1; t < ids.size(); ++t) {
    const auto row = static_cast<std::int64_t>(t - 1);
    EXPECT_NEAR(s.logprobs[row].item<float>(), logp[row][ids[t]].item<float>(), 1e-5) << t;
    if (t >= 2) {  // the first letter picks the sentence
      EXPECT_EQ(s.top_ids[row][0].item<std::int64_t>(), ids[t]) << "memorised, so greedy at " << t;
    }
    EXPECT_EQ(s.top_ids[row][0].item<std::int64_t>(), logp[row].argmax().item<std::int64_t>());
    EXPECT_GE(s.top_logprobs[row][0].item<float>(), s.top_logprobs[row][1].item<float>());
  }
  EXPECT_GT(s.logprobs.narrow(0, 1, s.logprobs.size(0) - 1).sum().item<float>(), -3.0F);  // near-certain after the first letter
  EXPECT_THROW(score_sequence(model(), {}, 1), InputError);
  EXPECT_THROW(score_sequence(model(), std::vector<int>(65, 5), 1), InputError);  // past the context of 64

  ModelConfig c = char_config();
  c.max_position_embeddings = 600;
  torch::manual_seed(3);
  CausalLM wide_model(c);
  std::vector<int> long_ids;
  for (int i = 0; i < 600; ++i) long_ids.push_back(3 + (i * 7) % 90);
  const SequenceScores l = score_sequence(wide_model, long_ids, 0);
  std::vector<std::int64_t> long_wide(long_ids.begin(), long_ids.end());
  const torch::Tensor all = torch::log_softmax(wide_model->forward(torch::tensor(long_wide).unsqueeze(0)).squeeze(0), -1);
  const torch::Tensor want = all.narrow(0, 0, 599).gather(1, torch::tensor(long_wide).narrow(0, 1, 599).unsqueeze(1)).squeeze(1);
  EXPECT_TRUE(torch::allclose(l.logprobs, want, 1e-5, 1e-5));
  EXPECT_EQ(l.top_ids.size(1), 0);
}

}  // namespace
}  // namespace steper::model
