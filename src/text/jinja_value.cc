// Values with Python's meaning: what str(), repr(), ==, < and truth give,
// since a template's author wrote it against Python.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "jinja.h"
#include "unicode.h"

namespace steper::text::jinja {

Value Value::undefined(std::string name) {
  Value v;
  v.s = std::move(name);
  return v;
}
Value Value::none() {
  Value v;
  v.type = Type::none;
  return v;
}
Value Value::boolean(bool b) {
  Value v;
  v.type = Type::boolean;
  v.b = b;
  return v;
}
Value Value::integer(std::int64_t i) {
  Value v;
  v.type = Type::integer;
  v.i = i;
  return v;
}
Value Value::real(double d) {
  Value v;
  v.type = Type::real;
  v.d = d;
  return v;
}
Value Value::string(std::string s) {
  Value v;
  v.type = Type::string;
  v.s = std::move(s);
  return v;
}
Value Value::make_list(List l) {
  Value v;
  v.type = Type::list;
  v.list = std::make_shared<List>(std::move(l));
  return v;
}
Value Value::make_dict(Dict d) {
  Value v;
  v.type = Type::dict;
  v.dict = std::make_shared<Dict>(std::move(d));
  return v;
}
Value Value::function(Function f) {
  Value v;
  v.type = Type::function;
  v.fn = std::make_shared<Function>(std::move(f));
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return none();
    case nlohmann::ordered_json::value_t::boolean: return boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return integer(j.get<std::int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      auto u = j.get<std::uint64_t>();
      return u > static_cast<std::uint64_t>(INT64_MAX) ? real(static_cast<double>(u)) : integer(static_cast<std::int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return real(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List l;
      l.reserve(j.size());
      for (const auto& x : j) l.push_back(from_json(x));
      return make_list(std::move(l));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      d.reserve(j.size());
      for (const auto& [k, x] : j.items()) d.emplace_back(k, from_json(x));
      return make_dict(std::move(d));
    }
    default: return none();
  }
}

nlohmann::ordered_json Value::to_json() const {
  switch (type) {
    case Type::none: return nullptr;
    case Type::boolean: return b;
    case Type::integer: return i;
    case Type::real: return d;
    case Type::string: return s;
    case Type::list: {
      auto a = nlohmann::ordered_json::array();
      for (const auto& x : *list) a.push_back(x.to_json());
      return a;
    }
    case Type::dict: {
      auto o = nlohmann::ordered_json::object();
      for (const auto& [k, x] : *dict) o[k] = x.to_json();
      return o;
    }
    default: throw TemplateError("cannot turn " + type_name(*this) + " into JSON");
  }
}

bool Value::truthy() const {
  switch (type) {
    case Type::undefined:
    case Type::none: return false;
    case Type::boolean: return b;
    case Type::integer: return i != 0;
    case Type::real: return d != 0;
    case Type::string: return !s.empty();
    case Type::list: return !list->empty();
    case Type::dict: return !dict->empty();
    case Type::function: return true;
  }
  return false;
}

double Value::as_double() const {
  if (type == Type::integer) return static_cast<double>(i);
  if (type == Type::boolean) return b ? 1 : 0;
  return d;
}

const Value* Value::find(const std::string& key) const {
  if (type != Type::dict) return nullptr;
  for (const auto& [k, v] : *dict) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Value::set(const std::string& key, Value v) {
  for (auto& [k, x] : *dict) {
    if (k == key) {
      x = std::move(v);
      return;
    }
  }
  dict->emplace_back(key, std::move(v));
}

std::string type_name(const Value& v) {
  switch (v.type) {
    case Value::Type::undefined: return v.s.empty() ? "an undefined value" : "undefined '" + v.s + "'";
    case Value::Type::none: return "none";
    case Value::Type::boolean: return "a boolean";
    case Value::Type::integer: return "an integer";
    case Value::Type::real: return "a float";
    case Value::Type::string: return "a string";
    case Value::Type::list: return "a list";
    case Value::Type::dict: return v.is_namespace ? "a namespace" : "a dict";
    case Value::Type::function: return "a function";
  }
  return "a value";
}

namespace {

// Python's repr() of a float: the shortest digits that read back the same,
// in fixed notation for exponents -4..15 and scientific otherwise.
std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*e", p - 1, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string e(buf);  // [-]D[.DDD]e[+-]XX
  bool neg = e[0] == '-';
  if (neg) e.erase(0, 1);
  std::size_t ep = e.find('e');
  int exp = std::atoi(e.c_str() + ep + 1);
  std::string digits;
  for (std::size_t k = 0; k < ep; ++k) {
    if (e[k] != '.') digits += e[k];
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out = "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<int>(digits.size()) <= exp + 1) {
      out = digits + std::string(static_cast<std::size_t>(exp + 1) - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, static_cast<std::size_t>(exp + 1)) + "." + digits.substr(static_cast<std::size_t>(exp + 1));
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    std::snprintf(buf, sizeof buf, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += buf;
  }
  return neg ? "-" + out : out;
}

// Python's repr() of a str: quotes chosen as Python chooses them, and the
// characters str.isprintable() rejects escaped (\xNN, \uNNNN, \UNNNNNNNN).
std::string string_repr(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos, has_double = s.find('"') != std::string::npos;
  char q = has_single && !has_double ? '"' : '\'';
  std::string out(1, q);
  for (char32_t c : decode_utf8(s).cps) {
    if (c == static_cast<char32_t>(q) || c == U'\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == U'\n') {
      out += "\\n";
    } else if (c == U'\r') {
      out += "\\r";
    } else if (c == U'\t') {
      out += "\\t";
    } else if (c < 0x7f && c >= 0x20) {
      out += static_cast<char>(c);
    } else if (!is_printable(c)) {
      char buf[16];
      if (c < 0x100) std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      else if (c < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      else std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(c));
      out += buf;
    } else {
      append_utf8(out, c);
    }
  }
  return out + q;
}

}  // namespace

std::string str(const Value& v) {
  switch (v.type) {
    case Value::Type::undefined: return "";
    case Value::Type::string: return v.s;
    default: return repr(v);
  }
}

std::string repr(const Value& v) {
  switch (v.type) {
    case Value::Type::undefined: return "";
    case Value::Type::none: return "None";
    case Value::Type::boolean: return v.b ? "True" : "False";
    case Value::Type::integer: return std::to_string(v.i);
    case Value::Type::real: return float_repr(v.d);
    case Value::Type::string: return string_repr(v.s);
    case Value::Type::list: {
      std::string out = "[";
      for (std::size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += ", ";
        out += repr((*v.list)[k]);
      }
      return out + "]";
    }
    case Value::Type::dict: {
      if (v.is_namespace) return "<Namespace>";
      std::string out = "{";
      bool first = true;
      for (const auto& [k, x] : *v.dict) {
        if (!first) out += ", ";
        first = false;
        out += string_repr(k) + ": " + repr(x);
      }
      return out + "}";
    }
    case Value::Type::function: return "<function>";
  }
  return "";
}

bool equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.type != Value::Type::real && b.type != Value::Type::real) {
      auto ai = a.type == Value::Type::boolean ? std::int64_t{a.b} : a.i;
      auto bi = b.type == Value::Type::boolean ? std::int64_t{b.b} : b.i;
      return ai == bi;
    }
    return a.as_double() == b.as_double();
  }
  if (a.type != b.type) return false;
  switch (a.type) {
    case Value::Type::undefined:
    case Value::Type::none: return true;
    case Value::Type::string: return a.s == b.s;
    case Value::Type::list:
      if (a.list->size() != b.list->size()) return false;
      for (std::size_t k = 0; k < a.list->size(); ++k) {
        if (!equal((*a.list)[k], (*b.list)[k])) return false;
      }
      return true;
    case Value::Type::dict:
      if (a.dict == b.dict) return true;
      if (a.is_namespace || b.is_namespace || a.dict->size() != b.dict->size()) return false;
      for (const auto& [k, x] : *a.dict) {
        const Value* y = b.find(k);
        if (!y || !equal(x, *y)) return false;
      }
      return true;
    case Value::Type::function: return a.fn == b.fn;
    default: return false;
  }
}

int compare(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    double x = a.as_double(), y = b.as_double();
    if (a.type == Value::Type::integer && b.type == Value::Type::integer) return a.i < b.i ? -1 : a.i > b.i ? 1 : 0;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.type == Value::Type::string && b.type == Value::Type::string) {
    // UTF-8 byte order is code point order, which is what Python compares.
    int c = a.s.compare(b.s);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.type == Value::Type::list && b.type == Value::Type::list) {
    for (std::size_t k = 0; k < a.list->size() && k < b.list->size(); ++k) {
      if (int c = compare((*a.list)[k], (*b.list)[k])) return c;
    }
    return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size() ? 1 : 0;
  }
  throw TemplateError("cannot order " + type_name(a) + " and " + type_name(b));
}

List iterate(const Value& v) {
  switch (v.type) {
    case Value::Type::undefined: return {};
    case Value::Type::list: return *v.list;
    case Value::Type::dict: {
      List keys;
      for (const auto& [k, x] : *v.dict) keys.push_back(Value::string(k));
      return keys;
    }
    case Value::Type::string: {
      List chars;
      Utf8Text t = decode_utf8(v.s);
      for (std::size_t k = 0; k < t.cps.size(); ++k) {
        chars.push_back(Value::string(v.s.substr(t.offsets[k], t.offsets[k + 1] - t.offsets[k])));
      }
      return chars;
    }
    default: throw TemplateError(type_name(v) + " is not iterable");
  }
}

Value Args::get(std::size_t i, const char* name, Value fallback) const {
  for (const auto& [k, v] : keyword) {
    if (k == name) return v;
  }
  if (i < positional.size()) return positional[i];
  return fallback;
}

}  // namespace steper::text::jinja
