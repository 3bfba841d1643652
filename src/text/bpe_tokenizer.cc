// Hugging Face byte-level BPE (`tokenizer.json` with model.type "BPE"):
//   1. split off added tokens (special tokens written in the text);
//   2. pre-tokenize with the family's pattern (bpe_pretokenizer.cc);
//   3. map each byte to its printable stand-in (GPT-2's bytes_to_unicode);
//   4. merge adjacent symbols, lowest merge rank first, until none applies;
//   5. look the symbols up in the vocabulary.
// Decoding maps the stand-ins back to bytes.
#include <climits>
#include <fstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "bpe_pretokenizer.h"
#include "steper/text.h"
#include "unicode.h"

namespace steper::text {
namespace {

using json = nlohmann::json;

// GPT-2's reversible byte -> code point map: printable bytes stand for
// themselves, the rest are shifted past U+00FF so no piece holds a space or
// a control character.
struct ByteMap {
  char32_t to_cp[256];
  std::unordered_map<char32_t, unsigned char> to_byte;
  ByteMap() {
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      to_cp[b] = printable ? static_cast<char32_t>(b) : next++;
      to_byte[to_cp[b]] = static_cast<unsigned char>(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

struct AddedToken {
  std::string content;
  int id;
};

class BpeTokenizer final : public Tokenizer {
 public:
  BpeTokenizer(const json& j, const std::string& path) {
    const json& model = j.at("model");
    if (model.value("type", "") != "BPE") throw InputError(path + ": model.type is not \"BPE\"");
    for (const auto& [piece, id] : model.at("vocab").items()) {
      int i = id.get<int>();
      vocab_[piece] = i;
      if (static_cast<std::size_t>(i) >= pieces_.size()) pieces_.resize(static_cast<std::size_t>(i) + 1);
      pieces_[static_cast<std::size_t>(i)] = piece;
    }
    int rank = 0;
    for (const auto& m : model.at("merges")) {
      // "a b" (older files) or ["a", "b"] (newer ones)
      std::string a, b;
      if (m.is_string()) {
        const auto& s = m.get_ref<const std::string&>();
        auto sp = s.find(' ');
        if (sp == std::string::npos) throw InputError(path + ": merge '" + s + "' is not two pieces");
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else {
        a = m.at(0).get<std::string>();
        b = m.at(1).get<std::string>();
      }
      ranks_.emplace(a + '\x01' + b, rank++);
    }
    if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
      for (const auto& t : j["added_tokens"]) {
        AddedToken a{t.at("content").get<std::string>(), t.at("id").get<int>()};
        if (a.content.empty()) continue;
        if (static_cast<std::size_t>(a.id) >= pieces_.size()) pieces_.resize(static_cast<std::size_t>(a.id) + 1);
        pieces_[static_cast<std::size_t>(a.id)] = a.content;
        added_ids_.emplace(a.id, a.content);
        added_.push_back(std::move(a));
      }
    }
    pretokenizer_ = read_pretokenizer(j, path);
    for (const char* name : {"<|begin_of_text|>", "<s>", "<|endoftext|>", "<|im_start|>"}) {
      if (bos_ < 0) bos_ = find_added(name);
    }
    for (const char* name : {"<|end_of_text|>", "</s>", "<|endoftext|>", "<|im_end|>"}) {
      if (eos_ < 0) eos_ = find_added(name);
    }
  }

  std::vector<int> encode(const std::string& text) const override {
    std::vector<int> ids;
    std::size_t start = 0;
    while (start < text.size()) {
      // The next added token, earliest and then longest.
      std::size_t best_at = std::string::npos;
      const AddedToken* best = nullptr;
      for (const auto& a : added_) {
        std::size_t at = text.find(a.content, start);
        if (at < best_at || (at == best_at && at != std::string::npos && a.content.size() > best->content.size())) {
          best_at = at;
          best = &a;
        }
      }
      std::size_t end = best ? best_at : text.size();
      encode_plain(std::string_view(text).substr(start, end - start), ids);
      if (!best) break;
      ids.push_back(best->id);
      start = best_at + best->content.size();
    }
    return ids;
  }

  std::string decode(const std::vector<int>& ids) const override {
    std::string out;
    const ByteMap& bm = byte_map();
    for (int id : ids) {
      if (id < 0 || static_cast<std::size_t>(id) >= pieces_.size()) continue;
      if (auto it = added_ids_.find(id); it != added_ids_.end()) {
        out += it->second;
        continue;
      }
      for (char32_t cp : decode_utf8(pieces_[static_cast<std::size_t>(id)]).cps) {
        auto b = bm.to_byte.find(cp);
        if (b != bm.to_byte.end()) out.push_back(static_cast<char>(b->second));
      }
    }
    return out;
  }

  int vocab_size() const override { return static_cast<int>(pieces_.size()); }
  int bos_id() const override { return bos_; }
  int eos_id() const override { return eos_; }
  std::string kind() const override { return "bpe"; }

 private:
  static PreTokenizer read_pretokenizer(const json& j, const std::string& path) {
    const json& pt = j.at("pre_tokenizer");
    auto from = [&](const json& p) -> int {
      std::string type = p.value("type", "");
      if (type == "ByteLevel") return p.value("use_regex", true) ? static_cast<int>(PreTokenizer::gpt2) : -1;
      if (type == "Split") return static_cast<int>(pretokenizer_from_pattern(p.at("pattern").value("Regex", "")));
      throw InputError(path + ": unsupported pre_tokenizer type '" + type + "'");
    };
    if (pt.value("type", "") == "Sequence") {
      for (const auto& p : pt.at("pretokenizers")) {
        int k = from(p);
        if (k >= 0) return static_cast<PreTokenizer>(k);
      }
      throw InputError(path + ": pre_tokenizer sequence has no splitting pattern");
    }
    int k = from(pt);
    if (k < 0) throw InputError(path + ": ByteLevel pre_tokenizer without a pattern");
    return static_cast<PreTokenizer>(k);
  }

  int find_added(const char* content) const {
    for (const auto& a : added_) {
      if (a.content == content) return a.id;
    }
    return -1;
  }

  void encode_plain(std::string_view text, std::vector<int>& ids) const {
    const ByteMap& bm = byte_map();
    std::vector<std::string> symbols;
    for (std::string_view piece : pretokenize(text, pretokenizer_)) {
      symbols.clear();
      for (unsigned char b : piece) {
        std::string s;
        append_utf8(s, bm.to_cp[b]);
        symbols.push_back(std::move(s));
      }
      merge(symbols);
      for (const auto& s : symbols) {
        auto it = vocab_.find(s);
        if (it != vocab_.end()) ids.push_back(it->second);
        // A byte-level vocabulary holds every single byte; a symbol missing
        // from it means a broken file, already refused at load by check().
      }
    }
  }

  void merge(std::vector<std::string>& symbols) const {
    std::string key;
    while (symbols.size() > 1) {
      int best = INT_MAX;
      std::size_t at = 0;
      for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
        key.assign(symbols[i]).push_back('\x01');
        key += symbols[i + 1];
        auto it = ranks_.find(key);
        if (it != ranks_.end() && it->second < best) {
          best = it->second;
          at = i;
        }
      }
      if (best == INT_MAX) break;
      symbols[at] += symbols[at + 1];
      symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(at) + 1);
    }
  }

 public:
  // Every byte's stand-in must be in the vocabulary, or text would be lost.
  void check(const std::string& path) const {
    const ByteMap& bm = byte_map();
    for (int b = 0; b < 256; ++b) {
      std::string s;
      append_utf8(s, bm.to_cp[b]);
      if (!vocab_.count(s)) throw InputError(path + ": vocabulary lacks byte " + std::to_string(b) + "; not a byte-level BPE");
    }
  }

 private:
  std::unordered_map<std::string, int> vocab_;
  std::vector<std::string> pieces_;
  std::unordered_map<std::string, int> ranks_;
  std::vector<AddedToken> added_;
  std::unordered_map<int, std::string> added_ids_;
  PreTokenizer pretokenizer_ = PreTokenizer::gpt2;
  int bos_ = -1, eos_ = -1;
};

}  // namespace

std::unique_ptr<Tokenizer> load_bpe_tokenizer(const std::string& tokenizer_json) {
  std::ifstream in(tokenizer_json);
  if (!in) throw InputError(tokenizer_json + ": cannot open");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw InputError(tokenizer_json + ": not valid JSON: " + e.what());
  }
  try {
    auto t = std::make_unique<BpeTokenizer>(j, tokenizer_json);
    t->check(tokenizer_json);
    return t;
  } catch (const json::exception& e) {
    throw InputError(tokenizer_json + ": not a tokenizer.json of a BPE model: " + e.what());
  }
}

}  // namespace steper::text
