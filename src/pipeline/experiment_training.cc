// The experiment's training stages: pretraining the teacher and the
// student, teaching both to read, the teacher's fine-tuning on gold chains,
// and each student's distillation.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "experiment.h"
#include "steper/error.h"
#include "steper/lm.h"
#include "steper/model.h"
#include "steper/retrieve.h"
#include "steper/text.h"
#include "steper/train.h"

namespace fs = std::filesystem;

namespace steper::pipeline::detail {

std::string Experiment::pretrain_stage(const std::string& who, const ModelSpec& spec) {
  const std::string stage = "pretrain-" + who, dir = who + "/pretrained";
  if (!spec.init.empty()) {  // given: the stage records which model it is
    book_.run(stage, json{{"given", given_model(spec.init)}}, {}, {}, [] { return json::object(); });
    return spec.init;
  }
  json r = book_.run(stage, json{{"model", model_inputs(spec)}, {"seq_len", c_.seq_len}, {"batch", c_.pretrain_batch},
                                 {"lr", c_.pretrain_lr}, {"seed", c_.seed}},
                     {"data", "tokenizer"}, {dir}, [&] {
    auto tok = text::load_tokenizer(tokenizer_);
    const std::vector<int> packed =
        train::pack_texts(*tok, [&](const auto& f) { for_each_text(corpus_, train_, drills_, f); });
    train::PretrainOptions po;
    model::ModelConfig& mc = po.model;
    mc.hidden_size = spec.dim;
    mc.num_hidden_layers = spec.layers;
    mc.num_attention_heads = spec.heads;
    mc.num_key_value_heads = spec.kv_heads;
    mc.intermediate_size = spec.ffn;  // 0: ~8/3 of dim
    mc.max_position_embeddings = 2048;
    po.seq_len = c_.seq_len;
    train::TrainConfig& tc = po.train;
    tc.steps = spec.pretrain_steps;
    tc.batch_size = c_.pretrain_batch;
    tc.lr = c_.pretrain_lr;
    tc.warmup_steps = std::min<std::int64_t>(50, spec.pretrain_steps / 10);
    tc.save_every = 200;
    tc.seed = c_.seed;
    po.run_key = book_.key(stage) + ":" + stage;
    const train::PretrainReport done = train::pretrain(
        packed, text::find_tokenizer_file(tokenizer_), path(dir), po,
        [&](const train::PretrainReport& plan) {
          say(stage + ": " + std::to_string(plan.config.parameter_count()) + " parameters, " + std::to_string(plan.tokens) +
              " tokens, " + std::to_string(plan.steps) + " steps");
          if (const std::int64_t from = train::saved_step(path(dir)); from > 0) {
            say(stage + ": resuming from step " + std::to_string(from) + " of " + std::to_string(plan.steps));
          }
        },
        [&](const train::TrainProgress& p) {
          char d[96];
          std::snprintf(d, sizeof d, "loss %.3f  %.0f tok/s", p.loss, p.tokens_per_second);
          return progress(stage, static_cast<double>(p.step) / static_cast<double>(p.steps), d);
        });
    if (done.result.steps < done.steps) stopped(stage);
    return json{{"parameters", done.config.parameter_count()}, {"seconds", done.result.seconds}};
  });
  if (book_.skipped(stage)) say(stage + ": done before (" + std::to_string(r.value("parameters", 0)) + " parameters)");
  return path(dir);
}

// The teacher learns the reasoning-as-query layout from the gold chains of
// the train split, replayed through the retriever so that its prompts hold
// what retrieval finds (distractors included), as at inference.
json Experiment::gold_samples(const std::string& gold, const std::string& questions, const std::string& dir, const std::string& what) {
  fs::create_directories(path(dir));
  std::set<std::string> ids;
  for (const auto& q : data::read_questions(questions)) ids.insert(q.id);
  auto retriever = retrieve::open_retriever(path("index"));
  const std::string replayed = path(dir + "/replayed.jsonl");
  {
    io::JsonlWriter w(replayed, io::JsonlWriter::Mode::staged);
    data::RecordReader<data::Trace> r(gold, data::parse_trace);
    data::Trace t;
    while (r.next(t)) {
      if (ids.count(t.id)) w.write(data::to_json(reason::replay(t, *retriever, c_.k)));
    }
    w.commit();
  }
  distill::StepwiseOptions so;
  so.keep = "all";
  so.max_passages = c_.max_passages;
  auto st = distill::build_stepwise(replayed, questions, corpus_, path(dir + "/samples.jsonl"), so);
  std::size_t samples = 0;
  for (const auto& [stage, n] : st.samples) samples += n;
  say(what + ": " + std::to_string(st.kept) + " gold traces -> " + std::to_string(samples) + " samples");
  return json{{"chains", st.kept}, {"samples", samples}};
}

std::string Experiment::reading_stage(const std::string& who, const std::string& pretrained) {
  if (c_.reading.epochs <= 0) return pretrained;
  book_.run("reading-gold", json{{"k", c_.k}, {"max_passages", c_.max_passages}}, {"data", "index"}, {"reading"},
            [&] { return gold_samples(reading_gold_, reading_questions_, "reading", "reading-gold"); });
  distill_stage("read-" + who, who + "/reader", c_.reading, path("reading/samples.jsonl"), distill::Weighting::none, pretrained,
                {"reading-gold", "pretrain-" + who});
  return path(who + "/reader");
}

// The teacher learns the reasoning-as-query layout from the gold chains of
// the train split, replayed through the retriever so that its prompts hold
// what retrieval finds (distractors included), as at inference.
std::string Experiment::teacher_sft_stage(const std::string& start) {
  if (c_.teacher_sft.epochs <= 0) return start;
  book_.run("teacher-gold", json{{"k", c_.k}, {"max_passages", c_.max_passages}}, {"data", "index"}, {"teacher/gold"},
            [&] { return gold_samples(gold_, train_, "teacher/gold", "teacher-gold"); });
  teacher_training_ = distill_stage("teacher", "teacher/model", c_.teacher_sft, path("teacher/gold/samples.jsonl"), distill::Weighting::none,
                                    start, {"teacher-gold", teacher_start_stage_});
  return path("teacher/model");
}

json Experiment::distill_stage(const std::string& id, const std::string& dir, const TrainSpec& spec, const std::string& samples,
                               distill::Weighting w, const std::string& init, const std::vector<std::string>& after) {
  const std::string stage = "train-" + id;
  json key{{"train", train_inputs(spec)}, {"weighting", distill::weighting_name(w)}, {"weight_lr", c_.weight_lr}, {"seed", c_.seed}};
  if (w == distill::Weighting::floor) key["sigma_floor"] = c_.sigma_floor;  // only here: other stages keep their keys
  json r = book_.run(stage, key, after, {dir}, [&] {
    distill::TrainOptions o;
    o.weighting = w;
    o.weight_lr = c_.weight_lr;
    o.sigma_floor = c_.sigma_floor;
    o.epochs = spec.epochs;
    o.train.batch_size = spec.batch;
    o.train.lr = spec.lr;
    o.train.warmup_steps = spec.warmup;
    o.train.weight_decay = 0;
    o.train.seed = c_.seed;
    o.train.save_every = 200;
    if (const std::int64_t from = train::saved_step(path(dir)); from > 0) say(stage + ": resuming from step " + std::to_string(from));
    const auto rep = distill::train(samples, init, path(dir), o, [&](const distill::DistillProgress& d) {
      char buf[160];
      int n = std::snprintf(buf, sizeof buf, "loss %.3f", d.train.loss);
      for (std::size_t j = 0; j < 3 && w != distill::Weighting::none; ++j) {
        if (!std::isnan(d.stage_loss[j])) n += std::snprintf(buf + n, sizeof buf - static_cast<std::size_t>(n), "  %s %.2f(w%.2f)", distill::stage_names()[j].c_str(), d.stage_loss[j], d.stage_weight[j]);
      }
      return progress(stage, static_cast<double>(d.train.step) / static_cast<double>(d.train.steps), buf);
    });
    if (rep.steps < rep.total_steps) stopped(stage);
    say(stage + ": " + std::to_string(rep.samples) + " samples (" + std::to_string(rep.dropped) + " over the context dropped), " +
        std::to_string(rep.steps) + " steps in " + std::to_string(static_cast<int>(rep.seconds)) + " s");
    return json{{"samples", rep.samples}, {"dropped", rep.dropped}, {"steps", rep.steps}, {"seconds", rep.seconds}};
  });
  if (book_.skipped(stage)) say(stage + ": done before");
  return r;
}

}  // namespace steper::pipeline::detail
