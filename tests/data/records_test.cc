#include <gtest/gtest.h>

#include "steper/data.h"
#include "test_util.h"

namespace steper::data {
namespace {

using testing::TempDir;
using testing::write_file;

TEST(Records, QuestionRoundTripsThroughJson) {
  Question q{"q1", "Who?", {"Ann", "Anne"}, "bridge", {"T1", "T2"}, {"p-1", "p-2"}, "hotpotqa"};
  Question back = parse_question(to_json(q));
  EXPECT_EQ(back.id, q.id);
  EXPECT_EQ(back.answers, q.answers);
  EXPECT_EQ(back.type, q.type);
  EXPECT_EQ(back.supporting_titles, q.supporting_titles);
  EXPECT_EQ(back.supporting_ids, q.supporting_ids);
  EXPECT_EQ(back.dataset, q.dataset);
  // Empty optional fields are left out of the JSON.
  EXPECT_FALSE(to_json(Question{"q2", "Why?", {}, "", {}, {}, ""}).contains("type"));
}

TEST(Records, TraceRoundTripsAndValidatesStop) {
  Trace t{"q1", "Who?", {"Ann"}, "ircot", {{"Who?", {"p-1", "p-2"}, "Ann wrote it."}}, "Ann", "answer", {}, json()};
  Trace back = parse_trace(to_json(t));
  ASSERT_EQ(back.steps.size(), 1u);
  EXPECT_EQ(back.steps[0].retrieved, t.steps[0].retrieved);
  EXPECT_EQ(back.prediction, "Ann");
  EXPECT_FALSE(to_json(t).contains("error"));  // only an error trace has one
  json bad = to_json(t);
  bad["stop"] = "finished";
  EXPECT_THROW(parse_trace(bad), FieldError);
  // An error trace says why, and the reason survives the round trip.
  Trace failed{"q2", "Who?", {"Ann"}, "ircot", {}, "", "error", "the prompt is 2096 tokens; the model's context is 2048", json()};
  EXPECT_EQ(parse_trace(to_json(failed)).error, failed.error);
  json wrong = to_json(failed);
  wrong["error"] = 3;
  EXPECT_THROW(parse_trace(wrong), FieldError);
  // What produced a trace travels with it, untouched.
  Trace recorded = t;
  recorded.run = json{{"strategy", "ircot"}, {"k", 4}};
  EXPECT_EQ(parse_trace(to_json(recorded)).run, recorded.run);
  EXPECT_TRUE(parse_trace(to_json(t)).run.is_null());
  json not_object = to_json(recorded);
  not_object["run"] = "ircot";
  EXPECT_THROW(parse_trace(not_object), FieldError);
}

TEST(Records, FieldErrorsNameTheField) {
  try {
    parse_trace(json::parse(R"({"id":"a","question":"q","answers":[],"steps":[{"query":"x","retrieved":[1],"output":"o"}],
                               "prediction":"p","stop":"answer"})"));
    FAIL();
  } catch (const FieldError& e) {
    EXPECT_EQ(e.field(), "steps[0].retrieved[0]");
  }
  try {
    parse_passage(json::parse(R"({"title":"t","text":"x"})"));
    FAIL();
  } catch (const FieldError& e) {
    EXPECT_EQ(e.field(), "id");
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos);
  }
  EXPECT_THROW(parse_passage(json::parse("[1,2]")), FieldError);
}

TEST(RecordReader, ReportsFileLineAndFieldOrSkipsAndCounts) {
  TempDir dir;
  write_file(dir / "c.jsonl", "{\"id\":\"a\",\"title\":\"A\",\"text\":\"x\"}\n{\"id\":\"b\",\"title\":\"B\",\"text\":5}\nnot json\n"
                              "{\"id\":\"c\",\"text\":\"y\"}\n");
  {
    RecordReader<Passage> r(dir / "c.jsonl", parse_passage);
    Passage p;
    ASSERT_TRUE(r.next(p));
    try {
      r.next(p);
      FAIL();
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("c.jsonl:2: field 'text': expected a string, got number"), std::string::npos)
          << e.what();
    }
  }
  RecordReader<Passage> r(dir / "c.jsonl", parse_passage, /*skip_bad=*/true);
  std::vector<std::string> ids;
  Passage p;
  while (r.next(p)) ids.push_back(p.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(r.skipped(), 2u);
  EXPECT_NE(r.first_error().find(":2:"), std::string::npos);
}

}  // namespace
}  // namespace steper::data
