// Raw HotpotQA (Yang et al., 2018): distractor and fullwiki releases. The
// test set has no "answer" or "supporting_facts"; both are optional here.
#include "context_paragraphs.h"
#include "converters.h"

namespace steper::data {

ConvertedRecord convert_hotpotqa_record(const json& j) {
  ConvertedRecord r;
  Question& q = r.question;
  q.id = require_string(j, "_id");
  q.question = require_string(j, "question");
  std::string answer = optional_string(j, "answer");
  if (!answer.empty()) q.answers.push_back(answer);
  q.type = optional_string(j, "type");
  read_context_paragraphs(j, r);
  return r;
}

}  // namespace steper::data
