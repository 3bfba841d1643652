#include "dataset_builder.h"

#include <algorithm>
#include <string_view>

namespace steper::data {
namespace {

std::uint64_t fnv1a(std::string_view s, std::uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

DatasetBuilder::DatasetBuilder(const std::string& questions_path, const std::string& corpus_path,
                               std::string id_prefix)
    : questions_(questions_path, io::JsonlWriter::Mode::staged),
      corpus_(corpus_path, io::JsonlWriter::Mode::staged),
      id_prefix_(std::move(id_prefix)) {}

DatasetBuilder::Key DatasetBuilder::key_of(const std::string& title, const std::string& text) {
  std::uint64_t a = fnv1a(text, fnv1a(std::string_view("\0", 1), fnv1a(title, 0xcbf29ce484222325ull)));
  std::uint64_t b = std::hash<std::string_view>{}(title) * 31 + std::hash<std::string_view>{}(text);
  return Key{a, b};
}

void DatasetBuilder::add(ConvertedRecord record) {
  Question& q = record.question;
  for (const auto& p : record.paragraphs) {
    ++paragraphs_seen_;
    auto [it, inserted] = ids_.try_emplace(key_of(p.title, p.text), ids_.size());
    std::string id = id_prefix_ + "-" + std::to_string(it->second);
    if (inserted) corpus_.write(to_json(Passage{id, p.title, p.text}));
    if (p.supporting && std::find(q.supporting_ids.begin(), q.supporting_ids.end(), id) == q.supporting_ids.end()) {
      q.supporting_ids.push_back(id);
    }
  }
  questions_.write(to_json(q));
}

}  // namespace steper::data
