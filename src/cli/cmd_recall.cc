// Retrieval recall of supporting passages with the question as the query:
// how much of the evidence one-shot BM25 finds.
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "commands.h"
#include "progress.h"
#include "steper/eval.h"
#include "steper/retrieve.h"

namespace steper::cli {
namespace {

constexpr std::size_t kChunk = 256;  // questions per batch search

struct RecallArgs {
  std::string index, questions, json_out;
  std::vector<int> ks{2, 5, 10};
  retrieve::SearchOptions options;
};

data::json to_json(const std::vector<eval::RecallAtK>& rows) {
  data::json out = data::json::object();
  for (const auto& r : rows) {
    out["recall@" + std::to_string(r.k)] = r.recall;
    out["complete@" + std::to_string(r.k)] = r.complete;
  }
  return out;
}

void print_row(const std::string& name, std::size_t n, const std::vector<eval::RecallAtK>& rows) {
  std::printf("%-22s %6zu", name.c_str(), n);
  for (const auto& r : rows) std::printf("  %8.1f %8.1f", 100 * r.recall, 100 * r.complete);
  std::printf("\n");
}

void run_recall(const RecallArgs& a, const Global& g) {
  auto retriever = open_index(a.index, a.options);
  int k_max = *std::max_element(a.ks.begin(), a.ks.end());
  eval::RetrievalRecall recall(a.ks);
  data::RecordReader<data::Question> reader(a.questions, data::parse_question);
  Progress progress("recall", "questions", !g.quiet);
  std::size_t without_support = 0, done = 0;

  std::vector<data::Question> chunk;
  auto flush = [&] {
    std::vector<std::string> queries;
    for (const auto& q : chunk) queries.push_back(q.question);
    auto results = retriever->search_batch(queries, k_max);
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      eval::SupportingPassages gold = eval::supporting_passages(chunk[i]);
      if (gold.names.empty()) {
        ++without_support;
        continue;
      }
      std::vector<std::string> got;
      for (const auto& h : results[i]) got.push_back(gold.by_id ? h.id : h.title);
      recall.add(gold.names, got, chunk[i].type);
    }
    done += chunk.size();
    chunk.clear();
    auto& r = reader.records();
    progress.update(done, r.total_bytes() ? static_cast<double>(r.bytes_read()) / static_cast<double>(r.total_bytes()) : -1);
  };
  data::Question q;
  while (reader.next(q)) {
    chunk.push_back(std::move(q));
    if (chunk.size() == kChunk) flush();
  }
  if (!chunk.empty()) flush();
  progress.finish(done);

  if (recall.questions() == 0) {
    throw InputError(a.questions + ": no question has supporting_ids or supporting_titles; recall needs them");
  }
  if (without_support) warn(std::to_string(without_support) + " question(s) without supporting passages were not scored");

  std::printf("\nRecall of supporting passages, question as query (%%; complete = all found)\n");
  std::printf("%-22s %6s", "", "n");
  for (int k : a.ks) std::printf("  %8s %8s", ("R@" + std::to_string(k)).c_str(), ("C@" + std::to_string(k)).c_str());
  std::printf("\n");
  print_row("all", recall.questions(), recall.overall());
  auto types = recall.by_type();
  for (const auto& [type, rows] : types) print_row(type, recall.questions(type), rows);

  if (!a.json_out.empty()) {
    data::json out = to_json(recall.overall());
    out["questions"] = recall.questions();
    out["by_type"] = data::json::object();
    for (const auto& [type, rows] : types) {
      out["by_type"][type] = to_json(rows);
      out["by_type"][type]["questions"] = recall.questions(type);
    }
    std::ofstream f(a.json_out);
    f << out.dump(2) << "\n";
    if (!f) throw RuntimeError(a.json_out + ": cannot write");
  }
}

}  // namespace

void add_recall_command(CLI::App& app, const Global& global) {
  auto args = std::make_shared<RecallArgs>();
  CLI::App* cmd = app.add_subcommand(
      "recall",
      "Measure BM25 recall of each question's supporting passages with the question as the query\n"
      "(by supporting_ids when the questions have them, else by title), overall and per type.");
  cmd->add_option("--index", args->index, "Index folder, tcp://HOST:PORT, or several separated by commas")->required();
  cmd->add_option("--questions", args->questions, "Questions JSONL")->required();
  cmd->add_option("--k", args->ks, "Cut-offs, comma-separated")->delimiter(',')->check(CLI::PositiveNumber);
  cmd->add_option("--json", args->json_out, "Also write the figures to this JSON file");
  add_search_options(cmd, args->options);
  cmd->callback([args, &global] { run_recall(*args, global); });
}

}  // namespace steper::cli
