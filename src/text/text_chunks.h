// Long texts are tokenized a window at a time, so that the working memory of
// a tokenizer follows the window, not the text: a 50 MB line once took 7.6 GB
// through SentencePiece and 1.4 GB through byte-level BPE.
//
// A window ends where every tokenizer steper reads ends a piece anyway:
// before an ASCII space that follows an ASCII letter. GPT-2's, Llama-3's
// and Qwen2's pre-tokenizers all end a letter run there, decide it without
// looking past the space, and start the next piece at the space; NFC never
// composes across ASCII. So the windows' tokens, joined, are the text's.
#pragma once

#include <cstddef>
#include <string_view>

namespace steper::text {

constexpr std::size_t kWindowBytes = 64 << 10;

inline bool is_ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// The end of the window of `text` that starts at `from`: text.size() when
// the rest is short (or has no such space), else the position of a space
// near from + kWindowBytes that an ASCII letter precedes and, when
// `letter_after`, also follows.
inline std::size_t window_end(std::string_view text, std::size_t from, bool letter_after) {
  if (text.size() - from <= kWindowBytes) return text.size();
  auto cut = [&](std::size_t at) {
    return text[at] == ' ' && is_ascii_letter(text[at - 1]) && (!letter_after || (at + 1 < text.size() && is_ascii_letter(text[at + 1])));
  };
  const std::size_t target = from + kWindowBytes;
  for (std::size_t at = target; at > from + kWindowBytes / 2; --at) {
    if (cut(at)) return at;
  }
  for (std::size_t at = target + 1; at + 1 < text.size(); ++at) {
    if (cut(at)) return at;
  }
  return text.size();
}

}  // namespace steper::text
