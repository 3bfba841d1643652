// Prompt templates: loading, checking and rendering.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "default_prompts.h"
#include "steper/reason.h"

namespace steper::reason {
namespace {

// One final newline is not part of the layout (editors add it).
std::string strip_final_newline(std::string s) {
  if (!s.empty() && s.back() == '\n') s.pop_back();
  if (!s.empty() && s.back() == '\r') s.pop_back();
  return s;
}

// Replaces {name} by values[name]; every placeholder must be known.
std::string fill(const std::string& layout, const std::map<std::string, std::string>& values) {
  std::string out;
  out.reserve(layout.size() + 256);
  for (std::size_t i = 0; i < layout.size();) {
    if (layout[i] == '{') {
      const std::size_t close = layout.find('}', i);
      if (close != std::string::npos) {
        auto it = values.find(layout.substr(i + 1, close - i - 1));
        if (it != values.end()) {
          out += it->second;
          i = close + 1;
          continue;
        }
      }
    }
    out += layout[i++];
  }
  return out;
}

// Throws when `layout` has a {word} placeholder not in `allowed`.
void check(const std::string& file, const std::string& layout, const std::vector<std::string>& allowed) {
  for (std::size_t i = layout.find('{'); i != std::string::npos; i = layout.find('{', i + 1)) {
    const std::size_t close = layout.find('}', i);
    if (close == std::string::npos) break;
    const std::string name = layout.substr(i + 1, close - i - 1);
    bool word = !name.empty();
    for (char c : name) word = word && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    if (!word) continue;  // JSON or other braces in demonstrations are text
    bool ok = false;
    for (const auto& a : allowed) ok = ok || a == name;
    if (!ok) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "{" : ", {") + a + "}";
      throw InputError(file + ": unknown placeholder {" + name + "}; this template may use " + (list.empty() ? "none" : list));
    }
  }
}

// FNV-1a: a fingerprint to tell settings apart, not a security hash.
std::string fingerprint_of(const std::string& bytes) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ULL;
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

std::string Templates::fingerprint() const {
  const char sep = '\0';
  return fingerprint_of(passage + sep + reasoning + sep + selfask + sep + demos + sep + std::to_string(max_passage_words));
}

void PassagePool::add(std::vector<retrieve::Hit> hits) {
  for (auto& h : hits) {
    if (wants(h.id)) {
      seen_.insert(h.id);
      passages_.push_back(std::move(h));
    }
  }
}

bool PassagePool::wants(const std::string& id) const {
  return static_cast<int>(passages_.size()) < max_ && !seen_.count(id);
}

Templates default_templates() {
  Templates t;
  t.passage = strip_final_newline(kDefaultPassage);
  t.reasoning = strip_final_newline(kDefaultReasoning);
  t.selfask = strip_final_newline(kDefaultSelfask);
  t.demos = strip_final_newline(kDefaultDemos);
  return t;
}

Templates load_templates(const std::string& dir) {
  if (!std::filesystem::is_directory(dir)) throw InputError(dir + ": no such prompts folder");
  Templates t = default_templates();
  const struct {
    const char* file;
    std::string* field;
    std::vector<std::string> allowed;
  } files[] = {{"passage.txt", &t.passage, {"title", "text"}},
               {"reasoning.txt", &t.reasoning, {"demos", "passages", "question"}},
               {"selfask.txt", &t.selfask, {"demos", "passages", "question"}},
               {"demos.txt", &t.demos, {}}};
  for (const auto& f : files) {
    const std::string path = dir + "/" + f.file;
    if (!std::filesystem::exists(path)) continue;
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in) throw InputError(path + ": cannot read");
    *f.field = strip_final_newline(ss.str());
    check(path, *f.field, f.allowed);
  }
  t.folder = std::filesystem::absolute(dir).lexically_normal().string();
  if (t.folder.size() > 1 && t.folder.back() == '/') t.folder.pop_back();
  return t;
}

std::string render_passages(const Templates& t, const std::vector<retrieve::Hit>& passages) {
  std::string out;
  for (const auto& p : passages) {
    out += fill(t.passage, {{"title", p.title}, {"text", cut_words(p.text, t.max_passage_words)}}) + "\n\n";
  }
  return out;
}

std::string render_reasoning(const Templates& t, const std::string& question, const std::vector<retrieve::Hit>& passages) {
  return fill(t.reasoning, {{"demos", t.demos.empty() ? "" : t.demos + "\n\n"},
                            {"passages", render_passages(t, passages)},
                            {"question", question}});
}

std::string render_chain(const std::vector<std::string>& steps) {
  std::string out;
  for (const auto& s : steps) out += " " + s;
  return out;
}

std::string PromptFormat::render(const std::string& context, const std::string& chain) const {
  if (!chat) return context + chain;
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
  messages.push_back({{"role", "user"}, {"content", context}});
  text::ChatOptions o;
  const std::string content = target(chain);
  if (content.find_first_not_of(" \t\r\n") == std::string::npos) {
    o.add_generation_prompt = true;
  } else {
    messages.push_back({{"role", "assistant"}, {"content", content}});
    o.continue_final_message = true;
  }
  return chat->render(messages, o);
}

std::string PromptFormat::target(const std::string& chain) const {
  if (!chat) return chain;
  const std::size_t start = chain.find_first_not_of(" \t\r\n");
  return start == std::string::npos ? "" : chain.substr(start);
}

std::string PromptFormat::describe() const {
  if (!chat) return "plain";
  return "chat:" + fingerprint_of(chat->source() + '\0' + system);
}

std::string extract_answer(const std::string& text, const std::string& marker) {
  const std::size_t at = text.find(marker);
  if (at == std::string::npos) return "";
  std::string a = text.substr(at + marker.size());
  if (std::size_t nl = a.find('\n'); nl != std::string::npos) a.resize(nl);
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!a.empty() && blank(a.front())) a.erase(a.begin());
  while (!a.empty() && (blank(a.back()) || a.back() == '.')) a.pop_back();
  return a;
}

}  // namespace steper::reason
