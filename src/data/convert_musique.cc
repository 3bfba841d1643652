// Raw MuSiQue (Trivedi et al., 2022), the -Ans and -Full releases. The
// question type is the hop pattern at the front of the id ("2hop", "3hop1").
#include "converters.h"

namespace steper::data {

ConvertedRecord convert_musique_record(const json& j) {
  ConvertedRecord r;
  Question& q = r.question;
  q.id = require_string(j, "id");
  q.question = require_string(j, "question");
  std::string answer = optional_string(j, "answer");
  if (!answer.empty()) q.answers.push_back(answer);
  for (auto& alias : optional_string_array(j, "answer_aliases")) add_unique(q.answers, std::move(alias));
  if (auto sep = q.id.find("__"); sep != std::string::npos) q.type = q.id.substr(0, sep);
  read_titled_paragraphs(j, "paragraphs", r);
  return r;
}

}  // namespace steper::data
