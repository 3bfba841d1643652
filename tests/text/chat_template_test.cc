#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "jinja.h"
#include "steper/text.h"
#include "test_util.h"

namespace steper::text {
namespace {

using ordered_json = nlohmann::ordered_json;

std::string render(const std::string& source, const ordered_json& context = ordered_json::object()) {
  return jinja::Template(source, "t").render(context);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

// The reference renderings of the two real templates, made with jinja2 the
// way transformers renders them.
class RealTemplates : public ::testing::TestWithParam<const char*> {};

TEST_P(RealTemplates, RenderEveryFixtureLineExactly) {
  const std::string dir = testing::shared_data(std::string("tokenizers/") + GetParam());
  ChatTemplate t = load_chat_template(dir);
  std::ifstream in(dir + "/expected_chat.jsonl");
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    ordered_json j = ordered_json::parse(line);
    ChatOptions o;
    o.add_generation_prompt = j.value("add_generation_prompt", false);
    o.continue_final_message = j.value("continue_final_message", false);
    EXPECT_EQ(t.render(j["messages"], o), j["rendered"].get<std::string>()) << line;
    ++cases;
  }
  EXPECT_GE(cases, 4);
}
INSTANTIATE_TEST_SUITE_P(ChatTemplate, RealTemplates, ::testing::Values("llama3", "qwen3"));

// Blank handling at tag edges, each string checked against jinja2 3.1 under
// trim_blocks and lstrip_blocks.
TEST(Jinja, BlanksAtTagEdgesAsJinja2LeavesThem) {
  EXPECT_EQ(render("  {% if true %}\n  x\n  {% endif %}\n{{ 1.0 }} {{ 1e20 }} {{ [1,'a',none] }} {{ {'a':1} }}\n"),
            "  x\n1.0 1e+20 [1, 'a', None] {'a': 1}");
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif %}  c"), "ab  c");
  EXPECT_EQ(render("a\n  {%+ if true %}b{% endif +%}\nc"), "a\n  b\nc");
  EXPECT_EQ(render("x {{- ' y ' -}} z\n{# note #}\nw"), "x y z\nw");
  EXPECT_EQ(render("{% raw %}{{ kept }}{% endraw %}"), "{{ kept }}");
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none }}|{{ 7 // -2 }}|{{ -7 % 3 }}|{{ 0.1 + 0.2 }}|{{ 1e16 }}|{{ 12345.678 }}"),
            "a1None|-4|2|0.30000000000000004|1e+16|12345.678");
}

TEST(Jinja, LoopScopesAsJinja2KeepsThem) {
  // `set` inside a loop body lasts one iteration and never leaks out; a
  // namespace carries state across.
  EXPECT_EQ(render("{% set x = 'top' %}{% for i in range(3) %}{% if i == 1 %}{% set x = 'a' %}{% endif %}[{{ x }}]{% endfor %}{{ x }}"),
            "[top][a][top]top");
  EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"), "6");
  EXPECT_EQ(render("{% for i in range(9) %}{% if i is odd %}{% continue %}{% endif %}{% if i > 5 %}{% break %}{% endif %}{{ i }}{% endfor %}"),
            "024");
  EXPECT_EQ(render("{% for x in [] %}y{% else %}empty{% endfor %}"), "empty");
}

TEST(Jinja, MethodsCountCodePointsAsPython) {
  ordered_json c = {{"s", "Zürich 😀 "}};
  EXPECT_EQ(render("{{ s | length }} {{ s[:3] }} {{ s[::-1] | trim }} {{ s.strip() }}|", c), "9 Zür 😀 hcirüZ Zürich 😀|");
}

// Found by the parity test: Python's repr escapes what str.isprintable()
// rejects (U+2028, U+00A0, a lone U+200B...), and upper() maps non-ASCII
// letters with Unicode's full mappings.
TEST(Jinja, ReprAndCaseFollowPythonBeyondAscii) {
  EXPECT_EQ(render("{{ ['a\u2028b', 'n\u00a0b', 'z\u200bw', 'é😀', '\x7f'] }}"),
            "['a\\u2028b', 'n\\xa0b', 'z\\u200bw', 'é😀', '\\x7f']");
  EXPECT_EQ(render("{{ 'zürich straße'.upper() }} {{ 'élan VITAL' | capitalize }}"), "ZÜRICH STRASSE Élan vital");
}

TEST(ChatTemplate, RefusesWhatItCannotRenderNamingTheConstructAndLine) {
  std::string e = error_of([] { ChatTemplate("ok\n{% include 'other.jinja' %}"); });
  EXPECT_NE(e.find("include"), std::string::npos) << e;
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;

  e = error_of([] { ChatTemplate("{{ messages | shuffle }}").render(ordered_json::array()); });
  EXPECT_NE(e.find("unknown filter 'shuffle'"), std::string::npos) << e;
  EXPECT_NE(e.find("line 1"), std::string::npos) << e;

  e = error_of([] { ChatTemplate("{% if x %}never closed"); });
  EXPECT_NE(e.find("endif"), std::string::npos) << e;
  e = error_of([] { ChatTemplate("{{ 'unterminated }}"); });
  EXPECT_NE(e.find("never closed"), std::string::npos) << e;

  e = error_of([] { ChatTemplate("{{ raise_exception('roles must alternate') }}").render(ordered_json::array()); });
  EXPECT_NE(e.find("roles must alternate"), std::string::npos) << e;

  // Numbers past int64, as a literal or an index, are the template's error
  // (chat_template_fuzz found the index escaping as std::out_of_range).
  for (const char* source : {"{{ messages.99999999999999999999 }}", "{{ 99999999999999999999 }}"}) {
    e = error_of([&] { ChatTemplate(source).render(ordered_json::array()); });
    EXPECT_NE(e.find("number '99999999999999999999' is out of range"), std::string::npos) << source << ": " << e;
  }
  jinja::Template huge_index("{{ xs | map(attribute='99999999999999999999') | list | length }}", "t");
  EXPECT_EQ(huge_index.render(ordered_json{{"xs", ordered_json::parse("[[1], [2]]")}}, {}, jinja::Limits{}), "2");
}

TEST(ChatTemplate, ContinueFinalMessageEndsAtTheMessageAndExcludesAGenerationPrompt) {
  ChatTemplate t("{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}</{{ m.role }}>{% endfor %}");
  ordered_json messages = ordered_json::parse(R"([{"role": "user", "content": "Q"}, {"role": "assistant", "content": "Step one. "}])");
  ChatOptions o;
  o.continue_final_message = true;
  EXPECT_EQ(t.render(messages, o), "<user>Q</user><assistant>Step one.");
  o.add_generation_prompt = true;
  EXPECT_NE(error_of([&] { t.render(messages, o); }).find("exclude"), std::string::npos);

  ChatTemplate drops("{% for m in messages %}{{ m.role }}{% endfor %}");
  o.add_generation_prompt = false;
  EXPECT_NE(error_of([&] { drops.render(messages, o); }).find("does not appear"), std::string::npos);
}

TEST(ChatTemplate, BoundsTheWorkOfAHostileTemplate) {
  jinja::Limits limits;
  limits.max_output = 1000;
  jinja::Template flood("{% for i in range(100000) %}xxxxxxxxxx{% endfor %}", "t");
  EXPECT_THROW(flood.render(ordered_json::object(), {}, limits), jinja::TemplateError);
  limits = {};
  limits.max_iterations = 100;
  jinja::Template loops("{% for i in range(10) %}{% for j in range(20) %}{% endfor %}{% endfor %}", "t");
  EXPECT_THROW(loops.render(ordered_json::object(), {}, limits), jinja::TemplateError);
}

TEST(ChatTemplate, LoadsFromAFolderOrAnOverrideFile) {
  testing::TempDir dir;
  testing::write_file(dir / "tokenizer_config.json",
                      R"({"bos_token": {"content": "<s>"}, "eos_token": "</s>", "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "{{ bos_token }}D{{ eos_token }}"}]})");
  EXPECT_TRUE(has_chat_template(dir.path()));
  EXPECT_EQ(load_chat_template(dir.path()).render(ordered_json::array()), "<s>D</s>");
  testing::write_file(dir / "other.jinja", "O{{ messages | length }}");
  EXPECT_EQ(load_chat_template(dir.path(), dir / "other.jinja").render(ordered_json::array()), "O0");
  testing::write_file(dir / "chat_template.jinja", "J");
  EXPECT_EQ(load_chat_template(dir.path()).render(ordered_json::array()), "J");

  testing::TempDir empty;
  EXPECT_FALSE(has_chat_template(empty.path()));
  EXPECT_NE(error_of([&] { load_chat_template(empty.path()); }).find("--chat-template"), std::string::npos);
}

}  // namespace
}  // namespace steper::text
