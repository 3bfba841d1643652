// Answer scoring exactly as the official HotpotQA evaluation script (and
// SQuAD v1.1's, which it extends) computes it:
//
//   normalize(s) = white_space_fix(remove_articles(remove_punc(lower(s))))
//     lower            Unicode lower-casing (Python's str.lower)
//     remove_punc      drop the 32 ASCII punctuation characters of Python's
//                      string.punctuation; other symbols ("–", "’") stay
//     remove_articles  replace the whole words a, an, the by a space, where a
//                      word is a run of Unicode letters, digits and '_'
//                      (Python's \b)
//     white_space_fix  split on Unicode white space, join with one space
//   EM = normalize(pred) == normalize(gold)
//   F1 = token-overlap F1 of the normalised texts, except that it is 0 when
//        either side normalises to yes / no / noanswer and they differ
//   Acc = normalize(gold) is a substring of normalize(pred)
// Each is the maximum over all gold answers and aliases.
//
// Lower-casing uses glibc's C.UTF-8 tables, which follow Unicode's simple
// case mapping; Python uses the full mapping, which differs only for a
// handful of characters such as 'İ' (U+0130).
#include <locale.h>
#include <wctype.h>

#include <algorithm>
#include <map>

#include "steper/eval.h"

namespace steper::eval {
namespace {

locale_t utf8_locale() {
  static locale_t loc = [] {
    locale_t l = ::newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
    return l ? l : ::newlocale(LC_CTYPE_MASK, "C", static_cast<locale_t>(0));
  }();
  return loc;
}

// UTF-8 to code points; an invalid byte becomes U+FFFD.
std::u32string decode(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + static_cast<std::size_t>(len) > s.size()) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    char32_t cp = len == 1 ? c : c & (0x7F >> len);
    bool ok = true;
    for (int k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
      if ((cc & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += static_cast<std::size_t>(len);
  }
  return out;
}

std::string encode(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t cp : s) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  return out;
}

bool is_ascii_punct(char32_t c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}
bool is_word(char32_t c) { return c == U'_' || ::iswalnum_l(static_cast<wint_t>(c), utf8_locale()); }
bool is_space(char32_t c) {
  // Python's str.split() also splits on \x1c-\x1f and the no-break spaces,
  // which glibc does not count as white space.
  return ::iswspace_l(static_cast<wint_t>(c), utf8_locale()) || (c >= 0x1C && c <= 0x1F) || c == 0x85 || c == 0xA0 ||
         c == 0x2007 || c == 0x202F;
}

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

std::string normalize_answer(const std::string& text) {
  std::u32string s = decode(text);
  // lower, then drop ASCII punctuation
  std::u32string t;
  t.reserve(s.size());
  for (char32_t c : s) {
    if (is_ascii_punct(c)) continue;
    t.push_back(static_cast<char32_t>(::towlower_l(static_cast<wint_t>(c), utf8_locale())));
  }
  // remove whole-word articles
  std::u32string u;
  u.reserve(t.size());
  for (std::size_t i = 0; i < t.size();) {
    if (!is_word(t[i])) {
      u.push_back(t[i++]);
      continue;
    }
    std::size_t j = i;
    while (j < t.size() && is_word(t[j])) ++j;
    std::u32string w = t.substr(i, j - i);
    if (w == U"a" || w == U"an" || w == U"the") u.push_back(U' ');
    else u += w;
    i = j;
  }
  // collapse white space
  std::u32string v;
  bool pending = false;
  for (char32_t c : u) {
    if (is_space(c)) {
      pending = !v.empty();
      continue;
    }
    if (pending) v.push_back(U' ');
    pending = false;
    v.push_back(c);
  }
  return encode(v);
}

double exact_match(const std::string& prediction, const std::string& gold) {
  return normalize_answer(prediction) == normalize_answer(gold) ? 1.0 : 0.0;
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
  // As Python's `gold in prediction`: an empty gold is in everything.
  return normalize_answer(prediction).find(normalize_answer(gold)) != std::string::npos ? 1.0 : 0.0;
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
