// Hugging Face byte-level BPE (`tokenizer.json` with model.type "BPE"):
//   1. split off added tokens (special tokens written in the text), leftmost
//      first and then longest, as Hugging Face's Aho-Corasick match does,
//      honouring each token's lstrip / rstrip / single_word;
//   2. normalise the rest (the normalizer: NFC for Qwen, none for Llama-3);
//   3. pre-tokenize with the family's pattern (bpe_pretokenizer.cc);
//   4. map each byte to its printable stand-in (GPT-2's bytes_to_unicode);
//   5. a piece that is itself in the vocabulary is one token when the model
//      sets ignore_merges (Llama-3); otherwise merge adjacent symbols, lowest
//      merge rank first (the leftmost among equals), until none applies;
//   6. look the symbols up in the vocabulary.
// Decoding maps the stand-ins back to bytes. Long texts go through steps
// 2-6 a window at a time (text_chunks.h).
//
// Added tokens are matched in the text before normalisation, also those
// marked "normalized": the two differ only for a token that normalisation
// itself would create, which no tokenizer steper knows has.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <fstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "bpe_pretokenizer.h"
#include "text_chunks.h"
#include "steper/io.h"
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
  bool lstrip = false, rstrip = false, single_word = false;
};

bool is_blank_byte(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
// A byte that belongs to a word, for single_word tokens (any non-ASCII byte
// counts: letters of other scripts are word characters too).
bool is_word_byte(char c) {
  auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

NormalForm read_normalizer(const json& j, const std::string& path) {
  if (!j.contains("normalizer") || j["normalizer"].is_null()) return NormalForm::none;
  NormalForm form = NormalForm::none;
  auto one = [&](const json& n) {
    const std::string type = n.value("type", "");
    NormalForm f = type == "NFC" ? NormalForm::nfc : type == "NFD" ? NormalForm::nfd : type == "NFKC" ? NormalForm::nfkc
                 : type == "NFKD" ? NormalForm::nfkd : NormalForm::none;
    if (f == NormalForm::none) {
      throw InputError(path + ": field 'normalizer': type '" + type + "' is not supported (steper implements NFC, NFD, NFKC and NFKD)");
    }
    if (form != NormalForm::none && form != f) throw InputError(path + ": field 'normalizer': two different normal forms in a sequence");
    form = f;
  };
  const json& n = j["normalizer"];
  if (n.value("type", "") == "Sequence") {
    for (const auto& x : n.at("normalizers")) one(x);
  } else {
    one(n);
  }
  return form;
}

// A token id read from the file: an integer from 0 to 2^24 (the largest
// vocabulary steper's models hold). A float id once reached a cast to int
// that UBSan flagged (tokenizer_json_fuzz); a huge one would size the
// vocabulary to billions of pieces.
int token_id_in(const json& v, const std::string& path, const std::string& what) {
  constexpr std::int64_t kMaxId = 1 << 24;
  if (!v.is_number_integer() || (v.is_number_unsigned() ? v.get<std::uint64_t>() > static_cast<std::uint64_t>(kMaxId)
                                                         : (v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > kMaxId))) {
    throw InputError(path + ": " + what + ": the id " + v.dump() + " is not an integer from 0 to " + std::to_string(kMaxId));
  }
  return static_cast<int>(v.get<std::int64_t>());
}

class BpeTokenizer final : public Tokenizer {
 public:
  BpeTokenizer(const json& j, const std::string& path) {
    const json& model = j.at("model");
    if (model.value("type", "") != "BPE") throw InputError(path + ": model.type is not \"BPE\"");
    for (const auto& [piece, id] : model.at("vocab").items()) {
      const int i = token_id_in(id, path, "model.vocab['" + piece + "']");
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
    ignore_merges_ = model.value("ignore_merges", false);
    normal_form_ = read_normalizer(j, path);
    if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
      for (const auto& t : j["added_tokens"]) {
        AddedToken a{t.at("content").get<std::string>(), 0, t.value("lstrip", false), t.value("rstrip", false),
                     t.value("single_word", false)};
        if (a.content.empty()) continue;
        a.id = token_id_in(t.at("id"), path, "added token '" + a.content + "'");
        if (static_cast<std::size_t>(a.id) >= pieces_.size()) pieces_.resize(static_cast<std::size_t>(a.id) + 1);
        pieces_[static_cast<std::size_t>(a.id)] = a.content;
        added_ids_.emplace(a.id, a.content);
        added_.push_back(std::move(a));
      }
    }
    // Candidates by first byte, longest first: the scan for added tokens
    // then looks only where one can start.
    for (std::size_t k = 0; k < added_.size(); ++k) by_first_byte_[static_cast<unsigned char>(added_[k].content[0])].push_back(k);
    for (auto& list : by_first_byte_) {
      std::stable_sort(list.begin(), list.end(), [&](std::size_t a, std::size_t b) { return added_[a].content.size() > added_[b].content.size(); });
    }
    pretokenizer_ = read_pretokenizer(j, path);
    for (const char* name : {"<|begin_of_text|>", "<s>", "<|endoftext|>", "<|im_start|>"}) {
      if (bos_ < 0) bos_ = find_added(name);
    }
    for (const char* name : {"<|end_of_text|>", "</s>", "<|endoftext|>", "<|im_end|>"}) {
      if (eos_ < 0) eos_ = find_added(name);
    }
    read_post_processor(j);
  }

  // tokenizer_config.json beside tokenizer.json: what the model's authors
  // say BOS and EOS are, and whether BOS is added.
  void read_config(const json& c, const std::string& path) {
    if (!c.is_object()) throw InputError(path + ": expected a JSON object");
    auto token = [&](const char* field) -> int {
      if (!c.contains(field) || c[field].is_null()) return -2;  // not said
      const json& t = c[field].is_object() ? c[field].value("content", json()) : c[field];
      if (!t.is_string()) throw InputError(path + ": field '" + field + "': expected a string or {\"content\": ...}");
      int id = token_id(t.get<std::string>());
      if (id < 0) throw InputError(path + ": field '" + field + "': '" + t.get<std::string>() + "' is not in the vocabulary");
      return id;
    };
    if (c.contains("bos_token")) bos_ = c["bos_token"].is_null() ? -1 : token("bos_token");
    if (c.contains("eos_token")) eos_ = c["eos_token"].is_null() ? -1 : token("eos_token");
    if (c.contains("add_bos_token") && !c["add_bos_token"].is_null()) {
      if (!c["add_bos_token"].is_boolean()) throw InputError(path + ": field 'add_bos_token': expected true or false");
      add_bos_ = c["add_bos_token"].get<bool>() && bos_ >= 0;
    }
  }

  std::vector<int> encode(const std::string& text) const override {
    std::vector<int> ids;
    std::size_t start = 0;
    while (start < text.size()) {
      Match m = next_added(text, start);
      std::size_t end = m.token ? m.begin : text.size();
      encode_plain(std::string_view(text).substr(start, end - start), ids);
      if (!m.token) break;
      ids.push_back(m.token->id);
      start = m.end;
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
  std::string token_text(int id) const override {
    return id >= 0 && static_cast<std::size_t>(id) < pieces_.size() ? pieces_[static_cast<std::size_t>(id)] : std::string();
  }
  int pad_id() const override {
    for (const char* name : {"<pad>", "<|pad|>", "[PAD]", "<|finetune_right_pad_id|>"}) {
      if (int id = find_added(name); id >= 0) return id;
    }
    return -1;
  }
  int bos_id() const override { return bos_; }
  int eos_id() const override { return eos_; }
  bool add_bos() const override { return add_bos_; }
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

  struct Match {
    const AddedToken* token = nullptr;
    std::size_t begin = 0, end = 0;  // the text the token replaces, its stripped blanks included
  };

  // The next added token at or after `from`: the leftmost, then the longest.
  Match next_added(const std::string& text, std::size_t from) const {
    for (std::size_t at = from; at < text.size(); ++at) {
      const auto& candidates = by_first_byte_[static_cast<unsigned char>(text[at])];
      for (std::size_t k : candidates) {
        const AddedToken& a = added_[k];
        if (text.compare(at, a.content.size(), a.content) != 0) continue;
        std::size_t end = at + a.content.size();
        if (a.single_word && ((at > 0 && is_word_byte(text[at - 1])) || (end < text.size() && is_word_byte(text[end])))) continue;
        Match m{&a, at, end};
        if (a.lstrip) {
          while (m.begin > from && is_blank_byte(text[m.begin - 1])) --m.begin;
        }
        if (a.rstrip) {
          while (m.end < text.size() && is_blank_byte(text[m.end])) ++m.end;
        }
        return m;
      }
    }
    return {};
  }

  // A TemplateProcessing post-processor whose single-sequence template starts
  // with a special token adds that token as BOS (Llama-3's does).
  void read_post_processor(const json& j) {
    if (!j.contains("post_processor") || !j["post_processor"].is_object()) return;
    const json& pp = j["post_processor"];
    std::vector<json> procs;
    if (pp.value("type", "") == "Sequence" && pp.contains("processors")) {
      for (const auto& p : pp["processors"]) procs.push_back(p);
    } else {
      procs.push_back(pp);
    }
    for (const auto& p : procs) {
      if (p.value("type", "") != "TemplateProcessing" || !p.contains("single") || !p["single"].is_array() || p["single"].empty()) continue;
      const json& first = p["single"][0];
      if (!first.contains("SpecialToken")) continue;
      int id = token_id(first["SpecialToken"].value("id", ""));
      if (id >= 0) {
        bos_ = id;
        add_bos_ = true;
      }
    }
  }

  int token_id(const std::string& content) const {
    for (const auto& a : added_) {
      if (a.content == content) return a.id;
    }
    auto it = vocab_.find(content);
    return it == vocab_.end() ? -1 : it->second;
  }

  int find_added(const char* content) const {
    for (const auto& a : added_) {
      if (a.content == content) return a.id;
    }
    return -1;
  }

  // A merge candidate: the pair that starts at symbol `at`, its rank, and
  // where its two symbols ended when it was pushed; a pair that has changed
  // since (either symbol grew, or `at` was merged away) is skipped.
  struct Candidate {
    int rank, at;
    std::uint32_t mid, end;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : at > o.at; }
  };
  // A symbol: a span of the piece's stand-in text, linked to its neighbours.
  // A merged-away symbol is left empty.
  struct Symbol {
    std::uint32_t begin, end;
    int prev, next;
  };
  struct Scratch {
    std::string word, key;
    std::vector<Symbol> symbols;
    std::vector<Candidate> heap;
    // The tokens of short pieces already seen in this text: words repeat,
    // and a lookup is cheaper than merging again. Bounded.
    std::unordered_map<std::string, std::vector<int>> seen;
  };
  static constexpr std::size_t kSeenPieces = 1 << 15, kSeenPieceBytes = 64;

  void encode_plain(std::string_view raw, std::vector<int>& ids) const {
    Scratch scratch;
    for (std::size_t from = 0; from < raw.size();) {
      const std::size_t end = window_end(raw, from, false);
      encode_window(raw.substr(from, end - from), ids, scratch);
      from = end;
    }
  }

  void encode_window(std::string_view raw, std::vector<int>& ids, Scratch& scratch) const {
    const ByteMap& bm = byte_map();
    const std::string text = normalize_unicode(raw, normal_form_);
    std::string& word = scratch.word;
    for (std::string_view piece : pretokenize(text, pretokenizer_)) {
      const bool cacheable = piece.size() <= kSeenPieceBytes;
      if (cacheable) {
        if (auto it = scratch.seen.find(std::string(piece)); it != scratch.seen.end()) {
          ids.insert(ids.end(), it->second.begin(), it->second.end());
          continue;
        }
      }
      const std::size_t first = ids.size();
      word.clear();
      for (unsigned char b : piece) append_utf8(word, bm.to_cp[b]);
      auto whole = ignore_merges_ ? vocab_.find(word) : vocab_.end();
      if (whole != vocab_.end()) {
        ids.push_back(whole->second);
      } else {
        merge(scratch);
        for (int i = 0; i >= 0; i = scratch.symbols[static_cast<std::size_t>(i)].next) {
          const Symbol& sym = scratch.symbols[static_cast<std::size_t>(i)];
          auto it = vocab_.find(word.substr(sym.begin, sym.end - sym.begin));
          if (it != vocab_.end()) ids.push_back(it->second);
          // A byte-level vocabulary holds every single byte; a symbol missing
          // from it means a broken file, already refused at load by check().
        }
      }
      if (cacheable && scratch.seen.size() < kSeenPieces) scratch.seen.emplace(piece, std::vector<int>(ids.begin() + static_cast<std::ptrdiff_t>(first), ids.end()));
    }
  }

  // Merges the symbols of scratch.word, one per character to begin with,
  // through a heap of candidate pairs, so that a long piece costs n log n:
  // rescanning every pair after each merge took 4.7 s for a 20 KB word.
  void merge(Scratch& s) const {
    const std::string& word = s.word;
    std::vector<Symbol>& sym = s.symbols;
    sym.clear();
    for (std::size_t i = 0; i < word.size();) {
      const unsigned char lead = static_cast<unsigned char>(word[i]);
      const std::size_t n = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
      const int k = static_cast<int>(sym.size());
      sym.push_back({static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(std::min(i + n, word.size())), k - 1, k + 1});
      i += n;
    }
    sym.back().next = -1;
    auto rank = [&](int a) {
      const Symbol& l = sym[static_cast<std::size_t>(a)];
      if (l.next < 0) return INT_MAX;
      const Symbol& r = sym[static_cast<std::size_t>(l.next)];
      s.key.assign(word, l.begin, l.end - l.begin).push_back('\x01');
      s.key.append(word, r.begin, r.end - r.begin);
      auto it = ranks_.find(s.key);
      return it == ranks_.end() ? INT_MAX : it->second;
    };
    std::vector<Candidate>& heap = s.heap;
    heap.clear();
    auto push = [&](int a) {
      if (const int r = rank(a); r != INT_MAX) {
        const Symbol& l = sym[static_cast<std::size_t>(a)];
        heap.push_back({r, a, l.end, sym[static_cast<std::size_t>(l.next)].end});
        std::push_heap(heap.begin(), heap.end(), std::greater<>());
      }
    };
    for (int i = 0; i + 1 < static_cast<int>(sym.size()); ++i) push(i);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<>());
      const Candidate c = heap.back();
      heap.pop_back();
      Symbol& a = sym[static_cast<std::size_t>(c.at)];
      if (a.begin == a.end || a.end != c.mid || a.next < 0 || sym[static_cast<std::size_t>(a.next)].end != c.end) continue;
      Symbol& b = sym[static_cast<std::size_t>(a.next)];
      a.end = b.end;
      a.next = b.next;
      if (b.next >= 0) sym[static_cast<std::size_t>(b.next)].prev = c.at;
      b.begin = b.end;
      if (a.prev >= 0) push(a.prev);
      push(c.at);
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
  std::vector<std::size_t> by_first_byte_[256];
  PreTokenizer pretokenizer_ = PreTokenizer::gpt2;
  NormalForm normal_form_ = NormalForm::none;
  bool ignore_merges_ = false;
  bool add_bos_ = false;
  int bos_ = -1, eos_ = -1;
};

}  // namespace

std::unique_ptr<Tokenizer> load_bpe_tokenizer(const std::string& tokenizer_json) {
  const json j = io::read_json(tokenizer_json);
  try {
    auto t = std::make_unique<BpeTokenizer>(j, tokenizer_json);
    t->check(tokenizer_json);
    const std::string config = (std::filesystem::path(tokenizer_json).parent_path() / "tokenizer_config.json").string();
    if (std::ifstream c{config}) {
      json cj;
      try {
        cj = json::parse(c);
      } catch (const json::exception& e) {
        throw InputError(config + ": not valid JSON: " + e.what());
      }
      t->read_config(cj, config);
    }
    return t;
  } catch (const json::exception& e) {
    throw InputError(tokenizer_json + ": not a tokenizer.json of a BPE model: " + e.what());
  }
}

}  // namespace steper::text
