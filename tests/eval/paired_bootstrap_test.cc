#include <gtest/gtest.h>

#include "steper/error.h"
#include "steper/eval.h"

namespace steper::eval {
namespace {

TEST(PairedBootstrap, SameScoresGiveAZeroInterval) {
  const std::vector<double> a{1, 0, 1, 1, 0};
  const auto r = paired_bootstrap(a, a);
  EXPECT_EQ(r.n, 5u);
  EXPECT_DOUBLE_EQ(r.diff, 0);
  EXPECT_DOUBLE_EQ(r.low, 0);
  EXPECT_DOUBLE_EQ(r.high, 0);
}

TEST(PairedBootstrap, AlwaysBetterGivesOne) {
  const auto r = paired_bootstrap(std::vector<double>(50, 1), std::vector<double>(50, 0));
  EXPECT_DOUBLE_EQ(r.diff, 1);
  EXPECT_DOUBLE_EQ(r.low, 1);
  EXPECT_DOUBLE_EQ(r.high, 1);
}

// Differences of +1 on half the questions and 0 on the rest: the mean is 0.5
// with standard error 0.5/sqrt(n), so the 95% interval is close to
// 0.5 +- 1.96 * 0.025 for n = 400.
TEST(PairedBootstrap, IntervalMatchesTheNormalApproximation) {
  std::vector<double> a(400), b(400, 0);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = i % 2;
  const auto r = paired_bootstrap(a, b, 4000);
  EXPECT_DOUBLE_EQ(r.diff, 0.5);
  EXPECT_NEAR(r.low, 0.5 - 1.96 * 0.025, 0.008);
  EXPECT_NEAR(r.high, 0.5 + 1.96 * 0.025, 0.008);
  EXPECT_LT(r.low, r.diff);
  EXPECT_GT(r.high, r.diff);
}

TEST(PairedBootstrap, PairingRemovesSharedDifficulty) {
  // Both systems fail the same hard questions; b is wrong on 10 more of 200.
  // Unpaired, the two accuracies' intervals would overlap; paired, the gap
  // is resolved away from zero.
  std::vector<double> a(200), b(200);
  for (std::size_t i = 0; i < a.size(); ++i) {
    a[i] = i < 100 ? 1 : 0;
    b[i] = i < 90 ? 1 : 0;
  }
  const auto r = paired_bootstrap(a, b);
  EXPECT_DOUBLE_EQ(r.diff, 0.05);
  EXPECT_GT(r.low, 0);
}

TEST(PairedBootstrap, IsReproducibleForASeed) {
  std::vector<double> a{1, 0, 1, 0, 1, 1, 0, 1}, b{0, 0, 1, 1, 0, 1, 0, 0};
  const auto r1 = paired_bootstrap(a, b, 500, 0.9, 7), r2 = paired_bootstrap(a, b, 500, 0.9, 7);
  EXPECT_EQ(r1.low, r2.low);
  EXPECT_EQ(r1.high, r2.high);
}

TEST(PairedBootstrap, RefusesUnpairedScores) {
  EXPECT_THROW(paired_bootstrap({1, 0}, {1}), InputError);
  EXPECT_THROW(paired_bootstrap({1}, {1}, 0), InputError);
  EXPECT_THROW(paired_bootstrap({1}, {1}, 10, 1.5), InputError);
}

}  // namespace
}  // namespace steper::eval
