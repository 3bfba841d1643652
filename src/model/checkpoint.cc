#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "steper/io.h"
#include "steper/model_config.h"

namespace steper::model {
using io::is_file;

Checkpoint::Checkpoint(const std::string& dir) : dir_(dir) {
  const std::string single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json";
  std::vector<std::string> shards;
  if (is_file(single)) {
    shards.push_back(single);
  } else if (is_file(index)) {
    const nlohmann::json j = io::read_json(index);
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) throw InputError(index + ": no \"weight_map\" object");
    std::set<std::string> seen;
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string()) throw InputError(index + ": weight_map." + name + " is not a file name");
      if (seen.insert(file.get<std::string>()).second) shards.push_back(dir + "/" + file.get<std::string>());
    }
  } else {
    throw InputError("no weights in '" + dir + "': expected model.safetensors or model.safetensors.index.json");
  }
  for (const auto& path : shards) {
    files_.push_back(std::make_unique<SafetensorsFile>(path));
    for (const auto& t : files_.back()->tensors()) {
      if (!index_.emplace(t.name, &t).second) throw InputError(path + ": tensor '" + t.name + "' is also in another shard");
    }
  }
}

const TensorView* Checkpoint::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

const TensorView& Checkpoint::get(const std::string& name) const {
  const TensorView* t = find(name);
  if (!t) throw InputError("checkpoint '" + dir_ + "' has no tensor '" + name + "'");
  return *t;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, t] : index_) out.push_back(name);
  return out;
}

}  // namespace steper::model
