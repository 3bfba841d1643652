// Scoring every model's runs and writing the experiment's report folder.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "steper/data.h"
#include "steper/eval.h"
#include "steper/pipeline.h"

namespace steper::pipeline {

// Scores per method and split: overall, per question type and per number
// of hops (the supporting passages a question needs).
class Scores {
 public:
  void add(const std::string& method, const std::string& split, const std::vector<data::Question>& questions,
           const std::string& traces_path);
  // {"dev": {"overall": {...}, "by_type": {...}, "by_hops": {...}}, ...}
  const data::json& of(const std::string& method) const;
  // Acc of each question of `split`, in the questions' order (0 for a
  // question with no trace); empty when the method has no run of it.
  const std::vector<double>& per_question(const std::string& method, const std::string& split) const;

 private:
  std::map<std::string, data::json> scores_;
  std::map<std::string, std::map<std::string, std::vector<double>>> acc_;  // method -> split -> per question
};

// The paired differences the report prints, in order: a against b.
struct Comparison {
  std::string a, b;
};
const std::vector<Comparison>& comparisons();

// Sections of the report's Markdown, from a metrics.json (also for
// `demo --summarize`, which reads them back).
std::string label_of(const data::json& metrics, const std::string& id);
// "12.3": a share in %, "–" for a missing value.
std::string pct(const data::json& v);
// "+5.2 [+1.0, +9.4]": a comparison's difference and interval in points, "–" for none.
std::string interval(const data::json& c);
// Seconds as "42 s" or "6m05s", "–" for none.
std::string human_seconds(const data::json& v);
std::string comparisons_table(const data::json& metrics);
std::string weight_shares_table(const data::json& metrics);

class Report {
 public:
  // `training`: per method id, the train stage's result (samples, seconds);
  // `model_dirs`: per method id, the model evaluated.
  Report(const ExperimentConfig& config, const std::string& out_dir, const data::json& training, const Scores& scores,
         const std::map<std::string, std::string>& model_dirs);

  const data::json& metrics() const { return metrics_; }
  // The comparison (Markdown): overall, then test accuracy by type and hops.
  std::string table() const;
  // What the report's trace viewer (index.html) shows: the test questions,
  // each method's test traces by method id, and the corpus for passages.
  struct ViewerInputs {
    std::string questions;
    std::map<std::string, std::string> traces;
    std::string corpus;
  };
  // metrics.json, metrics.md, the SVG plots and, when `test` names traces,
  // index.html: the viewer with the plots and paired intervals.
  void write(const std::string& dir, const ViewerInputs& test = {}) const;

  // Losses are smoothed over this many logged steps.
  static constexpr std::size_t kLossWindow = 20;

 private:
  struct Plot {
    std::string file, title, svg;
  };
  std::vector<Plot> plots() const;
  std::string question_counts() const;

  std::string out_dir_;
  data::json metrics_;
};

}  // namespace steper::pipeline
