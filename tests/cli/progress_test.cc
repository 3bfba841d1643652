#include "progress.h"

#include <gtest/gtest.h>

namespace steper::cli {
namespace {

TEST(Pace, AResumedJobCountsOnlyTheWorkOfThisProcess) {
  Pace p;
  p.observe(1000, 0.50, 2.0);  // resumed at step 1000 of 2000, first report 2 s in
  p.observe(1100, 0.55, 12.0);  // later reports leave the base
  EXPECT_NEAR(p.seconds_left(0.55, 12.0), 90.0, 1e-9);  // 5% took 10 s; 45% are left
  EXPECT_NEAR(p.per_second(1100, 12.0), 10.0, 1e-9);
}

TEST(Pace, NoTimeLeftIsClaimedBeforeAnyProgressIsMeasured) {
  Pace none;
  EXPECT_LT(none.seconds_left(0.5, 3.0), 0);
  EXPECT_EQ(none.per_second(10, 3.0), 0);
  Pace p;
  p.observe(5, 0.25, 1.0);
  EXPECT_LT(p.seconds_left(0.25, 4.0), 0);
  EXPECT_LT(p.seconds_left(-1, 4.0), 0);  // fraction unknown
  EXPECT_NEAR(p.seconds_left(0.5, 4.0), 6.0, 1e-9);  // a quarter took 3 s; half is left
}

TEST(HumanDuration, PicksTheUnitsThatReadBest) {
  EXPECT_EQ(human_duration(45), "45s");
  EXPECT_EQ(human_duration(187), "3m07s");
  EXPECT_EQ(human_duration(7500), "2h05m");
}

}  // namespace
}  // namespace steper::cli
