// The files beside config.json and the weights that make a model folder a
// complete Hugging Face folder: generation_config.json,
// tokenizer_config.json and special_tokens_map.json. Where the tokenizer
// came from has them (a real model's folder), they are copied: its chat
// template and sampling defaults carry over. Otherwise they are written
// from the tokenizer and the config.
#include <filesystem>

#include <nlohmann/json.hpp>

#include "steper/io.h"
#include "steper/model.h"

namespace steper::model {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

json id_or_list(const std::vector<int>& ids, int first) {
  if (ids.size() > 1) return json(ids);
  return first >= 0 ? json(first) : json(nullptr);
}

// Copies `name` from `from` into `dir`; false when `from` has none.
bool copy_beside(const fs::path& from, const std::string& dir, const char* name) {
  const fs::path src = from / name, dst = fs::path(dir) / name;
  if (from.empty() || !fs::is_regular_file(src)) return false;
  std::error_code ec;
  if (fs::equivalent(src, dst, ec)) return true;
  fs::copy_file(src, dst, fs::copy_options::overwrite_existing, ec);
  if (ec) throw RuntimeError("cannot copy " + src.string() + " into " + dir + ": " + ec.message());
  return true;
}

void write(const std::string& path, const json& value) { io::write_atomic(path, value.dump(2) + "\n"); }

}  // namespace

void write_hf_files(const std::string& dir, const ModelConfig& config, const std::string& tokenizer_file, const text::Tokenizer* tok) {
  const fs::path from = tokenizer_file.empty() ? fs::path() : fs::path(tokenizer_file).parent_path();
  if (!copy_beside(from, dir, "generation_config.json")) {
    json g{{"_from_model_config", true},
           {"bos_token_id", config.bos_token_id >= 0 ? json(config.bos_token_id) : json(nullptr)},
           {"eos_token_id", id_or_list(config.eos_token_ids, config.eos_token_id)}};
    if (config.pad_token_id >= 0) g["pad_token_id"] = config.pad_token_id;
    write(dir + "/generation_config.json", g);
  }
  if (tokenizer_file.empty() || !tok) return;
  const bool has_config = copy_beside(from, dir, "tokenizer_config.json");
  const bool has_map = copy_beside(from, dir, "special_tokens_map.json");
  if (has_config && has_map) return;
  const bool spm = tok->kind() == "sentencepiece";
  json special = json::object();
  auto name = [&](const char* key, int id) {
    if (id >= 0) special[key] = tok->token_text(id);
  };
  name("bos_token", tok->bos_id());
  name("eos_token", tok->eos_id());
  if (spm && tok->token_text(0) == "<unk>") special["unk_token"] = "<unk>";
  name("pad_token", tok->pad_id());
  if (!has_map) write(dir + "/special_tokens_map.json", special);
  if (!has_config) {
    json c{{"tokenizer_class", spm ? "LlamaTokenizer" : "PreTrainedTokenizerFast"},
           {"add_bos_token", tok->add_bos()},
           {"add_eos_token", false},
           {"clean_up_tokenization_spaces", false},
           {"model_max_length", config.max_position_embeddings}};
    if (spm) c["legacy"] = false;
    for (const auto& [key, value] : special.items()) c[key] = value;
    if (!c.contains("pad_token")) c["pad_token"] = nullptr;
    write(dir + "/tokenizer_config.json", c);
  }
}

}  // namespace steper::model
