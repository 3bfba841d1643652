#include "context_paragraphs.h"

#include "converters.h"

#include <algorithm>
#include <cctype>

namespace steper::data {

std::string join_sentences(const json& sentences, const std::string& path) {
  if (!sentences.is_array()) throw FieldError(path, std::string("expected an array of sentences, got ") + sentences.type_name());
  std::string text;
  for (std::size_t i = 0; i < sentences.size(); ++i) {
    if (!sentences[i].is_string()) {
      throw FieldError(path + "[" + std::to_string(i) + "]", std::string("expected a string, got ") + sentences[i].type_name());
    }
    const auto& s = sentences[i].get_ref<const std::string&>();
    if (s.empty()) continue;
    if (!text.empty() && !std::isspace(static_cast<unsigned char>(text.back())) &&
        !std::isspace(static_cast<unsigned char>(s.front()))) {
      text.push_back(' ');
    }
    text += s;
  }
  // Trim the ends: a leading space from the first sentence is noise.
  auto b = text.find_first_not_of(" \t\n");
  if (b == std::string::npos) return {};
  auto e = text.find_last_not_of(" \t\n");
  return text.substr(b, e - b + 1);
}

void read_context_paragraphs(const json& j, ConvertedRecord& record) {
  Question& q = record.question;
  if (auto it = j.find("supporting_facts"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) throw FieldError("supporting_facts", std::string("expected an array, got ") + it->type_name());
    for (std::size_t i = 0; i < it->size(); ++i) {
      const json& fact = (*it)[i];
      std::string path = "supporting_facts[" + std::to_string(i) + "]";
      if (!fact.is_array() || fact.empty() || !fact[0].is_string()) {
        throw FieldError(path, "expected [title, sentence index]");
      }
      add_unique(q.supporting_titles, fact[0].get<std::string>());
    }
  }
  const json& context = require_array(j, "context");
  for (std::size_t i = 0; i < context.size(); ++i) {
    std::string path = "context[" + std::to_string(i) + "]";
    const json& pair = context[i];
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string()) {
      throw FieldError(path, "expected [title, [sentence, ...]]");
    }
    ConvertedRecord::Paragraph p;
    p.title = pair[0].get<std::string>();
    p.text = join_sentences(pair[1], path + "[1]");
    p.supporting = std::find(q.supporting_titles.begin(), q.supporting_titles.end(), p.title) != q.supporting_titles.end();
    record.paragraphs.push_back(std::move(p));
  }
}

}  // namespace steper::data
