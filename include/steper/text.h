// steper/text.h — tokenizers behind one interface.
//
//   * SentencePiece (`tokenizer.model`): what steper's own small models use;
//     train_sentencepiece() makes one from a corpus.
//   * Hugging Face byte-level BPE (`tokenizer.json`): GPT-2, Llama-3 and
//     Qwen2 style, so that real checkpoints can be used. The pre-tokenizer
//     patterns of those three families are built in (see bpe_pretokenizer.cc).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "steper/error.h"

namespace steper::text {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Text to token ids. Adds no BOS/EOS: callers add what their layout needs.
  // Special tokens written in the text (e.g. "<|endoftext|>") become their ids.
  virtual std::vector<int> encode(const std::string& text) const = 0;
  // Ids back to text; decode(encode(s)) == s for any valid UTF-8 s.
  virtual std::string decode(const std::vector<int>& ids) const = 0;
  virtual int vocab_size() const = 0;
  virtual int bos_id() const = 0;  // -1 when the vocabulary has none
  virtual int eos_id() const = 0;  // -1 when the vocabulary has none
  // "sentencepiece" or "bpe".
  virtual std::string kind() const = 0;
};

// Loads `path`: a tokenizer.json or tokenizer.model file, or a folder holding
// one of them (tokenizer.json preferred). Throws InputError naming the file
// and what is wrong with it.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);
// The tokenizer file load_tokenizer(path) would read; throws as it does.
std::string find_tokenizer_file(const std::string& path);
std::unique_ptr<Tokenizer> load_bpe_tokenizer(const std::string& tokenizer_json);
std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& model_file);

struct SentencePieceTrainOptions {
  // At most this many pieces; fewer when the text cannot fill them. Default: 8000
  int vocab_size = 8000;
  std::string model_type = "bpe";         // "bpe" | "unigram". Default: "bpe"
  double character_coverage = 0.9995;     // Default: 0.9995 (SentencePiece's)
  std::size_t max_sentences = 2000000;    // sampled beyond this. Default: 2M
  int threads = 2;                        // Default: 2
};

// Trains a SentencePiece model on the texts `next` yields (it returns false
// at the end) and writes OUT_DIR/tokenizer.model. Ids: 0 <unk>, 1 <s> (BOS),
// 2 </s> (EOS), 3 <pad>; digits are split and unknown bytes fall back to
// byte pieces, so any text encodes.
void train_sentencepiece(const std::function<bool(std::string&)>& next, const std::string& out_dir,
                         const SentencePieceTrainOptions& options = {});

// The official HotpotQA / SQuAD answer normalisation: lower-case, drop ASCII
// punctuation, drop the articles a/an/the, collapse white space
// (answer_normalization.cc writes the rules out).
std::string normalize_answer(const std::string& text);

}  // namespace steper::text
