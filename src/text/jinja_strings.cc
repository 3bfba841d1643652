// Python's str methods over UTF-8 text, as chat templates call them:
// lengths, slices and strips count code points, and white space is
// Python's.
#include "jinja_strings.h"

#include "unicode.h"

namespace steper::text::jinja {
namespace {

[[noreturn]] void fail(const std::string& what) { throw TemplateError(what); }

}  // namespace

namespace py {

bool space(char32_t c) { return is_space(c) || (c >= 0x1c && c <= 0x1f); }

std::u32string to_u32(const std::string& s) {
  Utf8Text t = decode_utf8(s);
  return std::u32string(t.cps.begin(), t.cps.end());
}
std::string to_utf8(const std::u32string& s) {
  std::string out;
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

// Python's strip family: `chars` none means white space.
std::string strip(const std::string& s, const Value& chars, bool left, bool right) {
  std::u32string u = to_u32(s);
  std::u32string set = chars.type == Value::Type::string ? to_u32(chars.s) : std::u32string();
  bool ws = chars.type != Value::Type::string;
  auto drop = [&](char32_t c) { return ws ? space(c) : set.find(c) != std::u32string::npos; };
  std::size_t b = 0, e = u.size();
  if (left) {
    while (b < e && drop(u[b])) ++b;
  }
  if (right) {
    while (e > b && drop(u[e - 1])) --e;
  }
  return to_utf8(u.substr(b, e - b));
}

// Python's str.split(sep, maxsplit) and rsplit.
List split(const std::string& s, const Value& sep, std::int64_t maxsplit, bool from_right) {
  List out;
  if (sep.type != Value::Type::string) {
    std::u32string u = to_u32(s);
    std::vector<std::u32string> words;
    std::size_t i = 0;
    if (!from_right) {
      while (i < u.size()) {
        while (i < u.size() && space(u[i])) ++i;
        if (i >= u.size()) break;
        if (maxsplit >= 0 && static_cast<std::int64_t>(words.size()) == maxsplit) {
          std::size_t e = u.size();
          while (e > i && space(u[e - 1])) --e;
          words.push_back(u.substr(i, e - i));
          break;
        }
        std::size_t j = i;
        while (j < u.size() && !space(u[j])) ++j;
        words.push_back(u.substr(i, j - i));
        i = j;
      }
    } else {
      std::size_t e = u.size();
      std::vector<std::u32string> rev;
      while (e > 0) {
        while (e > 0 && space(u[e - 1])) --e;
        if (e == 0) break;
        if (maxsplit >= 0 && static_cast<std::int64_t>(rev.size()) == maxsplit) {
          std::size_t b = 0;
          while (b < e && space(u[b])) ++b;
          rev.push_back(u.substr(b, e - b));
          break;
        }
        std::size_t b = e;
        while (b > 0 && !space(u[b - 1])) --b;
        rev.push_back(u.substr(b, e - b));
        e = b;
      }
      words.assign(rev.rbegin(), rev.rend());
    }
    for (const auto& w : words) out.push_back(Value::string(to_utf8(w)));
    return out;
  }
  if (sep.s.empty()) fail("split(): empty separator");
  std::vector<std::string> parts;
  if (!from_right) {
    std::size_t start = 0;
    while (true) {
      std::size_t at = s.find(sep.s, start);
      if (at == std::string::npos || (maxsplit >= 0 && static_cast<std::int64_t>(parts.size()) == maxsplit)) {
        parts.push_back(s.substr(start));
        break;
      }
      parts.push_back(s.substr(start, at - start));
      start = at + sep.s.size();
    }
  } else {
    std::size_t end = s.size();
    std::vector<std::string> rev;
    while (true) {
      std::size_t at = end >= sep.s.size() ? s.rfind(sep.s, end - sep.s.size()) : std::string::npos;
      if (at == std::string::npos || (maxsplit >= 0 && static_cast<std::int64_t>(rev.size()) == maxsplit)) {
        rev.push_back(s.substr(0, end));
        break;
      }
      rev.push_back(s.substr(at + sep.s.size(), end - at - sep.s.size()));
      end = at;
    }
    parts.assign(rev.rbegin(), rev.rend());
  }
  for (auto& p : parts) out.push_back(Value::string(std::move(p)));
  return out;
}

std::string replace(const std::string& s, const std::string& from, const std::string& to, std::int64_t count) {
  std::string out;
  if (from.empty()) {
    // Python inserts `to` between every character (and at both ends).
    Utf8Text t = decode_utf8(s);
    std::int64_t n = 0;
    for (std::size_t k = 0; k <= t.cps.size(); ++k) {
      if (count < 0 || n < count) {
        out += to;
        ++n;
      }
      if (k < t.cps.size()) out += s.substr(t.offsets[k], t.offsets[k + 1] - t.offsets[k]);
    }
    return out;
  }
  std::size_t start = 0;
  std::int64_t n = 0;
  while (count < 0 || n < count) {
    std::size_t at = s.find(from, start);
    if (at == std::string::npos) break;
    out += s.substr(start, at - start) + to;
    start = at + from.size();
    ++n;
  }
  return out + s.substr(start);
}

std::string lower(const std::string& s) {
  std::u32string out;
  for (char32_t c : to_u32(s)) append_lower(out, c);
  return to_utf8(out);
}
std::string upper(const std::string& s) { return upper_case(s); }
// Python's: the first character in title case, the rest lowered.
std::string capitalize(const std::string& s) {
  const std::u32string cps = to_u32(s);
  if (cps.empty()) return s;
  std::u32string out;
  append_title(out, cps[0]);
  for (std::size_t i = 1; i < cps.size(); ++i) append_lower(out, cps[i]);
  return to_utf8(out);
}
std::string title(const std::string& s) {
  std::string out;
  bool prev_letter = false;
  for (char c : s) {
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (letter) out += prev_letter ? static_cast<char>(c | 0x20) : static_cast<char>(c & ~0x20);
    else out += c;
    prev_letter = letter;
  }
  return out;
}

bool starts_or_ends(const std::string& s, const Value& what, bool start) {
  auto one = [&](const Value& p) {
    if (p.type != Value::Type::string) fail(std::string(start ? "startswith" : "endswith") + "() takes a string or a tuple of strings");
    if (p.s.size() > s.size()) return false;
    return start ? s.compare(0, p.s.size(), p.s) == 0 : s.compare(s.size() - p.s.size(), p.s.size(), p.s) == 0;
  };
  if (what.type == Value::Type::list) {
    for (const auto& p : *what.list) {
      if (one(p)) return true;
    }
    return false;
  }
  return one(what);
}

}  // namespace py

std::string python_strip(const std::string& s, bool left, bool right) { return py::strip(s, Value::none(), left, right); }

}  // namespace steper::text::jinja
