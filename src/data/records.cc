// Parsing and printing of steper's own record types, and the typed field
// helpers that every parser of outside input uses for its error messages.
#include "steper/data.h"

namespace steper::data {
namespace {

std::string field_path(const std::string& path, const char* field) {
  return path.empty() ? std::string(field) : path + "." + field;
}

const char* type_name(const json& j) {
  return j.type_name();  // "null", "number", "string", "array", ...
}

const json* find(const json& j, const char* field, const std::string& path) {
  if (!j.is_object()) {
    throw FieldError(path.empty() ? "(record)" : path,
                     std::string("expected a JSON object, got ") + type_name(j));
  }
  auto it = j.find(field);
  return it == j.end() ? nullptr : &*it;
}

}  // namespace

const std::string& require_string(const json& j, const char* field, const std::string& path) {
  const json* v = find(j, field, path);
  if (!v) throw FieldError(field_path(path, field), "missing");
  if (!v->is_string()) {
    throw FieldError(field_path(path, field), std::string("expected a string, got ") + type_name(*v));
  }
  return v->get_ref<const std::string&>();
}

const json& require_array(const json& j, const char* field, const std::string& path) {
  const json* v = find(j, field, path);
  if (!v) throw FieldError(field_path(path, field), "missing");
  if (!v->is_array()) {
    throw FieldError(field_path(path, field), std::string("expected an array, got ") + type_name(*v));
  }
  return *v;
}

std::vector<std::string> require_string_array(const json& j, const char* field, const std::string& path) {
  const json& a = require_array(j, field, path);
  std::vector<std::string> out;
  out.reserve(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_string()) {
      throw FieldError(field_path(path, field) + "[" + std::to_string(i) + "]",
                       std::string("expected a string, got ") + type_name(a[i]));
    }
    out.push_back(a[i].get<std::string>());
  }
  return out;
}

std::string optional_string(const json& j, const char* field, const std::string& path) {
  const json* v = find(j, field, path);
  if (!v || v->is_null()) return {};
  if (!v->is_string()) {
    throw FieldError(field_path(path, field), std::string("expected a string, got ") + type_name(*v));
  }
  return v->get<std::string>();
}

std::vector<std::string> optional_string_array(const json& j, const char* field, const std::string& path) {
  const json* v = find(j, field, path);
  if (!v || v->is_null()) return {};
  return require_string_array(j, field, path);
}

bool optional_bool(const json& j, const char* field, const std::string& path, bool fallback) {
  const json* v = find(j, field, path);
  if (!v || v->is_null()) return fallback;
  if (!v->is_boolean()) {
    throw FieldError(field_path(path, field), std::string("expected true or false, got ") + type_name(*v));
  }
  return v->get<bool>();
}

Passage parse_passage(const json& j) {
  return Passage{require_string(j, "id"), optional_string(j, "title"), require_string(j, "text")};
}

Question parse_question(const json& j) {
  Question q;
  q.id = require_string(j, "id");
  q.question = require_string(j, "question");
  q.answers = require_string_array(j, "answers");
  q.type = optional_string(j, "type");
  q.supporting_titles = optional_string_array(j, "supporting_titles");
  q.supporting_ids = optional_string_array(j, "supporting_ids");
  q.dataset = optional_string(j, "dataset");
  return q;
}

Trace parse_trace(const json& j) {
  Trace t;
  t.id = require_string(j, "id");
  t.question = require_string(j, "question");
  t.answers = require_string_array(j, "answers");
  t.strategy = optional_string(j, "strategy");
  const json& steps = require_array(j, "steps");
  for (std::size_t i = 0; i < steps.size(); ++i) {
    std::string path = "steps[" + std::to_string(i) + "]";
    Step s;
    s.query = require_string(steps[i], "query", path);
    s.retrieved = require_string_array(steps[i], "retrieved", path);
    s.output = require_string(steps[i], "output", path);
    t.steps.push_back(std::move(s));
  }
  t.prediction = require_string(j, "prediction");
  t.stop = require_string(j, "stop");
  if (t.stop != "answer" && t.stop != "max_steps" && t.stop != "error") {
    throw FieldError("stop", "expected \"answer\", \"max_steps\" or \"error\", got \"" + t.stop + "\"");
  }
  if (j.contains("error")) t.error = require_string(j, "error");
  if (j.contains("run") && !j["run"].is_null()) {
    if (!j["run"].is_object()) throw FieldError("run", std::string("expected an object, got ") + j["run"].type_name());
    t.run = j["run"];
  }
  return t;
}

json to_json(const Passage& p) { return json{{"id", p.id}, {"title", p.title}, {"text", p.text}}; }

json to_json(const Question& q) {
  json j{{"id", q.id}, {"question", q.question}, {"answers", q.answers}};
  if (!q.type.empty()) j["type"] = q.type;
  if (!q.supporting_titles.empty()) j["supporting_titles"] = q.supporting_titles;
  if (!q.supporting_ids.empty()) j["supporting_ids"] = q.supporting_ids;
  if (!q.dataset.empty()) j["dataset"] = q.dataset;
  return j;
}

json to_json(const Step& s) {
  return json{{"query", s.query}, {"retrieved", s.retrieved}, {"output", s.output}};
}

json to_json(const Trace& t) {
  json steps = json::array();
  for (const Step& s : t.steps) steps.push_back(to_json(s));
  json j{{"id", t.id},           {"question", t.question},     {"answers", t.answers},
              {"strategy", t.strategy}, {"steps", std::move(steps)}, {"prediction", t.prediction},
              {"stop", t.stop}};
  if (!t.error.empty()) j["error"] = t.error;
  if (t.run.is_object()) j["run"] = t.run;
  return j;
}

std::vector<Question> read_questions(const std::string& path) {
  RecordReader<Question> reader(path, parse_question);
  std::vector<Question> out;
  Question q;
  while (reader.next(q)) out.push_back(std::move(q));
  return out;
}

}  // namespace steper::data
