// steper/pipeline.h — the whole StepER experiment as one resumable run.
//
// One config (JSON) says what to run: the data (a synthetic world, or your
// own corpus and question splits), the teacher and the student, and how
// each is trained. run_experiment() then goes through the stages
//
//   world -> index -> tokenizer -> pretrain teacher, pretrain student
//   -> reading: both fine-tuned on single-hop questions (one fact among
//      retrieved passages; never a chain), when `reading.epochs` > 0
//   -> teacher SFT on the replayed gold chains of `train`
//   -> teacher runs the strategy over `distill` -> step-wise, vanilla-KD
//      and answer-only samples
//   -> students: answer-only SFT, vanilla KD, StepER uniform, StepER
//      difficulty-aware, StepER with the sigma^2 floor (all from the same
//      student checkpoint, each for the same number of epochs)
//   -> every model runs the strategy over dev and test -> scores -> report
//
// Each stage records the key it ran with (the config fields it reads and
// the keys of the stages it reads from) in OUT/stages/. A rerun skips a
// finished stage with the same key; a changed key removes that stage's
// outputs and reruns it and everything downstream. A stage cut short
// (Ctrl-C, a crash) resumes: training from its last checkpoint, runs from
// the traces already written.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "steper/data.h"

namespace steper::pipeline {

struct ModelSpec {
  // An existing model folder (Hugging Face layout) to start from instead
  // of pretraining one; its tokenizer is then used. Default: "" (pretrain).
  // For the student, "teacher" (kStudentFromTeacher) starts all students
  // from the teacher's own checkpoint after pretraining and reading, before
  // its SFT on gold chains: one pretraining and one reading stage fewer,
  // and no initialisation of the student's own to be lucky or unlucky
  // with. A folder named teacher is "./teacher".
  std::string init;
  int dim = 64, layers = 2, heads = 4, kv_heads = 2;
  int ffn = 0;  // 0: 8/3 x dim rounded up to 32
  std::int64_t pretrain_steps = 200;
};

inline constexpr const char* kStudentFromTeacher = "teacher";

struct TrainSpec {
  double epochs = 2;
  int batch = 8;
  double lr = 1e-3;
  std::int64_t warmup = 20;
};

struct ExperimentConfig {
  std::string name = "tiny";  // the preset it started from, for the report
  std::uint64_t seed = 1;     // world, initialisation and data order

  // Data. With `corpus` empty a synthetic world of `world_questions`
  // questions is made; otherwise corpus + the four question files are used
  // (gold_traces, for the teacher's SFT, is optional then).
  std::size_t world_questions = 1000;
  std::size_t world_entities = 0;  // knowledge-base size (data::WorldOptions::entities); 0: world_questions
  // Copy drills per reading question (data::Drill) added to both models'
  // pretraining text: reading questions about renamed entities, which only
  // copying from the passage answers. 0: none.
  std::size_t copy_drills = 0;
  std::string corpus, train, distill, dev, test, gold_traces;
  // Single-hop reading questions and their one-step gold traces, for the
  // reading stage (the synthetic world makes its own).
  std::string reading_questions, reading_gold;

  std::string tokenizer;  // an existing tokenizer folder/file; "" trains one
  int vocab_size = 1000;

  ModelSpec teacher, student;
  int seq_len = 256;          // pretraining rows
  int pretrain_batch = 16;
  double pretrain_lr = 3e-3;

  // Both models' reading stage, on single-hop questions; epochs 0 skips it.
  TrainSpec reading{0, 16, 2e-3, 20};
  TrainSpec teacher_sft;      // on gold chains; epochs 0 skips it
  // Which teacher traces teach the students: "em" (the paper's: correct
  // ones), "acc" (gold answer contained), "all".
  std::string keep = "em";
  TrainSpec students;         // every student the same
  double weight_lr = 0.02;    // difficulty weights
  double sigma_floor = 0.1;   // the floor variant's floor on sigma^2

  // Strategy (reasoning as query) at every run.
  int k = 4, max_steps = 5, max_passages = 15;
  std::size_t distill_questions = 0;  // of the distill split the teacher answers; 0: all
  // Questions scored per split; 0: all. A config file's `eval_questions`
  // sets both. Dev is only reported, so it may be smaller than test, whose
  // size sets the figures' sampling error.
  std::size_t dev_questions = 0, test_questions = 0;
  int in_flight = 32;              // questions decoded together
  // Students trained, and models run over dev and test, this many at a
  // time, each on one CPU thread (1: one at a time on all of LibTorch's
  // threads). Not part of any stage's key: a speed setting, though the
  // thread count can move a figure in its last digits.
  int parallel_jobs = 2;
};

// "tiny" (the README's first command, 8 to 10 minutes on 2 cores), "small"
// (10,000 questions, under 40 minutes a seed) and "micro" (the CI's
// end-to-end test). Throws InputError naming the presets for another name.
ExperimentConfig preset(const std::string& name);
std::vector<std::string> preset_names();

data::json to_json(const ExperimentConfig& config);
// Fields missing from `j` keep the values of `base`; an unknown field is an
// error naming it (a typo must not silently fall back to a default).
ExperimentConfig config_from_json(const data::json& j, const ExperimentConfig& base, const std::string& where = "config");

// The methods compared, in report order.
struct Method {
  std::string id;     // folder name: "teacher", "student", "answer", ...
  std::string label;  // "Teacher", "Student (no fine-tuning)", ...
};
const std::vector<Method>& methods();

struct Event {
  std::string stage;    // "pretrain-teacher", "run-vanilla-dev", ...
  double fraction = -1; // of the stage, or < 0 when unknown
  std::string detail;   // a progress line's figures
};

struct Hooks {
  std::function<void(const std::string&)> log;  // stage starts, skips and results
  // Progress inside a stage; return false to stop (what is done is kept).
  std::function<bool(const Event&)> progress;
};

// Thrown when a progress hook asked to stop; a rerun resumes.
class Stopped : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ExperimentResult {
  data::json metrics;   // also OUT/report/metrics.json
  std::string table;    // the comparison table (Markdown)
  std::string report_dir;
};

ExperimentResult run_experiment(const ExperimentConfig& config, const std::string& out_dir, const Hooks& hooks);

// Finished runs of one experiment with different seeds (their --out
// folders): a Markdown table of each method's mean ± standard deviation.
std::string seeds_table(const std::vector<std::string>& run_dirs);

}  // namespace steper::pipeline
