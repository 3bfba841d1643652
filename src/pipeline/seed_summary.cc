// Several seeds of one experiment side by side: the mean and spread of each
// method's scores, read back from each run's report/metrics.json.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "report.h"
#include "steper/error.h"
#include "steper/io.h"
#include "steper/pipeline.h"

namespace steper::pipeline {
namespace {

using data::json;

json read_metrics(const std::string& run_dir) {
  std::string path = run_dir + "/report/metrics.json";
  if (!std::filesystem::exists(path) && std::filesystem::exists(run_dir + "/metrics.json")) path = run_dir + "/metrics.json";
  if (!io::is_file(path)) throw InputError(path + ": no report here (has `steper demo` finished in " + run_dir + "?)");
  const json j = io::read_json(path);
  if (!j.contains("methods") || !j["methods"].is_array()) {
    throw InputError(path + ": not a report's metrics.json (no \"methods\" list)");
  }
  return j;
}

const json* method_row(const json& metrics, const std::string& id) {
  for (const auto& row : metrics["methods"]) {
    if (row.value("id", "") == id) return &row;
  }
  return nullptr;
}

json test_acc(const json& metrics, const std::string& id) {
  const json* row = method_row(metrics, id);
  if (!row || !row->contains("test")) return json();
  return (*row)["test"]["overall"].value("acc", json());
}

// "12.3 ± 1.4": mean and sample standard deviation, in %.
std::string mean_sd(const std::vector<double>& v) {
  if (v.empty()) return "–";
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  char buf[48];
  if (v.size() < 2) std::snprintf(buf, sizeof buf, "%.1f", 100 * mean);
  else std::snprintf(buf, sizeof buf, "%.1f ± %.1f", 100 * mean, 100 * std::sqrt(ss / static_cast<double>(v.size() - 1)));
  return buf;
}

}  // namespace

std::string seeds_table(const std::vector<std::string>& run_dirs) {
  if (run_dirs.empty()) throw InputError("no experiment folders to summarise");
  std::vector<std::string> order;                                     // methods, as the first report lists them
  std::map<std::string, std::map<std::string, std::vector<double>>> v;  // method -> "split/metric" -> per seed
  std::map<std::string, std::string> labels;
  std::string experiment, seeds;
  std::vector<json> reports;
  for (const auto& dir : run_dirs) {
    reports.push_back(read_metrics(dir));
    const json& m = reports.back();
    const std::string name = m.value("experiment", "");
    if (experiment.empty()) experiment = name;
    else if (name != experiment) {
      throw InputError(dir + ": experiment '" + name + "', not '" + experiment + "' as " + run_dirs.front() +
                       ": only runs of one config differ by seed");
    }
    seeds += (seeds.empty() ? "" : ", ") + std::to_string(m.value("seed", std::uint64_t{0}));
    for (const auto& row : m["methods"]) {
      const std::string id = row.value("id", "");
      if (!labels.count(id)) order.push_back(id), labels[id] = row.value("label", id);
      for (const char* split : {"dev", "test"}) {
        if (!row.contains(split)) continue;
        for (const char* metric : {"em", "f1", "acc"}) {
          const json& x = row[split]["overall"][metric];
          if (x.is_number()) v[id][std::string(split) + "/" + metric].push_back(x.get<double>());
        }
      }
    }
  }
  const std::string runs = run_dirs.size() == 1 ? "1 run" : std::to_string(run_dirs.size()) + " runs";
  std::string t = "Mean ± standard deviation over " + runs + " of '" + experiment + "' (seed" +
                  (run_dirs.size() == 1 ? " " : "s ") + seeds + "); EM / F1 / Acc in %.\n\n"
                  "| Method | Dev EM | Dev F1 | Dev Acc | Test EM | Test F1 | Test Acc |\n"
                  "|---|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& id : order) {
    t += "| " + labels[id];
    for (const char* split : {"dev", "test"}) {
      for (const char* metric : {"em", "f1", "acc"}) t += " | " + mean_sd(v[id][std::string(split) + "/" + metric]);
    }
    t += " |\n";
  }
  if (reports.size() < 2 && !reports[0].contains("comparisons")) return t;

  // Per seed: test Acc, each paired difference with its interval, the
  // StepER student's share of the teacher's Acc, the weights' focus.
  std::string head = "| |", rule = "|---|";
  for (const auto& m : reports) head += " seed " + std::to_string(m.value("seed", std::uint64_t{0})) + " |", rule += "---:|";
  t += "\nTest Acc per seed (%):\n\n" + head + "\n" + rule + "\n";
  for (const auto& id : order) {
    t += "| " + labels[id] + " |";
    for (const auto& m : reports) t += " " + pct(test_acc(m, id)) + " |";
    t += "\n";
  }
  t += "\nPaired differences in test Acc (points) per seed, 95% bootstrap intervals over the questions:\n\n" + head + "\n" + rule + "\n";
  for (const auto& c : comparisons()) {
    std::string line = "| " + labels[c.a] + " − " + labels[c.b] + " |";
    bool any = false;
    for (const auto& m : reports) {
      json cell;
      for (const auto& row : m.value("comparisons", json::array())) {
        if (row.value("a", "") == c.a && row.value("b", "") == c.b && row.contains("test")) cell = row["test"];
      }
      any = any || cell.is_object();
      line += " " + interval(cell) + " |";
    }
    if (any && labels.count(c.a) && labels.count(c.b)) t += line + "\n";
  }
  if (labels.count("steper_difficulty") && labels.count("teacher")) {
    t += "| " + labels["steper_difficulty"] + " / Teacher (%) |";
    for (const auto& m : reports) {
      const json a = test_acc(m, "steper_difficulty"), b = test_acc(m, "teacher");
      t += " " + (a.is_number() && b.is_number() && b.get<double>() > 0 ? pct(a.get<double>() / b.get<double>()) : std::string("–")) + " |";
    }
    t += "\n";
  }
  for (const auto& m : reports) {
    const std::string w = weight_shares_table(m);
    if (!w.empty()) t += "\nSeed " + std::to_string(m.value("seed", std::uint64_t{0})) + "." + w;
  }
  return t;
}

}  // namespace steper::pipeline
