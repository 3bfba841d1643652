// steper/retrieve.h — BM25 retrieval over a Xapian index.
//
// An index is built once from a corpus JSONL (build_index) and opened for
// search through an index spec (open_retriever):
//   "path/to/index"            a local index folder
//   "tcp://HOST:PORT"          a shard served by `xapian-tcpsrv --port PORT DIR`
//   "a,b,tcp://h:7001"         several shards searched as one corpus
// Scores are BM25 over the whole set of shards, as if they were one index.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "steper/data.h"

namespace steper::retrieve {

// One retrieved passage.
struct Hit {
  std::string id;
  std::string title;
  std::string text;
  double score = 0;
};

// What later parts retrieve through. Implementations are safe to call from
// one thread at a time; search_batch parallelises internally.
class Retriever {
 public:
  virtual ~Retriever() = default;
  // Top-k passages for `query`, best first. An empty or all-stopword query
  // gives no hits. REQUIRES: k >= 0.
  virtual std::vector<Hit> search(const std::string& query, int k) = 0;
  // The same for many queries; result i answers queries[i].
  virtual std::vector<std::vector<Hit>> search_batch(const std::vector<std::string>& queries, int k);
  // The passages with these ids (score 0), by id; ids the index lacks are
  // absent from the map.
  virtual std::map<std::string, Hit> fetch(const std::vector<std::string>& ids) = 0;
  // The index spec it searches, as open_retriever was given it.
  virtual const std::string& spec() const = 0;
};

// BM25 as Robertson and Zaragoza state it, per query term t of document d:
//   idf(t) * (k1 + 1) * tf(t,d) / (k1 * ((1 - b) + b * len(d) / avglen) + tf(t,d))
// The defaults are those of Elasticsearch/Lucene, which IRCoT and StepER used
// for their BM25 baselines. Both parameters apply at query time: one index
// serves any setting. Xapian departs from the textbook in two small ways,
// documented in analyzer.cc.
struct Bm25Params {
  double k1 = 1.2;  // term-frequency saturation; >= 0. Default: 1.2
  double b = 0.75;  // length normalisation in [0, 1]. Default: 0.75
};

struct SearchOptions {
  Bm25Params bm25;
  // Threads search_batch uses, each with its own database handle. Default: 1.
  int threads = 1;
  // Milliseconds to wait for a remote shard to connect or answer. Default: 10000.
  int remote_timeout_ms = 10000;
};

// What an index says about itself (stored in the index's metadata).
struct IndexInfo {
  std::string spec;
  std::uint64_t documents = 0;
  bool complete = false;   // false: a build was interrupted; rerun it to resume
  std::string stemmer;     // "english" | "none" | any Xapian stemmer name
  std::string corpus;      // the corpus file it was built from
};

// Opens an index spec for search. Throws InputError for a missing folder or
// something that is not a steper index, RuntimeError for an unreachable shard.
std::unique_ptr<Retriever> open_retriever(const std::string& spec, const SearchOptions& options = {});
IndexInfo read_index_info(const std::string& spec, const SearchOptions& options = {});

struct IndexProgress {
  std::uint64_t documents = 0;   // indexed so far, this run
  std::uint64_t bytes_read = 0;  // of the corpus file
  std::uint64_t total_bytes = 0;
};

struct IndexOptions {
  // Documents between commits. A crash loses at most this many, and a rerun
  // resumes from the last commit. Default: 20000.
  std::uint64_t batch_documents = 20000;
  // Stemmer for index and queries: "english", "none", or a Xapian stemmer
  // name. Fixed at build time. Default: "english".
  std::string stemmer = "english";
  // Rebuild from scratch even if DIR holds an index. Default: false.
  bool overwrite = false;
  // Skip malformed corpus lines (counted) instead of stopping. Default: false.
  bool skip_bad = false;
  // Once complete, rewrite the index compactly (Xapian's compaction: about
  // a third smaller and a little faster to search; it can no longer be
  // resumed, which a finished index never needs). Default: false.
  bool compact = false;
  // Called after every commit and at the end; return false to stop early
  // (what is committed stays valid and resumable).
  std::function<bool(const IndexProgress&)> progress;
};

struct IndexStats {
  std::uint64_t added = 0;        // documents indexed by this run
  std::uint64_t documents = 0;    // documents in the index now
  std::uint64_t skipped = 0;      // malformed lines skipped (with skip_bad)
  std::uint64_t duplicates = 0;   // lines whose id was already indexed (the later one wins)
  std::string first_error;
  bool resumed = false;           // continued an interrupted build
  bool already_complete = false;  // nothing to do: the index was complete
  bool complete = false;          // false when progress() asked to stop
  std::uint64_t bytes_before_compaction = 0;  // with compact: the size it had
};

// Builds (or resumes building) the index in `dir` from a corpus JSONL,
// streaming: memory stays flat however large the corpus. A rerun after an
// interruption continues from the last commit; a rerun of a finished build
// does nothing. A rerun against a different corpus is refused unless
// options.overwrite.
IndexStats build_index(const std::string& corpus_path, const std::string& dir, const IndexOptions& options = {});

}  // namespace steper::retrieve
