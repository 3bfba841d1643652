// Drives many episodes together: each round sends every pending query to
// the retriever in one batch, then every pending prompt to the model, in
// one call per set of generation options (a local model batches them; a
// remote one keeps that many requests in flight).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "steper/io.h"
#include "steper/reason.h"

namespace steper::reason {
namespace {

// One round over `active`: retrievals, then generations.
void round(std::vector<std::unique_ptr<Episode>>& active, lm::LanguageModel& model, retrieve::Retriever* retriever, int k) {
  std::vector<Episode*> want;
  std::vector<std::string> queries;
  for (auto& e : active) {
    if (e->need() == Episode::Need::retrieve) {
      want.push_back(e.get());
      queries.push_back(e->query());
    }
  }
  if (!want.empty()) {
    if (!retriever) throw InputError("this strategy retrieves: give an index");
    auto hits = retriever->search_batch(queries, k);
    for (std::size_t i = 0; i < want.size(); ++i) want[i]->retrieved(std::move(hits[i]));
  }
  // Episodes wanting the same options share one call.
  std::vector<std::pair<lm::CompletionOptions, std::vector<Episode*>>> groups;
  for (auto& e : active) {
    if (e->need() != Episode::Need::generate) continue;
    lm::CompletionOptions o = e->generation();
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == o; });
    if (it == groups.end()) it = groups.insert(groups.end(), {o, {}});
    it->second.push_back(e.get());
  }
  for (auto& [options, episodes] : groups) {
    std::vector<std::string> prompts;
    for (Episode* e : episodes) prompts.push_back(e->prompt());
    auto out = model.complete(prompts, options);
    for (std::size_t i = 0; i < episodes.size(); ++i) episodes[i]->generated(out[i]);
  }
}

// Ids already written to `path`; a torn last line (a crash mid-write) is cut
// off. Traces another run made (other settings) are refused: appending would
// mix two runs in one file, and stepwise could not tell which prompts to cut.
std::set<std::string> finished_ids(const std::string& path, const RunSettings& settings) {
  std::set<std::string> ids;
  io::require_regular_or_absent(path);  // never read back (or resize) a device or a pipe
  if (!std::filesystem::exists(path)) return ids;
  std::uintmax_t good = 0;
  {
    std::ifstream in(path, std::ios::binary);
    std::string line;
    std::uintmax_t offset = 0, number = 0;
    while (std::getline(in, line)) {
      ++number;
      const bool complete = !in.eof();
      offset += line.size() + (complete ? 1 : 0);
      if (!complete) break;  // no newline: torn
      auto j = data::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("id") || !j["id"].is_string()) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) {
          good = offset;
          continue;
        }
        throw InputError(path + ":" + std::to_string(number) +
                         " is not a trace; it is not safe to append to this file\n  hint: choose another --out");
      }
      if (j.contains("run") && j["run"].is_object()) {
        const std::string diff = first_difference(settings, parse_run_settings(j["run"]));
        if (!diff.empty()) {
          throw InputError(path + ":" + std::to_string(number) + " is a trace of another run (" + diff +
                           " in the file); appending would mix two runs\n  hint: choose another --out, or run with the file's settings");
        }
      }
      ids.insert(j["id"].get<std::string>());
      good = offset;
    }
  }
  if (good < std::filesystem::file_size(path)) std::filesystem::resize_file(path, good);
  return ids;
}

}  // namespace

std::vector<data::Trace> answer(const StrategyOptions& options, lm::LanguageModel& model, retrieve::Retriever* retriever,
                                const std::vector<data::Question>& questions) {
  std::vector<std::unique_ptr<Episode>> active;
  for (const auto& q : questions) active.push_back(start_episode(options, q));
  for (;;) {
    bool pending = false;
    for (auto& e : active) pending = pending || e->need() != Episode::Need::done;
    if (!pending) break;
    round(active, model, retriever, options.k);
  }
  std::vector<data::Trace> out;
  for (auto& e : active) out.push_back(e->trace());
  return out;
}

RunStats run(const StrategyOptions& options, lm::LanguageModel& model, retrieve::Retriever* retriever,
             const std::string& questions_path, const std::string& out_path, const RunOptions& ro) {
  if (ro.in_flight < 1) throw InputError("questions in flight must be at least 1");
  if (options.strategy != Strategy::noretrieval && !retriever) throw InputError("strategy " + strategy_name(options.strategy) + " retrieves: give an index");
  const RunSettings settings = run_settings(options, retriever);
  const data::json settings_json = to_json(settings);
  const std::set<std::string> done_before = finished_ids(out_path, settings);
  data::RecordReader<data::Question> reader(questions_path, data::parse_question);
  // Count the questions first (cheap, streamed) for the progress total.
  RunStats stats;
  {
    data::RecordReader<data::Question> counter(questions_path, data::parse_question);
    data::Question q;
    std::set<std::string> seen;
    while (counter.next(q)) {
      if (!seen.insert(q.id).second) throw InputError(counter.records().where() + ": question id '" + q.id + "' appears twice");
      ++stats.progress.total;
      if (done_before.count(q.id)) ++stats.progress.skipped;
    }
  }
  stats.progress.done = stats.progress.skipped;
  io::JsonlWriter out(out_path, io::JsonlWriter::Mode::append);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<Episode>> active;
  double em_sum = 0;
  bool more = true, stop = false;
  if (ro.on_start) ro.on_start(stats.progress);
  while (!stop) {
    while (more && static_cast<int>(active.size()) < ro.in_flight) {
      data::Question q;
      if (!reader.next(q)) {
        more = false;
        break;
      }
      if (!done_before.count(q.id)) active.push_back(start_episode(options, q));
    }
    if (active.empty()) break;
    round(active, model, retriever, options.k);
    for (auto it = active.begin(); it != active.end();) {
      if ((*it)->need() != Episode::Need::done) {
        ++it;
        continue;
      }
      data::Trace t = (*it)->trace();
      t.run = settings_json;
      out.write(data::to_json(t));
      ++stats.progress.done;
      if (t.stop == "answer") ++stats.answered;
      else if (t.stop == "max_steps") ++stats.max_steps;
      else if (stats.errors++ == 0) stats.first_error = t.error;
      if (text::answers_correctly(t.prediction, t.answers, text::AnswerMatch::exact)) em_sum += 1;
      it = active.erase(it);
    }
    RunProgress& p = stats.progress;
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double written = static_cast<double>(p.done - p.skipped);
    p.questions_per_second = written / std::max(1e-9, p.seconds);
    p.em = written > 0 ? em_sum / written : 0;
    if (ro.on_progress && !ro.on_progress(p)) stop = true;
  }
  stats.complete = stats.progress.done == stats.progress.total;
  return stats;
}

}  // namespace steper::reason
