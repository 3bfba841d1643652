// IRCoT's protocol (Trivedi et al., ACL 2023), as its code runs it: few-shot
// demonstrations sampled to fit the context, paragraphs cut to 350 words,
// one sentence kept per generation (generation stops at a newline, and the
// client splits sentences without cutting initials), the answer read with
// the regex `.* answer is:? (.*)\.?`, and retrieval queries with the
// wh-words dropped, never a reasoning sentence ("So the answer is ...").
#include <algorithm>
#include <cctype>
#include <fstream>
#include <random>
#include <sstream>

#include "steper/reason.h"

namespace steper::reason {
namespace {

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  const std::size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Words whose period does not end a sentence.
bool is_abbreviation(const std::string& word) {
  static const char* const known[] = {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "inc", "co",
                                      "ltd", "no", "mt", "ft", "gen", "col", "lt", "sgt", "capt", "rev", "hon",
                                      "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
                                      "dec", "u.s", "u.k", "e.g", "i.e", "a.m", "p.m", "approx", "est", "vol"};
  const std::string w = lower(word);
  return std::any_of(std::begin(known), std::end(known), [&](const char* k) { return w == k; });
}

}  // namespace

std::vector<std::string> read_demonstrations(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open the demonstrations file");
  std::vector<std::string> demos;
  std::string line, current;
  auto flush = [&] {
    const std::string d = trim(current);
    if (!d.empty()) demos.push_back(d);
    current.clear();
  };
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).rfind("# METADATA:", 0) == 0) {
      flush();
      continue;
    }
    current += line + "\n";
  }
  flush();
  if (demos.empty()) throw InputError(path + ": no demonstrations (IRCoT's format: '# METADATA: {...}' lines, each followed by one)");
  return demos;
}

std::string choose_demonstrations(const std::vector<std::string>& pool, const std::string& question_id, int budget_tokens,
                                  std::uint64_t seed) {
  if (pool.empty()) return "";
  std::vector<std::size_t> order(pool.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  // A fixed seed per question: the same question always gets the same demonstrations.
  std::uint64_t h = seed ^ 1469598103934665603ULL;
  for (unsigned char c : question_id) h = (h ^ c) * 1099511628211ULL;
  std::mt19937_64 rng(h);
  std::shuffle(order.begin(), order.end(), rng);
  std::string out;
  std::size_t used = 0;
  for (std::size_t i : order) {
    const std::size_t cost = estimate_tokens(pool[i]) + 1;
    if (budget_tokens > 0 && used + cost > static_cast<std::size_t>(budget_tokens)) continue;
    out += (out.empty() ? "" : "\n\n\n") + pool[i];
    used += cost;
  }
  return out;
}

std::size_t estimate_tokens(const std::string& text) { return (text.size() + 3) / 4; }

std::string cut_words(const std::string& text, int max_words) {
  if (max_words <= 0) return text;
  std::size_t at = 0;
  for (int w = 0; w < max_words; ++w) {
    at = text.find(' ', at);
    if (at == std::string::npos) return text;
    ++at;
  }
  return text.substr(0, at - 1);
}

std::string first_sentence(const std::string& text) {
  const std::string t = trim(text);
  for (std::size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (c != '.' && c != '!' && c != '?') continue;
    std::size_t next = i + 1;
    while (next < t.size() && (t[next] == '"' || t[next] == '\'' || t[next] == ')')) ++next;
    if (next >= t.size()) break;
    if (t[next] != ' ') continue;  // "3.14", "U.S.A", "Ave.," go on
    std::size_t after = t.find_first_not_of(' ', next);
    if (after == std::string::npos) break;
    const unsigned char first = static_cast<unsigned char>(t[after]);
    if (!(std::isupper(first) || std::isdigit(first) || first == '"' || first == '\'' || first >= 0x80)) continue;
    if (c == '.') {
      std::size_t w = i;
      while (w > 0 && t[w - 1] != ' ') --w;
      const std::string word = t.substr(w, i - w);
      // An initial ("J." in "J. J. Abrams", "Henry J. Kaiser") or an abbreviation.
      if (word.size() == 1 && std::isupper(static_cast<unsigned char>(word[0]))) continue;
      if (is_abbreviation(word)) continue;
    }
    return t.substr(0, next);
  }
  return t;
}

bool is_reasoning_sentence(const std::string& sentence) {
  const std::string s = lower(sentence);
  for (const char* starter : {"thus ", "thus,", "so ", "so,", "that is,", "therefore", "hence"}) {
    if (s.rfind(starter, 0) == 0) return true;
  }
  // "a + b = c" arithmetic
  const std::size_t eq = s.find(" = ");
  if (eq != std::string::npos && (s.rfind(" + ", eq) != std::string::npos || s.rfind(" - ", eq) != std::string::npos)) {
    return eq + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[eq + 3]));
  }
  return false;
}

std::string remove_wh_words(const std::string& text) {
  static const char* const wh[] = {"who", "what", "when", "where", "why", "which", "how", "does", "is"};
  std::string out;
  std::stringstream ss(text);
  std::string word;
  bool first = true;
  // Split on single spaces, as IRCoT does: runs of spaces keep empty words.
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t sp = text.find(' ', start);
    word = text.substr(start, sp == std::string::npos ? std::string::npos : sp - start);
    const std::string key = lower(trim(word));
    if (std::none_of(std::begin(wh), std::end(wh), [&](const char* w) { return key == w; })) {
      out += (first ? "" : " ") + word;
      first = false;
    }
    if (sp == std::string::npos) break;
    start = sp + 1;
  }
  return out;
}

std::string ircot_query(const std::string& question, const std::vector<std::string>& sentences) {
  std::string last;
  for (const auto& s : sentences) {
    if (!is_reasoning_sentence(s)) last = trim(s);
  }
  return remove_wh_words(last.empty() ? question : last);
}

bool ircot_answer(const std::string& sentence, std::string& answer) {
  // re.match(".* answer is:? (.*)\.?"): '.' stops at a newline, and the
  // greedy start takes the last " answer is" of the first line.
  const std::string line = sentence.substr(0, sentence.find('\n'));
  std::size_t at = line.rfind(" answer is");
  while (at != std::string::npos) {
    std::size_t p = at + 10;
    if (p < line.size() && line[p] == ':') ++p;
    if (p < line.size() && line[p] == ' ') {
      answer = line.substr(p + 1);
      if (!answer.empty() && answer.back() == '.') answer.pop_back();  // answer_extractor_remove_last_fullstop
      return true;
    }
    if (at == 0) break;
    at = line.rfind(" answer is", at - 1);
  }
  return false;
}

}  // namespace steper::reason
