// The whole experiment at the micro scale (real world, index, models,
// runs), then the report's structure, a rerun that does nothing, and a
// changed config stopped half-way and resumed.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "report.h"
#include "steper/distill.h"
#include "steper/error.h"
#include "steper/pipeline.h"
#include "svg_chart.h"
#include "test_util.h"

namespace steper::pipeline {
namespace {

using data::json;
using steper::testing::read_file;
using steper::testing::TempDir;

std::size_t lines_of(const std::string& path, const std::function<void(const json&)>& each) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::size_t n = 0;
  for (std::string line; std::getline(in, line); ++n) each(json::parse(line));
  return n;
}

// The stages an event stands for: stages side by side report as one
// event named "a + b".
std::set<std::string> stages_of(const Event& e) {
  std::set<std::string> names;
  for (std::size_t at = 0;;) {
    const std::size_t plus = e.stage.find(" + ", at);
    names.insert(e.stage.substr(at, plus == std::string::npos ? std::string::npos : plus - at));
    if (plus == std::string::npos) return names;
    at = plus + 3;
  }
}

// Runs the experiment, recording which stages reported progress.
std::set<std::string> run_recording(const ExperimentConfig& c, const std::string& out, ExperimentResult* result = nullptr,
                                    const std::string& stop_at = "") {
  std::set<std::string> stages;
  Hooks hooks;
  hooks.progress = [&](const Event& e) {
    const std::set<std::string> names = stages_of(e);
    stages.insert(names.begin(), names.end());
    return !names.count(stop_at);
  };
  ExperimentResult r = run_experiment(c, out, hooks);
  if (result) *result = r;
  return stages;
}

TEST(Experiment, MicroEndToEndThenRerunAndResume) {
  TempDir dir;
  const std::string out = dir / "exp";
  ExperimentConfig c = preset("micro");
  c.dev_questions = 10;  // fewer than test's 12: each split keeps its own limit
  ASSERT_GT(c.reading.epochs, 0);
  ExperimentResult r;
  run_recording(c, out, &r);

  // The report.
  EXPECT_EQ(json::parse(read_file(out + "/report/config.json")), to_json(c));
  const json metrics = json::parse(read_file(out + "/report/metrics.json"));
  EXPECT_EQ(metrics, r.metrics);
  ASSERT_EQ(metrics["methods"].size(), methods().size());
  const std::map<std::string, std::size_t> scored{
      {"dev", std::min(data::read_questions(out + "/world/dev.jsonl").size(), c.dev_questions)},
      {"test", std::min(data::read_questions(out + "/world/test.jsonl").size(), c.test_questions)}};
  ASSERT_LT(scored.at("dev"), scored.at("test"));
  for (std::size_t i = 0; i < methods().size(); ++i) {
    const json& m = metrics["methods"][i];
    EXPECT_EQ(m["id"], methods()[i].id);
    EXPECT_GT(m["parameters"].get<std::int64_t>(), 0);
    for (const char* split : {"dev", "test"}) {
      EXPECT_EQ(m[split]["overall"]["questions"].get<std::size_t>(), scored.at(split)) << m["id"] << split;
      EXPECT_EQ(m[split]["overall"]["missing"], 0);
      EXPECT_FALSE(m[split]["by_hops"].empty());
    }
    EXPECT_EQ(r.table.find(methods()[i].label) != std::string::npos, true) << methods()[i].label;
  }
  const auto teacher_params = metrics["methods"][0]["parameters"].get<std::int64_t>();
  const auto student_params = metrics["methods"][1]["parameters"].get<std::int64_t>();
  EXPECT_LE(student_params * 2, teacher_params);
  EXPECT_NE(read_file(out + "/report/metrics.md").find("| Method | Params"), std::string::npos);
  EXPECT_NE(read_file(out + "/report/metrics.md").find("Questions: "), std::string::npos);
  for (const char* svg : {"stage_losses", "stage_weights", "accuracy_by_method", "accuracy_by_hops"}) {
    const std::string s = read_file(out + "/report/" + svg + ".svg");
    EXPECT_EQ(s.rfind("<svg", 0), 0u) << svg;
    EXPECT_NE(s.find("</svg>"), std::string::npos) << svg;
  }
  EXPECT_NE(read_file(out + "/report/stage_losses.svg").find("<path d=\"M"), std::string::npos);
  // The viewer over every method's test traces, with the plots and intervals.
  const std::string page = read_file(out + "/report/index.html");
  const auto index_at = page.find("id=\"steper-index\">") + std::strlen("id=\"steper-index\">");
  const json index = json::parse(page.substr(index_at, page.find("</script>", index_at) - index_at));
  ASSERT_EQ(index["methods"].size(), methods().size());
  EXPECT_EQ(index["methods"][0]["label"], methods()[0].label);
  const json& teacher_test = metrics["methods"][0]["test"]["overall"];
  EXPECT_EQ(index["questions"].size(), teacher_test["questions"].get<std::size_t>() + teacher_test["missing"].get<std::size_t>());
  EXPECT_EQ(index["figures"].size(), 5u);  // losses, weights, floor weights, by method, by hops
  EXPECT_EQ(index["tables"].size(), 1u);    // the paired intervals

  // Every stage's output is well-formed.
  const std::size_t distill_questions = std::min(c.distill_questions, data::read_questions(out + "/world/distill.jsonl").size());
  std::set<std::string> ids;
  EXPECT_EQ(lines_of(out + "/runs/teacher-distill.jsonl", [&](const json& j) { ids.insert(data::parse_trace(j).id); }), distill_questions);
  EXPECT_EQ(ids.size(), distill_questions);
  for (const auto& m : methods()) {
    for (const char* split : {"dev", "test"}) {
      std::set<std::string> seen;
      lines_of(out + "/runs/" + m.id + "-" + split + ".jsonl", [&](const json& j) {
        data::Trace t = data::parse_trace(j);
        EXPECT_TRUE(seen.insert(t.id).second) << t.id;
        EXPECT_FALSE(t.steps.empty());
        EXPECT_LE(static_cast<int>(t.steps.size()), c.max_steps);
      });
    }
  }
  for (const auto& [mode, want] : std::map<std::string, std::set<std::string>>{
           {"steper", {"init", "expand", "aggregate"}}, {"vanilla", {"aggregate"}}, {"answer", {"aggregate"}}}) {
    std::set<std::string> stages;
    lines_of(out + "/samples/" + mode + ".jsonl", [&](const json& j) { stages.insert(distill::stage_name(distill::parse_sample(j).stage)); });
    EXPECT_EQ(stages, want) << mode;
  }
  // The reading stage: one-step samples from single-hop questions, and both
  // models fine-tuned on them before anything else.
  std::size_t reading = lines_of(out + "/reading/samples.jsonl", [](const json& j) {
    const auto s = distill::parse_sample(j);
    EXPECT_EQ(s.stage, distill::Stage::aggregate);
    EXPECT_EQ(s.step, 1);
    EXPECT_EQ(s.id.rfind("reading-", 0), 0u) << s.id;
  });
  EXPECT_GT(reading, 20u);
  for (const char* who : {"teacher", "student"}) EXPECT_TRUE(std::filesystem::exists(out + "/" + who + "/reader/model.safetensors")) << who;
  EXPECT_EQ(metrics["methods"][1]["model"], out + "/student/reader");

  // Paired comparisons with bootstrap intervals, on every evaluated question.
  ASSERT_EQ(metrics["comparisons"].size(), comparisons().size());
  for (const auto& cmp : metrics["comparisons"]) {
    for (const char* split : {"dev", "test"}) {
      const json& x = cmp[split];
      EXPECT_EQ(x["questions"].get<std::size_t>(), scored.at(split)) << cmp;
      EXPECT_LE(x["low"].get<double>(), x["diff"].get<double>()) << cmp;
      EXPECT_GE(x["high"].get<double>(), x["diff"].get<double>()) << cmp;
      EXPECT_EQ(x["level"], 0.95);
    }
  }
  EXPECT_NE(r.table.find("StepER (difficulty-aware) − Vanilla KD |"), std::string::npos) << r.table;
  // The focus of the weighted students over training, as shares summing to 1.
  for (const char* id : {"steper_difficulty", "steper_floor"}) {
    const json& w = metrics["weight_shares"][id];
    ASSERT_EQ(w.size(), 6u) << id;
    for (const auto& p : w) EXPECT_NEAR(p["init"].get<double>() + p["expand"].get<double>() + p["aggregate"].get<double>(), 1.0, 1e-6);
  }
  EXPECT_NE(r.table.find("Stage weights as shares"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(out + "/report/stage_weights_floor.svg"));
  // The seeds summary of one run already prints the intervals.
  EXPECT_NE(seeds_table({out}).find("StepER (difficulty-aware) − Vanilla KD | "), std::string::npos);

  for (const char* s : {"answer", "vanilla", "steper_uniform", "steper_difficulty", "steper_floor"}) {
    EXPECT_TRUE(std::filesystem::exists(out + "/students/" + s + "/model.safetensors")) << s;
    EXPECT_GT(lines_of(out + "/students/" + s + "/metrics.jsonl", [](const json&) {}), 0u) << s;
  }
  for (const auto& f : std::filesystem::directory_iterator(out + "/stages")) {
    EXPECT_EQ(json::parse(read_file(f.path().string()))["state"], "done") << f.path();
  }

  // A rerun does nothing and reports the same.
  ExperimentResult again;
  EXPECT_TRUE(run_recording(c, out, &again).empty());
  EXPECT_EQ(again.table, r.table);

  // The students' learning rate changes: the teacher's work is kept, the
  // students rerun; stopped in the first two (which train side by side,
  // the step-wise ones first), then resumed.
  ASSERT_EQ(c.parallel_jobs, 2);
  ExperimentConfig changed = c;
  changed.students.lr *= 2;
  std::set<std::string> first;
  try {
    Hooks hooks;
    hooks.progress = [&](const Event& e) {
      const std::set<std::string> names = stages_of(e);
      first.insert(names.begin(), names.end());
      return !names.count("train-steper_difficulty");
    };
    run_experiment(changed, out, hooks);
    FAIL() << "not stopped";
  } catch (const Stopped& e) {
    EXPECT_NE(std::string(e.what()).find("rerun"), std::string::npos);
  }
  EXPECT_EQ(first, (std::set<std::string>{"train-steper_floor", "train-steper_difficulty"}));
  const std::set<std::string> rest = run_recording(changed, out);
  EXPECT_TRUE(rest.count("train-steper_difficulty"));
  EXPECT_TRUE(rest.count("train-answer"));
  EXPECT_TRUE(rest.count("run-steper_difficulty-test"));
  EXPECT_FALSE(rest.count("run-teacher-dev"));
  EXPECT_FALSE(rest.count("run-student-test"));

  // Given models instead of pretraining and the teacher's SFT: the given
  // teacher brings the tokenizer; nothing is pretrained.
  ExperimentConfig given = c;
  given.teacher.init = out + "/teacher/model";
  given.student.init = out + "/student/pretrained";
  given.teacher_sft.epochs = 0;
  const std::string out2 = dir / "given";
  const std::set<std::string> ran = run_recording(given, out2);
  EXPECT_FALSE(ran.count("pretrain-teacher"));
  EXPECT_FALSE(ran.count("pretrain-student"));
  EXPECT_FALSE(ran.count("train-teacher"));
  EXPECT_TRUE(ran.count("run-teacher-distill"));
  EXPECT_FALSE(std::filesystem::exists(out2 + "/tokenizer"));
  // Another teacher: its runs and what was distilled from them are redone,
  // the student's own run is not.
  given.teacher.init = out + "/teacher/pretrained";
  const std::set<std::string> other = run_recording(given, out2);
  EXPECT_TRUE(other.count("run-teacher-distill"));
  EXPECT_TRUE(other.count("run-teacher-test"));
  EXPECT_TRUE(other.count("train-vanilla"));
  EXPECT_FALSE(other.count("run-student-test"));
}

// student.init "teacher": the students start from the teacher's checkpoint
// after reading, before its SFT; the student is neither pretrained nor
// taught to read on its own.
TEST(Experiment, StudentFromTeacherStartsAtTheTeachersReader) {
  TempDir dir;
  const std::string out = dir / "exp";
  ExperimentConfig c = preset("micro");
  c.student.init = kStudentFromTeacher;
  ExperimentResult r;
  const std::set<std::string> ran = run_recording(c, out, &r);
  EXPECT_TRUE(ran.count("pretrain-teacher"));
  EXPECT_TRUE(ran.count("train-read-teacher"));
  EXPECT_FALSE(ran.count("pretrain-student"));
  EXPECT_FALSE(ran.count("train-read-student"));
  EXPECT_TRUE(ran.count("train-steper_difficulty"));
  EXPECT_FALSE(std::filesystem::exists(out + "/student"));
  const json& methods_json = r.metrics["methods"];
  EXPECT_EQ(methods_json[1]["model"], out + "/teacher/reader");
  EXPECT_EQ(methods_json[1]["parameters"], methods_json[0]["parameters"]);
  for (std::size_t i = 2; i < methods_json.size(); ++i) EXPECT_EQ(methods_json[i]["parameters"], methods_json[0]["parameters"]);
  // A rerun does nothing: the student's stage is the teacher's reading.
  EXPECT_TRUE(run_recording(c, out).empty());
}

TEST(ExperimentConfig, JsonRoundTripAndStrictFields) {
  const ExperimentConfig c = preset("small");
  EXPECT_EQ(to_json(config_from_json(to_json(c), preset("tiny"))), to_json(c));
  const ExperimentConfig partial = config_from_json(json{{"students", {{"lr", 0.5}}}}, c);
  EXPECT_EQ(partial.students.lr, 0.5);
  EXPECT_EQ(partial.students.epochs, c.students.epochs);
  // eval_questions sets both splits; a split's own field wins.
  const ExperimentConfig both = config_from_json(json{{"eval_questions", 7}, {"test_questions", 9}}, c);
  EXPECT_EQ(both.dev_questions, 7u);
  EXPECT_EQ(both.test_questions, 9u);

  auto message = [&](const json& j) {
    try {
      config_from_json(j, c, "my.json");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(json{{"studnets", json::object()}}).find("my.json: unknown field 'studnets'"), std::string::npos);
  EXPECT_NE(message(json{{"teacher", {{"dim", "big"}}}}).find("my.json.teacher.dim: expected an integer"), std::string::npos);
  EXPECT_NE(message(json{{"corpus", "c.jsonl"}}).find("my.json.train: required"), std::string::npos);
  EXPECT_NE(message(json{{"eval_questions", -1}}).find("my.json.eval_questions: expected a non-negative integer"), std::string::npos);
  EXPECT_NE(message(json{{"k", 1e20}}).find("my.json.k: expected an integer"), std::string::npos);
  EXPECT_NE(message(json{{"seq_len", 1LL << 40}}).find("in range"), std::string::npos);
  EXPECT_NE(message(json{{"keep", "most"}}).find("my.json.keep"), std::string::npos);
  EXPECT_NE(message(json{{"student", {{"init", ""}, {"dim", 96}, {"heads", 5}}}}).find("my.json.student"), std::string::npos);  // 96 does not divide by 5
  EXPECT_THROW(preset("huge"), InputError);
}

TEST(SvgChart, LinesSkipGapsAndBarsScale) {
  const std::string lines = line_chart("t <1>", "step", "loss", {{"a", {{0, 1}, {1, std::nan("")}, {2, 3}}}});
  EXPECT_NE(lines.find("t &lt;1&gt;"), std::string::npos);
  EXPECT_NE(lines.find("M70.0,"), std::string::npos);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), 'M'), 2);  // the NaN lifts the pen: two sub-paths
  const std::string bars = bar_chart("b", "%", {"x", "y"}, {{"g", {50, std::nan("")}}}, 100);
  EXPECT_NE(bars.find("x: 50.000"), std::string::npos);
  EXPECT_EQ(bars.find("y: "), std::string::npos);
}

}  // namespace
}  // namespace steper::pipeline
