// The viewer's data and page, built from files written here; the page's
// behaviour in a browser is tests/view/browser_test.mjs.
#include <gtest/gtest.h>

#include <filesystem>
#include <cstring>
#include <fstream>

#include <zlib.h>

#include "steper/error.h"
#include "steper/retrieve.h"
#include "steper/view.h"

namespace steper::view {
namespace {

namespace fs = std::filesystem;
using data::json;

class ViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("steper_view_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write("corpus.jsonl", {R"({"id":"p1","title":"Ann Lee","text":"Ann Lee was born in Paris in 1950."})",
                           R"({"id":"p2","title":"Paris","text":"Paris is the capital of France </script><script>alert(1)</script>."})",
                           R"({"id":"p3","title":"Bob Ray","text":"Bob Ray wrote songs."})"});
    questions_ = {
        {"q1", "Where was Ann Lee born?", {"Paris"}, "bridge", {"Ann Lee", "Paris"}, {"p1", "p2"}, ""},
        {"q2", "Who wrote songs?", {"Bob Ray", "Robert Ray"}, "comparison", {"Bob Ray"}, {}, ""},
        {"q3", "No trace here?", {"no"}, "", {}, {}, ""},
    };
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::vector<std::string>& lines) {
    const std::string path = (dir_ / name).string();
    std::ofstream out(path);
    for (const auto& l : lines) out << l << "\n";
    return path;
  }

  fs::path dir_;
  std::vector<data::Question> questions_;
};

TEST_F(ViewTest, RunsAreAlignedWithQuestionsAndScored) {
  const std::string a = write("a.jsonl", {
      R"({"id":"q2","question":"Who wrote songs?","answers":["Bob Ray"],"steps":[{"query":"songs","retrieved":["p3","p1"],"output":"Bob Ray wrote songs."}],"prediction":"Robert Ray","stop":"answer"})",
      R"({"id":"q1","question":"Where?","answers":["Paris"],"steps":[{"query":"Ann Lee","retrieved":["p1"],"output":"Born in Paris."},{"query":"Paris","retrieved":["p2","p9"],"output":"x"}],"prediction":"Lyon","stop":"max_steps"})",
      R"({"id":"zz","question":"?","answers":["a"],"steps":[],"prediction":"a","stop":"answer"})"});
  ViewOptions o;
  o.corpus = (dir_ / "corpus.jsonl").string();
  o.passage_chars = 20;
  ViewStats st;
  const json d = view_data(questions_, {{"a", "Method A", a}}, o, &st);
  EXPECT_EQ(st.questions, 3u);
  EXPECT_EQ(st.runs, 2u);
  EXPECT_EQ(st.unknown, 1u);
  ASSERT_EQ(d["runs"].size(), 1u);
  const json& runs = d["runs"][0];
  ASSERT_EQ(runs.size(), 3u);
  // q1: wrong, stopped at the step limit, both gold passages retrieved.
  EXPECT_EQ(runs[0][0], "Lyon");
  EXPECT_EQ(runs[0][1], "max_steps");
  EXPECT_EQ(runs[0][4], 0.0);
  EXPECT_DOUBLE_EQ(runs[0][5].get<double>(), 1.0);
  // q2: an alias counts as right.
  EXPECT_EQ(runs[1][2], 1.0);
  EXPECT_EQ(runs[1][4], 1.0);
  EXPECT_DOUBLE_EQ(runs[1][5].get<double>(), -1.0);  // no supporting ids
  EXPECT_TRUE(runs[2].is_null());
  EXPECT_EQ(d["methods"][0]["label"], "Method A");
  EXPECT_EQ(d["methods"][0]["missing"], 1);
  EXPECT_EQ(d["pairs"], json::array());  // one method: nothing to disagree with

  // Passages question by question: q1's gold, then what q1's run named,
  // then q2's; text cut at a word with an ellipsis.
  const json& p = d["passages"];
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0][0], "p1");
  EXPECT_EQ(p[0][1], "Ann Lee");
  EXPECT_EQ(p[0][2], "Ann Lee was born in\u2026");
  EXPECT_EQ(p[1][0], "p2");
  EXPECT_EQ(p[2][0], "p9");  // not in the corpus: shown by id
  EXPECT_EQ(p[2][1], "");
  EXPECT_EQ(p[3][0], "p3");
  EXPECT_EQ(runs[0][6][1][1], json::array({1, 2}));  // q1's second step: p2, p9
  EXPECT_EQ(st.untitled, 1u);
  // Gold: q1 by id; q2 names titles only, so the retrieved "Bob Ray".
  EXPECT_EQ(d["questions"][0][5], json::array({0, 1}));
  EXPECT_EQ(d["questions"][0][4], 2);  // hops
  const std::size_t bob = runs[1][6][0][1][0].get<std::size_t>();
  EXPECT_EQ(p[bob][1], "Bob Ray");
  EXPECT_EQ(d["questions"][1][5], json::array({bob}));
  EXPECT_EQ(d["questions"][1][4], 1);
}

// The text of the page's <script ... id="ID"> block.
std::string block(const std::string& page, const std::string& id) {
  const auto tag = page.find("id=\"" + id + "\">");
  EXPECT_NE(tag, std::string::npos) << id;
  if (tag == std::string::npos) return "";
  const auto body = page.find('>', tag) + 1;
  return page.substr(body, page.find("</script>", body) - body);
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  for (std::size_t nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1) out.push_back(text.substr(at, nl - at));
  return out;
}

std::string gunzip_base64(const std::string& b64) {
  std::string bytes;
  unsigned v = 0;
  int bits = 0;
  for (char c : b64) {
    const char* digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char* at = std::strchr(digits, c);
    if (c == '=' || !at) break;
    v = v << 6 | static_cast<unsigned>(at - digits);
    bits += 6;
    if (bits >= 8) bytes += static_cast<char>((v >> (bits -= 8)) & 0xFF);
  }
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  std::string out(bytes.size() * 50 + 1024, '\0');
  z.next_in = reinterpret_cast<Bytef*>(bytes.data());
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  inflateEnd(&z);
  return out;
}

TEST_F(ViewTest, PageEmbedsDataThatNoPassageCanBreakOutOf) {
  const std::string a = write("a.jsonl", {
      R"({"id":"q1","question":"Where? /*SCRIPT*/ /*BULK*/","answers":["Paris"],"steps":[{"query":"<b>","retrieved":["p2"],"output":"</script><!--"}],"prediction":"Paris","stop":"answer"})"});
  ViewOptions o;
  o.corpus = (dir_ / "corpus.jsonl").string();
  o.title = "Runs <&> \"x\"";
  o.figures.push_back({"a plot", "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>"});
  questions_[0].question = "Where? /*SCRIPT*/ /*BULK*/";  // markers in the data are data
  const json d = view_data(questions_, {{"a", "", a}}, o);
  const std::string page = render_page(d);
  EXPECT_EQ(page.find("<title>Runs &lt;&amp;&gt; &quot;x&quot;</title>"), page.find("<title>"));
  const std::string index_text = block(page, "steper-index"), questions = block(page, "bq0"), passages = block(page, "bp0");
  EXPECT_EQ(index_text.find('<'), std::string::npos);
  EXPECT_EQ(questions.find('<'), std::string::npos);
  EXPECT_EQ(passages.find('<'), std::string::npos);
  const json index = json::parse(index_text);
  EXPECT_EQ(index["bulk"]["encoding"], "lines");
  EXPECT_EQ(index["questions"][0], json::array({"q1", "Where? /*SCRIPT*/ /*BULK*/", {"Paris"}, "bridge", 2, {"Ann Lee", "Paris"}}));
  // Run summaries: steps become their count; gold found (both retrieved? only p2) last but one.
  EXPECT_EQ(index["runs"][0][0], json::array({"Paris", "answer", 1.0, 1.0, 1.0, 0.5, 1, 0, ""}));
  EXPECT_TRUE(index["runs"][0][1].is_null());
  EXPECT_EQ(index["passages"], d["passages"].size());
  EXPECT_EQ(index["figures"], d["figures"]);
  // The bulk: per question [gold, steps per method], per passage [id,
  // title, text]; nothing lost on the way, "</script>" in a passage included.
  const auto qlines = split_lines(questions), plines = split_lines(passages);
  ASSERT_EQ(qlines.size(), d["questions"].size());
  ASSERT_EQ(plines.size(), d["passages"].size());
  EXPECT_EQ(json::parse(qlines[0]), json::array({d["questions"][0][5], d["runs"][0][0][6]}));
  for (std::size_t i = 0; i < d["passages"].size(); ++i) EXPECT_EQ(json::parse(plines[i]), d["passages"][i]);
  EXPECT_EQ(page.find("id=\"bq1\""), std::string::npos);  // three questions: one block
  // Compressed, the same lines.
  const std::string packed = render_page(d, 0);
  const json packed_index = json::parse(block(packed, "steper-index"));
  EXPECT_EQ(packed_index["bulk"]["encoding"], "gzip+base64");
  EXPECT_EQ(gunzip_base64(block(packed, "bq0")), questions);
  EXPECT_EQ(gunzip_base64(block(packed, "bp0")), passages);
  // Compressed exactly when the bulk is over the limit.
  const std::size_t bulk = questions.size() + passages.size();
  EXPECT_EQ(json::parse(block(render_page(d, bulk), "steper-index"))["bulk"]["encoding"], "lines");
  EXPECT_EQ(json::parse(block(render_page(d, bulk - 1), "steper-index"))["bulk"]["encoding"], "gzip+base64");
  // Self-contained: nothing fetched from elsewhere.
  for (const char* outside : {"src=\"http", "href=\"http", "@import", "url(http", "<link"}) EXPECT_EQ(page.find(outside), std::string::npos) << outside;
}

TEST_F(ViewTest, InvalidUtf8InATraceBecomesReplacementCharacters) {
  const std::string a = write("a.jsonl", {std::string(R"({"id":"q1","question":"W","answers":["x"],"steps":[],"prediction":"ok)") + "\xff" + R"(","stop":"answer"})"});
  // The reader may refuse invalid UTF-8 itself; what it lets through must
  // still make a page.
  try {
    const json d = view_data(questions_, {{"a", "", a}}, {});
    EXPECT_NE(render_page(d).find("ok\\ufffd"), std::string::npos);
    EXPECT_EQ(d["runs"][0][0][0], "ok\xff");
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("a.jsonl:1"), std::string::npos) << e.what();
  }
}

TEST_F(ViewTest, PassagesFromAnIndex) {
  const std::string index = (dir_ / "index").string();
  retrieve::build_index((dir_ / "corpus.jsonl").string(), index);
  const std::string a = write("a.jsonl", {
      R"({"id":"q1","question":"Where?","answers":["Paris"],"steps":[{"query":"Ann","retrieved":["p3"],"output":"o"}],"prediction":"Paris","stop":"answer"})"});
  ViewOptions o;
  o.index = index;
  o.passage_chars = 0;
  const json d = view_data(questions_, {{"a", "", a}}, o);
  std::map<std::string, std::string> text;
  for (const auto& p : d["passages"]) text[p[0]] = p[2];
  EXPECT_EQ(text["p1"], "Ann Lee was born in Paris in 1950.");
  EXPECT_EQ(text["p3"], "Bob Ray wrote songs.");
}

TEST_F(ViewTest, ErrorsNameTheFileLineOrMethod) {
  const std::string bad = write("bad.jsonl", {
      R"({"id":"q1","question":"W","answers":["x"],"steps":[],"prediction":"x","stop":"answer"})",
      R"({"id":"q2","question":"W","answers":["x"],"steps":"no","prediction":"x","stop":"answer"})"});
  try {
    view_data(questions_, {{"a", "", bad}}, {});
    FAIL() << "a malformed trace was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("steps"), std::string::npos) << e.what();
  }
  const std::string ok = write("ok.jsonl", {});
  EXPECT_THROW(view_data(questions_, {{"a", "", ok}, {"a", "", ok}}, {}), InputError);
  ViewOptions both;
  both.corpus = ok;
  both.index = ok;
  EXPECT_THROW(view_data(questions_, {{"a", "", ok}}, both), InputError);
  ViewOptions unknown_pair;
  unknown_pair.pairs = {{"a", "b"}};
  EXPECT_THROW(view_data(questions_, {{"a", "", ok}}, unknown_pair), InputError);
  ViewOptions missing;
  missing.corpus = (dir_ / "nope.jsonl").string();
  EXPECT_THROW(view_data(questions_, {{"a", "", ok}}, missing), InputError);
  EXPECT_THROW(view_data(questions_, {{"a", "", (dir_ / "none.jsonl").string()}}, {}), InputError);
}

TEST_F(ViewTest, WriteViewReplacesTheFileWhole) {
  const std::string a = write("a.jsonl", {});
  const std::string out = (dir_ / "view.html").string();
  const ViewStats st = write_view(questions_, {{"a", "", a}}, {}, out);
  EXPECT_EQ(fs::file_size(out), st.bytes);
  EXPECT_FALSE(fs::exists(out + ".partial"));
  EXPECT_THROW(write_view(questions_, {{"a", "", a}}, {}, (dir_ / "a.jsonl" / "view.html").string()), InputError);
}

TEST(ParseMethodTraces, NamedOrAfterTheFile) {
  auto m = parse_method_traces("vanilla=runs/v.jsonl");
  EXPECT_EQ(m.id, "vanilla");
  EXPECT_EQ(m.path, "runs/v.jsonl");
  m = parse_method_traces("runs/teacher.test.jsonl");
  EXPECT_EQ(m.id, "teacher");
  EXPECT_EQ(m.path, "runs/teacher.test.jsonl");
  m = parse_method_traces("dir=x/a.jsonl");
  EXPECT_EQ(m.id, "dir");
  m = parse_method_traces("runs/a=b.jsonl");  // '=' after a '/' is part of the path
  EXPECT_EQ(m.path, "runs/a=b.jsonl");
  EXPECT_EQ(m.id, "a=b");
}

}  // namespace
}  // namespace steper::view
