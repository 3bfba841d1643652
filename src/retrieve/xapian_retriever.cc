// The Retriever over one or more Xapian shards. Xapian database handles are
// not thread-safe, so each searching thread owns its own handle, analyzer
// and enquire object; handles beyond the first open on the first batch.
#include <atomic>
#include <thread>

#include "analyzer.h"
#include "doc_data.h"
#include "index_spec.h"
#include "steper/retrieve.h"

namespace steper::retrieve {
namespace {

class Searcher {
 public:
  Searcher(const std::string& spec, const SearchOptions& options)
      : db_(open_shards(spec, options.remote_timeout_ms)),
        analyzer_(db_.get_metadata(meta::kStemmer)),
        enquire_(db_),
        spec_(spec) {
    enquire_.set_weighting_scheme(bm25_weight(options.bm25));
  }

  std::vector<Hit> search(const std::string& query, int k) {
    if (k < 0) throw InputError("k must be >= 0, got " + std::to_string(k));
    std::vector<Hit> hits;
    Xapian::Query q = analyzer_.query(query);
    if (q.empty() || k == 0) return hits;
    try {
      enquire_.set_query(q);
      Xapian::MSet mset = enquire_.get_mset(0, static_cast<Xapian::doccount>(k));
      hits.reserve(mset.size());
      for (auto it = mset.begin(); it != mset.end(); ++it) {
        Hit& h = hits.emplace_back();
        decode_doc_data(it.get_document().get_data(), h.id, h.title, h.text);
        h.score = it.get_weight();
      }
    } catch (const Xapian::DatabaseModifiedError&) {
      // A build committed under us: reopen at the new revision and retry once.
      db_.reopen();
      return search(query, k);
    } catch (const Xapian::Error& e) {
      throw RuntimeError("search in " + spec_ + " failed: " + e.get_description());
    }
    return hits;
  }

  // By the id term every document carries (analyzer.h).
  std::map<std::string, Hit> fetch(const std::vector<std::string>& ids) {
    std::map<std::string, Hit> out;
    try {
      for (const auto& id : ids) {
        auto p = db_.postlist_begin(id_term(id));
        if (p == db_.postlist_end(id_term(id))) continue;
        Hit h;
        decode_doc_data(db_.get_document(*p).get_data(), h.id, h.title, h.text);
        out.emplace(id, std::move(h));
      }
    } catch (const Xapian::DatabaseModifiedError&) {
      db_.reopen();
      return fetch(ids);
    } catch (const Xapian::Error& e) {
      throw RuntimeError("reading passages from " + spec_ + " failed: " + e.get_description());
    }
    return out;
  }

 private:
  Xapian::Database db_;
  Analyzer analyzer_;
  Xapian::Enquire enquire_;
  std::string spec_;
};

class XapianRetriever final : public Retriever {
 public:
  XapianRetriever(std::string spec, const SearchOptions& options) : spec_(std::move(spec)), options_(options) {
    if (options_.threads < 1) throw InputError("threads must be >= 1, got " + std::to_string(options_.threads));
    searchers_.push_back(std::make_unique<Searcher>(spec_, options_));
  }

  std::vector<Hit> search(const std::string& query, int k) override { return searchers_[0]->search(query, k); }
  std::map<std::string, Hit> fetch(const std::vector<std::string>& ids) override { return searchers_[0]->fetch(ids); }
  const std::string& spec() const override { return spec_; }

  std::vector<std::vector<Hit>> search_batch(const std::vector<std::string>& queries, int k) override {
    std::vector<std::vector<Hit>> out(queries.size());
    std::size_t threads = std::min<std::size_t>(static_cast<std::size_t>(options_.threads), queries.size());
    if (threads <= 1) {
      for (std::size_t i = 0; i < queries.size(); ++i) out[i] = search(queries[i], k);
      return out;
    }
    while (searchers_.size() < threads) searchers_.push_back(std::make_unique<Searcher>(spec_, options_));
    std::atomic<std::size_t> next{0};
    std::vector<std::exception_ptr> errors(threads);
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        try {
          for (std::size_t i; (i = next.fetch_add(1)) < queries.size();) out[i] = searchers_[t]->search(queries[i], k);
        } catch (...) {
          errors[t] = std::current_exception();
          next = queries.size();
        }
      });
    }
    for (auto& th : pool) th.join();
    for (auto& e : errors) {
      if (e) std::rethrow_exception(e);
    }
    return out;
  }

 private:
  std::string spec_;
  SearchOptions options_;
  std::vector<std::unique_ptr<Searcher>> searchers_;
};

}  // namespace

std::unique_ptr<Retriever> open_retriever(const std::string& spec, const SearchOptions& options) {
  return std::make_unique<XapianRetriever>(spec, options);
}

IndexInfo read_index_info(const std::string& spec, const SearchOptions& options) {
  IndexInfo info;
  info.spec = spec;
  info.complete = true;
  // Shard by shard: a multi-shard index is complete only if every shard is.
  for (const std::string& part : split_spec(spec)) {
    Xapian::Database db = open_shards(part, options.remote_timeout_ms);
    info.documents += db.get_doccount();
    if (info.stemmer.empty()) info.stemmer = db.get_metadata(meta::kStemmer);
    if (!info.corpus.empty()) info.corpus += ",";
    info.corpus += db.get_metadata(meta::kCorpus);
    if (db.get_metadata(meta::kComplete) != "1") info.complete = false;
  }
  return info;
}

}  // namespace steper::retrieve
