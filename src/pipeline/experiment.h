// The experiment behind `steper demo`: one class whose methods are its
// stages (experiment.cc: the data, index, runs and the report;
// experiment_training.cc: pretraining, reading, the teacher's SFT and the
// students' distillation).
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "stage_book.h"
#include "steper/distill.h"
#include "steper/io.h"
#include "steper/pipeline.h"
#include "steper/reason.h"

namespace steper::pipeline::detail {

using data::json;

double seconds_since(std::chrono::steady_clock::time_point t0);
// What identifies an input file for a stage key: its path, size and time of
// last change (a retrained model keeps its size; the key is a guard against
// mistakes, not an adversary).
json file_identity(const std::string& path);
json model_inputs(const ModelSpec& m);
// A model folder given in the config, as a stage input.
json given_model(const std::string& dir);
json train_inputs(const TrainSpec& t);
// The texts a tokenizer and a pretraining run see: the corpus, the
// questions of the train split (never the evaluation splits' questions) and
// the copy drills, laid out as the reasoning prompt and its answer.
void for_each_text(const std::string& corpus, const std::string& train, const std::string& drills,
                   const std::function<void(const std::string&)>& f);

class Experiment {
 public:
  Experiment(const ExperimentConfig& c, std::string out, const Hooks& hooks)
      : c_(c), out_(std::move(out)), hooks_(hooks), book_(out_) {
    std::filesystem::create_directories(out_ + "/logs");
    log_.emplace(out_ + "/logs/experiment.log", io::JsonlWriter::Mode::append);
  }

  ExperimentResult run();

 private:
  // Both may be called from the threads of side_by_side().
  void say(const std::string& line) {
    std::lock_guard<std::mutex> lock(hooks_mutex_);
    log_->write_line(line);
    if (hooks_.log) hooks_.log(line);
  }
  // Reports progress; returns false when the hook asks to stop. While
  // stages run side by side, one event stands for all of them.
  bool progress(const std::string& stage, double fraction, const std::string& detail);
  // Runs the jobs, named by their stages, `width` at a time, each on one CPU
  // thread when width > 1; once all have ended, rethrows the first error.
  void side_by_side(const std::vector<std::pair<std::string, std::function<void()>>>& jobs, int width);
  [[noreturn]] void stopped(const std::string& stage) {
    say(stage + ": stopped; rerun the same command to resume");
    throw Stopped("stopped during " + stage + "; what was done is saved in " + out_ + "; rerun the same command to resume");
  }
  std::string path(const std::string& rel) const { return out_ + "/" + rel; }

  void data_stage();
  void index_stage();
  void tokenizer_stage();
  std::string pretrain_stage(const std::string& who, const ModelSpec& spec);
  std::string teacher_sft_stage(const std::string& start);
  std::string run_stage(const std::string& name, const std::string& model_dir, const std::string& questions, const std::vector<std::string>& after);
  // Fine-tunes `init` on `samples` into `dir` as stage train-<id>.
  json distill_stage(const std::string& id, const std::string& dir, const TrainSpec& spec, const std::string& samples,
                     distill::Weighting w, const std::string& init, const std::vector<std::string>& after);
  // The reading stage's samples (once), then `who`'s reading fine-tuning;
  // returns the model the next stage starts from.
  std::string reading_stage(const std::string& who, const std::string& pretrained);
  // Gold traces replayed through the retriever, cut into samples.
  json gold_samples(const std::string& gold, const std::string& questions, const std::string& dir, const std::string& what);
  // The first `limit` questions of a split (all when 0), as a file of their own.
  std::string questions_stage(const std::string& split, const std::string& file, std::size_t limit);

  reason::StrategyOptions strategy() const {
    reason::StrategyOptions o;
    o.strategy = reason::Strategy::ircot;
    o.k = c_.k;
    o.max_steps = c_.max_steps;
    o.max_passages = c_.max_passages;
    return o;
  }

  ExperimentConfig c_;
  std::string out_;
  Hooks hooks_;
  StageBook book_;
  std::optional<io::JsonlWriter> log_;  // lines of text, checked as they are written
  // Where the data is (the world's files, or the config's).
  std::string corpus_, train_, distill_, dev_, test_, gold_, reading_questions_, reading_gold_;
  std::string drills_;  // the world's copy drills, or ""
  std::string teacher_start_stage_;  // the stage of the model the teacher's SFT starts from
  std::string tokenizer_;
  json teacher_training_;  // the teacher's SFT stage result, when it had one
  std::mutex hooks_mutex_;   // guards log_, hooks_ and running_
  struct Running {
    std::string stage, detail;
    double fraction = 0;
  };
  std::vector<Running> running_;  // the stages side_by_side() is running now
};

}  // namespace steper::pipeline::detail
