// The little Unicode the tokenizers need: UTF-8 decoding that never fails,
// and the classes \p{L}, \p{N} and \s of the pre-tokenizer patterns.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace steper::text {

// Code points and the byte offset each starts at (offsets.size() ==
// cps.size() + 1, the last being the text's length). An invalid byte counts
// as one code point of its own (U+FFFD) so byte-level BPE still sees it.
struct Utf8Text {
  std::vector<char32_t> cps;
  std::vector<std::size_t> offsets;
};
Utf8Text decode_utf8(std::string_view s);
void append_utf8(std::string& out, char32_t cp);

// Python's str.lower() of one code point: one or two code points.
void append_lower(std::u32string& out, char32_t c);

// Python's str.upper() (full case mapping: "ß" -> "SS"), the title case of
// one code point (str.capitalize's first letter), and str.isprintable() of
// one code point (what repr() leaves unescaped). ICU's tables (python_text.cc).
std::string upper_case(std::string_view s);
void append_title(std::u32string& out, char32_t c);
bool is_printable(char32_t c);

// The Unicode normal forms of tokenizer.json's normalizers (normalize.cc).
enum class NormalForm { none, nfc, nfd, nfkc, nfkd };
std::string normalize_unicode(std::string_view text, NormalForm form);

bool is_letter(char32_t c);
bool is_number(char32_t c);
bool is_space(char32_t c);

}  // namespace steper::text
