// steper tokenizer train|encode: SentencePiece training on a JSONL of texts,
// and a look at how any tokenizer splits a text.
#include <cstdio>

#include "commands.h"
#include "progress.h"
#include "steper/data.h"
#include "steper/text.h"

namespace steper::cli {
namespace {

struct TrainArgs {
  std::string corpus, out, field = "text";
  text::SentencePieceTrainOptions options;
};

struct EncodeArgs {
  std::string tokenizer, text;
};

void run_train(const TrainArgs& a, const Global& g) {
  TextReader texts(a.corpus, a.field);
  Progress progress("read", "texts", !g.quiet);
  auto next = [&](std::string& out) {
    if (!texts.next(out)) return false;
    progress.update(texts.count(), texts.fraction());
    return true;
  };
  text::train_sentencepiece(next, a.out, a.options);
  const std::uint64_t n = texts.count();
  progress.finish(n);
  auto tok = text::load_tokenizer(a.out);
  std::printf("trained a %s tokenizer of %d pieces on %llu texts: %s/tokenizer.model\n", a.options.model_type.c_str(),
              tok->vocab_size(), static_cast<unsigned long long>(n), a.out.c_str());
}

void run_encode(const EncodeArgs& a) {
  auto tok = text::load_tokenizer(a.tokenizer);
  std::vector<int> ids = tok->encode(a.text);
  std::printf("%zu tokens:", ids.size());
  for (int id : ids) std::printf(" %d", id);
  std::printf("\n");
  for (int id : ids) std::printf("[%s]", tok->decode({id}).c_str());
  std::printf("\n");
}

}  // namespace

void add_tokenizer_command(CLI::App& app, const Global& global) {
  CLI::App* cmd = app.add_subcommand("tokenizer", "Train a SentencePiece tokenizer, or show how one splits a text.");
  cmd->require_subcommand(1);

  auto train = std::make_shared<TrainArgs>();
  CLI::App* t = cmd->add_subcommand(
      "train",
      "Train a SentencePiece tokenizer on the texts of a JSONL file (a corpus.jsonl works) and write\n"
      "OUT/tokenizer.model. Byte fallback keeps any text encodable; digits are split one by one.");
  t->add_option("--corpus", train->corpus, "JSONL of texts")->required();
  t->add_option("--field", train->field, "Field holding each text");
  t->add_option("--vocab-size", train->options.vocab_size, "Pieces at most (fewer if the text cannot fill them)")
      ->check(CLI::Range(16, 1 << 20));
  t->add_option("--model-type", train->options.model_type, "bpe or unigram")->check(CLI::IsMember({"bpe", "unigram"}));
  t->add_option("--max-texts", train->options.max_sentences, "Texts sampled for training at most");
  t->add_option("--out", train->out, "Output folder")->required();
  t->callback([train, &global] { run_train(*train, global); });

  auto encode = std::make_shared<EncodeArgs>();
  CLI::App* e = cmd->add_subcommand("encode", "Print the token ids and pieces of a text.");
  e->add_option("--tokenizer", encode->tokenizer, "Folder or file: tokenizer.json or tokenizer.model")->required();
  e->add_option("text", encode->text, "Text to encode")->required();
  e->callback([encode] { run_encode(*encode); });
}

}  // namespace steper::cli
