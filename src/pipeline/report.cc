#include "report.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "steper/distill.h"
#include "steper/error.h"
#include "steper/io.h"
#include "steper/model_config.h"
#include "steper/view.h"
#include "svg_chart.h"

namespace steper::pipeline {

std::string pct(const data::json& v) {
  if (!v.is_number()) return "–";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f", 100 * v.get<double>());
  return buf;
}

// "+5.2 [1.0, 9.4]": a paired difference and its interval, in points.
std::string interval(const data::json& c) {
  if (!c.is_object()) return "–";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%+.1f [%+.1f, %+.1f]", 100 * c["diff"].get<double>(), 100 * c["low"].get<double>(),
                100 * c["high"].get<double>());
  return buf;
}

// Rounded to whole seconds first: 359.7 s is 6m00s, not 5m60s.
std::string human_seconds(const data::json& v) {
  if (!v.is_number()) return "–";
  const long long s = std::llround(v.get<double>());
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%lld s", s);
  else std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  return buf;
}

namespace {

using data::json;

struct Sums {
  std::size_t n = 0;
  double em = 0, f1 = 0, acc = 0;
  json to_json() const {
    const double d = n ? static_cast<double>(n) : 1;
    return json{{"questions", n}, {"em", em / d}, {"f1", f1 / d}, {"acc", acc / d}};
  }
};

std::string human_params(std::int64_t n) {
  char buf[32];
  if (n >= 1000000) std::snprintf(buf, sizeof buf, "%.2fM", static_cast<double>(n) / 1e6);
  else std::snprintf(buf, sizeof buf, "%.0fk", static_cast<double>(n) / 1e3);
  return buf;
}

const json& at_path(const json& j, std::initializer_list<const char*> keys) {
  static const json null;
  const json* p = &j;
  for (const char* k : keys) {
    if (!p->is_object() || !p->contains(k)) return null;
    p = &(*p)[k];
  }
  return *p;
}

// (step, value) of one metrics.jsonl field; a resumed run repeats steps, the
// later line wins.
std::vector<std::pair<double, double>> metric_series(const std::string& path, const std::string& field) {
  std::map<double, double> by_step;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("step")) continue;
    const json& v = j.value(field, json());
    by_step[j["step"].get<double>()] = v.is_number() ? v.get<double>() : std::nan("");
  }
  return {by_step.begin(), by_step.end()};
}

// A moving mean over the last `window` defined values, for noisy per-batch
// losses. Steps where a stage had no sample (NaN) are left out, so the line
// runs on across them instead of breaking.
std::vector<std::pair<double, double>> smooth(const std::vector<std::pair<double, double>>& points, std::size_t window) {
  std::vector<std::pair<double, double>> out;
  std::vector<double> recent;
  for (const auto& [x, y] : points) {
    if (!std::isfinite(y)) continue;
    recent.push_back(y);
    if (recent.size() > window) recent.erase(recent.begin());
    double s = 0;
    for (double r : recent) s += r;
    out.emplace_back(x, s / static_cast<double>(recent.size()));
  }
  return out;
}

// Each stage's share of the summed weights at fractions of training, from a
// student's metrics.jsonl: the focus of the objective, comparable between
// weightings whatever their scale.
json weight_shares(const std::string& metrics_path) {
  std::vector<std::vector<std::pair<double, double>>> series;
  for (const auto& stage : distill::stage_names()) series.push_back(metric_series(metrics_path, "weight_" + stage));
  json out = json::array();
  if (series[0].empty()) return out;
  const double last = series[0].back().first;
  for (double f : {0.0, 0.1, 0.25, 0.5, 0.75, 1.0}) {
    // The first logged step at or after this fraction.
    std::size_t i = 0;
    while (i + 1 < series[0].size() && series[0][i].first < f * last) ++i;
    double sum = 0;
    for (const auto& s : series) sum += i < s.size() ? s[i].second : 0;
    json row{{"step", series[0][i].first}, {"fraction", f}};
    for (std::size_t j = 0; j < series.size(); ++j) row[distill::stage_names()[j]] = sum > 0 && i < series[j].size() ? series[j][i].second / sum : 0;
    out.push_back(row);
  }
  return out;
}

void write_text(const std::string& path, const std::string& text) { io::write_atomic(path, text); }

}  // namespace

std::string label_of(const json& metrics, const std::string& id) {
  for (const auto& row : metrics["methods"]) {
    if (row.value("id", "") == id) return row.value("label", id);
  }
  return id;
}

std::string comparisons_table(const json& metrics) {
  if (!metrics.contains("comparisons") || metrics["comparisons"].empty()) return "";
  std::string t = "\nPaired differences in Acc (points), with 95% bootstrap intervals over the questions:\n\n"
                  "| Comparison | Dev | Test |\n|---|---:|---:|\n";
  for (const auto& c : metrics["comparisons"]) {
    t += "| " + label_of(metrics, c["a"]) + " − " + label_of(metrics, c["b"]) + " | " + interval(c.value("dev", json())) + " | " +
         interval(c.value("test", json())) + " |\n";
  }
  return t;
}

std::string weight_shares_table(const json& metrics) {
  if (!metrics.contains("weight_shares") || metrics["weight_shares"].empty()) return "";
  std::string t = "\nStage weights as shares of their sum, over training (init / expand / aggregate):\n\n| Student |";
  std::string rule = "|---|";
  const json& any = metrics["weight_shares"].begin().value();
  for (const auto& p : any) {
    char h[32];
    std::snprintf(h, sizeof h, " %.0f%% |", 100 * p["fraction"].get<double>());
    t += h, rule += "---:|";
  }
  t += "\n" + rule + "\n";
  for (const auto& [id, points] : metrics["weight_shares"].items()) {
    t += "| " + label_of(metrics, id) + " |";
    for (const auto& p : points) {
      char cell[48];
      std::snprintf(cell, sizeof cell, " %.2f / %.2f / %.2f |", p["init"].get<double>(), p["expand"].get<double>(), p["aggregate"].get<double>());
      t += cell;
    }
    t += "\n";
  }
  return t;
}

void Scores::add(const std::string& method, const std::string& split, const std::vector<data::Question>& questions,
                 const std::string& traces_path) {
  std::map<std::size_t, Sums> hops;
  std::map<std::string, double> acc;
  auto report = eval::evaluate_traces(questions, traces_path, [&](const eval::ScoredRun& r) {
    acc[r.question->id] = r.scores.acc;
    const std::size_t h = eval::hop_count(*r.question);
    if (h == 0) return;
    Sums& s = hops[h];
    ++s.n;
    s.em += r.scores.em, s.f1 += r.scores.f1, s.acc += r.scores.acc;
  });
  json j = eval::to_json(report);
  json by_type = j["by_type"];
  j.erase("by_type");
  json by_hops = json::object();
  for (const auto& [h, s] : hops) by_hops[std::to_string(h)] = s.to_json();
  scores_[method][split] = json{{"overall", j}, {"by_type", by_type}, {"by_hops", by_hops}};
  std::vector<double>& v = acc_[method][split];
  v.clear();
  for (const auto& q : questions) {
    auto it = acc.find(q.id);
    v.push_back(it == acc.end() ? 0.0 : it->second);
  }
}

const std::vector<double>& Scores::per_question(const std::string& method, const std::string& split) const {
  static const std::vector<double> none;
  auto m = acc_.find(method);
  if (m == acc_.end()) return none;
  auto s = m->second.find(split);
  return s == m->second.end() ? none : s->second;
}

const std::vector<Comparison>& comparisons() {
  static const std::vector<Comparison> c{{"steper_difficulty", "vanilla"},
                                         {"steper_difficulty", "answer"},
                                         {"steper_difficulty", "steper_uniform"},
                                         {"steper_floor", "steper_difficulty"},
                                         {"steper_floor", "vanilla"}};
  return c;
}

const json& Scores::of(const std::string& method) const {
  static const json empty = json::object();
  auto it = scores_.find(method);
  return it == scores_.end() ? empty : it->second;
}

Report::Report(const ExperimentConfig& config, const std::string& out_dir, const json& training, const Scores& scores,
               const std::map<std::string, std::string>& model_dirs)
    : out_dir_(out_dir) {
  metrics_ = json{{"experiment", config.name}, {"seed", config.seed}, {"methods", json::array()}};
  for (const auto& m : methods()) {
    const auto dir = model_dirs.find(m.id);
    json row{{"id", m.id}, {"label", m.label}};
    if (dir != model_dirs.end()) {
      row["model"] = dir->second;
      row["parameters"] = model::read_model_config(dir->second + "/config.json").parameter_count();
    }
    if (training.contains(m.id)) row["training"] = training[m.id];
    for (const auto& [split, s] : scores.of(m.id).items()) row[split] = s;
    metrics_["methods"].push_back(row);
  }
  // Paired bootstrap intervals over the questions, per split.
  json cmp = json::array();
  for (const auto& c : comparisons()) {
    json row{{"a", c.a}, {"b", c.b}};
    for (const char* split : {"dev", "test"}) {
      const auto& a = scores.per_question(c.a, split);
      const auto& b = scores.per_question(c.b, split);
      if (a.empty() || a.size() != b.size()) continue;
      const auto r = eval::paired_bootstrap(a, b, 2000, 0.95, config.seed);
      row[split] = json{{"questions", r.n}, {"diff", r.diff}, {"low", r.low}, {"high", r.high}, {"level", r.level}, {"resamples", 2000}};
    }
    if (row.contains("test") || row.contains("dev")) cmp.push_back(row);
  }
  metrics_["comparisons"] = cmp;
  json shares = json::object();
  for (const char* id : {"steper_difficulty", "steper_floor"}) {
    json w = weight_shares(out_dir + "/students/" + id + "/metrics.jsonl");
    if (!w.empty()) shares[id] = w;
  }
  metrics_["weight_shares"] = shares;
}

std::string Report::table() const {
  std::string t = "| Method | Params | Fine-tuning | Dev EM | Dev F1 | Dev Acc | Test EM | Test F1 | Test Acc |\n"
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  std::set<std::string> types, hops;
  for (const auto& row : metrics_["methods"]) {
    t += "| " + row["label"].get<std::string>() + " | " + human_params(row.value("parameters", std::int64_t{0})) + " | " +
         human_seconds(at_path(row, {"training", "seconds"}));
    for (const char* split : {"dev", "test"}) {
      for (const char* metric : {"em", "f1", "acc"}) t += " | " + pct(at_path(row, {split, "overall", metric}));
    }
    t += " |\n";
    for (const auto& [k, v] : at_path(row, {"test", "by_type"}).items()) types.insert(k);
    for (const auto& [k, v] : at_path(row, {"test", "by_hops"}).items()) hops.insert(k);
  }
  auto breakdown = [&](const std::string& title, const char* field, const std::set<std::string>& keys, const std::string& suffix) {
    if (keys.empty()) return std::string();
    std::string s = "\n" + title + "\n\n| Method |";
    std::string rule = "|---|";
    for (const auto& k : keys) s += " " + k + suffix + " |", rule += "---:|";
    s += "\n" + rule + "\n";
    for (const auto& row : metrics_["methods"]) {
      s += "| " + row["label"].get<std::string>() + " |";
      for (const auto& k : keys) s += " " + pct(at_path(at_path(row, {"test", field}), {k.c_str(), "acc"})) + " |";
      s += "\n";
    }
    return s;
  };
  t += breakdown("Test Acc by question type:", "by_type", types, "");
  t += breakdown("Test Acc by hops:", "by_hops", hops, " hops");
  t += comparisons_table(metrics_);
  t += weight_shares_table(metrics_);
  return t;
}

// "Questions: 100 dev, 100 test." from the first method's scores (every
// method runs the same questions).
std::string Report::question_counts() const {
  std::string out;
  if (metrics_["methods"].empty()) return out;
  for (const char* split : {"dev", "test"}) {
    const json& o = at_path(metrics_["methods"][0], {split, "overall"});
    if (!o.is_object()) continue;
    out += (out.empty() ? "Questions: " : ", ") + std::to_string(o.value("questions", std::size_t{0}) + o.value("missing", std::size_t{0})) + " " + split;
  }
  return out.empty() ? out : out + ".";
}

std::vector<Report::Plot> Report::plots() const {
  std::vector<Plot> out;
  // Per-stage losses and weights of the difficulty-aware student over training.
  const std::string m = out_dir_ + "/students/steper_difficulty/metrics.jsonl";
  std::vector<Series> losses, weights;
  std::size_t logged = 0;
  for (const auto& stage : distill::stage_names()) {
    auto series = metric_series(m, "loss_" + stage);
    logged = std::max(logged, series.size());
    losses.push_back({stage, smooth(std::move(series), kLossWindow)});
    weights.push_back({stage, metric_series(m, "weight_" + stage)});
  }
  // The title says the smoothing the run had: a run shorter than the
  // window is averaged over all its steps so far.
  const std::string window = logged >= kLossWindow ? "mean of the last " + std::to_string(kLossWindow) + " logged steps"
                                                   : "running mean over the run's " + std::to_string(logged) + " logged steps";
  out.push_back({"stage_losses.svg", "StepER (difficulty-aware): per-stage loss, " + window,
                 line_chart("StepER (difficulty-aware): per-stage loss, " + window, "step", "loss", losses)});
  out.push_back({"stage_weights.svg", "StepER (difficulty-aware): stage weights 1/(2 sigma^2)",
                 line_chart("StepER (difficulty-aware): stage weights 1/(2 sigma^2)", "step", "weight", weights)});
  const std::string fm = out_dir_ + "/students/steper_floor/metrics.jsonl";
  if (std::filesystem::exists(fm)) {
    std::vector<Series> floor_weights;
    for (const auto& stage : distill::stage_names()) floor_weights.push_back({stage, metric_series(fm, "weight_" + stage)});
    out.push_back({"stage_weights_floor.svg", "StepER (sigma^2 floor): stage weights, summing to 1",
                   line_chart("StepER (sigma^2 floor): stage weights, summing to 1", "step", "weight", floor_weights)});
  }

  std::vector<std::string> labels;
  for (const auto& row : metrics_["methods"]) labels.push_back(row["label"].get<std::string>());
  std::vector<BarGroup> by_metric;
  for (const auto& [metric, name] : {std::pair{"em", "EM"}, {"f1", "F1"}, {"acc", "Acc"}}) {
    BarGroup g{name, {}};
    for (const auto& row : metrics_["methods"]) {
      const json& v = at_path(row, {"test", "overall", metric});
      g.values.push_back(v.is_number() ? 100 * v.get<double>() : std::nan(""));
    }
    by_metric.push_back(g);
  }
  const json& any_test = metrics_["methods"].empty() ? json() : at_path(metrics_["methods"][0], {"test", "overall", "questions"});
  const std::string n = any_test.is_number() ? " (" + std::to_string(any_test.get<std::size_t>()) + " questions)" : "";
  out.push_back({"accuracy_by_method.svg", "Test split: EM, F1 and Acc by method" + n,
                 bar_chart("Test split: EM, F1 and Acc by method" + n, "%", labels, by_metric, 100)});

  std::set<int> hop_counts;
  for (const auto& row : metrics_["methods"]) {
    for (const auto& [k, v] : at_path(row, {"test", "by_hops"}).items()) hop_counts.insert(std::stoi(k));
  }
  std::vector<BarGroup> by_hops;
  for (int h : hop_counts) {
    BarGroup g{std::to_string(h) + " hops", {}};
    for (const auto& row : metrics_["methods"]) {
      const json& v = at_path(at_path(row, {"test", "by_hops"}), {std::to_string(h).c_str(), "acc"});
      if (g.label.find('(') == std::string::npos) {
        const json& q = at_path(at_path(row, {"test", "by_hops"}), {std::to_string(h).c_str(), "questions"});
        if (q.is_number()) g.label += " (" + std::to_string(q.get<std::size_t>()) + ")";
      }
      g.values.push_back(v.is_number() ? 100 * v.get<double>() : std::nan(""));
    }
    by_hops.push_back(g);
  }
  out.push_back({"accuracy_by_hops.svg", "Test split: Acc by number of hops (questions)",
                 bar_chart("Test split: Acc by number of hops (questions)", "Acc %", labels, by_hops, 100)});
  return out;
}

void Report::write(const std::string& dir, const ViewerInputs& test) const {
  std::filesystem::create_directories(dir);
  write_text(dir + "/metrics.json", metrics_.dump(2) + "\n");
  write_text(dir + "/metrics.md", "# " + metrics_["experiment"].get<std::string>() + " (seed " + std::to_string(metrics_["seed"].get<std::uint64_t>()) +
                                      ")\n\nEM / F1 / Acc in %; fine-tuning is wall time on this machine. " + question_counts() + "\n\n" + table());
  const std::vector<Plot> figures = plots();
  for (const auto& p : figures) write_text(dir + "/" + p.file, p.svg);
  if (test.traces.empty()) return;

  // index.html: the viewer over every method's test traces, with the plots
  // and the paired intervals.
  view::ViewOptions o;
  o.title = metrics_["experiment"].get<std::string>() + " (seed " + std::to_string(metrics_["seed"].get<std::uint64_t>()) + "): test traces";
  o.corpus = test.corpus;
  for (const auto& p : figures) o.figures.push_back({p.title, p.svg});
  if (!metrics_["comparisons"].empty()) {
    view::Table t{"Paired differences in Acc (points), with 95% bootstrap intervals over the questions", {"Comparison", "Dev", "Test"}, {}};
    for (const auto& c : metrics_["comparisons"]) {
      t.rows.push_back({label_of(metrics_, c["a"]) + " − " + label_of(metrics_, c["b"]), interval(c.value("dev", json())),
                        interval(c.value("test", json()))});
    }
    o.tables.push_back(std::move(t));
  }
  // Disagreements: the teacher against the main students, and each paired
  // comparison the report gives.
  auto offer = [&](const std::string& a, const std::string& b) {
    if (test.traces.count(a) && test.traces.count(b)) o.pairs.emplace_back(a, b);
  };
  for (const char* student : {"vanilla", "steper_difficulty"}) offer("teacher", student);
  for (const auto& c : comparisons()) offer(c.a, c.b);
  std::vector<view::MethodTraces> methods_traces;
  for (const auto& m : methods()) {
    auto it = test.traces.find(m.id);
    if (it != test.traces.end()) methods_traces.push_back({m.id, m.label, it->second});
  }
  view::write_view(data::read_questions(test.questions), methods_traces, o, dir + "/index.html");
}

}  // namespace steper::pipeline
