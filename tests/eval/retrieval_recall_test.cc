#include <gtest/gtest.h>

#include "steper/eval.h"

namespace steper::eval {
namespace {

TEST(RetrievalRecall, AveragesPerQuestionAndCountsComplete) {
  RetrievalRecall r({1, 2, 3});
  r.add({"a", "b"}, {"a", "x", "b"}, "bridge");   // @1: 1/2, @2: 1/2, @3: 1
  r.add({"c"}, {"x", "c"}, "comparison");          // @1: 0, @2: 1, @3: 1
  r.add({}, {"a"}, "bridge");                      // no gold: not counted
  auto all = r.overall();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(r.questions(), 2u);
  EXPECT_DOUBLE_EQ(all[0].recall, 0.25);
  EXPECT_DOUBLE_EQ(all[1].recall, 0.75);
  EXPECT_DOUBLE_EQ(all[2].recall, 1.0);
  EXPECT_DOUBLE_EQ(all[0].complete, 0.0);
  EXPECT_DOUBLE_EQ(all[1].complete, 0.5);
  EXPECT_DOUBLE_EQ(all[2].complete, 1.0);
  auto types = r.by_type();
  EXPECT_DOUBLE_EQ(types["bridge"][0].recall, 0.5);
  EXPECT_EQ(r.questions("bridge"), 1u);
  EXPECT_EQ(r.questions("none"), 0u);
}

TEST(RetrievalRecall, DuplicateGoldCountsOnceAndShortListsAreFine) {
  RetrievalRecall r({10});
  r.add({"a", "a", "b"}, {"b"});
  EXPECT_DOUBLE_EQ(r.overall()[0].recall, 0.5);
}

TEST(RetrievalRecall, RejectsBadCutoffs) {
  EXPECT_THROW(RetrievalRecall({}), InputError);
  EXPECT_THROW(RetrievalRecall({0}), InputError);
}

TEST(RetrievalRecall, PrefersIdsOverTitles) {
  data::Question q;
  q.supporting_titles = {"T"};
  EXPECT_FALSE(supporting_passages(q).by_id);
  q.supporting_ids = {"p-1"};
  EXPECT_TRUE(supporting_passages(q).by_id);
  EXPECT_EQ(supporting_passages(q).names, std::vector<std::string>{"p-1"});
}

}  // namespace
}  // namespace steper::eval
