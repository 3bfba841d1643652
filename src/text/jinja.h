// A Jinja2 engine for chat templates: the subset that Hugging Face chat
// templates use, with Hugging Face's environment (trim_blocks, lstrip_blocks,
// loopcontrols, no trailing newline kept), rendering byte for byte what
// jinja2 renders. Values follow Python's semantics (str(), ==, truthiness),
// since that is what a template's author saw.
//
// What it does not implement (template inheritance, includes, call blocks,
// filter blocks, custom tests) is refused at parse time with an error that
// names the construct and its line, never silently skipped.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "steper/error.h"

namespace steper::text::jinja {

// A template that cannot be parsed or rendered. The message names the
// construct and the template line.
class TemplateError : public InputError {
 public:
  using InputError::InputError;
};

struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion-ordered, as Python's dict
struct Args;
using Function = std::function<Value(Args&)>;

struct Value {
  enum class Type { undefined, none, boolean, integer, real, string, list, dict, function };
  Type type = Type::undefined;
  bool b = false;
  std::int64_t i = 0;
  double d = 0;
  std::string s;                   // string; for undefined, the name that was looked up
  std::shared_ptr<List> list;      // list (tuples too)
  std::shared_ptr<Dict> dict;      // dict; a namespace() is a dict with `is_namespace`
  std::shared_ptr<Function> fn;    // function
  bool is_namespace = false;

  static Value undefined(std::string name = {});
  static Value none();
  static Value boolean(bool v);
  static Value integer(std::int64_t v);
  static Value real(double v);
  static Value string(std::string v);
  static Value make_list(List v = {});
  static Value make_dict(Dict v = {});
  static Value function(Function f);
  static Value from_json(const nlohmann::ordered_json& j);
  nlohmann::ordered_json to_json() const;  // throws TemplateError for functions and undefined

  bool is_undefined() const { return type == Type::undefined; }
  bool is_number() const { return type == Type::integer || type == Type::real || type == Type::boolean; }
  bool truthy() const;
  double as_double() const;
  // The dict's value under `key`, or nullptr.
  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value v);  // dicts only
};

// Python's str() and repr() of a value ("None", "True", "['a', 1]").
std::string str(const Value& v);
std::string repr(const Value& v);
bool equal(const Value& a, const Value& b);
// Python's ordering; throws TemplateError for types it does not order.
int compare(const Value& a, const Value& b);
// The items a for loop goes over: a list's items, a dict's keys, a string's
// characters. Throws TemplateError for what cannot be iterated.
List iterate(const Value& v);
std::string type_name(const Value& v);

struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  // The i-th positional argument or the keyword one named `name`, or `fallback`.
  Value get(std::size_t i, const char* name, Value fallback = Value::undefined()) const;
};

struct Node;  // the parsed template (jinja_parse.cc)

struct Limits {
  std::size_t max_output = 64u << 20;        // bytes a render may write
  std::uint64_t max_iterations = 10000000;   // loop iterations a render may run
};

class Template {
 public:
  // Parses `source`. `name` prefixes every error ("chat template", a path).
  Template(const std::string& source, std::string name);
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // Renders with the variables of `context` (a JSON object) and `globals`
  // (functions such as raise_exception) in scope.
  std::string render(const nlohmann::ordered_json& context, const Dict& globals = {},
                     const Limits& limits = {}) const;

 private:
  std::unique_ptr<Node> root_;
  std::string name_;
};

}  // namespace steper::text::jinja
