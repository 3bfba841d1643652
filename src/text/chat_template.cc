// Hugging Face's apply_chat_template over steper's Jinja engine: the same
// variables, the same two functions, and the same cut for
// continue_final_message (the text ends right after the final message's
// content, stripped as the template may have stripped it).
#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "jinja.h"
#include "jinja_builtins.h"
#include "steper/io.h"
#include "steper/text.h"

namespace steper::text {
namespace {

using json = nlohmann::ordered_json;

using io::is_file;
using io::read_file;

// A special token as tokenizer_config.json writes it: a string, or an
// AddedToken object {"content": ...}.
json token_text(const json& t) {
  if (t.is_object() && t.contains("content")) return t["content"];
  return t;
}

// The variables transformers passes from special_tokens_map: only the set ones.
json special_tokens_of(const json& config) {
  json out = json::object();
  for (const char* k : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
    if (config.contains(k) && !config[k].is_null()) out[k] = token_text(config[k]);
  }
  if (config.contains("additional_special_tokens") && config["additional_special_tokens"].is_array()) {
    json list = json::array();
    for (const auto& t : config["additional_special_tokens"]) list.push_back(token_text(t));
    out["additional_special_tokens"] = list;
  }
  return out;
}

std::string final_text(const json& messages, const std::string& name) {
  const json& last = messages.back();
  if (!last.is_object() || !last.contains("content")) {
    throw InputError(name + ": continue_final_message needs a final message with a 'content'");
  }
  const json& c = last["content"];
  if (c.is_string()) return c.get<std::string>();
  if (c.is_array()) {
    for (auto it = c.rbegin(); it != c.rend(); ++it) {
      if (it->is_object() && it->contains("text") && (*it)["text"].is_string()) return (*it)["text"].get<std::string>();
    }
  }
  throw InputError(name + ": continue_final_message found no text in the final message's content");
}

}  // namespace

ChatTemplate::ChatTemplate(const std::string& source, const json& special_tokens, std::string name)
    : source_(source),
      template_(std::make_unique<jinja::Template>(source, name)),
      special_tokens_(special_tokens),
      name_(std::move(name)) {}
ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

std::string ChatTemplate::render(const json& messages, const ChatOptions& options) const {
  if (!messages.is_array()) throw InputError(name_ + ": messages must be a list");
  if (options.continue_final_message && options.add_generation_prompt) {
    throw InputError(name_ + ": continue_final_message and add_generation_prompt exclude each other");
  }
  if (options.continue_final_message && messages.empty()) {
    throw InputError(name_ + ": continue_final_message needs at least one message");
  }
  json context = special_tokens_;
  for (const auto& [k, v] : options.variables.items()) context[k] = v;
  context["messages"] = messages;
  if (!context.contains("tools")) context["tools"] = nullptr;
  if (!context.contains("documents")) context["documents"] = nullptr;
  context["add_generation_prompt"] = options.add_generation_prompt;

  jinja::Dict globals;
  globals.emplace_back("raise_exception", jinja::Value::function([](jinja::Args& a) -> jinja::Value {
    throw jinja::TemplateError("the template raised an error: " + jinja::str(a.get(0, "message")));
  }));
  globals.emplace_back("strftime_now", jinja::Value::function([](jinja::Args& a) -> jinja::Value {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[256];
    std::size_t n = std::strftime(buf, sizeof buf, jinja::str(a.get(0, "format")).c_str(), &tm);
    return jinja::Value::string(std::string(buf, n));
  }));
  std::string rendered = template_->render(context, globals);
  if (!options.continue_final_message) return rendered;

  const std::string final_message = final_text(messages, name_);
  const std::string stripped = jinja::python_strip(final_message, true, true);
  std::size_t at = rendered.rfind(stripped);
  if (at == std::string::npos) {
    throw InputError(name_ + ": continue_final_message is set, but the final message does not appear in the "
                     "rendered chat (the template changes it)");
  }
  // As transformers: keep the message's trailing blanks when the template
  // kept them, else end at its stripped content.
  const std::string lstripped = jinja::python_strip(final_message, true, false);
  if (rendered.compare(at, lstripped.size(), final_message) == 0) return rendered.substr(0, at + lstripped.size());
  return rendered.substr(0, at + stripped.size());
}

bool has_chat_template(const std::string& dir) {
  if (is_file(dir + "/chat_template.jinja")) return true;
  const std::string config = dir + "/tokenizer_config.json";
  if (!is_file(config)) return false;
  try {
    json c = io::read_ordered_json(config);
    return c.contains("chat_template") && !c["chat_template"].is_null();
  } catch (const InputError&) {
    return false;
  }
}

ChatTemplate load_chat_template(const std::string& path, const std::string& override_file) {
  struct stat st {};
  const bool is_dir = ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  if (!is_dir && !is_file(path)) throw InputError("no chat template at '" + path + "': no such file or folder");
  const std::string dir = is_dir ? path : std::filesystem::path(path).parent_path().string();
  const bool path_is_config = !is_dir && std::filesystem::path(path).extension() == ".json";
  const std::string config_path = path_is_config ? path : (dir.empty() ? "." : dir) + "/tokenizer_config.json";
  json config = is_file(config_path) ? io::read_ordered_json(config_path) : json::object();
  if (!config.is_object()) throw InputError(config_path + ": not a JSON object");
  json tokens = special_tokens_of(config);
  if (!override_file.empty()) return ChatTemplate(read_file(override_file), tokens, override_file);
  if (!is_dir && !path_is_config) return ChatTemplate(read_file(path), tokens, path);  // a Jinja file
  if (is_dir && is_file(path + "/chat_template.jinja")) {
    return ChatTemplate(read_file(path + "/chat_template.jinja"), tokens, path + "/chat_template.jinja");
  }
  if (!config.contains("chat_template") || config["chat_template"].is_null()) {
    throw InputError("no chat template in '" + path + "': tokenizer_config.json has no 'chat_template'" +
                     (is_dir ? " and there is no chat_template.jinja" : "") + "\n  hint: --chat-template FILE gives one");
  }
  const json& t = config["chat_template"];
  const std::string name = config_path + " chat_template";
  if (t.is_string()) return ChatTemplate(t.get<std::string>(), tokens, name);
  if (t.is_array()) {
    for (const auto& named : t) {
      if (named.is_object() && named.value("name", "") == "default" && named.contains("template") && named["template"].is_string()) {
        return ChatTemplate(named["template"].get<std::string>(), tokens, name + " 'default'");
      }
    }
    throw InputError(config_path + ": field 'chat_template': a list without a template named \"default\"");
  }
  throw InputError(config_path + ": field 'chat_template': expected a string or a list of {name, template}");
}

}  // namespace steper::text
