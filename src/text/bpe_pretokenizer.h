// The regex pre-tokenizers of the byte-level BPE families, hand-written over
// code points (no regex engine: these patterns are fixed and hot).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace steper::text {

enum class PreTokenizer {
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  gpt2,
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
  //  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  llama3,
  // Llama-3's pattern with \p{N} one digit at a time (Qwen2, Qwen2.5).
  qwen2,
};

// Recognises the Split regex of a tokenizer.json; throws InputError for one
// steper does not implement.
PreTokenizer pretokenizer_from_pattern(const std::string& regex);

// Splits `text` into pieces (views into it) that BPE then encodes one by one.
std::vector<std::string_view> pretokenize(std::string_view text, PreTokenizer kind);

}  // namespace steper::text
