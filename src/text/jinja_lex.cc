// Template text to tokens, the way jinja2's lexer does it under Hugging
// Face's settings: trim_blocks (the first newline after a block or comment
// tag goes), lstrip_blocks (blanks from a line's start to a block or comment
// tag go), '-' and '+' at a tag's edge, and no trailing newline kept.
#include <algorithm>
#include <cstring>

#include "jinja_ast.h"
#include "jinja_lex.h"
#include "unicode.h"

namespace steper::text::jinja {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  Lexer(std::string source, const std::string& name) : src_(std::move(source)), name_(name) {
    // jinja2 reads the source line by line: \r\n and \r become \n, and one
    // trailing newline is dropped (keep_trailing_newline is off).
    std::string s;
    s.reserve(src_.size());
    for (std::size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\r') {
        s += '\n';
        if (i + 1 < src_.size() && src_[i + 1] == '\n') ++i;
      } else {
        s += src_[i];
      }
    }
    if (!s.empty() && s.back() == '\n') s.pop_back();
    src_ = std::move(s);
    for (std::size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') newlines_.push_back(i);
    }
  }

  std::vector<Tok> run() {
    std::size_t pos = 0;
    while (pos < src_.size()) {
      std::size_t tag = find_tag(pos);
      std::string text = src_.substr(pos, tag - pos);
      std::size_t text_start = pos;
      if (tag == src_.size()) {
        emit_text(std::move(text), text_start);
        break;
      }
      char kind = src_[tag + 1];  // '{', '%' or '#'
      char sign = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
      if (sign == '-') {
        while (!text.empty() && is_blank(text.back())) text.pop_back();
      } else if (sign != '+' && kind != '{') {
        lstrip(text, text_start);
      }
      emit_text(std::move(text), text_start);
      pos = tag + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      int line = line_at(tag);
      if (kind == '#') {
        std::size_t end = src_.find("#}", pos);
        if (end == std::string::npos) fail(line, "a comment '{#' is never closed");
        pos = after_tag_end(end, end + 2, true);
        continue;
      }
      if (kind == '%' && starts_raw(pos)) {
        pos = lex_raw(pos, line);
        continue;
      }
      toks_.push_back({kind == '{' ? Tok::Kind::var_begin : Tok::Kind::block_begin, "", line});
      pos = lex_expression(pos, kind == '{');
    }
    toks_.push_back({Tok::Kind::eof, "", line_at(src_.size())});
    return std::move(toks_);
  }

 private:
  [[noreturn]] void fail(int line, const std::string& what) const {
    throw TemplateError(name_ + " line " + std::to_string(line) + ": " + what);
  }

  int line_at(std::size_t pos) const {
    auto it = std::upper_bound(newlines_.begin(), newlines_.end(), pos);
    return static_cast<int>(it - newlines_.begin()) + 1;
  }

  // A \x, \u or \U escape's hex digits as one code point.
  void append_codepoint(std::string& out, const std::string& hex, int line) const {
    char32_t cp = 0;
    for (char h : hex) {
      int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
      if (v < 0) fail(line, "a bad escape '\\" + hex + "' in a string");
      cp = cp * 16 + static_cast<char32_t>(v);
    }
    if (cp > 0x10FFFF) fail(line, "escape '\\" + hex + "' is past U+10FFFF");
    append_utf8(out, cp);
  }

  std::size_t find_tag(std::size_t pos) const {
    for (std::size_t i = pos; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return src_.size();
  }

  // lstrip_blocks: blanks between the line's start and a block tag go.
  void lstrip(std::string& text, std::size_t text_start) const {
    std::size_t nl = text.rfind('\n');
    std::size_t from = nl == std::string::npos ? 0 : nl + 1;
    bool line_start = nl != std::string::npos || text_start == 0 || src_[text_start - 1] == '\n';
    if (!line_start || from == text.size()) return;
    for (std::size_t i = from; i < text.size(); ++i) {
      if (!is_blank(text[i])) return;
    }
    text.resize(from);
  }

  void emit_text(std::string text, std::size_t text_start) {
    if (strip_next_) {
      std::size_t k = 0;
      while (k < text.size() && is_blank(text[k])) ++k;
      text.erase(0, k);
    }
    strip_next_ = false;
    if (!text.empty()) toks_.push_back({Tok::Kind::text, std::move(text), line_at(text_start)});
  }

  // The tag ends at `end` (its closing characters run to `after`). A '-'
  // before them strips the blanks that follow; otherwise trim_blocks drops
  // one newline after a block or comment tag, unless a '+' says not to.
  std::size_t after_tag_end(std::size_t end, std::size_t after, bool block) {
    char sign = end > 0 ? src_[end - 1] : '\0';
    if (sign == '-') {
      while (after < src_.size() && is_blank(src_[after])) ++after;
    } else if (block && sign != '+' && after < src_.size() && src_[after] == '\n') {
      ++after;
    }
    return after;
  }

  bool starts_raw(std::size_t pos) const {
    std::size_t i = pos;
    while (i < src_.size() && is_blank(src_[i])) ++i;
    if (src_.compare(i, 3, "raw") != 0) return false;
    i += 3;
    while (i < src_.size() && is_blank(src_[i])) ++i;
    return src_.compare(i, 2, "%}") == 0 || src_.compare(i, 3, "-%}") == 0;
  }

  std::size_t lex_raw(std::size_t pos, int line) {
    std::size_t close = src_.find("%}", pos);
    if (close == std::string::npos) fail(line, "'{% raw' is never closed by '%}'");
    std::size_t body = after_tag_end(close, close + 2, true);
    for (std::size_t i = body; i < src_.size(); ++i) {
      if (src_.compare(i, 2, "{%") != 0) continue;
      std::size_t j = i + 2;
      bool minus = j < src_.size() && src_[j] == '-';
      if (minus || (j < src_.size() && src_[j] == '+')) ++j;
      while (j < src_.size() && is_blank(src_[j])) ++j;
      if (src_.compare(j, 6, "endraw") != 0) continue;
      j += 6;
      while (j < src_.size() && is_blank(src_[j]) ) ++j;
      std::size_t end = src_.compare(j, 3, "-%}") == 0 ? j + 1 : j;
      if (src_.compare(end, 2, "%}") != 0) continue;
      std::string text = src_.substr(body, i - body);
      if (minus) {
        while (!text.empty() && is_blank(text.back())) text.pop_back();
      }
      strip_next_ = false;
      if (!text.empty()) toks_.push_back({Tok::Kind::text, std::move(text), line});
      return after_tag_end(end, end + 2, true);
    }
    fail(line, "'{% raw %}' is never closed by '{% endraw %}'");
  }

  std::size_t lex_expression(std::size_t pos, bool variable) {
    const int line0 = line_at(pos);
    int depth = 0;
    const char* close = variable ? "}}" : "%}";
    while (true) {
      while (pos < src_.size() && is_blank(src_[pos])) ++pos;
      if (pos >= src_.size()) fail(line0, std::string("a tag is never closed by '") + close + "'");
      int line = line_at(pos);
      if (depth == 0) {
        bool sign = (src_[pos] == '-' || src_[pos] == '+') && src_.compare(pos + 1, 2, close) == 0;
        if (sign || src_.compare(pos, 2, close) == 0) {
          std::size_t end = sign ? pos + 1 : pos;
          toks_.push_back({variable ? Tok::Kind::var_end : Tok::Kind::block_end, "", line});
          std::size_t after = after_tag_end(end, end + 2, !variable);
          strip_next_ = sign && src_[pos] == '-';
          return after;
        }
      }
      char c = src_[pos];
      if (is_name_start(c)) {
        std::size_t e = pos;
        while (e < src_.size() && (is_name_start(src_[e]) || is_digit(src_[e]))) ++e;
        toks_.push_back({Tok::Kind::name, src_.substr(pos, e - pos), line});
        pos = e;
      } else if (is_digit(c)) {
        pos = lex_number(pos, line);
      } else if (c == '\'' || c == '"') {
        pos = lex_string(pos, line);
      } else {
        static const char* const two[] = {"//", "**", "==", "!=", "<=", ">="};
        std::string op(1, c);
        for (const char* t : two) {
          if (src_.compare(pos, 2, t) == 0) op = t;
        }
        if (op.size() == 1 && !std::strchr("+-/*%~[](){}<>=.:|,", c)) fail(line, std::string("unexpected character '") + c + "'");
        if (c == '(' || c == '[' || c == '{') ++depth;
        if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
        toks_.push_back({Tok::Kind::op, op, line});
        pos += op.size();
      }
    }
  }

  std::size_t lex_number(std::size_t pos, int line) {
    std::size_t e = pos;
    bool real = false;
    while (e < src_.size() && (is_digit(src_[e]) || src_[e] == '_')) ++e;
    if (e + 1 < src_.size() && src_[e] == '.' && is_digit(src_[e + 1])) {
      real = true;
      ++e;
      while (e < src_.size() && (is_digit(src_[e]) || src_[e] == '_')) ++e;
    }
    if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      std::size_t k = e + 1;
      if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
      if (k < src_.size() && is_digit(src_[k])) {
        real = true;
        e = k;
        while (e < src_.size() && is_digit(src_[e])) ++e;
      }
    }
    std::string digits;
    for (std::size_t i = pos; i < e; ++i) {
      if (src_[i] != '_') digits += src_[i];
    }
    toks_.push_back({real ? Tok::Kind::real : Tok::Kind::integer, digits, line});
    return e;
  }

  std::size_t lex_string(std::size_t pos, int line) {
    const char quote = src_[pos];
    std::string out;
    std::size_t i = pos + 1;
    for (; i < src_.size() && src_[i] != quote; ++i) {
      if (src_[i] != '\\' || i + 1 >= src_.size()) {
        out += src_[i];
        continue;
      }
      char e = src_[++i];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\n': break;
        case 'x': case 'u': case 'U': {
          std::size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (i + n >= src_.size()) fail(line, "a truncated \\" + std::string(1, e) + " escape in a string");
          append_codepoint(out, src_.substr(i + 1, n), line);
          i += n;
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            unsigned long v = 0;
            std::size_t n = 0;
            for (; n < 3 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++n, ++i) v = v * 8 + static_cast<unsigned long>(src_[i] - '0');
            --i;
            append_utf8(out, static_cast<char32_t>(v));
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    if (i >= src_.size()) fail(line, "a string literal is never closed");
    toks_.push_back({Tok::Kind::string, std::move(out), line});
    return i + 1;
  }

  std::string src_;
  std::vector<std::size_t> newlines_;  // offsets of '\n', for line numbers
  const std::string& name_;
  std::vector<Tok> toks_;
  bool strip_next_ = false;
};

}  // namespace

std::vector<Tok> lex(const std::string& source, const std::string& name) { return Lexer(source, name).run(); }

}  // namespace steper::text::jinja
