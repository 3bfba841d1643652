// Rendering a parsed template: scopes as jinja2 keeps them (a loop body is a
// fresh scope on every iteration, `set` inside it does not leak out, a
// namespace() is how state crosses), and Python's operators.
#include <cmath>

#include "jinja_ast.h"
#include "jinja_builtins.h"

namespace steper::text::jinja {
namespace {

using Frame = std::shared_ptr<Dict>;

Value lookup_in(const Dict& d, const std::string& name, bool& found) {
  for (const auto& [k, v] : d) {
    if (k == name) {
      found = true;
      return v;
    }
  }
  found = false;
  return {};
}

class Evaluator {
 public:
  Evaluator(const std::string& name, const Limits& limits, Dict globals)
      : name_(name), limits_(limits), globals_(std::move(globals)) {
    frames_.push_back(std::make_shared<Dict>());
  }

  void bind(const std::string& name, Value v) { assign(name, std::move(v)); }

  std::string render(const Body& body) {
    std::string out;
    out_ = &out;
    exec(body);
    return out;
  }

 private:
  enum class Flow { normal, break_, continue_ };

  [[noreturn]] void fail(int line, const std::string& what) const {
    throw TemplateError(name_ + " line " + std::to_string(line) + ": " + what);
  }

  void write(const std::string& s, int line) {
    if (out_->size() + s.size() > limits_.max_output) {
      fail(line, "the rendering is over " + std::to_string(limits_.max_output) + " bytes");
    }
    *out_ += s;
  }

  void assign(const std::string& name, Value v) {
    Dict& d = *frames_.back();
    for (auto& [k, x] : d) {
      if (k == name) {
        x = std::move(v);
        return;
      }
    }
    d.emplace_back(name, std::move(v));
  }

  Value lookup(const std::string& name) const {
    bool found = false;
    for (auto f = frames_.rbegin(); f != frames_.rend(); ++f) {
      Value v = lookup_in(**f, name, found);
      if (found) return v;
    }
    Value v = lookup_in(globals_, name, found);
    if (found) return v;
    return Value::undefined(name);
  }

  Flow exec(const Body& body) {
    for (const auto& n : body) {
      Flow f = exec(*n);
      if (f != Flow::normal) return f;
    }
    return Flow::normal;
  }

  Flow exec(const Node& n) {
    try {
      return exec_node(n);
    } catch (const TemplateError& e) {
      if (std::string(e.what()).rfind(name_ + " line ", 0) == 0) throw;
      fail(n.line, e.what());
    }
  }

  Flow exec_node(const Node& n) {
    switch (n.kind) {
      case Node::Kind::root:
      case Node::Kind::block: return exec(n.bodies[0]);
      case Node::Kind::text: write(n.text, n.line); return Flow::normal;
      case Node::Kind::output: write(str(eval(*n.expr)), n.line); return Flow::normal;
      case Node::Kind::if_:
        for (std::size_t k = 0; k < n.conds.size(); ++k) {
          if (eval(*n.conds[k]).truthy()) return exec(n.bodies[k]);
        }
        if (n.bodies.size() > n.conds.size()) return exec(n.bodies.back());
        return Flow::normal;
      case Node::Kind::for_: return exec_for(n);
      case Node::Kind::set: exec_set(n); return Flow::normal;
      case Node::Kind::break_: return Flow::break_;
      case Node::Kind::continue_: return Flow::continue_;
      case Node::Kind::macro: assign(n.text, make_macro(n)); return Flow::normal;
    }
    return Flow::normal;
  }

  void unpack(const std::vector<std::string>& targets, const Value& v, int line) {
    if (targets.size() == 1) {
      assign(targets[0], v);
      return;
    }
    List items = iterate(v);
    if (items.size() != targets.size()) {
      fail(line, "cannot unpack " + std::to_string(items.size()) + " values into " + std::to_string(targets.size()) + " names");
    }
    for (std::size_t k = 0; k < items.size(); ++k) assign(targets[k], items[k]);
  }

  Flow exec_for(const Node& n) {
    List all = iterate(eval(*n.expr));
    List items;
    if (n.cond) {
      frames_.push_back(std::make_shared<Dict>());
      for (auto& v : all) {
        unpack(n.targets, v, n.line);
        if (eval(*n.cond).truthy()) items.push_back(std::move(v));
      }
      frames_.pop_back();
    } else {
      items = std::move(all);
    }
    if (items.empty()) return n.bodies.size() > 1 ? exec(n.bodies[1]) : Flow::normal;
    const auto len = static_cast<std::int64_t>(items.size());
    for (std::int64_t k = 0; k < len; ++k) {
      if (++iterations_ > limits_.max_iterations) fail(n.line, "over " + std::to_string(limits_.max_iterations) + " loop iterations");
      frames_.push_back(std::make_shared<Dict>());
      unpack(n.targets, items[static_cast<std::size_t>(k)], n.line);
      Dict loop{{"index", Value::integer(k + 1)},
                {"index0", Value::integer(k)},
                {"revindex", Value::integer(len - k)},
                {"revindex0", Value::integer(len - k - 1)},
                {"first", Value::boolean(k == 0)},
                {"last", Value::boolean(k == len - 1)},
                {"length", Value::integer(len)},
                {"depth", Value::integer(1)},
                {"depth0", Value::integer(0)},
                {"previtem", k > 0 ? items[static_cast<std::size_t>(k - 1)] : Value::undefined("previtem")},
                {"nextitem", k + 1 < len ? items[static_cast<std::size_t>(k + 1)] : Value::undefined("nextitem")},
                {"cycle", Value::function([k](Args& a) -> Value {
                   if (a.positional.empty()) throw TemplateError("loop.cycle() needs at least one value");
                   return a.positional[static_cast<std::size_t>(k) % a.positional.size()];
                 })}};
      assign("loop", Value::make_dict(std::move(loop)));
      Flow f = exec(n.bodies[0]);
      frames_.pop_back();
      if (f == Flow::break_) break;
    }
    return Flow::normal;
  }

  void exec_set(const Node& n) {
    Value v;
    if (n.expr) {
      v = eval(*n.expr);
    } else {
      std::string* saved = out_;
      std::string captured;
      out_ = &captured;
      exec(n.bodies[0]);
      out_ = saved;
      v = Value::string(std::move(captured));
    }
    const std::string& t = n.targets[0];
    std::size_t dot = t.find('.');
    if (n.targets.size() == 1 && dot != std::string::npos) {
      Value ns = lookup(t.substr(0, dot));
      if (!ns.is_namespace) fail(n.line, "cannot set an attribute of " + type_name(ns) + " ('" + t + "'); only of a namespace()");
      ns.set(t.substr(dot + 1), std::move(v));
      return;
    }
    unpack(n.targets, v, n.line);
  }

  Value make_macro(const Node& n) {
    const Node* node = &n;
    return Value::function([this, node](Args& a) -> Value {
      auto frame = std::make_shared<Dict>();
      for (std::size_t k = 0; k < node->targets.size(); ++k) {
        Value v = a.get(k, node->targets[k].c_str());
        if (v.is_undefined() && node->conds[k]) v = eval(*node->conds[k]);
        frame->emplace_back(node->targets[k], std::move(v));
      }
      std::vector<Frame> saved{frames_.front(), frame};
      std::swap(saved, frames_);
      std::string* saved_out = out_;
      std::string captured;
      out_ = &captured;
      exec(node->bodies[0]);
      out_ = saved_out;
      std::swap(saved, frames_);
      return Value::string(std::move(captured));
    });
  }

  Args eval_args(const Expr& e) {
    Args a;
    for (std::size_t k = 1; k < e.items.size(); ++k) {
      const std::string& kw = e.names[k - 1];
      if (kw.empty()) {
        a.positional.push_back(eval(*e.items[k]));
      } else {
        a.keyword.emplace_back(kw, eval(*e.items[k]));
      }
    }
    return a;
  }

  Value eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::literal: return e.value;
      case Expr::Kind::name: return lookup(e.text);
      case Expr::Kind::list:
      case Expr::Kind::tuple: {
        List l;
        for (const auto& x : e.items) l.push_back(eval(*x));
        return Value::make_list(std::move(l));
      }
      case Expr::Kind::dict: {
        Value d = Value::make_dict();
        for (std::size_t k = 0; k + 1 < e.items.size(); k += 2) {
          Value key = eval(*e.items[k]);
          if (key.type != Value::Type::string) fail(e.line, "dict keys must be strings here, not " + type_name(key));
          d.set(key.s, eval(*e.items[k + 1]));
        }
        return d;
      }
      case Expr::Kind::attr: return get_attr(eval(*e.items[0]), e.text, e.line);
      case Expr::Kind::index: return get_item(eval(*e.items[0]), eval(*e.items[1]), e.line);
      case Expr::Kind::slice: {
        Value obj = eval(*e.items[0]);
        Value parts[3];
        for (int k = 0; k < 3; ++k) parts[k] = e.items[1 + static_cast<std::size_t>(k)] ? eval(*e.items[1 + static_cast<std::size_t>(k)]) : Value::none();
        return slice(obj, parts[0], parts[1], parts[2]);
      }
      case Expr::Kind::call: return eval_call(e);
      case Expr::Kind::filter: {
        Value v = eval(*e.items[0]);
        Args a = eval_args(e);
        return apply_filter(e.text, v, a);
      }
      case Expr::Kind::test: {
        Value v = eval(*e.items[0]);
        Args a = eval_args(e);
        return Value::boolean(apply_test(e.text, v, a) != e.negate);
      }
      case Expr::Kind::neg: {
        Value v = eval(*e.items[0]);
        if (v.type == Value::Type::integer) return Value::integer(-v.i);
        if (v.type == Value::Type::boolean) return Value::integer(-std::int64_t{v.b});
        if (v.type == Value::Type::real) return Value::real(-v.d);
        fail(e.line, "bad operand for unary -: " + type_name(v));
      }
      case Expr::Kind::pos: {
        Value v = eval(*e.items[0]);
        if (!v.is_number()) fail(e.line, "bad operand for unary +: " + type_name(v));
        return v;
      }
      case Expr::Kind::not_: return Value::boolean(!eval(*e.items[0]).truthy());
      case Expr::Kind::and_: {
        Value a = eval(*e.items[0]);
        return a.truthy() ? eval(*e.items[1]) : a;
      }
      case Expr::Kind::or_: {
        Value a = eval(*e.items[0]);
        return a.truthy() ? a : eval(*e.items[1]);
      }
      case Expr::Kind::binary: return binary_op(e.text, eval(*e.items[0]), eval(*e.items[1]), e.line);
      case Expr::Kind::compare: {
        Value left = eval(*e.items[0]);
        for (std::size_t k = 0; k < e.names.size(); ++k) {
          Value right = eval(*e.items[k + 1]);
          if (!compare_op(e.names[k], left, right)) return Value::boolean(false);
          left = std::move(right);
        }
        return Value::boolean(true);
      }
      case Expr::Kind::cond:
        if (eval(*e.items[0]).truthy()) return eval(*e.items[1]);
        return e.items[2] ? eval(*e.items[2]) : Value::undefined();
    }
    return {};
  }

  Value eval_call(const Expr& e) {
    const Expr& callee = *e.items[0];
    if (callee.kind == Expr::Kind::attr) {
      Value obj = eval(*callee.items[0]);
      if (obj.is_undefined()) fail(e.line, "'" + (obj.s.empty() ? std::string("value") : obj.s) + "' is undefined (calling ." + callee.text + "())");
      if (has_method(obj, callee.text)) {
        Args a = eval_args(e);
        return call_method(obj, callee.text, a);
      }
      Value f = get_attr(obj, callee.text, e.line);
      return call(f, e, "." + callee.text);
    }
    Value f = eval(callee);
    return call(f, e, callee.kind == Expr::Kind::name ? callee.text : "expression");
  }

  Value call(const Value& f, const Expr& e, const std::string& what) {
    if (f.type != Value::Type::function) {
      if (f.is_undefined()) fail(e.line, "'" + what + "' is undefined, so it cannot be called");
      fail(e.line, "'" + what + "' is " + type_name(f) + ", not a function");
    }
    Args a = eval_args(e);
    return (*f.fn)(a);
  }

  Value get_attr(const Value& obj, const std::string& attr, int line) {
    if (obj.is_undefined()) fail(line, "'" + (obj.s.empty() ? std::string("value") : obj.s) + "' is undefined (reading ." + attr + ")");
    if (const Value* v = obj.find(attr)) return *v;
    return Value::undefined(attr);
  }

  Value get_item(const Value& obj, const Value& key, int line) {
    if (obj.is_undefined()) fail(line, "'" + (obj.s.empty() ? std::string("value") : obj.s) + "' is undefined (reading [" + repr(key) + "])");
    if (obj.type == Value::Type::dict && key.type == Value::Type::string) {
      if (const Value* v = obj.find(key.s)) return *v;
      return Value::undefined(key.s);
    }
    if ((obj.type == Value::Type::list || obj.type == Value::Type::string) &&
        (key.type == Value::Type::integer || key.type == Value::Type::boolean)) {
      List items = obj.type == Value::Type::list ? List{} : iterate(obj);
      const List& l = obj.type == Value::Type::list ? *obj.list : items;
      std::int64_t i = key.type == Value::Type::boolean ? key.b : key.i;
      const auto n = static_cast<std::int64_t>(l.size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::undefined("[" + repr(key) + "]");
      return l[static_cast<std::size_t>(i)];
    }
    return Value::undefined(str(key));
  }

  bool compare_op(const std::string& op, const Value& a, const Value& b) {
    if (op == "==") return equal(a, b);
    if (op == "!=") return !equal(a, b);
    if (op == "<") return compare(a, b) < 0;
    if (op == ">") return compare(a, b) > 0;
    if (op == "<=") return compare(a, b) <= 0;
    if (op == ">=") return compare(a, b) >= 0;
    bool in = contains(b, a);
    return op == "in" ? in : !in;
  }

  std::string name_;
  const Limits& limits_;
  Dict globals_;
  std::vector<Frame> frames_;
  std::string* out_ = nullptr;
  std::uint64_t iterations_ = 0;
};

}  // namespace

Template::Template(const std::string& source, std::string name)
    : root_(parse_template(source, name)), name_(std::move(name)) {}
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const nlohmann::ordered_json& context, const Dict& globals, const Limits& limits) const {
  Dict all = globals;  // the caller's first: they shadow the built-in ones
  for (auto& kv : builtin_globals()) all.push_back(std::move(kv));
  Evaluator ev(name_, limits, std::move(all));
  if (!context.is_object()) throw TemplateError(name_ + ": the render context must be a JSON object");
  for (const auto& [k, v] : context.items()) ev.bind(k, Value::from_json(v));
  return ev.render(root_->bodies[0]);
}

}  // namespace steper::text::jinja
