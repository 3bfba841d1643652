// steper/view.h — the trace viewer: one self-contained HTML page that shows
// what each method did on each question.
//
// The page embeds its data (questions, every method's scored runs, the
// passages they retrieved) as compact JSON, and its script and styles inline:
// it opens from disk with no server and no network. The script renders the
// metrics table, filters, search, side-by-side steps and plots; the browser
// test (tests/view/browser_test.mjs) drives it in Chromium.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "steper/data.h"

namespace steper::view {

// One method's traces file.
struct MethodTraces {
  std::string id;     // short name, used in links ("vanilla")
  std::string label;  // shown in tables ("Vanilla KD"); the id when empty
  std::string path;   // traces JSONL
};

// A figure shown in the page's Plots section: standalone SVG text.
struct Figure {
  std::string title;
  std::string svg;
};

// A small table shown under the metrics (the demo's paired intervals).
struct Table {
  std::string title;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

struct ViewOptions {
  std::string title = "steper traces";
  // Where passage titles and text come from: a corpus JSONL, or an index
  // spec (retrieve.h). Both empty: passages are shown by id alone.
  std::string corpus;
  std::string index;
  // Characters of each passage's text kept in the page (longer ones are cut
  // at a word and end in "…"); 0 keeps all. Default: 600.
  std::size_t passage_chars = 600;
  std::vector<Figure> figures;
  std::vector<Table> tables;
  // The disagreement shortcuts offered (A right and B wrong, and the
  // reverse), by method id; empty: the first method against each other.
  std::vector<std::pair<std::string, std::string>> pairs;
  // Bytes of steps and passages over which the page embeds them compressed
  // (render_page). Default: 1 MiB.
  std::size_t compress_above = std::size_t{1} << 20;
};

struct ViewStats {
  std::size_t questions = 0;
  std::size_t runs = 0;       // traces shown, over all methods
  std::size_t passages = 0;   // distinct passages embedded
  std::size_t unknown = 0;    // traces whose id is not among the questions
  std::size_t untitled = 0;   // passages the corpus or index lacks (shown by id)
  std::size_t bytes = 0;      // size of the page
};

// The page's data as JSON (what the page embeds; for tests and tools):
//   {"title", "methods": [{"id","label","file","missing","unknown","duplicates"}],
//    "questions": [[id, question, answers, type, hops, gold passage indices, supporting titles], ...],
//    "passages": [[id, title, text], ...],
//    "runs": [per method: per question null or
//             [prediction, stop, em, f1, acc, recall (-1: unknown), steps, error,
//              gold found (1: every gold passage retrieved, 0: not, -1: no gold known)]],
//    steps: [[query, [passage indices], sentence], ...]
//    "figures": [{"title","svg"}], "tables": [{"title","header","rows"}], "pairs": [[a, b], ...]}
// Passages are numbered question by question (its gold passages, then those
// each method retrieved, in order). Gold passages are the question's
// supporting_ids, or, for questions that
// name only titles, the retrieved passages with a supporting title. Throws
// InputError naming the file and line for a malformed trace, a method id
// that repeats, or a pair naming an unknown method.
data::json view_data(const std::vector<data::Question>& questions, const std::vector<MethodTraces>& methods,
                     const ViewOptions& options, ViewStats* stats = nullptr);

// The HTML page around `view_data`'s JSON. The page embeds it in two parts:
// an index (questions and run summaries, for the metrics and filters) parsed
// on opening, and the bulk (steps, passages) as JSON lines in blocks of a
// hundred questions or a thousand passages, unpacked only when a card on
// screen needs one. Over `compress_above` bytes of bulk, each block is
// gzip-compressed and base64-encoded: a 10,000 x 6 page shrinks about 3x,
// and the browser's reading of the file is most of its opening time.
std::string render_page(const data::json& view_data, std::size_t compress_above = std::size_t{1} << 20);

// view_data + render_page, written whole (staged, then renamed) to `out`.
ViewStats write_view(const std::vector<data::Question>& questions, const std::vector<MethodTraces>& methods,
                     const ViewOptions& options, const std::string& out);

// `s` with & < > " written as entities, for HTML and SVG text and
// attributes (the report's charts use it too).
std::string escape_html(const std::string& s);

// "vanilla=runs/v.jsonl" -> {vanilla, "", runs/v.jsonl}; a bare path takes
// its file name without extension as the id.
MethodTraces parse_method_traces(const std::string& arg);

}  // namespace steper::view
