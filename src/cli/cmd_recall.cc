// Retrieval recall of supporting passages: with the question as the query
// (how much evidence one-shot BM25 finds), or with each step's query of a
// traces file (the union of the top-k of every step, as multi-step RAG
// retrieves).
#include <algorithm>
#include <cstdio>
#include <limits>
#include <unordered_map>

#include "commands.h"
#include "progress.h"
#include "steper/eval.h"
#include "steper/io.h"
#include "steper/retrieve.h"

namespace steper::cli {
namespace {

constexpr std::size_t kChunk = 256;  // questions per batch search

struct RecallArgs {
  std::string index, questions, traces, json_out;
  std::vector<int> ks{2, 5, 10};
  retrieve::SearchOptions options;
};

// One RetrievalRecall per cut-off: with step queries the retrieved set of
// each k is its own union, already cut per query, so each counts in full.
struct PerK {
  std::vector<int> ks;
  std::vector<eval::RetrievalRecall> recall;
  explicit PerK(const std::vector<int>& k) : ks(k) {
    for (std::size_t i = 0; i < ks.size(); ++i) recall.emplace_back(std::vector<int>{std::numeric_limits<int>::max()});
  }
  std::vector<eval::RecallAtK> overall() const {
    std::vector<eval::RecallAtK> out;
    for (std::size_t i = 0; i < ks.size(); ++i) out.push_back(relabel(recall[i].overall()[0], ks[i]));
    return out;
  }
  std::vector<eval::RecallAtK> of_type(const std::string& type) const {
    std::vector<eval::RecallAtK> out;
    for (std::size_t i = 0; i < ks.size(); ++i) {
      auto t = recall[i].by_type();
      out.push_back(relabel(t.count(type) ? t.at(type)[0] : eval::RecallAtK{}, ks[i]));
    }
    return out;
  }
  static eval::RecallAtK relabel(eval::RecallAtK r, int k) {
    r.k = k;
    return r;
  }
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

// Each question's queries: the question, or its trace's step queries.
std::unordered_map<std::string, std::vector<std::string>> read_step_queries(const std::string& path) {
  std::unordered_map<std::string, std::vector<std::string>> out;
  data::RecordReader<data::Trace> reader(path, data::parse_trace);
  data::Trace t;
  while (reader.next(t)) {
    auto& queries = out[t.id];
    for (const auto& s : t.steps) queries.push_back(s.query);
  }
  return out;
}

void run_recall(const RecallArgs& a, const Global& g) {
  auto retriever = open_index(a.index, a.options);
  int k_max = *std::max_element(a.ks.begin(), a.ks.end());
  PerK recall(a.ks);
  std::unordered_map<std::string, std::vector<std::string>> step_queries;
  if (!a.traces.empty()) step_queries = read_step_queries(a.traces);
  data::RecordReader<data::Question> reader(a.questions, data::parse_question);
  Progress progress("recall", "questions", !g.quiet);
  std::size_t without_support = 0, without_trace = 0, done = 0;

  std::vector<data::Question> chunk;
  auto flush = [&] {
    // All queries of the chunk in one batch; owner[i] says whose query i is.
    std::vector<std::string> queries;
    std::vector<std::size_t> owner;
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      if (a.traces.empty()) {
        queries.push_back(chunk[i].question);
        owner.push_back(i);
      } else if (auto it = step_queries.find(chunk[i].id); it != step_queries.end()) {
        for (const auto& q : it->second) {
          queries.push_back(q);
          owner.push_back(i);
        }
      }
    }
    auto results = retriever->search_batch(queries, k_max);
    std::vector<std::vector<std::size_t>> mine(chunk.size());
    for (std::size_t j = 0; j < owner.size(); ++j) mine[owner[j]].push_back(j);
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      eval::SupportingPassages gold = eval::supporting_passages(chunk[i]);
      if (gold.names.empty()) {
        ++without_support;
        continue;
      }
      if (mine[i].empty()) {
        ++without_trace;
        continue;
      }
      for (std::size_t ki = 0; ki < a.ks.size(); ++ki) {
        std::vector<std::string> got;  // union of each query's top k, in order
        for (std::size_t j : mine[i]) {
          const auto& hits = results[j];
          for (std::size_t h = 0; h < hits.size() && h < static_cast<std::size_t>(a.ks[ki]); ++h) {
            std::string name = gold.by_id ? hits[h].id : hits[h].title;
            if (std::find(got.begin(), got.end(), name) == got.end()) got.push_back(std::move(name));
          }
        }
        recall.recall[ki].add(gold.names, got, chunk[i].type);
      }
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

  const auto& any = recall.recall[0];
  if (any.questions() == 0) {
    throw InputError(a.questions + ": no question has supporting_ids or supporting_titles" +
                     (a.traces.empty() ? std::string() : " and a trace in " + a.traces) + "; recall needs them");
  }
  if (without_support) warn(std::to_string(without_support) + " question(s) without supporting passages were not scored");
  if (without_trace) warn(std::to_string(without_trace) + " question(s) without a trace in " + a.traces + " were not scored");

  std::printf("\nRecall of supporting passages, %s (%%; complete = all found)\n",
              a.traces.empty() ? "question as query" : "each trace step's query, union of the top k of every step");
  std::printf("%-22s %6s", "", "n");
  for (int k : a.ks) std::printf("  %8s %8s", ("R@" + std::to_string(k)).c_str(), ("C@" + std::to_string(k)).c_str());
  std::printf("\n");
  print_row("all", any.questions(), recall.overall());
  auto types = any.by_type();
  for (const auto& [type, rows] : types) print_row(type, any.questions(type), recall.of_type(type));

  if (!a.json_out.empty()) {
    data::json out = to_json(recall.overall());
    out["questions"] = any.questions();
    out["queries"] = a.traces.empty() ? "question" : "trace steps";
    out["by_type"] = data::json::object();
    for (const auto& [type, rows] : types) {
      out["by_type"][type] = to_json(recall.of_type(type));
      out["by_type"][type]["questions"] = any.questions(type);
    }
    io::write_json_atomic(a.json_out, out);
  }
}

}  // namespace

void add_recall_command(CLI::App& app, const Global& global) {
  auto args = std::make_shared<RecallArgs>();
  CLI::App* cmd = app.add_subcommand(
      "recall",
      "Measure BM25 recall of each question's supporting passages (by supporting_ids when the\n"
      "questions have them, else by title), overall and per type. The query is the question, or\n"
      "with --traces every step's query of the question's trace (the union of their top k).");
  cmd->add_option("--index", args->index, "Index folder, tcp://HOST:PORT, or several separated by commas")->required();
  cmd->add_option("--questions", args->questions, "Questions JSONL")->required();
  cmd->add_option("--traces", args->traces, "Traces JSONL whose step queries to use (e.g. gold_traces.jsonl)");
  cmd->add_option("--k", args->ks, "Cut-offs, comma-separated (per query)")->delimiter(',')->check(positive());
  cmd->add_option("--json", args->json_out, "Also write the figures to this JSON file");
  add_search_options(cmd, args->options);
  cmd->callback([args, &global] { run_recall(*args, global); });
}

}  // namespace steper::cli
