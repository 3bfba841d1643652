#include "stage_book.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "steper/error.h"
#include "steper/io.h"

namespace fs = std::filesystem;

namespace steper::pipeline {

using data::json;

std::string digest(const std::string& text) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

namespace {

json read_state(const std::string& path) {
  std::ifstream in(path);
  if (!in) return json();
  try {
    return json::parse(in);
  } catch (const json::exception&) {
    return json();  // torn by a crash mid-write: treated as never begun
  }
}

void write_state(const std::string& path, const json& state) { io::write_json_atomic(path, state); }

}  // namespace

StageBook::StageBook(std::string out_dir) : dir_(std::move(out_dir)) { fs::create_directories(dir_ + "/stages"); }

json StageBook::run(const std::string& name, const json& inputs, const std::vector<std::string>& after,
                    const std::vector<std::string>& outputs, const std::function<json()>& work) {
  json what{{"inputs", inputs}, {"after", json::object()}};
  for (const auto& a : after) what["after"][a] = key(a);
  const std::string key = digest(what.dump());
  const std::string path = dir_ + "/stages/" + name + ".json";
  json state = read_state(path);
  const bool done = state.is_object() && state.value("key", "") == key && state.value("state", "") == "done";
  {
    std::lock_guard<std::mutex> lock(mutex_);
    keys_[name] = key;
    skipped_[name] = done;
  }
  if (done) return state.value("result", json());
  if (!state.is_object() || state.value("key", "") != key) {
    for (const auto& o : outputs) fs::remove_all(dir_ + "/" + o);
  }
  write_state(path, json{{"key", key}, {"state", "started"}, {"inputs", what}});
  json result = work();
  write_state(path, json{{"key", key}, {"state", "done"}, {"inputs", what}, {"result", result}});
  return result;
}

const std::string& StageBook::key(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = keys_.find(name);
  if (it == keys_.end()) throw std::logic_error("stage '" + name + "' has not run");
  return it->second;
}

}  // namespace steper::pipeline
