// The page: the viewer's markup, styles and script (viewer.html, viewer.css,
// viewer.js, compiled in) around the data, split into an index read on
// opening and the bulk read card by card.
#include <zlib.h>

#include "steper/error.h"
#include "steper/io.h"
#include "steper/view.h"
#include "view_assets.h"

namespace steper::view {
namespace {

using data::json;

// JSON that may sit inside <script>: every '<' (only ever inside strings)
// becomes \u003c, so no "</script>" or "<!--" in a passage ends the block.
// Invalid UTF-8 in outside text becomes U+FFFD rather than failing the page.
// Never holds a newline, so it is also one JSON line.
void append_script_safe(std::string& out, const json& j) {
  const std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
  out.reserve(out.size() + text.size() + text.size() / 64);
  for (char c : text) {
    if (c == '<') out += "\\u003c";
    else out += c;
  }
}

std::string gzip(const std::string& bytes) {
  z_stream z{};
  // 15 + 16: a gzip header, which the browser's DecompressionStream reads.
  // Level 4: within a few per cent of the default's size at twice its speed.
  if (deflateInit2(&z, 4, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) throw RuntimeError("zlib: cannot start compressing the page");
  std::string out(deflateBound(&z, bytes.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw RuntimeError("zlib: compressing the page failed (" + std::to_string(rc) + ")");
  return out;
}

std::string base64(const std::string& bytes) {
  static const char* const kDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16 | static_cast<unsigned char>(bytes[i + 1]) << 8 | static_cast<unsigned char>(bytes[i + 2]);
    out += kDigits[v >> 18], out += kDigits[(v >> 12) & 63], out += kDigits[(v >> 6) & 63], out += kDigits[v & 63];
  }
  if (i < bytes.size()) {
    const bool two = i + 1 < bytes.size();
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16 | (two ? static_cast<unsigned char>(bytes[i + 1]) << 8 : 0);
    out += kDigits[v >> 18], out += kDigits[(v >> 12) & 63];
    out += two ? kDigits[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// Replaces the first `marker` at or after `from`, and returns where the
// replacement ends: markers are filled in document order, so nothing filled
// in (a passage that reads "/*SCRIPT*/") is ever taken for a marker.
std::size_t fill(std::string& page, std::size_t from, const std::string& marker, const std::string& with) {
  const auto at = page.find(marker, from);
  if (at == std::string::npos) throw RuntimeError("viewer template lacks " + marker);
  page.replace(at, marker.size(), with);
  return at + with.size();
}

constexpr std::size_t kQuestionsPerBlock = 100, kPassagesPerBlock = 1000;

}  // namespace

std::string escape_html(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string render_page(const json& d, std::size_t compress_above) {
  // The index: everything but steps and passages. The bulk, one JSON line
  // each: per question [gold passage indices, steps of method 0 or null,
  // ...]; per passage [id, title, text]; in blocks.
  const std::size_t nq = d["questions"].size(), np = d["passages"].size();
  json index{{"title", d["title"]}, {"methods", d["methods"]}, {"figures", d["figures"]}, {"tables", d["tables"]}, {"pairs", d["pairs"]},
             {"passages", np}, {"questions", json::array()}, {"runs", json::array()}};
  std::vector<std::string> question_blocks, passage_blocks;
  std::size_t bulk_bytes = 0;
  for (std::size_t qi = 0; qi < nq; ++qi) {
    const json& q = d["questions"][qi];
    index["questions"].push_back(json::array({q[0], q[1], q[2], q[3], q[4], q[6]}));
    json line = json::array({q[5]});
    for (const auto& column : d["runs"]) line.push_back(column[qi].is_null() ? json() : column[qi][6]);
    if (qi % kQuestionsPerBlock == 0) question_blocks.emplace_back();
    append_script_safe(question_blocks.back(), line);
    question_blocks.back() += '\n';
  }
  for (const auto& column : d["runs"]) {
    json summary = json::array();
    for (const auto& r : column) {
      summary.push_back(r.is_null() ? json() : json::array({r[0], r[1], r[2], r[3], r[4], r[5], r[6].size(), r[8], r[7]}));
    }
    index["runs"].push_back(std::move(summary));
  }
  for (std::size_t i = 0; i < np; ++i) {
    if (i % kPassagesPerBlock == 0) passage_blocks.emplace_back();
    append_script_safe(passage_blocks.back(), d["passages"][i]);
    passage_blocks.back() += '\n';
  }
  for (const auto* blocks : {&question_blocks, &passage_blocks}) {
    for (const auto& b : *blocks) bulk_bytes += b.size();
  }
  const bool compress = bulk_bytes > compress_above;
  index["bulk"] = json{{"encoding", compress ? "gzip+base64" : "lines"},
                       {"questions_per_block", kQuestionsPerBlock},
                       {"passages_per_block", kPassagesPerBlock}};

  std::string data;
  append_script_safe(data, index);
  std::string bulk;
  auto add_blocks = [&](const std::vector<std::string>& blocks, const char* prefix) {
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      bulk += "<script type=\"text/plain\" id=\"" + std::string(prefix) + std::to_string(i) + "\">";
      bulk += compress ? base64(gzip(blocks[i])) : blocks[i];
      bulk += "</script>\n";
    }
  };
  add_blocks(question_blocks, "bq");
  add_blocks(passage_blocks, "bp");
  std::string page = kViewerHtml;
  std::size_t at = fill(page, 0, "<!--TITLE-->", escape_html(d.value("title", "steper traces")));
  at = fill(page, at, "/*STYLE*/", kViewerCss);
  at = fill(page, at, "/*INDEX*/", data);
  at = fill(page, at, "<!--BULK-->", bulk);
  fill(page, at, "/*SCRIPT*/", kViewerJs);
  return page;
}

ViewStats write_view(const std::vector<data::Question>& questions, const std::vector<MethodTraces>& methods,
                     const ViewOptions& options, const std::string& out) {
  ViewStats stats;
  const std::string page = render_page(view_data(questions, methods, options, &stats), options.compress_above);
  io::write_atomic(out, page);
  stats.bytes = page.size();
  return stats;
}

}  // namespace steper::view
