// steper/eval.h — scoring: retrieval recall of supporting passages.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "steper/data.h"

namespace steper::eval {

// Recall@k of the supporting passages: for each question, the share of its
// supporting passages among the first k retrieved, averaged over questions
// (questions without supporting passages are not counted). "Complete" is the
// share of questions with every supporting passage in the first k: for
// multi-hop questions, the figure that says whether the evidence is there.
struct RecallAtK {
  int k = 0;
  double recall = 0;
  double complete = 0;
};

class RetrievalRecall {
 public:
  // REQUIRES: ks non-empty, each >= 1.
  explicit RetrievalRecall(std::vector<int> ks);

  // `supporting` and `retrieved` must name passages the same way (both ids,
  // or both titles); `retrieved` is in rank order. Duplicates in `supporting`
  // count once.
  void add(const std::vector<std::string>& supporting, const std::vector<std::string>& retrieved,
           const std::string& type = "");

  std::vector<RecallAtK> overall() const { return summarise(all_); }
  std::map<std::string, std::vector<RecallAtK>> by_type() const;
  std::size_t questions() const { return all_.n; }
  std::size_t questions(const std::string& type) const;
  const std::vector<int>& ks() const { return ks_; }

 private:
  struct Sums {
    std::size_t n = 0;
    std::vector<double> recall, complete;
  };
  std::vector<RecallAtK> summarise(const Sums& s) const;
  void accumulate(Sums& s, const std::vector<double>& recall, const std::vector<double>& complete);

  std::vector<int> ks_;
  Sums all_;
  std::map<std::string, Sums> types_;
};

// The passages a question's recall is measured on, and how retrieved hits
// must be named to match: supporting_ids when the question has them, else
// supporting_titles.
struct SupportingPassages {
  std::vector<std::string> names;
  bool by_id = false;
};
SupportingPassages supporting_passages(const data::Question& q);
// The hops a question needs: its distinct supporting passages (0: unknown).
std::size_t hop_count(const data::Question& q);

}  // namespace steper::eval

namespace steper::eval {

// ------------------------------------------------------------ answer metrics
// The official HotpotQA / SQuAD rules: answer_metrics.cc states EM, F1 and
// Acc; the normalisation is text::normalize_answer (answer_normalization.cc).

// Lower-case, drop ASCII punctuation, drop the articles a/an/the, collapse
// white space (text::normalize_answer).
std::string normalize_answer(const std::string& text);
double exact_match(const std::string& prediction, const std::string& gold);
// Token F1; 0 when either side is yes/no/noanswer and they differ.
double f1_score(const std::string& prediction, const std::string& gold);
// 1 when the normalised gold is a substring of the normalised prediction.
double answer_accuracy(const std::string& prediction, const std::string& gold);

struct AnswerScores {
  double em = 0, f1 = 0, acc = 0;
};
// Each metric's maximum over all gold answers (aliases included).
AnswerScores score_answer(const std::string& prediction, const std::vector<std::string>& golds);

}  // namespace steper::eval

namespace steper::eval {

// ------------------------------------------------------------ trace reports

// Sums over a set of scored runs; the accessors give means.
struct Totals {
  std::size_t n = 0;
  double em = 0, f1 = 0, acc = 0;
  double steps = 0;
  std::size_t max_steps = 0, errors = 0;
  std::size_t recall_n = 0;  // runs whose question names supporting_ids
  double recall = 0;
  void add(const AnswerScores& s, std::size_t step_count, const std::string& stop);
  double mean(double sum) const { return n ? sum / static_cast<double>(n) : 0.0; }
  double recall_mean() const { return recall_n ? recall / static_cast<double>(recall_n) : 0.0; }
};

// One traces file scored against the questions.
struct TraceReport {
  std::string traces;
  Totals overall;
  std::map<std::string, Totals> by_type;  // questions with a type only
  std::size_t missing = 0;     // questions with no trace in the file
  std::size_t unknown = 0;     // traces whose id is not among the questions (ignored)
  std::size_t duplicates = 0;  // repeated ids (the first is scored)
};

// One scored run, for --per-question output.
struct ScoredRun {
  const data::Question* question;
  const data::Trace* trace;
  AnswerScores scores;
  double recall;  // < 0 when the question has no supporting_ids
};

// Scores every trace in `traces_path` (streamed) against `questions`, by id.
// The gold answers are the questions' (traces repeat them only for reading).
// Retrieval recall is the share of the question's supporting_ids among all
// passages the run retrieved, over all steps. Throws InputError with
// file:line for a malformed trace.
TraceReport evaluate_traces(const std::vector<data::Question>& questions, const std::string& traces_path,
                            const std::function<void(const ScoredRun&)>& on_run = nullptr);

data::json to_json(const TraceReport& report);

}  // namespace steper::eval

namespace steper::eval {

// ------------------------------------------------------- paired comparisons

// The mean of a[i] - b[i] over paired items (two systems' scores on the same
// questions) and its percentile bootstrap interval: `resamples` draws of the
// items with replacement, from a generator seeded with `seed`, so that the
// same scores always give the same interval.
struct PairedInterval {
  std::size_t n = 0;
  double diff = 0;        // mean of a - b
  double low = 0, high = 0;  // the central `level` share of the resampled means
  double level = 0.95;
};
PairedInterval paired_bootstrap(const std::vector<double>& a, const std::vector<double>& b, int resamples = 2000,
                                double level = 0.95, std::uint64_t seed = 1);

}  // namespace steper::eval
