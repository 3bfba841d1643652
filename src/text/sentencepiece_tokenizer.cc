// SentencePiece models (`tokenizer.model`), loaded and trained through
// Debian's libsentencepiece.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "steper/text.h"

namespace steper::text {
namespace {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& path) {
    auto status = sp_.Load(path);
    if (!status.ok()) throw InputError(path + ": not a SentencePiece model: " + status.ToString());
  }
  std::vector<int> encode(const std::string& text) const override {
    std::vector<int> ids;
    auto status = sp_.Encode(text, &ids);
    if (!status.ok()) throw RuntimeError("SentencePiece encode failed: " + status.ToString());
    return ids;
  }
  std::string decode(const std::vector<int>& ids) const override {
    std::vector<int> valid;
    valid.reserve(ids.size());
    for (int id : ids) {
      if (id >= 0 && id < sp_.GetPieceSize()) valid.push_back(id);
    }
    std::string text;
    auto status = sp_.Decode(valid, &text);
    if (!status.ok()) throw RuntimeError("SentencePiece decode failed: " + status.ToString());
    return text;
  }
  int vocab_size() const override { return sp_.GetPieceSize(); }
  int bos_id() const override { return sp_.bos_id(); }
  int eos_id() const override { return sp_.eos_id(); }
  std::string kind() const override { return "sentencepiece"; }

 private:
  sentencepiece::SentencePieceProcessor sp_;
};

// Feeds the trainer from a callback, so texts stream from any source.
class CallbackIterator final : public sentencepiece::SentenceIterator {
 public:
  explicit CallbackIterator(const std::function<bool(std::string&)>& next) : next_(next) { Next(); }
  bool done() const override { return done_; }
  void Next() override { done_ = !next_(value_); }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::function<bool(std::string&)>& next_;
  std::string value_;
  bool done_ = false;
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& model_file) {
  return std::make_unique<SentencePieceTokenizer>(model_file);
}

void train_sentencepiece(const std::function<bool(std::string&)>& next, const std::string& out_dir,
                         const SentencePieceTrainOptions& o) {
  if (o.vocab_size < 16) throw InputError("vocabulary size must be at least 16, got " + std::to_string(o.vocab_size));
  if (o.model_type != "bpe" && o.model_type != "unigram") {
    throw InputError("model type must be bpe or unigram, got '" + o.model_type + "'");
  }
  if (::mkdir(out_dir.c_str(), 0777) != 0 && errno != EEXIST) {
    throw RuntimeError(out_dir + ": cannot create directory: " + std::strerror(errno));
  }
  std::string args = "--model_prefix=" + out_dir + "/tokenizer --vocab_size=" + std::to_string(o.vocab_size) +
                     " --model_type=" + o.model_type + " --character_coverage=" + std::to_string(o.character_coverage) +
                     " --input_sentence_size=" + std::to_string(o.max_sentences) + " --shuffle_input_sentence=true" +
                     " --num_threads=" + std::to_string(o.threads) +
                     " --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=3 --byte_fallback=true --split_digits=true" +
                     " --max_sentence_length=16384 --minloglevel=2" +
                     // a soft limit: a small corpus yields a smaller vocabulary instead of failing
                     " --hard_vocab_limit=false";
  CallbackIterator it(next);
  auto status = sentencepiece::SentencePieceTrainer::Train(args, &it);
  if (!status.ok()) {
    const std::string m = status.ToString();
    std::string hint;
    if (m.find("smaller than required") != std::string::npos) {
      hint = "\n  hint: raise the vocabulary size: byte fallback takes 256 pieces, plus every character seen";
    } else if (m.find("too high") != std::string::npos) {
      hint = "\n  hint: lower the vocabulary size, or train on more text";
    }
    throw InputError("SentencePiece training failed: " + m + hint);
  }
  // The trainer also writes tokenizer.vocab, a readable listing; keep it.
}

}  // namespace steper::text
