// steper/eval.h — scoring: retrieval recall of supporting passages.
#pragma once

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

}  // namespace steper::eval
