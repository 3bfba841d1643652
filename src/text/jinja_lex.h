// The tokens of a template, as jinja2's lexer makes them under Hugging
// Face's settings (jinja_lex.cc says which); jinja_parse.cc builds the tree.
#pragma once

#include <string>
#include <vector>

namespace steper::text::jinja {

struct Tok {
  enum class Kind { text, var_begin, var_end, block_begin, block_end, name, integer, real, string, op, eof };
  Kind kind;
  std::string text;
  int line;
};

// Throws TemplateError naming the template and the line.
std::vector<Tok> lex(const std::string& source, const std::string& name);

}  // namespace steper::text::jinja
