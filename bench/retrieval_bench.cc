// Retrieval benchmark: indexing and top-10 BM25 search on a generated corpus
// (default 1,000,000 passages of 60 words over a Zipf vocabulary, the same
// bytes for the same seed), through steper's Retriever, through a minimal
// plain Xapian loop (the baseline), and through one local xapian-tcpsrv shard.
//
//   build/bench/retrieval_bench [--docs N] [--queries Q] [--work DIR] [--seed S]
//
// Prints indexing docs/s, peak memory and index size; query latency p50/p99
// and queries/s with 1 and 2 threads; and the ratios steper/plain and
// tcp/local (target for steper/plain: <= 1.10).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <xapian.h>

#include "steper/retrieve.h"
#include "tcpsrv.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Args {
  std::size_t docs = 1000000;
  std::size_t queries = 2000;
  std::size_t words_per_doc = 60;
  std::size_t vocabulary = 100000;
  double zipf_s = 1.0;
  unsigned seed = 1;
  std::string work = "/tmp/steper-retrieval-bench";
};

// Pronounceable pseudo-words, at least 4 letters, distinct per rank.
std::string word(std::size_t rank) {
  static const char* syl[] = {"ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "de", "pa", "zu", "ho", "be", "gi", "fo", "wa"};
  std::string w;
  std::size_t r = rank + 16 * 16;  // every word has at least three syllables
  while (r) {
    w += syl[r % 16];
    r /= 16;
  }
  return w;
}

class Zipf {
 public:
  Zipf(std::size_t n, double s) : cdf_(n) {
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) cdf_[i] = (sum += 1.0 / std::pow(static_cast<double>(i + 1), s));
    for (double& c : cdf_) c /= sum;
  }
  template <class Rng>
  std::size_t operator()(Rng& rng) {
    double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return static_cast<std::size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

void generate_corpus(const Args& a, const std::string& path) {
  std::mt19937_64 rng(a.seed);
  Zipf zipf(a.vocabulary, a.zipf_s);
  std::vector<std::string> words(a.vocabulary);
  for (std::size_t i = 0; i < a.vocabulary; ++i) words[i] = word(i);
  std::ofstream out(path);
  std::string text;
  for (std::size_t d = 0; d < a.docs; ++d) {
    text.clear();
    for (std::size_t w = 0; w < a.words_per_doc; ++w) {
      if (w) text += ' ';
      text += words[zipf(rng)];
    }
    std::string title = words[zipf(rng) % a.vocabulary] + " " + words[100 + zipf(rng) % (a.vocabulary - 100)];
    out << "{\"id\":\"d" << d << "\",\"title\":\"" << title << "\",\"text\":\"" << text << "\"}\n";
  }
}

std::vector<std::string> make_queries(const Args& a) {
  std::mt19937_64 rng(a.seed + 1000);
  Zipf zipf(a.vocabulary, a.zipf_s);
  std::vector<std::string> out;
  for (std::size_t q = 0; q < a.queries; ++q) {
    std::string s;
    std::size_t n = 4 + rng() % 5;  // 4 to 8 words, like a short question
    for (std::size_t w = 0; w < n; ++w) {
      std::size_t r;
      do r = zipf(rng); while (r < 20);  // the very top ranks act as stopwords
      s += (w ? " " : "") + word(r);
    }
    out.push_back(s);
  }
  return out;
}

std::uint64_t dir_bytes(const std::string& dir) {
  std::uint64_t total = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}

struct Latency {
  double p50_ms = 0, p99_ms = 0, mean_ms = 0, qps = 0;
};

Latency summarise(std::vector<double> ms, double wall_seconds) {
  std::sort(ms.begin(), ms.end());
  Latency l;
  l.p50_ms = ms[ms.size() / 2];
  l.p99_ms = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
  double sum = 0;
  for (double x : ms) sum += x;
  l.mean_ms = sum / static_cast<double>(ms.size());
  l.qps = static_cast<double>(ms.size()) / wall_seconds;
  return l;
}

// Runs `search(thread, query)` over all queries with `threads` threads, each
// taking every threads-th query; returns per-query latencies.
template <class Search>
Latency run_queries(const std::vector<std::string>& queries, int threads, Search search) {
  std::vector<std::vector<double>> ms(static_cast<std::size_t>(threads));
  auto start = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (std::size_t i = static_cast<std::size_t>(t); i < queries.size(); i += static_cast<std::size_t>(threads)) {
        auto q0 = Clock::now();
        search(t, queries[i]);
        ms[static_cast<std::size_t>(t)].push_back(seconds_since(q0) * 1000);
      }
    });
  }
  for (auto& th : pool) th.join();
  double wall = seconds_since(start);
  std::vector<double> all;
  for (auto& v : ms) all.insert(all.end(), v.begin(), v.end());
  return summarise(all, wall);
}

// The baseline: what a user of Xapian alone would write for the same search.
struct PlainXapian {
  explicit PlainXapian(const std::string& dir) : db(dir), enquire(db) {
    parser.set_database(db);
    parser.set_stemmer(Xapian::Stem("english"));
    parser.set_stemming_strategy(Xapian::QueryParser::STEM_ALL);
    parser.set_default_op(Xapian::Query::OP_OR);
    enquire.set_weighting_scheme(Xapian::BM25Weight(1.2, 0, 1, 0.75, 0));
  }
  std::size_t search(const std::string& q) {
    enquire.set_query(parser.parse_query(q, 0));
    Xapian::MSet mset = enquire.get_mset(0, 10);
    std::size_t bytes = 0;
    for (auto it = mset.begin(); it != mset.end(); ++it) bytes += it.get_document().get_data().size();
    return bytes;
  }
  Xapian::Database db;
  Xapian::Enquire enquire;
  Xapian::QueryParser parser;
};

void print_latency(const char* name, const Latency& l) {
  std::printf("  %-34s p50 %7.3f ms   p99 %7.3f ms   mean %7.3f ms   %8.0f queries/s\n", name, l.p50_ms, l.p99_ms,
              l.mean_ms, l.qps);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--docs") a.docs = std::stoul(v);
    else if (k == "--queries") a.queries = std::stoul(v);
    else if (k == "--work") a.work = v;
    else if (k == "--seed") a.seed = static_cast<unsigned>(std::stoul(v));
    else {
      std::fprintf(stderr, "usage: retrieval_bench [--docs N] [--queries Q] [--work DIR] [--seed S]\n");
      return 2;
    }
  }
  std::filesystem::remove_all(a.work);
  std::filesystem::create_directories(a.work);
  const std::string corpus = a.work + "/corpus.jsonl", index = a.work + "/index";

  std::printf("retrieval benchmark: %zu docs x %zu words, Zipf(s=%.2f) over %zu words, %zu queries, seed %u\n", a.docs,
              a.words_per_doc, a.zipf_s, a.vocabulary, a.queries, a.seed);
  auto t0 = Clock::now();
  generate_corpus(a, corpus);
  std::printf("  corpus generated in %.1f s (%.0f MB)\n", seconds_since(t0),
              static_cast<double>(std::filesystem::file_size(corpus)) / 1e6);

  // Index in a child process so that its peak memory is its own.
  t0 = Clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    try {
      steper::retrieve::build_index(corpus, index);
      ::_exit(0);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "index failed: %s\n", e.what());
      ::_exit(1);
    }
  }
  int status = 0;
  struct rusage usage {};
  ::wait4(pid, &status, 0, &usage);
  double index_seconds = seconds_since(t0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  std::printf("\nindexing\n  %.0f docs/s (%.1f s)   peak RSS %.0f MB   index %.0f MB\n",
              static_cast<double>(a.docs) / index_seconds, index_seconds, static_cast<double>(usage.ru_maxrss) / 1024,
              static_cast<double>(dir_bytes(index)) / 1e6);

  std::vector<std::string> queries = make_queries(a);
  std::vector<std::unique_ptr<steper::retrieve::Retriever>> ours;
  std::vector<std::unique_ptr<PlainXapian>> plain;
  for (int t = 0; t < 2; ++t) {
    ours.push_back(steper::retrieve::open_retriever(index));
    plain.push_back(std::make_unique<PlainXapian>(index));
  }
  // Warm the page cache and both code paths, then check they agree.
  std::size_t same_top = 0, differ_with_repeat = 0;
  for (const auto& q : queries) {
    auto hits = ours[0]->search(q, 10);
    plain[0]->enquire.set_query(plain[0]->parser.parse_query(q, 0));
    auto mset = plain[0]->enquire.get_mset(0, 1);
    if (!hits.empty() && !mset.empty() && std::abs(hits[0].score - mset.begin().get_weight()) < 1e-9) {
      ++same_top;
      continue;
    }
    // steper weights a repeated word as one term of query frequency 2;
    // QueryParser makes it two terms. Count how much of the gap that is.
    std::vector<std::string> words;
    for (std::size_t start = 0, end; start < q.size(); start = end + 1) {
      end = q.find(' ', start);
      if (end == std::string::npos) end = q.size();
      words.push_back(q.substr(start, end - start));
    }
    std::sort(words.begin(), words.end());
    if (std::adjacent_find(words.begin(), words.end()) != words.end()) ++differ_with_repeat;
  }
  std::printf("\nsearch, top-10 (steper and plain Xapian agree on the top score for %.1f%% of queries;"
              " %zu of the %zu others repeat a word)\n",
              100.0 * static_cast<double>(same_top) / static_cast<double>(queries.size()), differ_with_repeat,
              queries.size() - same_top);

  // Interleave the runs so that drift in machine speed hits both alike.
  Latency s1{}, p1{}, s2{}, p2{};
  const int rounds = 3;
  for (int r = 0; r < rounds; ++r) {
    Latency x = run_queries(queries, 1, [&](int t, const std::string& q) { ours[static_cast<std::size_t>(t)]->search(q, 10); });
    Latency y = run_queries(queries, 1, [&](int t, const std::string& q) { plain[static_cast<std::size_t>(t)]->search(q); });
    Latency x2 = run_queries(queries, 2, [&](int t, const std::string& q) { ours[static_cast<std::size_t>(t)]->search(q, 10); });
    Latency y2 = run_queries(queries, 2, [&](int t, const std::string& q) { plain[static_cast<std::size_t>(t)]->search(q); });
    if (r == 0 || x.mean_ms < s1.mean_ms) s1 = x;  // best of rounds: the least disturbed
    if (r == 0 || y.mean_ms < p1.mean_ms) p1 = y;
    if (r == 0 || x2.qps > s2.qps) s2 = x2;
    if (r == 0 || y2.qps > p2.qps) p2 = y2;
  }
  print_latency("steper Retriever, 1 thread", s1);
  print_latency("plain Xapian loop, 1 thread", p1);
  print_latency("steper Retriever, 2 threads", s2);
  print_latency("plain Xapian loop, 2 threads", p2);

  Latency remote{};
  {
    steper::testing::TcpShardServer server(STEPER_XAPIAN_TCPSRV, {index});
    auto r = steper::retrieve::open_retriever(server.spec());
    for (std::size_t i = 0; i < std::min<std::size_t>(200, queries.size()); ++i) r->search(queries[i], 10);
    remote = run_queries(queries, 1, [&](int, const std::string& q) { r->search(q, 10); });
  }
  print_latency("steper via xapian-tcpsrv, 1 thread", remote);

  // Compaction: a copy, so the timings above stay those of a fresh build.
  const std::string compacted = a.work + "/index-compact";
  t0 = Clock::now();
  Xapian::Database(index).compact(compacted);
  double compact_seconds = seconds_since(t0);
  Latency c1{};
  {
    auto r = steper::retrieve::open_retriever(compacted);
    for (const auto& q : queries) r->search(q, 10);
    c1 = run_queries(queries, 1, [&](int, const std::string& q) { r->search(q, 10); });
  }
  std::printf("\ncompaction (steper index --compact): %.1f s, %.0f MB -> %.0f MB\n", compact_seconds,
              static_cast<double>(dir_bytes(index)) / 1e6, static_cast<double>(dir_bytes(compacted)) / 1e6);
  print_latency("steper Retriever, compacted, 1 thr", c1);

  std::printf("\nratios (lower is better)\n");
  std::printf("  steper / plain Xapian, mean latency, 1 thread:  %.3fx  (target <= 1.10)\n", s1.mean_ms / p1.mean_ms);
  std::printf("  steper / plain Xapian, queries/s,  2 threads:   %.3fx  (plain/steper throughput)\n", p2.qps / s2.qps);
  std::printf("  tcp shard / local, mean latency, 1 thread:      %.3fx\n", remote.mean_ms / s1.mean_ms);
  std::printf("  2 threads / 1 thread, steper queries/s:         %.2fx  (speed-up)\n", s2.qps / s1.qps);
  std::printf("  compacted / fresh index, mean latency:          %.3fx\n", c1.mean_ms / s1.mean_ms);
  return 0;
}
