// Pools the paragraphs of many questions into one corpus: a paragraph with
// the same title and text as an earlier one gets the earlier one's id.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "steper/data.h"

namespace steper::data {

class DatasetBuilder {
 public:
  // Ids are "<id_prefix>-<n>", n counting from 0 in order of first appearance.
  // Both files appear at commit(), whole; without it, neither does.
  DatasetBuilder(const std::string& questions_path, const std::string& corpus_path, std::string id_prefix);
  void commit() {
    corpus_.commit();
    questions_.commit();
  }

  // Adds the record's paragraphs to the corpus (once each), fills the
  // question's supporting_ids and writes it.
  void add(ConvertedRecord record);

  std::uint64_t questions() const { return questions_.written(); }
  std::uint64_t passages() const { return corpus_.written(); }
  std::uint64_t paragraphs_seen() const { return paragraphs_seen_; }

 private:
  // 128 bits of two independent hashes: collisions are out of reach at
  // benchmark scale (millions of paragraphs) without keeping the texts.
  struct Key {
    std::uint64_t a, b;
    bool operator==(const Key& o) const { return a == o.a && b == o.b; }
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const { return static_cast<std::size_t>(k.a ^ (k.b * 0x9E3779B97F4A7C15ull)); }
  };
  static Key key_of(const std::string& title, const std::string& text);

  io::JsonlWriter questions_;
  io::JsonlWriter corpus_;
  std::string id_prefix_;
  std::unordered_map<Key, std::uint64_t, KeyHash> ids_;
  std::uint64_t paragraphs_seen_ = 0;
};

}  // namespace steper::data
