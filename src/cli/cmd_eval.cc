// steper eval: several traces files side by side against one questions file.
#include <cstdio>

#include "commands.h"
#include "steper/eval.h"
#include "steper/io.h"

namespace steper::cli {
namespace {

struct EvalArgs {
  std::vector<std::string> traces;
  std::string questions, json_out, per_question;
};

// "runs/teacher.jsonl" -> "teacher": short column names for the table.
std::string short_name(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') + 1);
  auto dot = name.rfind(".jsonl");
  return dot == std::string::npos ? name : name.substr(0, dot);
}

void run_eval(const EvalArgs& a) {
  std::vector<data::Question> questions = data::read_questions(a.questions);
  if (questions.empty()) throw InputError(a.questions + ": no questions");
  std::unique_ptr<io::JsonlWriter> per_question;
  if (!a.per_question.empty()) per_question = std::make_unique<io::JsonlWriter>(a.per_question, io::JsonlWriter::Mode::truncate);

  std::vector<eval::TraceReport> reports;
  for (const auto& path : a.traces) {
    reports.push_back(eval::evaluate_traces(questions, path, [&](const eval::ScoredRun& r) {
      if (!per_question) return;
      data::json j{{"traces", path},         {"id", r.question->id},       {"type", r.question->type},
                   {"em", r.scores.em},      {"f1", r.scores.f1},          {"acc", r.scores.acc},
                   {"steps", r.trace->steps.size()}, {"stop", r.trace->stop}, {"prediction", r.trace->prediction}};
      if (r.recall >= 0) j["supporting_recall"] = r.recall;
      per_question->write(j);
    }));
    const auto& r = reports.back();
    if (r.missing) warn(path + ": " + std::to_string(r.missing) + " of " + std::to_string(questions.size()) + " questions have no trace (scored over those present)");
    if (r.unknown) warn(path + ": " + std::to_string(r.unknown) + " trace(s) for ids not in " + a.questions + " ignored");
    if (r.duplicates) warn(path + ": " + std::to_string(r.duplicates) + " repeated id(s); the first trace of each was scored");
  }

  std::printf("%-24s %6s %6s %6s %6s %7s %6s %6s\n", "traces", "n", "EM", "F1", "Acc", "R(sup)", "steps", "max%");
  for (const auto& r : reports) {
    const auto& t = r.overall;
    std::string recall = t.recall_n ? std::to_string(100 * t.recall_mean()).substr(0, 5) : "-";
    std::printf("%-24s %6zu %6.1f %6.1f %6.1f %7s %6.2f %6.1f\n", short_name(r.traces).c_str(), t.n, 100 * t.mean(t.em),
                100 * t.mean(t.f1), 100 * t.mean(t.acc), recall.c_str(), t.mean(t.steps),
                100 * t.mean(static_cast<double>(t.max_steps)));
  }
  std::map<std::string, std::size_t> types;
  for (const auto& q : questions) {
    if (!q.type.empty()) ++types[q.type];
  }
  if (!types.empty()) {
    std::printf("\nby type: EM / F1 / Acc\n%-24s", "type");
    for (const auto& r : reports) std::printf(" %20s", short_name(r.traces).c_str());
    std::printf("\n");
    for (const auto& [type, count] : types) {
      std::printf("%-24s", (type + " (" + std::to_string(count) + ")").c_str());
      for (const auto& r : reports) {
        auto it = r.by_type.find(type);
        if (it == r.by_type.end()) {
          std::printf(" %20s", "-");
          continue;
        }
        const auto& t = it->second;
        char cell[64];
        std::snprintf(cell, sizeof cell, "%.1f / %.1f / %.1f", 100 * t.mean(t.em), 100 * t.mean(t.f1), 100 * t.mean(t.acc));
        std::printf(" %20s", cell);
      }
      std::printf("\n");
    }
  }
  if (!a.json_out.empty()) {
    data::json out = data::json::object();
    for (const auto& r : reports) out[r.traces] = eval::to_json(r);
    io::write_json_atomic(a.json_out, out);
  }
}

}  // namespace

void add_eval_command(CLI::App& app, const Global&) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "Score traces against the gold answers: EM and F1 as the official HotpotQA script computes\n"
      "them, Acc (gold answer contained in the prediction), per question type; retrieval recall of\n"
      "supporting passages; steps taken and the share of runs that hit the step limit.\n"
      "Several --traces files are compared side by side.");
  cmd->add_option("--traces", args->traces, "Traces JSONL file(s)")->required()->expected(1, -1);
  cmd->add_option("--questions", args->questions, "Questions JSONL with the gold answers")->required();
  cmd->add_option("--json", args->json_out, "Also write the figures as JSON: {TRACES: {em, f1, acc, ..., by_type}}");
  cmd->add_option("--per-question", args->per_question, "Write every run's scores to this JSONL");
  cmd->callback([args] { run_eval(*args); });
}

}  // namespace steper::cli
