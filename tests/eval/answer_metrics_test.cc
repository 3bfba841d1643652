#include <gtest/gtest.h>

#include "steper/eval.h"

namespace steper::eval {
namespace {

TEST(Normalize, EachRule) {
  EXPECT_EQ(normalize_answer("Chief Of PROTOCOL"), "chief of protocol");           // lower
  EXPECT_EQ(normalize_answer("U.S.A.!?"), "usa");                                  // punctuation
  EXPECT_EQ(normalize_answer("rock-n-roll, (1990)"), "rocknroll 1990");           // removed, not spaced
  EXPECT_EQ(normalize_answer("The Beatles"), "beatles");                          // articles
  EXPECT_EQ(normalize_answer("a an the theatre"), "theatre");                     // whole words only
  EXPECT_EQ(normalize_answer("Anne"), "anne");
  EXPECT_EQ(normalize_answer("the-end"), "theend");                               // punctuation goes first
  EXPECT_EQ(normalize_answer("  many \t spaces\n here "), "many spaces here");    // white space
  EXPECT_EQ(normalize_answer("ÉCOLE Ümlaut ŁÓDŹ"), "école ümlaut łódź");          // Unicode lower-casing
  EXPECT_EQ(normalize_answer("1928 – 2014"), "1928 – 2014");                      // non-ASCII dash stays
  EXPECT_EQ(normalize_answer("l’the"), "l’");  // ’ is no ASCII punctuation: it stays, and bounds a word
  EXPECT_EQ(normalize_answer("éa a"), "éa");                                      // \b is Unicode-aware
  EXPECT_EQ(normalize_answer("x\u00a0y"), "x y");                                 // no-break space splits
  EXPECT_EQ(normalize_answer("İSTANBUL"), "i\u0307stanbul");                      // Python's full lower-casing
  EXPECT_EQ(normalize_answer(""), "");
}

TEST(Metrics, ExactMatchAndF1) {
  EXPECT_EQ(exact_match("the Chief of Protocol.", "Chief of Protocol"), 1.0);
  EXPECT_EQ(exact_match("Chief", "Chief of Protocol"), 0.0);
  EXPECT_DOUBLE_EQ(f1_score("Chief", "Chief of Protocol"), 2 * 1.0 * (1.0 / 3) / (1.0 + 1.0 / 3));
  EXPECT_DOUBLE_EQ(f1_score("new york new york", "new york"), 2 * 0.5 * 1.0 / 1.5);  // counts clip
  EXPECT_EQ(f1_score("Paris", "London"), 0.0);
}

TEST(Metrics, YesNoRuleOfTheOfficialHotpotqaScript) {
  EXPECT_EQ(f1_score("yes", "no"), 0.0);
  EXPECT_EQ(f1_score("yes it is", "yes"), 0.0);  // gold is yes, prediction differs
  EXPECT_EQ(f1_score("no", "no way"), 0.0);      // prediction is no, gold differs
  EXPECT_EQ(f1_score("Yes.", "yes"), 1.0);
  EXPECT_EQ(f1_score("noanswer", "no answer"), 0.0);
}

TEST(Metrics, AccuracyIsContainment) {
  EXPECT_EQ(answer_accuracy("So it was the Chief of Protocol of the US", "Chief of Protocol"), 1.0);
  EXPECT_EQ(answer_accuracy("Protocol", "Chief of Protocol"), 0.0);
  EXPECT_EQ(answer_accuracy("anything", "The"), 1.0);  // gold normalises to "": Python's `"" in s`
}

TEST(Metrics, MaximumOverAliases) {
  AnswerScores s = score_answer("K. Ode", {"Karl Ode", "K. Ode"});
  EXPECT_EQ(s.em, 1.0);
  EXPECT_EQ(s.f1, 1.0);
  AnswerScores none = score_answer("x", {});
  EXPECT_EQ(none.em + none.f1 + none.acc, 0.0);
}

}  // namespace
}  // namespace steper::eval
