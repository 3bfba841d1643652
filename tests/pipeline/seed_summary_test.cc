#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "report.h"
#include "steper/error.h"
#include "steper/pipeline.h"
#include "test_util.h"

namespace steper::pipeline {
namespace {

using data::json;

// A report's metrics.json as run_experiment writes it, with the teacher's
// test EM given and the student's dev split left out.
std::string write_run(const std::filesystem::path& dir, const std::string& experiment, int seed, double teacher_test_em) {
  json teacher{{"id", "teacher"}, {"label", "Teacher"},
               {"dev", {{"overall", {{"em", 0.2}, {"f1", 0.3}, {"acc", 0.25}}}}},
               {"test", {{"overall", {{"em", teacher_test_em}, {"f1", 0.5}, {"acc", 0.5}}}}}};
  json student{{"id", "student"}, {"label", "Student (no fine-tuning)"},
               {"test", {{"overall", {{"em", 0.0}, {"f1", 0.01}, {"acc", 0.0}}}}}};
  std::filesystem::create_directories(dir / "report");
  std::ofstream(dir / "report" / "metrics.json") << json{{"experiment", experiment}, {"seed", seed}, {"methods", {teacher, student}}}.dump();
  return dir.string();
}

TEST(ReportCells, SecondsRoundBeforeTheyAreSplit) {
  EXPECT_EQ(human_seconds(data::json(359.73)), "6m00s");  // was "5m60s"
  EXPECT_EQ(human_seconds(data::json(59.6)), "1m00s");    // was "60 s"
  EXPECT_EQ(human_seconds(data::json(42.2)), "42 s");
  EXPECT_EQ(human_seconds(data::json(3725.0)), "62m05s");
  EXPECT_EQ(human_seconds(data::json()), "–");
}

TEST(SeedsTable, GivesEachMethodsMeanAndStandardDeviation) {
  testing::TempDir tmp;
  const std::string t = seeds_table({write_run(tmp / "a", "small", 1, 0.30), write_run(tmp / "b", "small", 2, 0.40),
                                     write_run(tmp / "c", "small", 3, 0.50)});
  EXPECT_NE(t.find("3 runs of 'small' (seeds 1, 2, 3)"), std::string::npos) << t;
  EXPECT_NE(t.find("| Teacher | 20.0 ± 0.0 | 30.0 ± 0.0 | 25.0 ± 0.0 | 40.0 ± 10.0 | 50.0 ± 0.0 | 50.0 ± 0.0 |"), std::string::npos) << t;
  EXPECT_NE(t.find("| Student (no fine-tuning) | – | – | – | 0.0 ± 0.0 | 1.0 ± 0.0 | 0.0 ± 0.0 |"), std::string::npos) << t;
}

// Per seed: each method's test Acc, the paired differences with their
// intervals as the reports computed them, the StepER / teacher ratio.
TEST(SeedsTable, PrintsPerSeedAccuraciesAndPairedIntervals) {
  testing::TempDir tmp;
  auto run = [&](const std::string& name, int seed, double steper, double low) {
    auto row = [](const std::string& id, const std::string& label, double acc) {
      return json{{"id", id}, {"label", label}, {"test", {{"overall", {{"em", acc}, {"f1", acc}, {"acc", acc}}}}}};
    };
    json m{{"experiment", "small"}, {"seed", seed},
           {"methods", {row("teacher", "Teacher", 0.5), row("vanilla", "Vanilla KD", 0.2), row("steper_difficulty", "StepER (difficulty-aware)", steper)}},
           {"comparisons", {{{"a", "steper_difficulty"}, {"b", "vanilla"},
                             {"test", {{"questions", 500}, {"diff", steper - 0.2}, {"low", low}, {"high", steper - 0.2 + 0.04}}}}}},
           {"weight_shares", {{"steper_difficulty", {{{"step", 0}, {"fraction", 0.0}, {"init", 0.2}, {"expand", 0.3}, {"aggregate", 0.5}}}}}}};
    const std::filesystem::path dir = tmp / name;
    std::filesystem::create_directories(dir / "report");
    std::ofstream(dir / "report" / "metrics.json") << m.dump();
    return dir.string();
  };
  const std::string t = seeds_table({run("a", 1, 0.30, 0.06), run("b", 2, 0.40, 0.15)});
  EXPECT_NE(t.find("| | seed 1 | seed 2 |"), std::string::npos) << t;
  EXPECT_NE(t.find("| StepER (difficulty-aware) | 30.0 | 40.0 |"), std::string::npos) << t;
  EXPECT_NE(t.find("| StepER (difficulty-aware) − Vanilla KD | +10.0 [+6.0, +14.0] | +20.0 [+15.0, +24.0] |"), std::string::npos) << t;
  EXPECT_NE(t.find("| StepER (difficulty-aware) / Teacher (%) | 60.0 | 80.0 |"), std::string::npos) << t;
  EXPECT_NE(t.find("| StepER (difficulty-aware) | 0.20 / 0.30 / 0.50 |"), std::string::npos) << t;
}

TEST(SeedsTable, RunsOfAnotherExperimentOrUnfinishedOnesAreNamed) {
  testing::TempDir tmp;
  const std::string a = write_run(tmp / "a", "small", 1, 0.3), b = write_run(tmp / "b", "tiny", 2, 0.3);
  try {
    seeds_table({a, b});
    FAIL() << "runs of two experiments were averaged";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(b + ": experiment 'tiny', not 'small'"), std::string::npos) << e.what();
  }
  const std::string unfinished = tmp / "unfinished";
  std::filesystem::create_directories(unfinished);
  try {
    seeds_table({a, unfinished});
    FAIL() << "a run without a report was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(unfinished + "/report/metrics.json"), std::string::npos) << e.what();
  }
  EXPECT_THROW(seeds_table({}), InputError);
}

}  // namespace
}  // namespace steper::pipeline
