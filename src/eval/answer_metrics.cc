// Answer scoring as the official HotpotQA evaluation script computes it, on
// text::normalize_answer (lower-case, drop ASCII punctuation and the articles
// a/an/the, collapse white space):
//   EM  = normalize(pred) == normalize(gold)
//   F1  = token-overlap F1 of the normalised texts, except that it is 0 when
//         either side normalises to yes / no / noanswer and they differ
//   Acc = normalize(gold) is a substring of normalize(pred)
// Each is the maximum over all gold answers and aliases.
#include <algorithm>
#include <map>

#include "steper/eval.h"
#include "steper/text.h"

namespace steper::eval {
namespace {

std::vector<std::string> tokens(const std::string& normalized) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= normalized.size()) {
    std::size_t end = normalized.find(' ', start);
    if (end == std::string::npos) end = normalized.size();
    if (end > start) out.push_back(normalized.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool is_special(const std::string& s) { return s == "yes" || s == "no" || s == "noanswer"; }

}  // namespace

std::string normalize_answer(const std::string& text) { return text::normalize_answer(text); }

double exact_match(const std::string& prediction, const std::string& gold) {
  return text::answer_matches(prediction, gold, text::AnswerMatch::exact) ? 1.0 : 0.0;
}

double f1_score(const std::string& prediction, const std::string& gold) {
  std::string p = normalize_answer(prediction), g = normalize_answer(gold);
  if ((is_special(p) || is_special(g)) && p != g) return 0.0;
  std::vector<std::string> pt = tokens(p), gt = tokens(g);
  std::map<std::string, int> counts;
  for (const auto& t : gt) ++counts[t];
  int same = 0;
  for (const auto& t : pt) {
    auto it = counts.find(t);
    if (it != counts.end() && it->second > 0) {
      --it->second;
      ++same;
    }
  }
  if (same == 0) return 0.0;
  double precision = static_cast<double>(same) / static_cast<double>(pt.size());
  double recall = static_cast<double>(same) / static_cast<double>(gt.size());
  return 2 * precision * recall / (precision + recall);
}

double answer_accuracy(const std::string& prediction, const std::string& gold) {
  return text::answer_matches(prediction, gold, text::AnswerMatch::contained) ? 1.0 : 0.0;
}

AnswerScores score_answer(const std::string& prediction, const std::vector<std::string>& golds) {
  AnswerScores best;
  for (const auto& g : golds) {
    best.em = std::max(best.em, exact_match(prediction, g));
    best.f1 = std::max(best.f1, f1_score(prediction, g));
    best.acc = std::max(best.acc, answer_accuracy(prediction, g));
  }
  return best;
}

}  // namespace steper::eval
