// steper tokenizer train|encode|chat: SentencePiece training on a JSONL of
// texts, how any tokenizer splits a text (or a file of them), and how a
// model's chat template renders conversations.
#include <cstdio>
#include <fstream>
#include <iostream>

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
  std::string tokenizer, text, jsonl;
};

struct ChatArgs {
  std::string tokenizer, jsonl, chat_template;
};

using ordered_json = nlohmann::ordered_json;

// Calls `each` with every non-blank line of a JSONL file (or stdin for "-")
// parsed in key order, and "PATH:LINE" for messages.
template <class F>
void for_each_jsonl(const std::string& path, F each) {
  std::ifstream file;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) throw InputError(path + ": cannot open");
  }
  std::istream& in = path == "-" ? std::cin : file;
  std::string line;
  for (std::uint64_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (n == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    ordered_json j;
    try {
      j = ordered_json::parse(line);
    } catch (const ordered_json::exception& e) {
      throw InputError(where + ": not valid JSON: " + e.what());
    }
    if (!j.is_object()) throw InputError(where + ": expected a JSON object");
    each(j, where);
  }
}

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
  if (!a.jsonl.empty()) {
    for_each_jsonl(a.jsonl, [&](const ordered_json& j, const std::string& where) {
      if (!j.contains("text") || !j["text"].is_string()) throw InputError(where + ": field 'text': expected a string");
      const std::string& t = j["text"].get_ref<const std::string&>();
      std::fputs(ordered_json{{"text", t}, {"ids", tok->encode(t)}}.dump(-1, ' ', false, ordered_json::error_handler_t::replace).c_str(), stdout);
      std::fputc('\n', stdout);
    });
    return;
  }
  std::vector<int> ids = tok->encode(a.text);
  std::printf("%zu tokens:", ids.size());
  for (int id : ids) std::printf(" %d", id);
  std::printf("\n");
  for (int id : ids) std::printf("[%s]", tok->decode({id}).c_str());
  std::printf("\n");
}

void run_chat(const ChatArgs& a) {
  text::ChatTemplate t = text::load_chat_template(a.tokenizer, a.chat_template);
  for_each_jsonl(a.jsonl, [&](const ordered_json& j, const std::string& where) {
    if (!j.contains("messages") || !j["messages"].is_array()) throw InputError(where + ": field 'messages': expected a list");
    text::ChatOptions o;
    for (const char* flag : {"add_generation_prompt", "continue_final_message"}) {
      if (j.contains(flag) && !j[flag].is_boolean()) throw InputError(where + ": field '" + flag + "': expected true or false");
    }
    o.add_generation_prompt = j.value("add_generation_prompt", false);
    o.continue_final_message = j.value("continue_final_message", false);
    if (j.contains("variables")) {
      if (!j["variables"].is_object()) throw InputError(where + ": field 'variables': expected an object");
      o.variables = j["variables"];
    }
    std::string rendered;
    try {
      rendered = t.render(j["messages"], o);
    } catch (const InputError& e) {
      throw InputError(where + ": " + e.what());
    }
    std::fputs(ordered_json{{"rendered", rendered}}.dump(-1, ' ', false, ordered_json::error_handler_t::replace).c_str(), stdout);
    std::fputc('\n', stdout);
  });
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
      ->check(in_range(16, 1 << 20));
  t->add_option("--model-type", train->options.model_type, "bpe or unigram")->check(CLI::IsMember({"bpe", "unigram"}));
  t->add_option("--max-texts", train->options.max_sentences, "Texts sampled for training at most");
  t->add_option("--out", train->out, "Output folder")->required();
  t->callback([train, &global] { run_train(*train, global); });

  auto encode = std::make_shared<EncodeArgs>();
  CLI::App* e = cmd->add_subcommand(
      "encode",
      "Print the token ids and pieces of a text, or with --jsonl encode every {\"text\"} line of a file and\n"
      "write {\"text\", \"ids\"} lines on stdout. No BOS or EOS is added; special tokens written in the text\n"
      "become their ids, as Hugging Face's tokenizers do by default.");
  e->add_option("--tokenizer", encode->tokenizer, "Folder or file: tokenizer.json or tokenizer.model")->required();
  auto* text_opt = e->add_option("text", encode->text, "Text to encode");
  auto* jsonl_opt = e->add_option("--jsonl", encode->jsonl, "JSONL of {\"text\"} records to encode (- for stdin)");
  text_opt->excludes(jsonl_opt);
  e->callback([encode] {
    if (encode->jsonl.empty() && encode->text.empty()) throw InputError("tokenizer encode: give a text or --jsonl FILE");
    run_encode(*encode);
  });

  auto chat = std::make_shared<ChatArgs>();
  CLI::App* c = cmd->add_subcommand(
      "chat",
      "Render conversations through a model's chat template, as Hugging Face's apply_chat_template does.\n"
      "Each input line is {\"messages\": [{\"role\", \"content\"}, ...], \"add_generation_prompt\"?: bool,\n"
      "\"continue_final_message\"?: bool, \"variables\"?: {...}}; each output line is {\"rendered\": \"...\"}.\n"
      "The template comes from --chat-template, else DIR/chat_template.jinja, else DIR/tokenizer_config.json.");
  c->add_option("--tokenizer", chat->tokenizer, "Model or tokenizer folder (tokenizer_config.json)")->required();
  c->add_option("--jsonl", chat->jsonl, "JSONL of conversations (- for stdin)")->required();
  c->add_option("--chat-template", chat->chat_template, "A Jinja file to use instead of the folder's template");
  c->callback([chat] { run_chat(*chat); });
}

}  // namespace steper::cli
