// Which stages of an experiment are done, and with which inputs.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "steper/data.h"

namespace steper::pipeline {

// OUT/stages/NAME.json holds {"key": ..., "state": "started"|"done",
// "result": ...}. The key is a digest of what the stage read: its config
// fields and the keys of the stages before it, so a change anywhere
// upstream reaches everything downstream. Stages may run on several threads
// at once.
class StageBook {
 public:
  explicit StageBook(std::string out_dir);

  // Runs `work` unless stage `name` is done with the same key, and returns
  // its result (the stored one when skipped). When the stage was begun or
  // finished with another key, `outputs` (paths under the out folder) are
  // removed first; when it was begun with this key, they are kept so that
  // the work resumes.
  data::json run(const std::string& name, const data::json& inputs, const std::vector<std::string>& after,
                 const std::vector<std::string>& outputs, const std::function<data::json()>& work);

  // The key stage `name` ran with (after run()).
  const std::string& key(const std::string& name) const;
  bool skipped(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = skipped_.find(name);
    return it != skipped_.end() && it->second;
  }

 private:
  std::string dir_;
  mutable std::mutex mutex_;  // guards the maps; never held while a stage works
  std::map<std::string, std::string> keys_;  // node-based: references stay valid
  std::map<std::string, bool> skipped_;
};

// FNV-1a of the text, as 16 hex digits: stable across runs and builds.
std::string digest(const std::string& text);

}  // namespace steper::pipeline
