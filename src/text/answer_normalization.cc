// Answer normalisation exactly as the official HotpotQA evaluation script
// (and SQuAD v1.1's, which it extends) computes it:
//
//   normalize(s) = white_space_fix(remove_articles(remove_punc(lower(s))))
//     lower            Python's str.lower(), full Unicode mapping
//     remove_punc      drop the 32 ASCII characters of string.punctuation;
//                      other symbols ("–", "’") stay
//     remove_articles  re.sub(r"\b(a|an|the)\b", " ", s): whole words only,
//                      a word being a run of Unicode letters, numbers and '_'
//     white_space_fix  " ".join(s.split()): split on Unicode white space
#include "steper/text.h"
#include "unicode.h"

namespace steper::text {
namespace {

bool is_ascii_punct(char32_t c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}
bool is_word(char32_t c) { return c == U'_' || is_letter(c) || is_number(c); }

}  // namespace

std::string normalize_answer(const std::string& text) {
  Utf8Text in = decode_utf8(text);
  std::u32string lowered;
  lowered.reserve(in.cps.size());
  for (char32_t c : in.cps) {
    if (!is_ascii_punct(c)) append_lower(lowered, c);
  }
  std::u32string no_articles;
  no_articles.reserve(lowered.size());
  for (std::size_t i = 0; i < lowered.size();) {
    if (!is_word(lowered[i])) {
      no_articles.push_back(lowered[i++]);
      continue;
    }
    std::size_t j = i;
    while (j < lowered.size() && is_word(lowered[j])) ++j;
    std::u32string_view w(lowered.data() + i, j - i);
    if (w == U"a" || w == U"an" || w == U"the") no_articles.push_back(U' ');
    else no_articles.append(w);
    i = j;
  }
  std::string out;
  bool pending_space = false;
  for (char32_t c : no_articles) {
    if (is_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    append_utf8(out, c);
  }
  return out;
}

bool answer_matches(const std::string& prediction, const std::string& gold, AnswerMatch match) {
  const std::string p = normalize_answer(prediction), g = normalize_answer(gold);
  return match == AnswerMatch::exact ? p == g : p.find(g) != std::string::npos;
}

bool answers_correctly(const std::string& prediction, const std::vector<std::string>& golds, AnswerMatch match) {
  for (const auto& g : golds) {
    if (answer_matches(prediction, g, match)) return true;
  }
  return false;
}

}  // namespace steper::text
