// Two kinds of chart as standalone SVG text: lines over steps, grouped bars.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace steper::pipeline {

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), x ascending
};

std::string line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                       const std::vector<Series>& series);

struct BarGroup {
  std::string label;
  std::vector<double> values;  // one per series; NaN: no bar
};

// Bars from 0 to max(values) (at least y_max when y_max > 0).
std::string bar_chart(const std::string& title, const std::string& y_label, const std::vector<std::string>& series,
                      const std::vector<BarGroup>& groups, double y_max = 0);

}  // namespace steper::pipeline
