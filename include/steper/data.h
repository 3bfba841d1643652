// steper/data.h — the JSON Lines formats that join steper's commands, their
// readers and writers, and the converters from the multi-hop QA benchmarks.
//
// Formats (one JSON object per line, UTF-8; docs/formats.md has examples):
//   corpus     {"id", "title", "text"}
//   questions  {"id", "question", "answers": [..], "type"?, "supporting_titles"?,
//               "supporting_ids"?, "dataset"?}
//   traces     {"id", "question", "answers", "strategy", "steps": [{"query",
//               "retrieved": [doc id], "output"}], "prediction", "stop"}
//
// Readers stream: memory does not grow with the file. Writers flush every
// line, so a crash loses at most the line being written.
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "steper/error.h"
#include "steper/io.h"

namespace steper::data {

using json = nlohmann::json;

// ---------------------------------------------------------------- records

struct Passage {
  std::string id;
  std::string title;
  std::string text;
};

struct Question {
  std::string id;
  std::string question;
  std::vector<std::string> answers;  // gold answer first, then aliases
  std::string type;                  // "" when the dataset has none
  std::vector<std::string> supporting_titles;
  std::vector<std::string> supporting_ids;  // corpus ids; exact where titles repeat
  std::string dataset;                      // "" when unknown
};

struct Step {
  std::string query;
  std::vector<std::string> retrieved;  // corpus ids, best first
  std::string output;
};

struct Trace {
  std::string id;
  std::string question;
  std::vector<std::string> answers;
  std::string strategy;
  std::vector<Step> steps;
  std::string prediction;
  std::string stop;  // "answer" | "max_steps" | "error"
  std::string error; // why, when stop is "error" (the endpoint's or model's message); optional
  // What produced the trace (reason::RunSettings as JSON): an object, or
  // null in traces written before runs recorded it. Optional.
  json run;
};

// Parse a record; throw FieldError naming the field that is missing or of the
// wrong type. Unknown fields are ignored, so files may carry extra data.
Passage parse_passage(const json& j);
Question parse_question(const json& j);
Trace parse_trace(const json& j);

// Optional fields that are empty are left out.
json to_json(const Passage& p);
json to_json(const Question& q);
json to_json(const Step& s);
json to_json(const Trace& t);

// Typed field access with errors that name the field (used by parsers of
// every outside format). `path` prefixes the field name, e.g. "contexts[2]".
const std::string& require_string(const json& j, const char* field, const std::string& path = "");
const json& require_array(const json& j, const char* field, const std::string& path = "");
std::vector<std::string> require_string_array(const json& j, const char* field,
                                              const std::string& path = "");
std::string optional_string(const json& j, const char* field, const std::string& path = "");
std::vector<std::string> optional_string_array(const json& j, const char* field,
                                               const std::string& path = "");
bool optional_bool(const json& j, const char* field, const std::string& path = "", bool fallback = false);

// ---------------------------------------------------------------- reading

// The longest record a reader accepts, in bytes; a longer one is refused
// with its PATH:LINE, so that one huge line cannot take unbounded memory.
// Default: 16 MiB (`steper --max-record-mb` sets it).
std::uint64_t max_record_bytes();
void set_max_record_bytes(std::uint64_t bytes);

// Streams the records of a JSON Lines file or of a file holding one top-level
// JSON array (raw HotpotQA and 2WikiMultiHopQA ship that way); the kind is
// detected from the first non-blank byte. Blank lines, CRLF endings and a
// UTF-8 byte-order mark are accepted.
class JsonRecords {
 public:
  // Throws InputError if the file cannot be opened.
  explicit JsonRecords(std::string path);
  ~JsonRecords();
  JsonRecords(const JsonRecords&) = delete;
  JsonRecords& operator=(const JsonRecords&) = delete;

  // Reads the next record into `out`; false at the end of the file. Throws
  // InputError "PATH:LINE: ..." when a record is not valid JSON; the reader
  // stays usable, so a caller may skip the record and go on.
  bool next(json& out);

  const std::string& path() const { return path_; }
  bool is_array() const { return array_; }
  std::uint64_t line() const { return record_line_; }   // 1-based line where the last record starts
  std::uint64_t index() const { return record_index_; } // 1-based number of the last record
  std::uint64_t bytes_read() const { return bytes_read_; }
  std::uint64_t total_bytes() const { return total_bytes_; }
  // "PATH:LINE" of the last record, for messages.
  std::string where() const;

  // JSON Lines only: continue from a byte offset that starts a line, as
  // returned by bytes_read() after a record. `line` is that line's number - 1.
  void seek(std::uint64_t offset, std::uint64_t line);

 private:
  bool read_line(std::string& line);
  bool next_line_record(std::string& text);
  bool next_array_record(std::string& text);
  int get();

  std::string path_;
  std::ifstream in_;
  std::unique_ptr<char[]> buffer_;
  bool array_ = false;
  bool array_done_ = false;
  std::uint64_t line_ = 1;  // current line of the scanner
  std::uint64_t record_line_ = 0;
  std::uint64_t record_index_ = 0;
  std::uint64_t bytes_read_ = 0;
  std::uint64_t total_bytes_ = 0;
};

// Typed reader over JsonRecords. With skip_bad, a malformed record is counted
// and skipped (the first message is kept); otherwise it throws InputError
// "PATH:LINE: field 'x': ...".
template <class T>
class RecordReader {
 public:
  using Parser = T (*)(const json&);
  RecordReader(std::string path, Parser parse, bool skip_bad = false)
      : records_(std::move(path)), parse_(parse), skip_bad_(skip_bad) {}

  bool next(T& out) {
    for (;;) {
      try {
        if (!records_.next(scratch_)) return false;
        out = parse_(scratch_);
        return true;
      } catch (const FieldError& e) {
        fail(records_.where() + ": " + e.what());
      } catch (const InputError& e) {
        fail(e.what());  // JsonRecords already says where
      }
    }
  }

  std::uint64_t skipped() const { return skipped_; }
  const std::string& first_error() const { return first_error_; }
  JsonRecords& records() { return records_; }

 private:
  void fail(const std::string& message) {
    if (!skip_bad_) throw InputError(message);
    if (skipped_++ == 0) first_error_ = message;
  }

  JsonRecords records_;
  Parser parse_;
  bool skip_bad_;
  json scratch_;
  std::uint64_t skipped_ = 0;
  std::string first_error_;
};

std::vector<Question> read_questions(const std::string& path);

// Records are written through io::JsonlWriter (steper/io.h).

// ---------------------------------------------------------------- converters

enum class Format { ircot, hotpotqa, twowiki, musique };

// "ircot" | "hotpotqa" | "2wiki" | "musique"; throws InputError listing them.
Format parse_format(const std::string& name);
std::string format_name(Format format);

struct ConvertOptions {
  // Carry on past malformed records, counting them. Default: stop at the first.
  bool skip_bad = false;
  // Value of each question's "dataset" field and prefix of passage ids.
  // Default (""): guessed from the input file name, else the format name.
  std::string dataset;
  // 2wiki only: the release's id_aliases.json (JSON Lines of {"Q_id",
  // "aliases", "demonyms"}), adding aliases to answers. Default: none.
  std::string aliases_path;
  // Called every few thousand records with (records done, bytes read, total bytes).
  std::function<void(std::uint64_t, std::uint64_t, std::uint64_t)> progress;
};

struct ConvertStats {
  std::uint64_t questions = 0;
  std::uint64_t passages = 0;       // unique passages written to the corpus
  std::uint64_t paragraphs_seen = 0;  // before pooling
  std::uint64_t skipped = 0;
  std::string first_error;
  std::string questions_path;
  std::string corpus_path;
};

// Converts a benchmark file into OUT_DIR/questions.jsonl and OUT_DIR/corpus.jsonl.
// Paragraphs with the same title and text become one passage, whichever
// questions share them. Outputs are written beside their final names and
// renamed at the end, so a failed run leaves earlier outputs untouched.
ConvertStats convert(Format format, const std::string& input, const std::string& out_dir,
                     const ConvertOptions& options = {});

// One benchmark record, parsed: the question (without supporting_ids, which
// are assigned when paragraphs are pooled) and its paragraphs. Exposed for
// tests and fuzzing.
struct ConvertedRecord {
  Question question;
  struct Paragraph {
    std::string title;
    std::string text;
    bool supporting = false;
  };
  std::vector<Paragraph> paragraphs;
  std::string alias_key;  // 2wiki: answer_id, the key into id_aliases.json
};
ConvertedRecord convert_record(Format format, const json& record);

// ---------------------------------------------------------------- world

// The marker that ends a reasoning chain with its answer, in gold traces and
// (by default) in the strategies' prompts.
inline constexpr const char* kAnswerMarker = "So the answer is:";

// A synthetic multi-hop world built like 2WikiMultiHopQA from a knowledge
// base: people, films, cities, countries and companies with relations, one
// encyclopedia-style passage per entity, and questions of six types:
//   compositional (2 hops), inference (grandfather, father-in-law),
//   comparison (2 passages), bridge_comparison (4 hops),
//   compositional_3hop and compositional_4hop (MuSiQue-like chains).
// Every question has a gold reasoning trace: one sentence per hop, each
// stated by the passage it cites, the last ending with kAnswerMarker.
struct WorldOptions {
  // Seed of every random choice; the same seed gives the same bytes. Default: 1.
  std::uint64_t seed = 1;
  // Questions over all splits (40% train, 30% distill, 15% dev, 15% test).
  // Default: 10000.
  std::size_t questions = 10000;
  // Size of the knowledge base, given as the question count it is made for
  // (about one anchor entity per question; 1,000 make ~1,640 passages).
  // Smaller than `questions`, entities anchor several questions each: more
  // questions over a corpus that stays small. 0: `questions`. Default: 0.
  std::size_t entities = 0;
  // Copy drills per reading question (World::drills). Default: 0.
  std::size_t drills = 0;
};

// One hop of a question: the fact "subject relation object", stated in the
// passage `passage_id` (whose title is the subject).
struct WorldHop {
  std::string passage_id;
  std::string subject;
  std::string relation;  // "director", "father", "birthplace", "release year", ...
  std::string object;
};

struct WorldQuestion {
  Question question;
  std::string split;  // "train" | "distill" | "dev" | "test"
  std::vector<WorldHop> hops;
  Trace gold;
};

// A reading question about made-up entities: the fact's passage with its
// subject and object renamed by fresh names (and a year moved), beside a
// passage of the corpus. No knowledge answers it; only copying from the
// passage does, which is what pretraining on such text teaches.
struct Drill {
  Question question;
  std::vector<Passage> passages;  // in the order shown
  std::string target;             // the fact's statement and the answer
};

struct World {
  std::vector<Passage> corpus;
  std::vector<WorldQuestion> questions;
  // Single-hop reading questions, one per distinct fact the train split's
  // chains use ("Who directed X?" with X's passage as support): practice in
  // finding one fact among passages, never a chain. Their gold traces have
  // one step, the fact's statement and the answer.
  std::vector<WorldQuestion> reading;
  std::vector<Drill> drills;  // WorldOptions::drills per reading question
};

World generate_world(const WorldOptions& options);

// Writes DIR/corpus.jsonl, DIR/{train,distill,dev,test}.jsonl,
// DIR/gold_traces.jsonl (every question's gold trace), DIR/reading.jsonl,
// DIR/reading_gold.jsonl and, with drills, DIR/drills.jsonl.
void write_world(const World& world, const std::string& out_dir);

// drills.jsonl: {"question": {...}, "passages": [{...}], "target": "..."}.
json to_json(const Drill& d);
Drill parse_drill(const json& j);

}  // namespace steper::data
