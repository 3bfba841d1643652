// The record of what produced a trace, and the check that a traces file
// holds one run's traces.
#include <filesystem>

#include "steper/reason.h"

namespace steper::reason {

RunSettings run_settings(const StrategyOptions& o, const retrieve::Retriever* retriever) {
  RunSettings r;
  r.strategy = strategy_name(o.strategy);
  r.k = o.k;
  r.max_steps = o.max_steps;
  r.max_passages = o.max_passages;
  r.marker = o.marker;
  r.ircot_protocol = o.ircot_protocol;
  r.max_passage_words = o.templates.max_passage_words;
  r.prompts = o.templates.folder;
  r.templates = o.templates.fingerprint();
  r.format = o.format.describe();
  if (retriever && o.strategy != Strategy::noretrieval) {
    r.index = retriever->spec();
    // A local folder is recorded absolute, so stepwise finds it from any
    // working directory; remote and multi-shard specs stay as given.
    if (r.index.find("://") == std::string::npos && r.index.find(',') == std::string::npos) {
      r.index = std::filesystem::absolute(r.index).lexically_normal().string();
      if (r.index.size() > 1 && r.index.back() == '/') r.index.pop_back();
    }
  }
  return r;
}

data::json to_json(const RunSettings& r) {
  return data::json{{"strategy", r.strategy},
                    {"k", r.k},
                    {"max_steps", r.max_steps},
                    {"max_passages", r.max_passages},
                    {"marker", r.marker},
                    {"ircot_protocol", r.ircot_protocol},
                    {"max_passage_words", r.max_passage_words},
                    {"prompts", r.prompts},
                    {"templates", r.templates},
                    {"format", r.format},
                    {"index", r.index}};
}

RunSettings parse_run_settings(const data::json& j) {
  if (!j.is_object()) throw FieldError("run", "not an object");
  auto integer = [&](const char* field) {
    if (!j.contains(field) || !j[field].is_number_integer()) throw FieldError(std::string("run.") + field, "missing or not an integer");
    return j[field].get<int>();
  };
  auto string = [&](const char* field) { return data::require_string(j, field, "run"); };
  RunSettings r;
  r.strategy = string("strategy");
  r.k = integer("k");
  r.max_steps = integer("max_steps");
  r.max_passages = integer("max_passages");
  r.marker = string("marker");
  if (!j.contains("ircot_protocol") || !j["ircot_protocol"].is_boolean()) throw FieldError("run.ircot_protocol", "missing or not true/false");
  r.ircot_protocol = j["ircot_protocol"].get<bool>();
  r.max_passage_words = integer("max_passage_words");
  r.prompts = string("prompts");
  r.templates = string("templates");
  r.format = string("format");
  r.index = string("index");
  return r;
}

std::string first_difference(const RunSettings& a, const RunSettings& b) {
  const data::json x = to_json(a), y = to_json(b);
  for (const auto& [field, value] : x.items()) {
    if (value != y[field]) return field + " " + value.dump() + " against " + y[field].dump();
  }
  return "";
}

}  // namespace steper::reason
