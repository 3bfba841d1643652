#include <gtest/gtest.h>

#include "length_groups.h"
#include "metrics_column.h"
#include "steper/distill.h"
#include "tiny_world.h"

namespace steper::distill {
namespace {

std::map<std::string, retrieve::Hit> corpus() {
  std::map<std::string, retrieve::Hit> m;
  for (const char* id : {"a", "b", "c", "d", "e"}) m[id] = {id, std::string("T") + id, std::string("text ") + id, 0};
  return m;
}

data::Trace trace() {
  data::Trace t;
  t.id = "q1";
  t.question = "Where?";
  t.answers = {"Paris"};
  t.strategy = "ircot";
  t.steps = {{"Where?", {"a", "b"}, "One."}, {"One.", {"b", "c"}, "Two."}, {"Two.", {"d"}, "Three. So the answer is: Paris."}};
  t.prediction = "Paris";
  t.stop = "answer";
  return t;
}

TEST(Stepwise, CutsInitExpandAggregateWithAccumulatedPassages) {
  StepwiseOptions o;
  auto s = cut_trace(trace(), corpus(), {"Paris"}, o);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].stage, Stage::init);
  EXPECT_EQ(s[1].stage, Stage::expand);
  EXPECT_EQ(s[2].stage, Stage::aggregate);
  EXPECT_EQ(s[0].target, " One.");
  EXPECT_EQ(s[1].target, " One. Two.");
  EXPECT_EQ(s[2].target, " One. Two. Three. So the answer is: Paris.");
  const auto& t = o.templates;
  std::vector<retrieve::Hit> p1{corpus()["a"], corpus()["b"]}, p2{corpus()["a"], corpus()["b"], corpus()["c"]};
  EXPECT_EQ(s[0].prompt, reason::render_reasoning(t, "Where?", p1));
  EXPECT_EQ(s[1].prompt, reason::render_reasoning(t, "Where?", p2));
  p2.push_back(corpus()["d"]);
  EXPECT_EQ(s[2].prompt, reason::render_reasoning(t, "Where?", p2));
  EXPECT_EQ(s[2].step, 3);

  o.max_passages = 2;  // as the strategy would have kept them
  EXPECT_EQ(cut_trace(trace(), corpus(), {"Paris"}, o)[2].prompt, reason::render_reasoning(t, "Where?", p1));
}

TEST(Stepwise, FiltersWrongAnswersAndBuildsTheBaselines) {
  StepwiseOptions o;
  EXPECT_TRUE(cut_trace(trace(), corpus(), {"Lyon"}, o).empty());
  o.keep = "all";
  EXPECT_EQ(cut_trace(trace(), corpus(), {"Lyon"}, o).size(), 3u);
  o.keep = "acc";
  data::Trace t = trace();
  t.prediction = "Paris, France";
  EXPECT_EQ(cut_trace(t, corpus(), {"Paris"}, o).size(), 3u);
  o.keep = "em";
  EXPECT_TRUE(cut_trace(t, corpus(), {"Paris"}, o).empty());

  o.mode = Mode::vanilla;
  auto v = cut_trace(trace(), corpus(), {"Paris"}, o);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].target, " One. Two. Three. So the answer is: Paris.");
  o.mode = Mode::answer;
  auto a = cut_trace(trace(), corpus(), {"Paris"}, o);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].target, " So the answer is: Paris.");

  o.mode = Mode::steper;
  o.last_step_only = true;
  auto l = cut_trace(trace(), corpus(), {"Paris"}, o);
  EXPECT_EQ(l[1].target, " Two.");
  EXPECT_EQ(l[1].prompt.substr(l[1].prompt.size() - 5), " One.");

  data::Trace missing = trace();
  missing.steps[0].retrieved.push_back("zz");
  EXPECT_THROW(cut_trace(missing, corpus(), {"Paris"}, o), InputError);
}

// sigma_j follows its stage's loss: a harder stage's weight falls first
// and recovers when its loss falls.
TEST(StageWeights, HarderStageLosesWeightThenRecovers) {
  StageWeights w(Weighting::difficulty);
  torch::optim::Adam opt({w.log_var}, torch::optim::AdamOptions(0.05));
  auto run = [&](std::vector<double> losses, int steps) {
    for (int i = 0; i < steps; ++i) {
      std::vector<torch::Tensor> l;
      for (double x : losses) l.push_back(torch::tensor(x));
      opt.zero_grad();
      w.combine(l, torch::Tensor()).backward();
      opt.step();
    }
  };
  run({0.5, 0.5, 3.0}, 300);
  auto hard = w.weights();
  EXPECT_LT(hard[2], hard[0] / 3);
  EXPECT_NEAR(hard[0], 1.0, 0.15);  // the optimum: 1 / (2 L)
  run({0.5, 0.5, 0.5}, 300);
  auto recovered = w.weights();
  EXPECT_GT(recovered[2], 3 * hard[2]);
  EXPECT_NEAR(recovered[2], recovered[0], 0.15);

  StageWeights u(Weighting::uniform);
  EXPECT_NEAR(u.combine({torch::tensor(1.0), torch::Tensor(), torch::tensor(3.0)}, torch::tensor(9.0)).item<double>(), 2.0, 1e-9);
  // none: the loss over all target tokens, whatever the stages say.
  StageWeights none(Weighting::none);
  EXPECT_NEAR(none.combine({torch::tensor(1.0), torch::Tensor(), torch::tensor(3.0)}, torch::tensor(9.0)).item<double>(), 9.0, 1e-9);
}

// Stage names were strings, and the trainer read any it did not know as
// aggregate: a typo trained the wrong stage weight.
TEST(Stage, NamesRoundTripAndUnknownNamesAreRefused) {
  for (const auto& name : stage_names()) EXPECT_EQ(stage_name(parse_stage(name)), name);
  EXPECT_EQ(parse_stage("expand"), Stage::expand);
  try {
    parse_stage("aggregated");
    FAIL() << "an unknown stage was accepted";
  } catch (const FieldError& e) {
    EXPECT_EQ(e.field(), "stage");
    EXPECT_NE(std::string(e.what()).find("aggregated"), std::string::npos);
  }
  data::json j{{"id", "q1"}, {"stage", "Init"}, {"step", 1}, {"prompt", "p"}, {"target", "t"}};
  EXPECT_THROW(parse_sample(j), FieldError);
  j["stage"] = "init";
  EXPECT_EQ(parse_sample(j).stage, Stage::init);
  EXPECT_EQ(to_json(parse_sample(j))["stage"], "init");
}

// Resume keys and experiment keys hold the weighting's name: reordering the
// enum must not change them.
TEST(Weighting, NamesRoundTripAndUnknownNamesAreRefused) {
  for (const auto& name : weighting_names()) EXPECT_EQ(weighting_name(parse_weighting(name)), name);
  EXPECT_EQ(weighting_name(Weighting::floor), "floor");
  EXPECT_EQ(weighting_name(Weighting::difficulty), "difficulty");
  EXPECT_THROW(parse_weighting("difficult"), InputError);
}

// The paper's weights follow 1/(2 L): as the easy stage's loss nears 0 its
// weight runs away and the focus never moves on. The floor variant starts
// easy-first too, but once every loss is under the floor it is uniform.
TEST(StageWeights, FloorShiftsTheFocusToTheHarderStages) {
  auto drive = [](StageWeights& w, std::vector<double> losses, int steps) {
    torch::optim::Adam opt({w.log_var}, torch::optim::AdamOptions(0.05));
    for (int i = 0; i < steps; ++i) {
      std::vector<torch::Tensor> l;
      for (double x : losses) l.push_back(torch::tensor(x, torch::requires_grad()));
      opt.zero_grad();
      w.combine(l, torch::Tensor()).backward();
      opt.step();
    }
    auto v = w.weights();
    const double sum = v[0] + v[1] + v[2];
    for (double& x : v) x /= sum;  // shares of the focus
    return v;
  };
  StageWeights paper(Weighting::difficulty), floored(Weighting::floor, 0.1);
  // Early: high losses, the easy stage (init) leads in both.
  auto p0 = drive(paper, {1.0, 2.0, 3.0}, 400), f0 = drive(floored, {1.0, 2.0, 3.0}, 400);
  EXPECT_GT(p0[0], p0[2]);
  EXPECT_GT(f0[0], 1.5 * f0[2]);
  EXPECT_NEAR(f0[0] + f0[1] + f0[2], 1.0, 1e-9);
  // Late: the easy stage is learnt (0.01), the others nearly (0.05).
  auto p1 = drive(paper, {0.01, 0.05, 0.05}, 600), f1 = drive(floored, {0.01, 0.05, 0.05}, 600);
  EXPECT_GT(p1[0], 0.6);              // the paper's: init takes most of the focus
  EXPECT_NEAR(f1[0], 1.0 / 3, 0.02);  // floor: uniform
  EXPECT_GT(f1[2], f0[2] + 0.05);     // the hard stage gained focus over training
  // The floor's weights are constants to the model: d total / d L_j = w_j
  // (plus sigma's own term, which takes the loss detached).
  std::vector<torch::Tensor> l{torch::tensor(0.5, torch::requires_grad()), torch::Tensor(), torch::tensor(2.0, torch::requires_grad())};
  floored.combine(l, torch::Tensor()).backward();
  const auto w = floored.weights();
  EXPECT_NEAR(l[0].grad().item<double>() + l[2].grad().item<double>(), 1.0, 1e-6);  // normalised over the stages present
  EXPECT_NEAR(l[0].grad().item<double>() / l[2].grad().item<double>(), w[0] / w[2], 1e-6);
  EXPECT_THROW(StageWeights(Weighting::floor, 0), InputError);
}

// Samples from the tiny world's gold chains (the teacher's ideal traces).
StepwiseStats gold_samples(const testing::TinyWorld& w, const std::string& out) {
  StepwiseOptions so;
  so.keep = "all";
  return build_stepwise(w.dir + "/world/gold_traces.jsonl", w.train, w.corpus, out, so);
}

TEST(LengthGroups, CutsWherePaddingCostsMoreThanAGroup) {
  using detail::length_groups;
  using Groups = std::vector<std::vector<std::size_t>>;
  // Longest first; no overhead: every distinct length alone.
  EXPECT_EQ(length_groups({10, 300, 12, 290}, 0), (Groups{{1}, {3}, {2}, {0}}));
  // A group costs 50 tokens: 300 and 290 together (10 padded), 12 and 10
  // together (2 padded); padding 290 short rows' worth is dearer.
  EXPECT_EQ(length_groups({10, 300, 12, 290}, 50), (Groups{{1, 3}, {2, 0}}));
  // A huge overhead: one group, the batch padded whole (equal lengths keep
  // their order).
  EXPECT_EQ(length_groups({7, 7, 7}, std::int64_t{1} << 40), (Groups{{0, 1, 2}}));
  EXPECT_EQ(length_groups({10, 300, 12, 290}, std::int64_t{1} << 40), (Groups{{1, 3, 2, 0}}));
  EXPECT_TRUE(length_groups({}, 64).empty());
}

// Batches run in length groups give the losses (and so the steps) of the
// same batches padded whole.
TEST(Train, LengthGroupsTrainAsTheBatchPaddedWhole) {
  const auto& w = testing::shared_tiny_world();
  testing::TempDir dir;
  gold_samples(w, dir / "s.jsonl");
  TrainOptions o;
  o.train.steps = 4;
  o.train.batch_size = 8;
  o.train.lr = 1e-3;
  o.train.warmup_steps = 1;
  o.train.save_every = 0;
  o.eval_every = 2;
  for (bool grouped : {true, false}) {
    o.group_by_length = grouped;
    train(dir / "s.jsonl", w.model, dir / (grouped ? "grouped" : "whole"), o, nullptr);
  }
  for (const char* column : {"loss", "loss_init", "loss_aggregate", "eval_loss"}) {
    const auto a = testing::metrics_column(dir / "grouped/metrics.jsonl", column), b = testing::metrics_column(dir / "whole/metrics.jsonl", column);
    ASSERT_EQ(a.size(), b.size()) << column;
    ASSERT_FALSE(a.empty()) << column;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (std::isnan(b[i])) {  // a stage absent from the batch, or a step without evaluation
        EXPECT_TRUE(std::isnan(a[i])) << column << " " << i;
        continue;
      }
      EXPECT_NEAR(a[i], b[i], 1e-4 * std::abs(b[i])) << column << " " << i;
    }
  }
}

TEST(Train, ResumeReproducesTheUninterruptedRunWithItsWeights) {
  const auto& w = testing::shared_tiny_world();
  testing::TempDir dir;
  auto st = gold_samples(w, dir / "s.jsonl");
  EXPECT_GT(st.samples["init"], 0u);
  EXPECT_GT(st.samples["aggregate"], 0u);
  TrainOptions o;
  o.train.steps = 8;
  o.train.batch_size = 4;
  o.train.lr = 1e-3;
  o.train.warmup_steps = 2;
  o.train.save_every = 3;
  o.eval_every = 4;
  o.weight_lr = 0.1;
  auto straight = train(dir / "s.jsonl", w.model, dir / "a", o, nullptr);
  EXPECT_EQ(straight.steps, 8);
  train(dir / "s.jsonl", w.model, dir / "b", o, [](const DistillProgress& p) { return p.train.step < 5; });
  train(dir / "s.jsonl", w.model, dir / "b", o, nullptr);
  auto a = testing::metrics_column(dir / "a/metrics.jsonl", "loss"), b = testing::metrics_column(dir / "b/metrics.jsonl", "loss");
  ASSERT_EQ(a.size(), 8u);
  ASSERT_EQ(b.size(), 8u);  // steps 1-5, stopped (checkpoint at 5), then 6-8 resumed
  for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(a[i], b[i]) << "step " << i + 1;
  // The weights moved and were saved with the checkpoint.
  std::vector<torch::Tensor> extra;
  torch::load(extra, dir / "a/trainer_state/extra_params.torchscript");
  EXPECT_GT(extra[0].abs().sum().item<double>(), 0.0);
  // The result is a loadable model.
  EXPECT_NO_THROW(model::load_model(dir / "a"));
}

}  // namespace
}  // namespace steper::distill
