#include <cstdio>

#include "commands.h"
#include "steper/retrieve.h"

namespace steper::cli {
namespace {

constexpr std::size_t kSnippetBytes = 300;

struct SearchArgs {
  std::string index, query;
  int k = 10;
  bool json = false;
  retrieve::SearchOptions options;
};

// Cuts at a UTF-8 character boundary so the snippet stays valid text.
std::string snippet(const std::string& text) {
  if (text.size() <= kSnippetBytes) return text;
  std::size_t cut = kSnippetBytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "...";
}

void run_search(const SearchArgs& a) {
  auto retriever = open_index(a.index, a.options);
  std::vector<retrieve::Hit> hits = retriever->search(a.query, a.k);
  if (a.json) {
    data::json out = data::json::array();
    for (const auto& h : hits) out.push_back({{"id", h.id}, {"title", h.title}, {"text", h.text}, {"score", h.score}});
    std::printf("%s\n", out.dump(-1, ' ', false, data::json::error_handler_t::replace).c_str());
    return;
  }
  if (hits.empty()) std::printf("no passages match\n");
  for (std::size_t i = 0; i < hits.size(); ++i) {
    const auto& h = hits[i];
    std::printf("%2zu. %s  [%s]  score %.3f\n    %s\n", i + 1, h.title.c_str(), h.id.c_str(), h.score,
                snippet(h.text).c_str());
  }
}

}  // namespace

void add_search_options(CLI::App* cmd, retrieve::SearchOptions& options) {
  cmd->add_option("--k1", options.bm25.k1, "BM25 term-frequency saturation")->check(non_negative());
  cmd->add_option("--b", options.bm25.b, "BM25 length normalisation")->check(in_range(0.0, 1.0));
  cmd->add_option("--threads", options.threads, "Search threads (batch searches)")->check(positive());
  cmd->add_option("--timeout-ms", options.remote_timeout_ms, "Connect/answer timeout for tcp:// shards")
      ->check(positive());
}

std::unique_ptr<retrieve::Retriever> open_index(const std::string& spec, const retrieve::SearchOptions& options) {
  retrieve::IndexInfo info = retrieve::read_index_info(spec, options);
  if (!info.complete) {
    warn("the build of " + spec + " was interrupted (" + std::to_string(info.documents) +
         " documents so far); rerun `steper index` to finish it");
  }
  return retrieve::open_retriever(spec, options);
}

void add_search_command(CLI::App& app, const Global&) {
  auto args = std::make_shared<SearchArgs>();
  CLI::App* cmd = app.add_subcommand("search", "Print the top-k passages of a BM25 index for a query.");
  cmd->add_option("--index", args->index,
                  "Index folder, tcp://HOST:PORT of a xapian-tcpsrv shard, or several separated by commas")
      ->required();
  cmd->add_option("--k", args->k, "Passages to return")->check(positive());
  cmd->add_flag("--json", args->json, "Print one JSON array of {id, title, text, score}");
  cmd->add_option("query", args->query, "The query text")->required();
  add_search_options(cmd, args->options);
  cmd->callback([args] { run_search(*args); });
}

}  // namespace steper::cli
