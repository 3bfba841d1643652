// Operators, filters, tests, globals and methods with the meaning Python and
// jinja2 give them; Python's str methods are in jinja_strings.cc, tojson in
// jinja_json.cc. Strings are UTF-8, counted in code points as Python does.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "jinja_builtins.h"
#include "jinja_strings.h"
#include "unicode.h"

namespace steper::text::jinja {
namespace {

[[noreturn]] void fail(const std::string& what) { throw TemplateError(what); }

using py::capitalize;
using py::lower;
using py::split;
using py::starts_or_ends;
using py::strip;
using py::title;
using py::to_u32;
using py::to_utf8;
using py::upper;

std::int64_t to_int(const Value& v, const char* what) {
  if (v.type == Value::Type::integer) return v.i;
  if (v.type == Value::Type::boolean) return v.b;
  fail(std::string(what) + " must be an integer, not " + type_name(v));
}

std::int64_t length(const Value& v) {
  switch (v.type) {
    case Value::Type::undefined: return 0;
    case Value::Type::string: return static_cast<std::int64_t>(decode_utf8(v.s).cps.size());
    case Value::Type::list: return static_cast<std::int64_t>(v.list->size());
    case Value::Type::dict: return static_cast<std::int64_t>(v.dict->size());
    default: fail(type_name(v) + " has no length");
  }
}

Value number_op(const std::string& op, const Value& a, const Value& b) {
  bool ints = a.type != Value::Type::real && b.type != Value::Type::real;
  std::int64_t x = a.type == Value::Type::boolean ? a.b : a.i, y = b.type == Value::Type::boolean ? b.b : b.i;
  double p = a.as_double(), q = b.as_double();
  std::int64_t r = 0;
  if (op == "+") {
    if (!ints) return Value::real(p + q);
    if (__builtin_add_overflow(x, y, &r)) fail("integer overflow in +");
    return Value::integer(r);
  }
  if (op == "-") {
    if (!ints) return Value::real(p - q);
    if (__builtin_sub_overflow(x, y, &r)) fail("integer overflow in -");
    return Value::integer(r);
  }
  if (op == "*") {
    if (!ints) return Value::real(p * q);
    if (__builtin_mul_overflow(x, y, &r)) fail("integer overflow in *");
    return Value::integer(r);
  }
  if (op == "/") {
    if (q == 0) fail("division by zero");
    return Value::real(p / q);
  }
  if (op == "//" || op == "%") {
    if (q == 0) fail(op == "//" ? "integer division by zero" : "modulo by zero");
    if (ints) {
      if (x == INT64_MIN && y == -1) fail("integer overflow in " + op);
      std::int64_t d = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --d;
        m += y;
      }
      return Value::integer(op == "//" ? d : m);
    }
    double d = std::floor(p / q);
    return op == "//" ? Value::real(d) : Value::real(p - d * q);
  }
  if (op == "**") {
    if (ints && y >= 0) {
      std::int64_t acc = 1;
      for (std::int64_t k = 0; k < y; ++k) {
        if (__builtin_mul_overflow(acc, x, &acc)) fail("integer overflow in **");
      }
      return Value::integer(acc);
    }
    return Value::real(std::pow(p, q));
  }
  fail("unknown operator " + op);
}

Value repeat(const Value& seq, std::int64_t n) {
  if (n < 0) n = 0;
  if (seq.type == Value::Type::string) {
    if (n > 0 && seq.s.size() * static_cast<std::size_t>(n) > (64u << 20)) fail("a repeated string over 64 MiB");
    std::string out;
    for (std::int64_t k = 0; k < n; ++k) out += seq.s;
    return Value::string(std::move(out));
  }
  if (n > 0 && seq.list->size() * static_cast<std::size_t>(n) > (1u << 24)) fail("a repeated list over 16M items");
  List out;
  for (std::int64_t k = 0; k < n; ++k) out.insert(out.end(), seq.list->begin(), seq.list->end());
  return Value::make_list(std::move(out));
}

Value attribute_of(const Value& v, const std::string& path) {
  Value cur = v;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const Value* next = cur.find(part);
    // An index of more than 18 digits is past any list (and past stoul).
    if (!next && cur.type == Value::Type::list && !part.empty() && part.size() <= 18 && std::all_of(part.begin(), part.end(), ::isdigit)) {
      std::size_t i = std::stoul(part);
      cur = i < cur.list->size() ? (*cur.list)[i] : Value::undefined(part);
    } else {
      cur = next ? *next : Value::undefined(part);
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return cur;
}

// select/reject/selectattr/rejectattr: the items whose test (default:
// truth) gives `keep`.
Value select_items(const Value& v, const Args& args, bool by_attribute, bool keep) {
  List out;
  std::size_t k = 0;
  std::string attr;
  if (by_attribute) {
    Value a = args.get(0, "attribute");
    if (a.type != Value::Type::string) fail("selectattr/rejectattr need an attribute name");
    attr = a.s;
    k = 1;
  }
  Value test = k < args.positional.size() ? args.positional[k] : Value::undefined();
  Args test_args;
  for (std::size_t i = k + 1; i < args.positional.size(); ++i) test_args.positional.push_back(args.positional[i]);
  for (const auto& item : iterate(v)) {
    Value x = by_attribute ? attribute_of(item, attr) : item;
    bool ok = test.is_undefined() ? x.truthy() : apply_test(str(test), x, test_args);
    if (ok == keep) out.push_back(item);
  }
  return Value::make_list(std::move(out));
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

Value binary_op(const std::string& op, const Value& a, const Value& b, int) {
  if (op == "~") return Value::string(str(a) + str(b));
  if (a.is_number() && b.is_number()) return number_op(op, a, b);
  if (op == "+") {
    if (a.type == Value::Type::string && b.type == Value::Type::string) return Value::string(a.s + b.s);
    if (a.type == Value::Type::list && b.type == Value::Type::list) {
      List l = *a.list;
      l.insert(l.end(), b.list->begin(), b.list->end());
      return Value::make_list(std::move(l));
    }
  }
  if (op == "*") {
    if ((a.type == Value::Type::string || a.type == Value::Type::list) && (b.type == Value::Type::integer || b.type == Value::Type::boolean)) return repeat(a, to_int(b, "*"));
    if ((b.type == Value::Type::string || b.type == Value::Type::list) && (a.type == Value::Type::integer || a.type == Value::Type::boolean)) return repeat(b, to_int(a, "*"));
  }
  fail("unsupported operand types for " + op + ": " + type_name(a) + " and " + type_name(b));
}

bool contains(const Value& container, const Value& item) {
  switch (container.type) {
    case Value::Type::undefined: return false;
    case Value::Type::string:
      if (item.type != Value::Type::string) fail("'in <string>' needs a string on the left, not " + type_name(item));
      return container.s.find(item.s) != std::string::npos;
    case Value::Type::list:
      for (const auto& x : *container.list) {
        if (equal(x, item)) return true;
      }
      return false;
    case Value::Type::dict: return item.type == Value::Type::string && container.find(item.s) != nullptr;
    default: fail("'in' needs a string, list or dict on the right, not " + type_name(container));
  }
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  List items = obj.type == Value::Type::list ? *obj.list : obj.type == Value::Type::string ? iterate(obj) : List{};
  if (obj.type != Value::Type::list && obj.type != Value::Type::string) fail("cannot slice " + type_name(obj));
  const auto n = static_cast<std::int64_t>(items.size());
  std::int64_t st = step.type == Value::Type::none ? 1 : to_int(step, "a slice step");
  if (st == 0) fail("a slice step cannot be zero");
  auto norm = [&](const Value& v, std::int64_t dflt, std::int64_t lo, std::int64_t hi) {
    if (v.type == Value::Type::none) return dflt;
    std::int64_t i = to_int(v, "a slice index");
    if (i < 0) i += n;
    return std::clamp(i, lo, hi);
  };
  List out;
  if (st > 0) {
    std::int64_t b = norm(start, 0, 0, n), e = norm(stop, n, 0, n);
    for (std::int64_t i = b; i < e; i += st) out.push_back(items[static_cast<std::size_t>(i)]);
  } else {
    std::int64_t b = norm(start, n - 1, -1, n - 1), e = norm(stop, -1, -1, n - 1);
    if (stop.type != Value::Type::none && to_int(stop, "a slice index") < -n) e = -1;
    for (std::int64_t i = b; i > e; i += st) out.push_back(items[static_cast<std::size_t>(i)]);
  }
  if (obj.type == Value::Type::string) {
    std::string s;
    for (const auto& c : out) s += c.s;
    return Value::string(std::move(s));
  }
  return Value::make_list(std::move(out));
}

Value apply_filter(const std::string& name, const Value& v, const Args& a) {
  if (name == "trim") return Value::string(strip(str(v), a.get(0, "chars", Value::none()), true, true));
  if (name == "length" || name == "count") return Value::integer(length(v));
  if (name == "tojson") {
    Value indent = a.get(0, "indent", Value::none());
    int n = indent.type == Value::Type::none ? -1 : static_cast<int>(to_int(indent, "tojson's indent"));
    return Value::string(python_json(v, n, a.get(3, "sort_keys", Value::boolean(false)).truthy()));
  }
  if (name == "string") return Value::string(str(v));
  if (name == "upper") return Value::string(upper(str(v)));
  if (name == "lower") return Value::string(lower(str(v)));
  if (name == "capitalize") return Value::string(capitalize(str(v)));
  if (name == "title") return Value::string(title(str(v)));
  if (name == "safe") return v;
  if (name == "e" || name == "escape") return Value::string(html_escape(str(v)));
  if (name == "default" || name == "d") {
    bool boolean = a.get(1, "boolean", Value::boolean(false)).truthy();
    if (v.is_undefined() || (boolean && !v.truthy())) return a.get(0, "default_value", Value::string(""));
    return v;
  }
  if (name == "join") {
    Value sep = a.get(0, "d", Value::string(""));
    Value attr = a.get(1, "attribute", Value::none());
    std::string out;
    bool first = true;
    for (const auto& x : iterate(v)) {
      if (!first) out += str(sep);
      first = false;
      out += str(attr.type == Value::Type::string ? attribute_of(x, attr.s) : x);
    }
    return Value::string(std::move(out));
  }
  if (name == "first" || name == "last") {
    List items = iterate(v);
    if (items.empty()) return Value::undefined(name);
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") return Value::make_list(iterate(v));
  if (name == "reverse") {
    if (v.type == Value::Type::string) {
      std::u32string u = to_u32(v.s);
      std::reverse(u.begin(), u.end());
      return Value::string(to_utf8(u));
    }
    List items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::make_list(std::move(items));
  }
  if (name == "items" || name == "dictsort") {
    if (v.is_undefined()) return Value::make_list();
    if (v.type != Value::Type::dict) fail("'" + name + "' needs a dict, not " + type_name(v));
    List out;
    for (const auto& [k, x] : *v.dict) out.push_back(Value::make_list({Value::string(k), x}));
    if (name == "dictsort") std::stable_sort(out.begin(), out.end(), [](const Value& p, const Value& q) { return (*p.list)[0].s < (*q.list)[0].s; });
    return Value::make_list(std::move(out));
  }
  if (name == "replace") {
    Value count = a.get(2, "count", Value::none());
    return Value::string(py::replace(str(v), str(a.get(0, "old")), str(a.get(1, "new")),
                                     count.type == Value::Type::none ? -1 : to_int(count, "replace's count")));
  }
  if (name == "int") {
    if (v.type == Value::Type::integer || v.type == Value::Type::boolean) return Value::integer(to_int(v, "int"));
    if (v.type == Value::Type::real) return Value::integer(static_cast<std::int64_t>(v.d));
    try {
      return Value::integer(std::stoll(strip(str(v), Value::none(), true, true)));
    } catch (const std::exception&) {
      return a.get(0, "default", Value::integer(0));
    }
  }
  if (name == "float") {
    if (v.is_number()) return Value::real(v.as_double());
    try {
      return Value::real(std::stod(str(v)));
    } catch (const std::exception&) {
      return a.get(0, "default", Value::real(0));
    }
  }
  if (name == "abs") {
    if (v.type == Value::Type::integer) return Value::integer(v.i < 0 ? -v.i : v.i);
    if (v.is_number()) return Value::real(std::fabs(v.as_double()));
    fail("abs needs a number, not " + type_name(v));
  }
  if (name == "round") {
    int precision = static_cast<int>(to_int(a.get(0, "precision", Value::integer(0)), "round's precision"));
    double scale = std::pow(10.0, precision);
    return Value::real(std::nearbyint(v.as_double() * scale) / scale);
  }
  if (name == "indent") {
    int width = static_cast<int>(to_int(a.get(0, "width", Value::integer(4)), "indent's width"));
    bool first = a.get(1, "first", Value::boolean(false)).truthy();
    bool blank = a.get(2, "blank", Value::boolean(false)).truthy();
    std::string pad(static_cast<std::size_t>(std::max(width, 0)), ' ');
    std::string s = str(v), out;
    std::size_t start = 0;
    bool first_line = true;
    while (true) {
      std::size_t nl = s.find('\n', start);
      std::string line = s.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      bool indent_it = first_line ? first : (blank || !line.empty());
      out += (indent_it ? pad : "") + line;
      if (nl == std::string::npos) break;
      out += '\n';
      start = nl + 1;
      first_line = false;
    }
    return Value::string(std::move(out));
  }
  if (name == "map") {
    Value attr = a.get(99, "attribute");
    List out;
    Args rest;
    if (attr.is_undefined()) {
      if (a.positional.empty()) fail("map needs a filter name or attribute=");
      for (std::size_t k = 1; k < a.positional.size(); ++k) rest.positional.push_back(a.positional[k]);
    }
    for (const auto& x : iterate(v)) {
      if (!attr.is_undefined()) {
        Value got = attribute_of(x, str(attr));
        if (got.is_undefined()) got = a.get(99, "default", got);
        out.push_back(got);
      } else {
        out.push_back(apply_filter(str(a.positional[0]), x, rest));
      }
    }
    return Value::make_list(std::move(out));
  }
  if (name == "select") return select_items(v, a, false, true);
  if (name == "reject") return select_items(v, a, false, false);
  if (name == "selectattr") return select_items(v, a, true, true);
  if (name == "rejectattr") return select_items(v, a, true, false);
  if (name == "unique") {
    List out;
    for (const auto& x : iterate(v)) {
      if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return equal(x, y); })) out.push_back(x);
    }
    return Value::make_list(std::move(out));
  }
  if (name == "sort") {
    List items = iterate(v);
    bool reverse = a.get(0, "reverse", Value::boolean(false)).truthy();
    Value attr = a.get(2, "attribute", Value::none());
    auto key = [&](const Value& x) { return attr.type == Value::Type::string ? attribute_of(x, attr.s) : x; };
    std::stable_sort(items.begin(), items.end(), [&](const Value& p, const Value& q) { return compare(key(p), key(q)) < 0; });
    if (reverse) std::reverse(items.begin(), items.end());
    return Value::make_list(std::move(items));
  }
  if (name == "sum") {
    Value acc = a.get(1, "start", Value::integer(0));
    for (const auto& x : iterate(v)) acc = binary_op("+", acc, x, 0);
    return acc;
  }
  if (name == "min" || name == "max") {
    List items = iterate(v);
    if (items.empty()) return Value::undefined(name);
    Value best = items[0];
    for (const auto& x : items) {
      int c = compare(x, best);
      if (name == "min" ? c < 0 : c > 0) best = x;
    }
    return best;
  }
  if (name == "wordcount") return Value::integer(static_cast<std::int64_t>(split(str(v), Value::none(), -1, false).size()));
  fail("unknown filter '" + name + "'");
}

bool apply_test(const std::string& name, const Value& v, const Args& a) {
  using T = Value::Type;
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.type == T::none;
  if (name == "string") return v.type == T::string;
  if (name == "number") return v.type == T::integer || v.type == T::real || v.type == T::boolean;
  if (name == "integer") return v.type == T::integer;
  if (name == "float") return v.type == T::real;
  if (name == "boolean") return v.type == T::boolean;
  if (name == "true") return v.type == T::boolean && v.b;
  if (name == "false") return v.type == T::boolean && !v.b;
  if (name == "mapping") return v.type == T::dict;
  if (name == "sequence") return v.type == T::list || v.type == T::string || v.type == T::dict;
  if (name == "iterable") return v.type == T::list || v.type == T::string || v.type == T::dict;
  if (name == "callable") return v.type == T::function;
  if (name == "odd") return to_int(v, "'odd'") % 2 != 0;
  if (name == "even") return to_int(v, "'even'") % 2 == 0;
  if (name == "divisibleby") {
    std::int64_t d = to_int(a.get(0, "num"), "divisibleby's argument");
    if (d == 0) fail("divisibleby 0");
    return to_int(v, "'divisibleby'") % d == 0;
  }
  if (name == "lower") return v.type == T::string && lower(v.s) == v.s;
  if (name == "upper") return v.type == T::string && upper(v.s) == v.s;
  Value other = a.get(0, "other");
  if (name == "eq" || name == "equalto" || name == "==") return equal(v, other);
  if (name == "ne" || name == "!=") return !equal(v, other);
  if (name == "sameas") return v.type == other.type && equal(v, other);
  if (name == "lt" || name == "lessthan" || name == "<") return compare(v, other) < 0;
  if (name == "le" || name == "<=") return compare(v, other) <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">") return compare(v, other) > 0;
  if (name == "ge" || name == ">=") return compare(v, other) >= 0;
  if (name == "in") return contains(a.get(0, "seq"), v);
  fail("unknown test '" + name + "'");
}

bool has_method(const Value& obj, const std::string& name) {
  static const char* const string_methods[] = {"strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith",
                                               "upper", "lower", "title", "capitalize", "replace", "find", "rfind",
                                               "count", "join", "splitlines", "isdigit", "isalpha", "isspace"};
  static const char* const dict_methods[] = {"items", "keys", "values", "get"};
  if (obj.type == Value::Type::string) {
    return std::any_of(std::begin(string_methods), std::end(string_methods), [&](const char* m) { return name == m; });
  }
  if (obj.type == Value::Type::dict && !obj.is_namespace) {
    return std::any_of(std::begin(dict_methods), std::end(dict_methods), [&](const char* m) { return name == m; });
  }
  return false;
}

Value call_method(const Value& obj, const std::string& name, const Args& a) {
  if (obj.type == Value::Type::dict) {
    if (name == "get") {
      const Value key = a.get(0, "key");
      const Value* v = key.type == Value::Type::string ? obj.find(key.s) : nullptr;
      return v ? *v : a.get(1, "default", Value::none());
    }
    List out;
    for (const auto& [k, x] : *obj.dict) {
      if (name == "items") out.push_back(Value::make_list({Value::string(k), x}));
      else if (name == "keys") out.push_back(Value::string(k));
      else out.push_back(x);
    }
    return Value::make_list(std::move(out));
  }
  const std::string& s = obj.s;
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    return Value::string(strip(s, a.get(0, "chars", Value::none()), name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    Value max = a.get(1, "maxsplit", Value::integer(-1));
    return Value::make_list(split(s, a.get(0, "sep", Value::none()), to_int(max, "maxsplit"), name == "rsplit"));
  }
  if (name == "startswith" || name == "endswith") return Value::boolean(starts_or_ends(s, a.get(0, "prefix"), name == "startswith"));
  if (name == "upper") return Value::string(upper(s));
  if (name == "lower") return Value::string(lower(s));
  if (name == "title") return Value::string(title(s));
  if (name == "capitalize") return Value::string(capitalize(s));
  if (name == "replace") {
    Value count = a.get(2, "count", Value::integer(-1));
    return Value::string(py::replace(s, str(a.get(0, "old")), str(a.get(1, "new")), to_int(count, "replace's count")));
  }
  if (name == "find" || name == "rfind" || name == "count") {
    Value sub = a.get(0, "sub");
    if (sub.type != Value::Type::string) fail(name + "() needs a string");
    if (name == "count") {
      if (sub.s.empty()) return Value::integer(length(obj) + 1);
      std::int64_t n = 0;
      for (std::size_t at = s.find(sub.s); at != std::string::npos; at = s.find(sub.s, at + sub.s.size())) ++n;
      return Value::integer(n);
    }
    std::size_t at = name == "find" ? s.find(sub.s) : s.rfind(sub.s);
    if (at == std::string::npos) return Value::integer(-1);
    return Value::integer(static_cast<std::int64_t>(decode_utf8(s.substr(0, at)).cps.size()));
  }
  if (name == "join") {
    std::string out;
    bool first = true;
    for (const auto& x : iterate(a.get(0, "iterable"))) {
      if (x.type != Value::Type::string) fail("join() needs strings, found " + type_name(x));
      if (!first) out += s;
      first = false;
      out += x.s;
    }
    return Value::string(std::move(out));
  }
  if (name == "splitlines") {
    List out;
    std::size_t start = 0;
    while (start < s.size()) {
      std::size_t nl = s.find_first_of("\r\n", start);
      if (nl == std::string::npos) {
        out.push_back(Value::string(s.substr(start)));
        break;
      }
      out.push_back(Value::string(s.substr(start, nl - start)));
      start = nl + (s.compare(nl, 2, "\r\n") == 0 ? 2 : 1);
    }
    return Value::make_list(std::move(out));
  }
  auto all = [&](auto pred) {
    std::u32string u = to_u32(s);
    return Value::boolean(!u.empty() && std::all_of(u.begin(), u.end(), pred));
  };
  if (name == "isdigit") return all([](char32_t c) { return c >= '0' && c <= '9'; });
  if (name == "isalpha") return all([](char32_t c) { return is_letter(c); });
  if (name == "isspace") return all(py::space);
  fail("unknown method '" + name + "'");
}

Dict builtin_globals() {
  Dict g;
  g.emplace_back("range", Value::function([](Args& a) -> Value {
    std::int64_t start = 0, stop = 0, step = 1;
    if (a.positional.size() == 1) {
      stop = to_int(a.positional[0], "range's argument");
    } else if (a.positional.size() >= 2) {
      start = to_int(a.positional[0], "range's start");
      stop = to_int(a.positional[1], "range's stop");
      if (a.positional.size() > 2) step = to_int(a.positional[2], "range's step");
    } else {
      fail("range() needs 1 to 3 arguments");
    }
    if (step == 0) fail("range() step cannot be zero");
    List out;
    for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (out.size() >= (1u << 24)) fail("range() of over 16M items");
      out.push_back(Value::integer(i));
    }
    return Value::make_list(std::move(out));
  }));
  g.emplace_back("namespace", Value::function([](Args& a) -> Value {
    Value ns = Value::make_dict();
    ns.is_namespace = true;
    for (const auto& p : a.positional) {
      if (p.type != Value::Type::dict) fail("namespace() takes keyword arguments or a dict");
      for (const auto& [k, v] : *p.dict) ns.set(k, v);
    }
    for (const auto& [k, v] : a.keyword) ns.set(k, v);
    return ns;
  }));
  g.emplace_back("dict", Value::function([](Args& a) -> Value {
    Value d = Value::make_dict();
    for (const auto& [k, v] : a.keyword) d.set(k, v);
    return d;
  }));
  return g;
}

}  // namespace steper::text::jinja
