#include "bpe_pretokenizer.h"

#include "steper/error.h"
#include "unicode.h"

namespace steper::text {
namespace {

const char* const kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kQwen2Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kGpt2Pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

bool is_other(char32_t c) { return !is_space(c) && !is_letter(c) && !is_number(c); }
bool is_newline(char32_t c) { return c == U'\r' || c == U'\n'; }
char32_t fold(char32_t c) { return c >= U'A' && c <= U'Z' ? c + 32 : c; }

// Length in code points of a contraction at i ('s 't 're 've 'm 'll 'd), or 0.
std::size_t contraction(const std::vector<char32_t>& c, std::size_t i, bool any_case) {
  if (c[i] != U'\'' || i + 1 >= c.size()) return 0;
  auto f = [&](std::size_t k) { return any_case ? fold(c[k]) : c[k]; };
  char32_t a = f(i + 1);
  if (a == U's' || a == U't' || a == U'm' || a == U'd') return 2;
  if (i + 2 < c.size()) {
    char32_t b = f(i + 2);
    if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) return 3;
  }
  return 0;
}

template <class Pred>
std::size_t run(const std::vector<char32_t>& c, std::size_t i, Pred p) {
  while (i < c.size() && p(c[i])) ++i;
  return i;
}

// \s+(?!\S) then \s+: a white-space run, less its last character when a
// non-space follows (that character then leads the next piece).
std::size_t whitespace(const std::vector<char32_t>& c, std::size_t i) {
  std::size_t e = run(c, i, is_space);
  if (e < c.size() && e - i >= 2) return e - 1;
  return e;
}

std::size_t next_gpt2(const std::vector<char32_t>& c, std::size_t i) {
  if (std::size_t n = contraction(c, i, false)) return i + n;
  std::size_t j = (c[i] == U' ' && i + 1 < c.size()) ? i + 1 : i;
  if (is_letter(c[j])) return run(c, j, is_letter);
  if (is_number(c[j])) return run(c, j, is_number);
  if (is_other(c[j])) return run(c, j, is_other);
  return whitespace(c, i);
}

std::size_t next_llama3(const std::vector<char32_t>& c, std::size_t i, std::size_t max_digits) {
  if (std::size_t n = contraction(c, i, true)) return i + n;
  if (is_letter(c[i])) return run(c, i, is_letter);
  if (!is_newline(c[i]) && !is_number(c[i]) && i + 1 < c.size() && is_letter(c[i + 1])) return run(c, i + 1, is_letter);
  if (is_number(c[i])) {
    std::size_t e = i;
    while (e < c.size() && e - i < max_digits && is_number(c[e])) ++e;
    return e;
  }
  std::size_t j = (c[i] == U' ' && i + 1 < c.size() && is_other(c[i + 1])) ? i + 1 : i;
  if (is_other(c[j])) return run(c, run(c, j, is_other), is_newline);
  // \s*[\r\n]+ : up to the last newline of the white-space run
  std::size_t e = run(c, i, is_space), last_newline = e;
  for (std::size_t k = i; k < e; ++k) {
    if (is_newline(c[k])) last_newline = k;
  }
  if (last_newline != e) return last_newline + 1;
  return whitespace(c, i);
}

}  // namespace

PreTokenizer pretokenizer_from_pattern(const std::string& regex) {
  if (regex == kLlama3Pattern) return PreTokenizer::llama3;
  if (regex == kQwen2Pattern) return PreTokenizer::qwen2;
  if (regex == kGpt2Pattern) return PreTokenizer::gpt2;
  throw InputError("unsupported pre-tokenizer pattern " + regex + " (steper implements GPT-2's, Llama-3's and Qwen2's)");
}

std::vector<std::string_view> pretokenize(std::string_view text, PreTokenizer kind) {
  Utf8Text t = decode_utf8(text);
  std::vector<std::string_view> out;
  for (std::size_t i = 0; i < t.cps.size();) {
    std::size_t e = kind == PreTokenizer::gpt2 ? next_gpt2(t.cps, i)
                                                : next_llama3(t.cps, i, kind == PreTokenizer::llama3 ? 3 : 1);
    if (e <= i) e = i + 1;  // never stall
    out.push_back(text.substr(t.offsets[i], t.offsets[e] - t.offsets[i]));
    i = e;
  }
  return out;
}

}  // namespace steper::text
