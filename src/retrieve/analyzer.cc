#include "analyzer.h"

#include <map>

namespace steper::retrieve {
namespace {

// A short English stop list (the SMART/Lucene core): words that carry no
// retrieval signal in questions ("what", "the", "of").
const char* const kStopwords[] = {
    "a",     "about", "after", "all",   "also",  "an",    "and",   "any",   "are",  "as",    "at",   "be",
    "been",  "before", "being", "between", "both", "but",  "by",    "can",   "could", "did",  "do",   "does",
    "during", "each", "for",   "from",  "had",   "has",   "have",  "he",    "her",  "him",   "his",  "how",
    "i",     "if",    "in",    "into",  "is",    "it",    "its",   "may",   "me",   "more",  "most", "my",
    "no",    "not",   "of",    "on",    "one",   "or",    "other", "our",   "out",  "over",  "she",  "should",
    "so",    "some",  "such",  "than",  "that",  "the",   "their", "them",  "then", "there", "these", "they",
    "this",  "those", "through", "to",  "under", "up",    "was",   "we",    "were", "what",  "when", "where",
    "which", "while", "who",   "whom",  "whose", "why",   "will",  "with",  "would", "you",  "your",
};

Xapian::Stem make_stem(const std::string& name) {
  if (name == "none" || name.empty()) return Xapian::Stem();
  try {
    return Xapian::Stem(name);
  } catch (const Xapian::InvalidArgumentError&) {
    throw InputError("unknown stemmer '" + name + "': use 'none' or one of: " + Xapian::Stem::get_available_languages());
  }
}

}  // namespace

std::string id_term(const std::string& id) { return "Q" + id; }

void check_stemmer(const std::string& name) { make_stem(name); }

Analyzer::Analyzer(const std::string& stemmer) {
  Xapian::Stem stem = make_stem(stemmer);
  for (const char* w : kStopwords) stopper_.add(w);
  indexer_.set_stemmer(stem);
  indexer_.set_stemming_strategy(Xapian::TermGenerator::STEM_ALL);
  querier_.set_stemmer(stem);
  querier_.set_stemming_strategy(Xapian::TermGenerator::STEM_ALL);
  querier_.set_stopper(&stopper_);
  querier_.set_stopper_strategy(Xapian::TermGenerator::STOP_ALL);
}

void Analyzer::index(Xapian::Document& doc, const std::string& title, const std::string& text) {
  indexer_.set_document(doc);
  indexer_.index_text_without_positions(title);
  indexer_.index_text_without_positions(text);
}

Xapian::Query Analyzer::collect(const std::string& text, bool drop_stopwords) {
  Xapian::Document scratch;
  Xapian::TermGenerator& gen = drop_stopwords ? querier_ : indexer_;
  gen.set_document(scratch);
  gen.index_text_without_positions(text);
  std::vector<Xapian::Query> terms;
  for (auto it = scratch.termlist_begin(); it != scratch.termlist_end(); ++it) {
    terms.emplace_back(*it, it.get_wdf());
  }
  return Xapian::Query(Xapian::Query::OP_OR, terms.begin(), terms.end());
}

Xapian::Query Analyzer::query(const std::string& text) {
  Xapian::Query q = collect(text, true);
  return q.empty() ? collect(text, false) : q;
}

// Xapian's BM25Weight(k1, k2, k3, b, min_normlen) with k2 = 0 (no extra
// length correction), k3 = 1 (a repeated query term counts as in most
// engines) and min_normlen = 0 (no floor on the normalised length, as in the
// textbook). Two departures remain from Lucene: Xapian's idf is
// log((N - n + 0.5) / (n + 0.5)), which for terms in over half the documents
// it keeps positive by using log(x / 2 + 1) where x < 2, while Lucene uses
// log(1 + x) everywhere; rankings differ only through such common terms.
Xapian::BM25Weight bm25_weight(const Bm25Params& params) {
  if (params.k1 < 0) throw InputError("BM25 k1 must be >= 0, got " + std::to_string(params.k1));
  if (params.b < 0 || params.b > 1) throw InputError("BM25 b must be in [0, 1], got " + std::to_string(params.b));
  return Xapian::BM25Weight(params.k1, 0, 1, params.b, 0);
}

}  // namespace steper::retrieve
