// steper/text.h — tokenizers behind one interface.
//
//   * SentencePiece (`tokenizer.model`): what steper's own small models use;
//     train_sentencepiece() makes one from a corpus.
//   * Hugging Face byte-level BPE (`tokenizer.json`): GPT-2, Llama-3 and
//     Qwen2 style, so that real checkpoints can be used. The pre-tokenizer
//     patterns of those three families are built in (see bpe_pretokenizer.cc).
//
// And chat templates: a model's Jinja `chat_template` rendered exactly as
// Hugging Face transformers renders it (ChatTemplate).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "steper/error.h"

namespace steper::text {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Text to token ids. Adds no BOS/EOS: callers add what their layout needs.
  // Special tokens written in the text (e.g. "<|endoftext|>") become their ids.
  virtual std::vector<int> encode(const std::string& text) const = 0;
  // Ids back to text; decode(encode(s)) == s for any valid UTF-8 s, in the
  // normal form of the tokenizer's normalizer when it has one (Qwen: NFC).
  virtual std::string decode(const std::vector<int>& ids) const = 0;
  virtual int vocab_size() const = 0;
  // BOS and EOS: tokenizer_config.json's bos_token / eos_token when the
  // folder has one, else the family's usual names. -1 when there is none.
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
  // The one BOS rule, for training and inference alike: whether a plain
  // prompt (no chat template) starts with BOS, as Hugging Face encodes with
  // special tokens. tokenizer_config.json's add_bos_token when set, else
  // tokenizer.json's post-processor (Llama-3's template adds
  // <|begin_of_text|>; GPT-2's and Qwen's add nothing); SentencePiece: yes.
  // A prompt rendered through a chat template never gets one added: the
  // template writes it.
  virtual bool add_bos() const = 0;
  // "sentencepiece" or "bpe".
  virtual std::string kind() const = 0;
  // A token as the tokenizer's own files write it ("<s>", "Ġthe", "▁the"):
  // what tokenizer_config.json names special tokens by. "" outside the
  // vocabulary. Default: its decoded text.
  virtual std::string token_text(int id) const { return decode({id}); }
  // The padding token, -1 when there is none: SentencePiece's pad piece;
  // in a tokenizer.json an added token named like one (<pad>, <|pad|>,
  // [PAD], Llama-3.1's <|finetune_right_pad_id|>). Default: none
  virtual int pad_id() const { return -1; }
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

namespace jinja {
class Template;
}

// What apply_chat_template takes besides the messages.
struct ChatOptions {
  // End with the header of a new assistant turn, for the model to write it.
  // Default: false
  bool add_generation_prompt = false;
  // Stop right after the final (assistant) message's stripped content, with
  // no end-of-turn, so that the model continues that message. Excludes
  // add_generation_prompt. Default: false
  bool continue_final_message = false;
  // More template variables (tools, documents, enable_thinking, ...).
  nlohmann::ordered_json variables = nlohmann::ordered_json::object();
};

// A Hugging Face chat template: Jinja, rendered the way transformers'
// apply_chat_template renders it (jinja2 with trim_blocks, lstrip_blocks and
// loop controls; the tokenizer's special tokens as variables; tools and
// documents none; raise_exception and strftime_now as functions). A
// construct steper does not implement is refused when the template is
// loaded, naming it and its line.
class ChatTemplate {
 public:
  // `special_tokens`: the template variables bos_token, eos_token, ... as
  // tokenizer_config.json gives them. `name` starts every error message.
  ChatTemplate(const std::string& source, const nlohmann::ordered_json& special_tokens = nlohmann::ordered_json::object(),
               std::string name = "chat template");
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // `messages`: [{"role", "content"}, ...]; content may also be a list of
  // parts ({"type": "text", "text": ...}). Throws InputError on messages the
  // template or the options cannot take.
  std::string render(const nlohmann::ordered_json& messages, const ChatOptions& options = {}) const;
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::unique_ptr<jinja::Template> template_;
  nlohmann::ordered_json special_tokens_;
  std::string name_;
};

// The chat template at `path`: a model or tokenizer folder (its
// chat_template.jinja, else tokenizer_config.json's `chat_template`: a
// string, or a list of named ones, "default" used), a tokenizer_config.json,
// or a Jinja file. `override_file`, when given, replaces the template's
// text. Special tokens (bos_token, ...) come from the tokenizer_config.json
// of the folder, or beside the file. Throws InputError naming the file when
// there is no template or it is malformed.
ChatTemplate load_chat_template(const std::string& path, const std::string& override_file = "");
// True when load_chat_template(dir) would find a template.
bool has_chat_template(const std::string& dir);

// The official HotpotQA / SQuAD answer normalisation: lower-case, drop ASCII
// punctuation, drop the articles a/an/the, collapse white space
// (answer_normalization.cc writes the rules out).
std::string normalize_answer(const std::string& text);

// The one definition of a correct answer, used by the metrics, the runner's
// running EM and the filter of teacher traces. exact: the normalised
// prediction equals the normalised gold (EM). contained: the normalised gold
// is inside the normalised prediction, as Python's `gold in prediction`
// (Acc; an empty gold is inside everything).
enum class AnswerMatch { exact, contained };
bool answer_matches(const std::string& prediction, const std::string& gold, AnswerMatch match);
// Whether any gold answer matches.
bool answers_correctly(const std::string& prediction, const std::vector<std::string>& golds, AnswerMatch match);

}  // namespace steper::text
