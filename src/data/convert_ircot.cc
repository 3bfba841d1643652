// The processed format of IRCoT (Trivedi et al., 2023), used by many later
// multi-step RAG papers for HotpotQA, 2WikiMultiHopQA and MuSiQue alike.
#include "converters.h"

namespace steper::data {

ConvertedRecord convert_ircot_record(const json& j) {
  ConvertedRecord r;
  Question& q = r.question;
  q.id = require_string(j, "question_id");
  q.question = require_string(j, "question_text");
  q.type = optional_string(j, "type");
  const json& answers = require_array(j, "answers_objects");
  for (std::size_t i = 0; i < answers.size(); ++i) {
    std::string path = "answers_objects[" + std::to_string(i) + "]";
    std::vector<std::string> spans = optional_string_array(answers[i], "spans", path);
    // Numeric answers (DROP-style objects) carry "number" instead of spans.
    if (spans.empty()) {
      std::string number = optional_string(answers[i], "number", path);
      if (!number.empty()) spans.push_back(number);
    }
    for (auto& s : spans) add_unique(q.answers, std::move(s));
  }
  read_titled_paragraphs(j, "contexts", r);
  return r;
}

}  // namespace steper::data
