#include <cstdio>

#include "commands.h"
#include "interrupt.h"
#include "progress.h"
#include "steper/retrieve.h"

namespace steper::cli {
namespace {

struct IndexArgs {
  std::string corpus, out;
  retrieve::IndexOptions options;
};

void run_index(IndexArgs& a, const Global& g) {
  Progress progress("index", "docs", !g.quiet);
  a.options.progress = [&](const retrieve::IndexProgress& p) {
    progress.update(p.documents, p.total_bytes ? static_cast<double>(p.bytes_read) / static_cast<double>(p.total_bytes) : -1);
    return !StopOnInterrupt::stop_requested();
  };
  // Ctrl-C finishes the current batch, commits it and stops: the index stays
  // valid and the same command resumes it.
  retrieve::IndexStats s;
  {
    StopOnInterrupt interrupt;
    s = retrieve::build_index(a.corpus, a.out, a.options);
  }

  if (s.already_complete) {
    std::printf("%s is already a complete index of %s (%llu documents); nothing to do (--overwrite rebuilds it)\n",
                a.out.c_str(), a.corpus.c_str(), static_cast<unsigned long long>(s.documents));
    return;
  }
  if (s.skipped) warn("skipped " + std::to_string(s.skipped) + " malformed line(s); the first: " + s.first_error);
  if (s.duplicates) warn(std::to_string(s.duplicates) + " line(s) repeated an earlier id; the later passage was kept");
  if (!s.complete) {
    progress.abandon();
    throw Interrupted("interrupted: " + std::to_string(s.documents) + " documents are committed in " + a.out +
                      "; rerun the same command to resume");
  }
  progress.finish(s.added);
  std::printf("indexed %llu documents%s into %s (%llu in the index)\n", static_cast<unsigned long long>(s.added),
              s.resumed ? " (resumed)" : "", a.out.c_str(), static_cast<unsigned long long>(s.documents));
  if (a.options.compact) {
    std::printf("compacted from %.1f MB\n", static_cast<double>(s.bytes_before_compaction) / 1e6);
  }
}

}  // namespace

void add_index_command(CLI::App& app, const Global& global) {
  auto args = std::make_shared<IndexArgs>();
  CLI::App* cmd = app.add_subcommand(
      "index",
      "Build a BM25 index (Xapian) from a corpus JSONL of {\"id\", \"title\", \"text\"}.\n"
      "Streams the corpus and commits every --batch documents: Ctrl-C or a crash keeps a valid\n"
      "index, and rerunning the same command resumes where it stopped.");
  cmd->add_option("--corpus", args->corpus, "Corpus JSONL")->required();
  cmd->add_option("--out", args->out, "Index folder (created if missing)")->required();
  cmd->add_option("--batch", args->options.batch_documents, "Documents per commit")->check(positive());
  cmd->add_option("--stemmer", args->options.stemmer, "Stemmer for index and queries ('none' to disable)");
  cmd->add_flag("--overwrite", args->options.overwrite, "Rebuild from scratch if the folder holds an index");
  cmd->add_flag("--compact", args->options.compact, "Compact the finished index (about a third smaller)");
  cmd->add_flag("--skip-bad", args->options.skip_bad, "Skip malformed corpus lines (counted) instead of stopping");
  cmd->callback([args, &global] { run_index(*args, global); });
}

}  // namespace steper::cli
