// One field of every line of a training run's metrics.jsonl.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "steper/data.h"

namespace steper::testing {

// NaN where the field is null (a stage absent from that step's batch).
inline std::vector<double> metrics_column(const std::string& metrics_path, const std::string& field) {
  std::vector<double> out;
  data::JsonRecords r(metrics_path);
  data::json j;
  while (r.next(j)) out.push_back(j[field].is_null() ? std::nan("") : j[field].get<double>());
  return out;
}

}  // namespace steper::testing
