// steper view: one HTML page to read traces in, from disk, with no server.
#include <cstdio>

#include "commands.h"
#include "steper/view.h"

namespace steper::cli {
namespace {

struct ViewArgs {
  std::vector<std::string> traces;
  std::string questions, out;
  std::vector<std::string> pairs;
  view::ViewOptions options;
};

void run_view(const ViewArgs& a, const Global& global) {
  const std::vector<data::Question> questions = data::read_questions(a.questions);
  if (questions.empty()) throw InputError(a.questions + ": no questions");
  std::vector<view::MethodTraces> methods;
  for (const auto& t : a.traces) methods.push_back(view::parse_method_traces(t));
  view::ViewOptions options = a.options;
  for (const auto& p : a.pairs) {
    const auto comma = p.find(',');
    if (comma == std::string::npos || comma == 0 || comma + 1 == p.size() || p.find(',', comma + 1) != std::string::npos) {
      throw InputError("--pair wants two method names, A,B; got '" + p + "'");
    }
    options.pairs.emplace_back(p.substr(0, comma), p.substr(comma + 1));
  }
  const view::ViewStats s = view::write_view(questions, methods, options, a.out);
  if (s.unknown) warn(std::to_string(s.unknown) + " trace(s) for ids not in " + a.questions + " left out");
  if (s.untitled && (!a.options.corpus.empty() || !a.options.index.empty())) {
    warn(std::to_string(s.untitled) + " of " + std::to_string(s.passages) + " passages are not in " +
         (a.options.corpus.empty() ? a.options.index : a.options.corpus) + "; they are shown by id");
  }
  if (!global.quiet) {
    std::fprintf(stderr, "wrote %s: %zu questions, %zu methods, %zu runs, %zu passages, %.1f MB\n", a.out.c_str(), s.questions,
                 methods.size(), s.runs, s.passages, static_cast<double>(s.bytes) / 1e6);
  }
}

}  // namespace

void add_view_command(CLI::App& app, const Global& global) {
  auto args = std::make_shared<ViewArgs>();
  CLI::App* cmd = app.add_subcommand(
      "view",
      "Write one self-contained HTML page to read traces in: the metrics table (every cell opens the\n"
      "traces behind it), and per question the gold answer and passages and each method's steps:\n"
      "query, passages retrieved (gold ones starred), sentence written, prediction and why the run\n"
      "stopped. Filters by method, type, hops and outcome, disagreement sets (A right, B wrong), two\n"
      "methods side by side with their steps aligned, search, and links that keep the filter.\n"
      "The page opens from disk in any browser, with no server and no network.\n"
      "  steper view --traces teacher=runs/t.jsonl vanilla=runs/v.jsonl --questions q.jsonl \\\n"
      "      --corpus corpus.jsonl --out view.html");
  cmd->add_option("--traces", args->traces,
                  "Traces JSONL file(s), each NAME=PATH or PATH (named after the file); the first is the\n"
                  "one the disagreement shortcuts compare the others with")
      ->required()
      ->expected(1, -1);
  cmd->add_option("--questions", args->questions, "Questions JSONL with the gold answers and supporting passages")->required();
  cmd->add_option("--pair", args->pairs,
                  "A,B: offer the disagreement sets A right and B wrong, and the reverse, each opening\n"
                  "the two side by side (repeatable; default: the first method against each other)");
  auto* corpus = cmd->add_option("--corpus", args->options.corpus, "Corpus JSONL, for the passages' titles and text");
  cmd->add_option("--index", args->options.index, "Or an index spec to fetch the passages from")->excludes(corpus);
  cmd->add_option("--out", args->out, "The HTML file to write")->required();
  cmd->add_option("--title", args->options.title, "The page's title")->capture_default_str();
  cmd->add_option("--passage-chars", args->options.passage_chars,
                  "Bytes of each passage's text kept in the page (0: all)")
      ->capture_default_str();
  cmd->add_option("--compress-above", args->options.compress_above,
                  "Bytes of steps and passages over which the page embeds them gzip-compressed (0: always);\n"
                  "the browser unpacks them on opening")
      ->capture_default_str();
  cmd->callback([args, &global] { run_view(*args, global); });
}

}  // namespace steper::cli
