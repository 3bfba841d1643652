// Jinja's operators, filters, tests, globals and the Python methods templates
// call on strings, lists and dicts (jinja_builtins.cc). Errors are
// TemplateErrors without a line; the evaluator adds it.
#pragma once

#include <string>

#include "jinja.h"

namespace steper::text::jinja {

Value binary_op(const std::string& op, const Value& a, const Value& b, int line);
// Python's `item in container`.
bool contains(const Value& container, const Value& item);
// Python's obj[start:stop:step] for lists and strings (none for a missing part).
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

Value apply_filter(const std::string& name, const Value& v, const Args& args);
bool apply_test(const std::string& name, const Value& v, const Args& args);
bool has_method(const Value& obj, const std::string& name);
Value call_method(const Value& obj, const std::string& name, const Args& args);
// range, namespace, dict.
Dict builtin_globals();

// Python's str.strip()/lstrip()/rstrip() with no argument: Unicode white
// space and the separators U+001C..U+001F, as transformers strips a final
// message for continue_final_message.
std::string python_strip(const std::string& s, bool left, bool right);

// Python's json.dumps(v, ensure_ascii=False, indent=indent, sort_keys=...)
// with its default separators: what transformers' `tojson` filter writes.
std::string python_json(const Value& v, int indent = -1, bool sort_keys = false);

}  // namespace steper::text::jinja
