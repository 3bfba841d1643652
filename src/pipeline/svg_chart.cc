#include "svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "steper/view.h"

namespace steper::pipeline {
namespace {

constexpr double kWidth = 720, kHeight = 400, kLeft = 70, kRight = 190, kTop = 40, kBottom = 50;
const char* const kColors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#9c755f", "#bab0ac"};
// Lines that coincide (two stage weights equal all run long) must still
// each be seen: every series has its own dash pattern and marker shape, and
// later ones are drawn thinner on top.
const char* const kDashes[] = {"", "7 4", "2 3", "10 3 2 3"};
enum class Marker { circle, square, triangle, diamond };

using view::escape_html;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string marker(std::size_t series, double x, double y) {
  const std::string c = kColors[series % 8];
  switch (static_cast<Marker>(series % 4)) {
    case Marker::circle:
      return "<circle cx=\"" + fmt("%.1f", x) + "\" cy=\"" + fmt("%.1f", y) + "\" r=\"4\" fill=\"none\" stroke=\"" + c + "\" stroke-width=\"1.5\"/>\n";
    case Marker::square:
      return "<rect x=\"" + fmt("%.1f", x - 3) + "\" y=\"" + fmt("%.1f", y - 3) + "\" width=\"6\" height=\"6\" fill=\"" + c + "\"/>\n";
    case Marker::triangle:
      return "<path d=\"M" + fmt("%.1f", x) + "," + fmt("%.1f", y - 4) + " L" + fmt("%.1f", x + 4) + "," + fmt("%.1f", y + 3) + " L" + fmt("%.1f", x - 4) +
             "," + fmt("%.1f", y + 3) + " Z\" fill=\"" + c + "\"/>\n";
    case Marker::diamond:
      return "<path d=\"M" + fmt("%.1f", x) + "," + fmt("%.1f", y - 4) + " L" + fmt("%.1f", x + 4) + "," + fmt("%.1f", y) + " L" + fmt("%.1f", x) + "," +
             fmt("%.1f", y + 4) + " L" + fmt("%.1f", x - 4) + "," + fmt("%.1f", y) + " Z\" fill=\"none\" stroke=\"" + c + "\" stroke-width=\"1.5\"/>\n";
  }
  return "";
}

// A "nice" tick step for a range: 1, 2 or 5 times a power of ten.
double tick_step(double range) {
  if (range <= 0) return 1;
  const double raw = range / 5, p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (raw <= m * p) return m * p;
  }
  return 10 * p;
}

std::string open_svg(const std::string& title) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt("%.0f", kWidth) + "\" height=\"" + fmt("%.0f", kHeight) +
         "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
         "<text x=\"" + fmt("%.0f", kWidth / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" + escape_html(title) + "</text>\n";
}

// Axes, horizontal grid lines with labels from lo to hi, and the y label.
std::string y_axis(double lo, double hi, const std::string& label, std::string* ticks_fmt = nullptr) {
  const double step = tick_step(hi - lo), plot_h = kHeight - kTop - kBottom;
  const char* f = step >= 1 ? "%.0f" : step >= 0.1 ? "%.1f" : "%.2f";
  if (ticks_fmt) *ticks_fmt = f;
  std::string s;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    const double y = kTop + plot_h * (1 - (v - lo) / (hi - lo));
    s += "<line x1=\"" + fmt("%.1f", kLeft) + "\" x2=\"" + fmt("%.1f", kWidth - kRight) + "\" y1=\"" + fmt("%.1f", y) + "\" y2=\"" +
         fmt("%.1f", y) + "\" stroke=\"#ddd\"/>\n";
    s += "<text x=\"" + fmt("%.1f", kLeft - 6) + "\" y=\"" + fmt("%.1f", y + 4) + "\" text-anchor=\"end\">" + fmt(f, v) + "</text>\n";
  }
  s += "<text transform=\"translate(16," + fmt("%.1f", kTop + plot_h / 2) + ") rotate(-90)\" text-anchor=\"middle\">" + escape_html(label) + "</text>\n";
  s += "<line x1=\"" + fmt("%.1f", kLeft) + "\" x2=\"" + fmt("%.1f", kLeft) + "\" y1=\"" + fmt("%.1f", kTop) + "\" y2=\"" +
       fmt("%.1f", kHeight - kBottom) + "\" stroke=\"black\"/>\n";
  s += "<line x1=\"" + fmt("%.1f", kLeft) + "\" x2=\"" + fmt("%.1f", kWidth - kRight) + "\" y1=\"" + fmt("%.1f", kHeight - kBottom) +
       "\" y2=\"" + fmt("%.1f", kHeight - kBottom) + "\" stroke=\"black\"/>\n";
  return s;
}

// The legend: a swatch per bar series, or a line sample with its dash and
// marker per line series.
std::string legend(const std::vector<std::string>& names, bool lines = false) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const double y = kTop + 10 + 20 * static_cast<double>(i), x = kWidth - kRight + 14;
    if (lines) {
      s += "<line x1=\"" + fmt("%.1f", x) + "\" x2=\"" + fmt("%.1f", x + 26) + "\" y1=\"" + fmt("%.1f", y - 3) + "\" y2=\"" + fmt("%.1f", y - 3) +
           "\" stroke=\"" + kColors[i % 8] + "\" stroke-width=\"2\" stroke-dasharray=\"" + kDashes[i % 4] + "\"/>\n" + marker(i, x + 13, y - 3);
    } else {
      s += "<rect x=\"" + fmt("%.1f", x) + "\" y=\"" + fmt("%.1f", y - 9) + "\" width=\"12\" height=\"12\" fill=\"" + kColors[i % 8] + "\"/>\n";
    }
    s += "<text x=\"" + fmt("%.1f", x + (lines ? 32 : 18)) + "\" y=\"" + fmt("%.1f", y + 1) + "\">" + escape_html(names[i]) + "</text>\n";
  }
  return s;
}

std::string note(const std::string& text) {
  return "<text x=\"" + fmt("%.1f", kLeft + (kWidth - kLeft - kRight) / 2) + "\" y=\"" + fmt("%.1f", kTop + (kHeight - kTop - kBottom) / 2) +
         "\" text-anchor=\"middle\" fill=\"#555\">" + escape_html(text) + "</text>\n";
}

}  // namespace

std::string line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                       const std::vector<Series>& series) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : series) {
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(y)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  }
  std::string svg = open_svg(title);
  if (!std::isfinite(x0)) return svg + note("no data: nothing was logged") + "</svg>\n";
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  svg += y_axis(y0, y1, y_label);
  const double xs = tick_step(x1 - x0);
  for (double v = std::ceil(x0 / xs) * xs; v <= x1 + xs * 1e-9; v += xs) {
    const double x = kLeft + plot_w * (v - x0) / (x1 - x0);
    svg += "<text x=\"" + fmt("%.1f", x) + "\" y=\"" + fmt("%.1f", kHeight - kBottom + 16) + "\" text-anchor=\"middle\">" + fmt("%.0f", v) + "</text>\n";
  }
  svg += "<text x=\"" + fmt("%.1f", kLeft + plot_w / 2) + "\" y=\"" + fmt("%.1f", kHeight - 12) + "\" text-anchor=\"middle\">" + escape_html(x_label) + "</text>\n";
  std::vector<std::string> names;
  for (std::size_t i = 0; i < series.size(); ++i) {
    names.push_back(series[i].name);
    std::string d, marks;
    bool pen_up = true;
    const std::size_t n = series[i].points.size(), every = std::max<std::size_t>(1, n / 10);
    for (std::size_t k = 0; k < n; ++k) {
      const auto [x, y] = series[i].points[k];
      if (!std::isfinite(y)) {
        pen_up = true;
        continue;
      }
      const double px = kLeft + plot_w * (x - x0) / (x1 - x0), py = kTop + plot_h * (1 - (y - y0) / (y1 - y0));
      d += (pen_up ? "M" : "L") + fmt("%.1f", px) + "," + fmt("%.1f", py) + " ";
      pen_up = false;
      // Markers at about ten points per line, offset per series so that
      // coinciding lines show each one's.
      if ((k + i * every / 4) % every == 0 || k + 1 == n) marks += marker(i, px, py);
    }
    const double width = std::max(1.2, 2.6 - 0.5 * static_cast<double>(i));
    svg += "<path d=\"" + d + "\" fill=\"none\" stroke=\"" + kColors[i % 8] + "\" stroke-width=\"" + fmt("%.1f", width) + "\" stroke-dasharray=\"" +
           kDashes[i % 4] + "\"/>\n" + marks;
  }
  return svg + legend(names, true) + "</svg>\n";
}

std::string bar_chart(const std::string& title, const std::string& y_label, const std::vector<std::string>& series,
                      const std::vector<BarGroup>& groups, double y_max) {
  double hi = y_max > 0 ? y_max : 0;
  bool any = false, nonzero = false;
  for (const auto& g : groups) {
    for (double v : g.values) {
      if (!std::isfinite(v)) continue;
      hi = std::max(hi, v);
      any = true;
      nonzero = nonzero || v != 0;
    }
  }
  if (hi <= 0) hi = 1;
  std::string svg = open_svg(title);
  svg += y_axis(0, hi, y_label);
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  const double group_w = plot_w / static_cast<double>(std::max<std::size_t>(1, groups.size()));
  const double bar_w = group_w * 0.8 / static_cast<double>(std::max<std::size_t>(1, series.size()));
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const double gx = kLeft + group_w * static_cast<double>(g) + group_w * 0.1;
    for (std::size_t i = 0; i < groups[g].values.size() && i < series.size(); ++i) {
      const double v = groups[g].values[i];
      if (!std::isfinite(v)) continue;
      const double h = plot_h * v / hi;
      svg += "<rect x=\"" + fmt("%.1f", gx + bar_w * static_cast<double>(i)) + "\" y=\"" + fmt("%.1f", kTop + plot_h - h) + "\" width=\"" +
             fmt("%.1f", bar_w * 0.92) + "\" height=\"" + fmt("%.1f", h) + "\" fill=\"" + kColors[i % 8] + "\"><title>" +
             escape_html(series[i] + ": " + fmt("%.3f", v)) + "</title></rect>\n";
    }
    svg += "<text x=\"" + fmt("%.1f", gx + group_w * 0.4) + "\" y=\"" + fmt("%.1f", kHeight - kBottom + 16) + "\" text-anchor=\"middle\">" +
           escape_html(groups[g].label) + "</text>\n";
  }
  // Bars of height 0 draw nothing: say so rather than show empty axes.
  if (!any) svg += note("no data");
  else if (!nonzero) svg += note("every value is 0");
  return svg + legend(series) + "</svg>\n";
}

}  // namespace steper::pipeline
