// The convert driver: reads any benchmark file record by record, pools the
// paragraphs and writes questions.jsonl + corpus.jsonl atomically.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "steper/io.h"
#include "converters.h"
#include "dataset_builder.h"

namespace steper::data {
namespace {

constexpr std::uint64_t kProgressEvery = 2000;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// A file named like "2wikimultihopqa_dev.json" is 2WikiMultiHopQA whatever
// processed format it is in; the dataset name is worth carrying in every row.
std::string guess_dataset(const std::string& input, Format format) {
  std::string name = lower(input.substr(input.find_last_of('/') + 1));
  if (name.find("2wiki") != std::string::npos) return "2wikimultihopqa";
  if (name.find("hotpot") != std::string::npos) return "hotpotqa";
  if (name.find("musique") != std::string::npos) return "musique";
  if (format == Format::twowiki) return "2wikimultihopqa";
  return format_name(format);
}

// id_aliases.json of 2WikiMultiHopQA: JSON Lines of {"Q_id", "aliases", "demonyms"}.
std::unordered_map<std::string, std::vector<std::string>> read_aliases(const std::string& path) {
  std::unordered_map<std::string, std::vector<std::string>> out;
  JsonRecords records(path);
  json j;
  while (records.next(j)) {
    try {
      auto& list = out[require_string(j, "Q_id")];
      for (auto& a : optional_string_array(j, "aliases")) list.push_back(std::move(a));
      for (auto& a : optional_string_array(j, "demonyms")) list.push_back(std::move(a));
    } catch (const FieldError& e) {
      throw InputError(records.where() + ": " + e.what());
    }
  }
  return out;
}



}  // namespace

void add_unique(std::vector<std::string>& list, std::string value) {
  if (std::find(list.begin(), list.end(), value) == list.end()) list.push_back(std::move(value));
}

void read_titled_paragraphs(const json& j, const char* field, ConvertedRecord& record) {
  const json& list = require_array(j, field);
  for (std::size_t i = 0; i < list.size(); ++i) {
    std::string path = std::string(field) + "[" + std::to_string(i) + "]";
    ConvertedRecord::Paragraph p;
    p.title = require_string(list[i], "title", path);
    p.text = require_string(list[i], "paragraph_text", path);
    p.supporting = optional_bool(list[i], "is_supporting", path);
    if (p.supporting) add_unique(record.question.supporting_titles, p.title);
    record.paragraphs.push_back(std::move(p));
  }
}

Format parse_format(const std::string& name) {
  if (name == "ircot") return Format::ircot;
  if (name == "hotpotqa") return Format::hotpotqa;
  if (name == "2wiki" || name == "2wikimultihopqa") return Format::twowiki;
  if (name == "musique") return Format::musique;
  throw InputError("unknown format '" + name + "': expected ircot, hotpotqa, 2wiki or musique");
}

std::string format_name(Format format) {
  switch (format) {
    case Format::ircot: return "ircot";
    case Format::hotpotqa: return "hotpotqa";
    case Format::twowiki: return "2wiki";
    case Format::musique: return "musique";
  }
  return "?";
}

ConvertedRecord convert_record(Format format, const json& record) {
  switch (format) {
    case Format::ircot: return convert_ircot_record(record);
    case Format::hotpotqa: return convert_hotpotqa_record(record);
    case Format::twowiki: return convert_2wiki_record(record);
    case Format::musique: return convert_musique_record(record);
  }
  throw InputError("unknown format");
}

ConvertStats convert(Format format, const std::string& input, const std::string& out_dir,
                     const ConvertOptions& options) {
  std::unordered_map<std::string, std::vector<std::string>> aliases;
  if (!options.aliases_path.empty()) {
    if (format != Format::twowiki) throw InputError("--aliases applies to the 2wiki format only");
    aliases = read_aliases(options.aliases_path);
  }
  std::string dataset = options.dataset.empty() ? guess_dataset(input, format) : options.dataset;

  JsonRecords records(input);  // opened first: a missing input creates no output folder
  io::make_directories(out_dir);
  ConvertStats stats;
  stats.questions_path = out_dir + "/questions.jsonl";
  stats.corpus_path = out_dir + "/corpus.jsonl";
  {
    DatasetBuilder builder(stats.questions_path, stats.corpus_path, dataset);
    json j;
    for (;;) {
      try {
        if (!records.next(j)) break;
        ConvertedRecord r = convert_record(format, j);
        r.question.dataset = dataset;
        if (!r.alias_key.empty()) {
          if (auto it = aliases.find(r.alias_key); it != aliases.end()) {
            for (const auto& a : it->second) add_unique(r.question.answers, a);
          }
        }
        builder.add(std::move(r));
      } catch (const InputError& e) {
        std::string message = dynamic_cast<const FieldError*>(&e)
                                  ? records.where() + " (record " + std::to_string(records.index()) + "): " + e.what()
                                  : std::string(e.what());
        if (!options.skip_bad) {
          throw InputError(message + "\n  hint: --skip-bad skips malformed records and counts them");
        }
        if (stats.skipped++ == 0) stats.first_error = message;
      }
      if (options.progress && records.index() % kProgressEvery == 0) {
        options.progress(records.index(), records.bytes_read(), records.total_bytes());
      }
    }
    stats.questions = builder.questions();
    stats.passages = builder.passages();
    stats.paragraphs_seen = builder.paragraphs_seen();
    if (options.progress) options.progress(records.index(), records.bytes_read(), records.total_bytes());
    builder.commit();
  }
  return stats;
}

}  // namespace steper::data
