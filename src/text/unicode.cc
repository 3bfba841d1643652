#include "unicode.h"

#include <algorithm>
#include <iterator>

namespace steper::text {
namespace {

struct CodeRange {
  char32_t first, last;
};
struct LowerMapping {
  char32_t from;
  char32_t to[2];
};

#include "unicode_ranges.inc"

template <std::size_t N>
bool in(const CodeRange (&ranges)[N], char32_t c) {
  auto it = std::upper_bound(std::begin(ranges), std::end(ranges), c,
                             [](char32_t v, const CodeRange& r) { return v < r.first; });
  return it != std::begin(ranges) && c <= std::prev(it)->last;
}

}  // namespace

Utf8Text decode_utf8(std::string_view s) {
  Utf8Text t;
  t.cps.reserve(s.size());
  t.offsets.reserve(s.size() + 1);
  for (std::size_t i = 0; i < s.size();) {
    t.offsets.push_back(i);
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    char32_t cp = len == 1 ? c : c & (0x7F >> len);
    bool ok = len > 0 && i + len <= s.size();
    for (std::size_t k = 1; ok && k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!ok) {
      t.cps.push_back(0xFFFD);
      ++i;
      continue;
    }
    t.cps.push_back(cp);
    i += len;
  }
  t.offsets.push_back(s.size());
  return t;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

void append_lower(std::u32string& out, char32_t c) {
  auto it = std::lower_bound(std::begin(kLowerMap), std::end(kLowerMap), c,
                             [](const LowerMapping& m, char32_t v) { return m.from < v; });
  if (it == std::end(kLowerMap) || it->from != c) {
    out.push_back(c);
    return;
  }
  out.push_back(it->to[0]);
  if (it->to[1]) out.push_back(it->to[1]);
}

bool is_letter(char32_t c) { return in(kLetterRanges, c); }
bool is_number(char32_t c) { return in(kNumberRanges, c); }
bool is_space(char32_t c) { return in(kSpaceRanges, c); }

}  // namespace steper::text
