#include <gtest/gtest.h>

#include "steper/reason.h"
#include "test_util.h"

namespace steper::reason {
namespace {

TEST(Ircot, ReadsItsDemonstrationFiles) {
  for (const char* dataset : {"hotpotqa", "2wikimultihopqa", "musique"}) {
    auto demos = read_demonstrations(testing::shared_data(std::string("ircot/prompts/") + dataset +
                                                          "/gold_with_2_distractors_context_cot_qa_codex.txt"));
    EXPECT_GE(demos.size(), 20u) << dataset;
    for (const auto& d : demos) {
      EXPECT_EQ(d.rfind("Wikipedia Title: ", 0), 0u) << d.substr(0, 80);
      EXPECT_NE(d.find("\nQ: "), std::string::npos);
      EXPECT_NE(d.find("\nA: "), std::string::npos);
      EXPECT_NE(d.find("answer is"), std::string::npos);
      EXPECT_EQ(d.find("# METADATA"), std::string::npos);
    }
  }
  testing::TempDir dir;
  testing::write_file(dir / "empty.txt", "\n\n");
  EXPECT_THROW(read_demonstrations(dir / "empty.txt"), InputError);
  EXPECT_THROW(read_demonstrations(dir / "missing.txt"), InputError);
}

TEST(Ircot, DemonstrationsAreSampledPerQuestionToFitTheBudget) {
  auto pool = read_demonstrations(testing::shared_data("ircot/prompts/hotpotqa/gold_with_2_distractors_context_cot_qa_codex.txt"));
  const std::string a = choose_demonstrations(pool, "q1", 1500, 7);
  EXPECT_EQ(a, choose_demonstrations(pool, "q1", 1500, 7));  // fixed per question
  EXPECT_NE(a, choose_demonstrations(pool, "q2", 1500, 7));
  EXPECT_LE(estimate_tokens(a), 1500u + 30);
  EXPECT_GT(estimate_tokens(a), 500u);
  std::size_t all = 0;
  for (const auto& d : pool) all += d.size();
  EXPECT_GE(choose_demonstrations(pool, "q1", 0, 7).size(), all);  // no budget: every one
  EXPECT_NE(a.find("\n\n\nWikipedia Title: "), std::string::npos);  // joined by two blank lines
}

TEST(Ircot, SentencesAreNotCutAtInitialsAbbreviationsOrDecimals) {
  EXPECT_EQ(first_sentence("Lost was created by J. J. Abrams. He was born in New York."), "Lost was created by J. J. Abrams.");
  EXPECT_EQ(first_sentence("Kaiser Permanente was founded by Henry J. Kaiser in 1945. Later"), "Kaiser Permanente was founded by Henry J. Kaiser in 1945.");
  EXPECT_EQ(first_sentence("It sold 3.5 million copies. Then"), "It sold 3.5 million copies.");
  EXPECT_EQ(first_sentence("Dr. Smith lives in St. Louis. He"), "Dr. Smith lives in St. Louis.");
  EXPECT_EQ(first_sentence("The U.S. Army was there! Yes"), "The U.S. Army was there!");
  EXPECT_EQ(first_sentence("  So the answer is: J. J. Abrams.  "), "So the answer is: J. J. Abrams.");
  EXPECT_EQ(first_sentence("no period at all"), "no period at all");
}

TEST(Ircot, AnswersAreReadWithItsRegex) {
  std::string a;
  ASSERT_TRUE(ircot_answer("So the answer is: Chief of Protocol.", a));
  EXPECT_EQ(a, "Chief of Protocol");
  ASSERT_TRUE(ircot_answer("So the answer is yes.", a));
  EXPECT_EQ(a, "yes");
  ASSERT_TRUE(ircot_answer("Thus, the answer is: J. J. Abrams.", a));
  EXPECT_EQ(a, "J. J. Abrams");  // one final period only
  ASSERT_TRUE(ircot_answer("The answer is: 1815", a));
  EXPECT_EQ(a, "1815");
  EXPECT_FALSE(ircot_answer("answer is: x", a));  // the regex needs a word before " answer is"
  EXPECT_FALSE(ircot_answer("Lovelace was born in 1815.", a));
}

TEST(Ircot, QueriesDropWhWordsAndReasoningSentences) {
  EXPECT_EQ(remove_wh_words("Who is the director of Lost?"), "the director of Lost?");
  EXPECT_EQ(remove_wh_words("What  year"), " year");  // IRCoT splits on single spaces
  EXPECT_TRUE(is_reasoning_sentence("So the answer is: 1815."));
  EXPECT_TRUE(is_reasoning_sentence("Thus, Ada was born first."));
  EXPECT_TRUE(is_reasoning_sentence("That is 1815 + 10 = 1825."));
  EXPECT_FALSE(is_reasoning_sentence("Ada Lovelace was born in 1815."));
  EXPECT_EQ(ircot_query("Who was born first?", {}), "was born first?");
  EXPECT_EQ(ircot_query("Who was born first?", {"Ada Lovelace was born in 1815.", "So Ada was first."}),
            "Ada Lovelace was born in 1815.");
  EXPECT_EQ(cut_words("a b c d", 2), "a b");
  EXPECT_EQ(cut_words("a b", 5), "a b");
}

}  // namespace
}  // namespace steper::reason
