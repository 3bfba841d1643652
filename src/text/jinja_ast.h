// The parsed form of a Jinja template, shared by the parser (jinja_parse.cc)
// and the evaluator (jinja_eval.cc).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "jinja.h"

namespace steper::text::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    literal,    // value
    name,       // text
    list,       // items
    tuple,      // items
    dict,       // items: key, value, key, value, ...
    attr,       // items[0].text
    index,      // items[0][items[1]]
    slice,      // items[0][items[1]:items[2]:items[3]], any of 1..3 may be null
    call,       // items[0](items[1..]), keyword names in `names` (empty for positional)
    filter,     // items[0] | text(items[1..]), keyword names in `names`
    test,       // items[0] is [not] text(items[1..]); `negate`
    neg,        // -items[0]
    pos,        // +items[0]
    not_,       // not items[0]
    and_,       // items[0] and items[1]
    or_,        // items[0] or items[1]
    binary,     // items[0] text items[1], text one of + - * / // % ** ~
    compare,    // items[0] names[0] items[1] names[1] items[2] ... (== != < > <= >= in notin)
    cond,       // items[1] if items[0] else items[2] (items[2] may be null)
  };
  Kind kind;
  int line = 0;
  Value value;
  std::string text;
  std::vector<ExprPtr> items;
  std::vector<std::string> names;
  bool negate = false;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
  enum class Kind {
    root,      // body
    text,      // text
    output,    // {{ expr }}
    if_,       // conds[k] -> bodies[k]; bodies.size() == conds.size() + 1 when there is an else
    for_,      // targets in expr [if cond]: bodies[0], else bodies[1]
    set,       // targets (one "ns.attr" or names) = expr, or = rendered bodies[0] (block set)
    break_,
    continue_,
    macro,     // text(targets with defaults in conds, null where none): bodies[0]
    block,     // a body rendered in place ({% generation %})
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr cond;
  std::vector<ExprPtr> conds;
  std::vector<std::string> targets;
  std::vector<Body> bodies;
};

// Parses a template (Hugging Face's environment) into a root node.
std::unique_ptr<Node> parse_template(const std::string& source, const std::string& name);

}  // namespace steper::text::jinja
