// Tokens to a tree, the way jinja2's parser does it (jinja_lex.cc makes the
// tokens).
#include <algorithm>
#include <cstring>

#include "jinja_ast.h"
#include "jinja_lex.h"

namespace steper::text::jinja {
namespace {

class Parser {
 public:
  Parser(std::vector<Tok> toks, const std::string& name) : t_(std::move(toks)), name_(name) {}

  std::unique_ptr<Node> parse() {
    auto root = std::make_unique<Node>();
    root->kind = Node::Kind::root;
    root->bodies.push_back(parse_body({}));
    if (cur().kind != Tok::Kind::eof) fail(cur().line, "unexpected '{% " + peek_tag() + " %}'");
    return root;
  }

 private:
  // A number token's value; one too large for its type is the template's
  // error (`x.99999999999999999999` once escaped as std::out_of_range,
  // found by chat_template_fuzz).
  Value number(const Tok& t, int line) const {
    try {
      return t.kind == Tok::Kind::integer ? Value::integer(std::stoll(t.text)) : Value::real(std::stod(t.text));
    } catch (const std::exception&) {
      fail(line, "number '" + t.text + "' is out of range");
    }
  }

  [[noreturn]] void fail(int line, const std::string& what) const {
    throw TemplateError(name_ + " line " + std::to_string(line) + ": " + what);
  }
  const Tok& cur() const { return t_[p_]; }
  const Tok& ahead(std::size_t k) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  bool at_op(const char* op) const { return cur().kind == Tok::Kind::op && cur().text == op; }
  bool at_name(const char* n) const { return cur().kind == Tok::Kind::name && cur().text == n; }
  bool skip_op(const char* op) {
    if (!at_op(op)) return false;
    ++p_;
    return true;
  }
  bool skip_name(const char* n) {
    if (!at_name(n)) return false;
    ++p_;
    return true;
  }
  std::string describe(const Tok& t) const {
    switch (t.kind) {
      case Tok::Kind::eof: return "the end of the template";
      case Tok::Kind::block_end: return "'%}'";
      case Tok::Kind::var_end: return "'}}'";
      case Tok::Kind::text: return "text";
      default: return "'" + t.text + "'";
    }
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail(cur().line, std::string("expected '") + op + "', found " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().kind != Tok::Kind::name) fail(cur().line, "expected a name, found " + describe(cur()));
    return t_[p_++].text;
  }
  void expect_block_end() {
    if (cur().kind != Tok::Kind::block_end) fail(cur().line, "expected '%}', found " + describe(cur()));
    ++p_;
  }
  // The name of the block tag starting at the cursor ({% name ... %}), or "".
  std::string peek_tag() const {
    if (cur().kind != Tok::Kind::block_begin) return "";
    const Tok& n = ahead(1);
    return n.kind == Tok::Kind::name ? n.text : "";
  }

  // Statements up to a block tag named in `ends` (left unconsumed).
  Body parse_body(const std::vector<const char*>& ends) {
    Body body;
    while (cur().kind != Tok::Kind::eof) {
      const Tok& t = cur();
      if (t.kind == Tok::Kind::text) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::text;
        n->line = t.line;
        n->text = t.text;
        body.push_back(std::move(n));
        ++p_;
      } else if (t.kind == Tok::Kind::var_begin) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::output;
        n->line = t.line;
        ++p_;
        n->expr = parse_tuple(true);
        if (cur().kind != Tok::Kind::var_end) fail(cur().line, "expected '}}', found " + describe(cur()));
        ++p_;
        body.push_back(std::move(n));
      } else if (t.kind == Tok::Kind::block_begin) {
        std::string tag = peek_tag();
        for (const char* e : ends) {
          if (tag == e) return body;
        }
        body.push_back(parse_statement());
      } else {
        fail(t.line, "unexpected " + describe(t));
      }
    }
    if (!ends.empty()) fail(cur().line, std::string("the template ends before '{% ") + ends.back() + " %}'");
    return body;
  }

  NodePtr parse_statement() {
    const int line = cur().line;
    ++p_;  // block_begin
    if (cur().kind != Tok::Kind::name) fail(line, "a block tag must start with a name, found " + describe(cur()));
    std::string tag = t_[p_++].text;
    auto n = std::make_unique<Node>();
    n->line = line;
    if (tag == "if") {
      n->kind = Node::Kind::if_;
      n->conds.push_back(parse_tuple(true));
      expect_block_end();
      while (true) {
        n->bodies.push_back(parse_body({"elif", "else", "endif"}));
        std::string end = peek_tag();
        p_ += 2;
        if (end == "elif") {
          n->conds.push_back(parse_tuple(true));
          expect_block_end();
        } else if (end == "else") {
          expect_block_end();
          n->bodies.push_back(parse_body({"endif"}));
          p_ += 2;
          expect_block_end();
          break;
        } else {
          expect_block_end();
          break;
        }
      }
    } else if (tag == "for") {
      n->kind = Node::Kind::for_;
      n->targets = parse_targets("in");
      if (!skip_name("in")) fail(cur().line, "expected 'in' in a for loop, found " + describe(cur()));
      n->expr = parse_tuple(false);
      if (skip_name("if")) n->cond = parse_tuple(true);
      if (at_name("recursive")) fail(cur().line, "recursive for loops are not supported");
      expect_block_end();
      n->bodies.push_back(parse_body({"else", "endfor"}));
      if (peek_tag() == "else") {
        p_ += 2;
        expect_block_end();
        n->bodies.push_back(parse_body({"endfor"}));
      }
      p_ += 2;
      expect_block_end();
    } else if (tag == "set") {
      n->kind = Node::Kind::set;
      n->targets = parse_targets("=");
      if (skip_op("=")) {
        n->expr = parse_tuple(true);
        expect_block_end();
      } else {
        if (n->targets.size() != 1) fail(line, "a block set takes one name");
        if (at_op("|")) fail(cur().line, "filters on a block set are not supported");
        expect_block_end();
        n->bodies.push_back(parse_body({"endset"}));
        p_ += 2;
        expect_block_end();
      }
    } else if (tag == "break" || tag == "continue") {
      n->kind = tag == "break" ? Node::Kind::break_ : Node::Kind::continue_;
      expect_block_end();
    } else if (tag == "macro") {
      n->kind = Node::Kind::macro;
      n->text = expect_name();
      expect_op("(");
      while (!at_op(")")) {
        n->targets.push_back(expect_name());
        n->conds.push_back(skip_op("=") ? parse_expression(true) : nullptr);
        if (!skip_op(",")) break;
      }
      expect_op(")");
      expect_block_end();
      n->bodies.push_back(parse_body({"endmacro"}));
      p_ += 2;
      if (cur().kind == Tok::Kind::name) ++p_;  // {% endmacro name %}
      expect_block_end();
    } else if (tag == "generation") {
      // transformers' AssistantTracker tag: marks what the assistant wrote;
      // it renders its body unchanged.
      n->kind = Node::Kind::block;
      expect_block_end();
      n->bodies.push_back(parse_body({"endgeneration"}));
      p_ += 2;
      expect_block_end();
    } else {
      static const char* const known[] = {"extends", "block", "include", "import", "from", "call", "filter",
                                          "with", "autoescape", "trans", "do"};
      for (const char* k : known) {
        if (tag == k) fail(line, "'{% " + tag + " %}' is not supported in chat templates by steper");
      }
      fail(line, "unknown tag '{% " + tag + " %}'");
    }
    return n;
  }

  // Assignment targets: `a`, `a, b`, `(a, b)` or `ns.attr`, up to `stop`.
  std::vector<std::string> parse_targets(const char* stop) {
    std::vector<std::string> names;
    bool paren = skip_op("(");
    while (true) {
      std::string name = expect_name();
      if (skip_op(".")) name += "." + expect_name();
      names.push_back(std::move(name));
      if (!skip_op(",")) break;
      if (at_name(stop) || at_op(stop)) break;
    }
    if (paren) expect_op(")");
    if (names.size() > 1) {
      for (const auto& n : names) {
        if (n.find('.') != std::string::npos) fail(cur().line, "cannot unpack into an attribute ('" + n + "')");
      }
    }
    return names;
  }

  ExprPtr make(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // A tuple without parentheses where one is allowed ({{ a, b }}, for's iterable).
  ExprPtr parse_tuple(bool with_condexpr) {
    const int line = cur().line;
    ExprPtr first = parse_expression(with_condexpr);
    if (!at_op(",")) return first;
    auto t = make(Expr::Kind::tuple, line);
    t->items.push_back(std::move(first));
    while (skip_op(",")) {
      if (cur().kind == Tok::Kind::block_end || cur().kind == Tok::Kind::var_end) break;
      t->items.push_back(parse_expression(with_condexpr));
    }
    return t;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    ExprPtr e = parse_or();
    if (!with_condexpr) return e;
    while (at_name("if")) {
      const int line = cur().line;
      ++p_;
      auto c = make(Expr::Kind::cond, line);
      c->items.push_back(parse_or());
      c->items.push_back(std::move(e));
      c->items.push_back(skip_name("else") ? parse_expression(true) : nullptr);
      e = std::move(c);
    }
    return e;
  }

  ExprPtr binary(Expr::Kind kind, ExprPtr a, ExprPtr b, std::string op = {}) {
    auto e = make(kind, a->line);
    e->text = std::move(op);
    e->items.push_back(std::move(a));
    e->items.push_back(std::move(b));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (skip_name("or")) e = binary(Expr::Kind::or_, std::move(e), parse_and());
    return e;
  }
  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (skip_name("and")) e = binary(Expr::Kind::and_, std::move(e), parse_not());
    return e;
  }
  ExprPtr parse_not() {
    if (at_name("not")) {
      auto e = make(Expr::Kind::not_, cur().line);
      ++p_;
      e->items.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    ExprPtr first = parse_math1();
    ExprPtr chain;
    while (true) {
      std::string op;
      if (cur().kind == Tok::Kind::op &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == ">" || cur().text == "<=" ||
           cur().text == ">=")) {
        op = t_[p_++].text;
      } else if (at_name("in")) {
        ++p_;
        op = "in";
      } else if (at_name("not") && ahead(1).kind == Tok::Kind::name && ahead(1).text == "in") {
        p_ += 2;
        op = "notin";
      } else {
        break;
      }
      if (!chain) {
        chain = make(Expr::Kind::compare, first->line);
        chain->items.push_back(std::move(first));
      }
      chain->names.push_back(op);
      chain->items.push_back(parse_math1());
    }
    return chain ? std::move(chain) : std::move(first);
  }
  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (at_op("+") || at_op("-")) {
      std::string op = t_[p_++].text;
      e = binary(Expr::Kind::binary, std::move(e), parse_concat(), op);
    }
    return e;
  }
  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (skip_op("~")) e = binary(Expr::Kind::binary, std::move(e), parse_math2(), "~");
    return e;
  }
  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
      std::string op = t_[p_++].text;
      e = binary(Expr::Kind::binary, std::move(e), parse_pow(), op);
    }
    return e;
  }
  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (skip_op("**")) e = binary(Expr::Kind::binary, std::move(e), parse_unary(true), "**");
    return e;
  }
  ExprPtr parse_unary(bool with_filter) {
    ExprPtr e;
    if (at_op("-") || at_op("+")) {
      e = make(at_op("-") ? Expr::Kind::neg : Expr::Kind::pos, cur().line);
      ++p_;
      e->items.push_back(parse_unary(false));
    } else {
      e = parse_postfix(parse_primary());
    }
    return with_filter ? parse_filters(std::move(e)) : std::move(e);
  }

  ExprPtr parse_primary() {
    const Tok& t = cur();
    const int line = t.line;
    if (t.kind == Tok::Kind::name) {
      ++p_;
      auto e = make(Expr::Kind::literal, line);
      if (t.text == "true" || t.text == "True") e->value = Value::boolean(true);
      else if (t.text == "false" || t.text == "False") e->value = Value::boolean(false);
      else if (t.text == "none" || t.text == "None") e->value = Value::none();
      else {
        e->kind = Expr::Kind::name;
        e->text = t.text;
      }
      return e;
    }
    if (t.kind == Tok::Kind::string) {
      std::string s;
      while (cur().kind == Tok::Kind::string) s += t_[p_++].text;  // adjacent literals join
      auto e = make(Expr::Kind::literal, line);
      e->value = Value::string(std::move(s));
      return e;
    }
    if (t.kind == Tok::Kind::integer || t.kind == Tok::Kind::real) {
      ++p_;
      auto e = make(Expr::Kind::literal, line);
      e->value = number(t, line);
      return e;
    }
    if (skip_op("(")) {
      if (skip_op(")")) return make(Expr::Kind::tuple, line);
      ExprPtr first = parse_expression(true);
      if (skip_op(")")) return first;
      auto tup = make(Expr::Kind::tuple, line);
      tup->items.push_back(std::move(first));
      while (skip_op(",")) {
        if (at_op(")")) break;
        tup->items.push_back(parse_expression(true));
      }
      expect_op(")");
      return tup;
    }
    if (skip_op("[")) {
      auto e = make(Expr::Kind::list, line);
      while (!at_op("]")) {
        e->items.push_back(parse_expression(true));
        if (!skip_op(",")) break;
      }
      expect_op("]");
      return e;
    }
    if (skip_op("{")) {
      auto e = make(Expr::Kind::dict, line);
      while (!at_op("}")) {
        e->items.push_back(parse_expression(true));
        expect_op(":");
        e->items.push_back(parse_expression(true));
        if (!skip_op(",")) break;
      }
      expect_op("}");
      return e;
    }
    fail(line, "unexpected " + describe(t) + " in an expression");
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      const int line = cur().line;
      if (skip_op(".")) {
        auto a = make(Expr::Kind::attr, line);
        if (cur().kind == Tok::Kind::integer) {
          a->kind = Expr::Kind::index;
          a->items.push_back(std::move(e));
          auto i = make(Expr::Kind::literal, line);
          i->value = number(t_[p_++], line);
          a->items.push_back(std::move(i));
        } else {
          a->text = expect_name();
          a->items.push_back(std::move(e));
        }
        e = std::move(a);
      } else if (skip_op("[")) {
        e = parse_subscript(std::move(e), line);
      } else if (at_op("(")) {
        e = parse_call(std::move(e), Expr::Kind::call, "");
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr obj, int line) {
    ExprPtr parts[3];
    int n = 0;
    bool slice = false;
    while (true) {
      if (at_op(":")) {
        slice = true;
        ++p_;
        if (++n > 2) fail(line, "a slice takes at most three parts");
        continue;
      }
      if (at_op("]")) break;
      parts[n] = parse_expression(true);
      if (!at_op(":")) break;
    }
    expect_op("]");
    auto e = make(slice ? Expr::Kind::slice : Expr::Kind::index, line);
    e->items.push_back(std::move(obj));
    if (slice) {
      for (auto& p : parts) e->items.push_back(std::move(p));
    } else {
      if (!parts[0]) fail(line, "an empty subscript '[]'");
      e->items.push_back(std::move(parts[0]));
    }
    return e;
  }

  // Call arguments, positional then keyword, after the callee (or the
  // filtered / tested value) already in items[0].
  ExprPtr parse_call(ExprPtr callee, Expr::Kind kind, std::string name) {
    auto e = make(kind, callee->line);
    e->text = std::move(name);
    e->items.push_back(std::move(callee));
    expect_op("(");
    while (!at_op(")")) {
      if (at_op("*") || at_op("**")) fail(cur().line, "*args and **kwargs in calls are not supported");
      if (cur().kind == Tok::Kind::name && ahead(1).kind == Tok::Kind::op && ahead(1).text == "=") {
        e->names.push_back(t_[p_].text);
        p_ += 2;
      } else {
        if (!e->names.empty() && !e->names.back().empty()) fail(cur().line, "a positional argument after a keyword one");
        e->names.emplace_back();
      }
      e->items.push_back(parse_expression(true));
      if (!skip_op(",")) break;
    }
    expect_op(")");
    return e;
  }

  ExprPtr parse_filters(ExprPtr e) {
    while (true) {
      if (skip_op("|")) {
        std::string name = expect_name();
        while (skip_op(".")) name += "." + expect_name();
        if (at_op("(")) {
          e = parse_call(std::move(e), Expr::Kind::filter, name);
        } else {
          auto f = make(Expr::Kind::filter, e->line);
          f->text = std::move(name);
          f->items.push_back(std::move(e));
          e = std::move(f);
        }
      } else if (at_name("is")) {
        ++p_;
        bool negate = skip_name("not");
        std::string name = expect_name();
        while (skip_op(".")) name += "." + expect_name();
        ExprPtr t;
        if (at_op("(")) {
          t = parse_call(std::move(e), Expr::Kind::test, name);
        } else {
          t = make(Expr::Kind::test, e->line);
          t->text = name;
          t->items.push_back(std::move(e));
          const Tok& c = cur();
          bool arg = c.kind == Tok::Kind::string || c.kind == Tok::Kind::integer || c.kind == Tok::Kind::real ||
                     (c.kind == Tok::Kind::op && (c.text == "(" || c.text == "[" || c.text == "{")) ||
                     (c.kind == Tok::Kind::name && c.text != "else" && c.text != "or" && c.text != "and" &&
                      c.text != "if" && c.text != "is");
          if (arg) {
            t->items.push_back(parse_postfix(parse_primary()));
            t->names.emplace_back();
          }
        }
        t->negate = negate;
        e = std::move(t);
      } else if (at_op("(")) {
        e = parse_call(std::move(e), Expr::Kind::call, "");
      } else {
        return e;
      }
    }
  }

  std::vector<Tok> t_;
  std::size_t p_ = 0;
  const std::string& name_;
};

}  // namespace

std::unique_ptr<Node> parse_template(const std::string& source, const std::string& name) {
  return Parser(lex(source, name), name).parse();
}

}  // namespace steper::text::jinja
