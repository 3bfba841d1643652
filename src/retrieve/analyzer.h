// How text becomes terms, the same way for documents and queries, and the
// index metadata that records it.
#pragma once

#include <memory>
#include <string>

#include <xapian.h>

#include "steper/retrieve.h"

namespace steper::retrieve {

// Metadata keys of a steper index.
namespace meta {
inline constexpr const char* kFormat = "steper.format";  // = kFormatName
inline constexpr const char* kFormatName = "steper-bm25";
inline constexpr const char* kVersion = "steper.version";  // = kVersionNumber
inline constexpr const char* kVersionNumber = "1";
inline constexpr const char* kStemmer = "steper.stemmer";
inline constexpr const char* kComplete = "steper.complete";  // "1" once built
inline constexpr const char* kCorpus = "steper.corpus";
inline constexpr const char* kFingerprint = "steper.corpus.fingerprint";
inline constexpr const char* kResumeOffset = "steper.resume.offset";
inline constexpr const char* kResumeLine = "steper.resume.line";
}  // namespace meta

// The boolean term that holds a document's corpus id (for replace and dedup).
std::string id_term(const std::string& id);

// Tokenises like the index does: Xapian's word splitter, lower-casing, and
// the stemmer with every term stemmed (STEM_ALL) so that "Paris" in a query
// and "paris" in a passage meet. Queries also drop English stopwords; the
// index keeps them so a stopword-only title still matches itself.
class Analyzer {
 public:
  explicit Analyzer(const std::string& stemmer);
  Analyzer(const Analyzer&) = delete;  // querier_ points at stopper_
  Analyzer& operator=(const Analyzer&) = delete;
  // Adds the terms of title and text to `doc` (no positions: BM25 needs none).
  void index(Xapian::Document& doc, const std::string& title, const std::string& text);
  // An OR of the query's terms, each weighted by how often it occurs.
  // Falls back to keeping stopwords if nothing else is left.
  Xapian::Query query(const std::string& text);

 private:
  Xapian::Query collect(const std::string& text, bool drop_stopwords);
  Xapian::TermGenerator indexer_;
  Xapian::TermGenerator querier_;
  Xapian::SimpleStopper stopper_;
};

// Checks that a stemmer name is known; "none" means no stemming.
void check_stemmer(const std::string& name);

// The textbook BM25 of Bm25Params on Xapian's BM25Weight.
Xapian::BM25Weight bm25_weight(const Bm25Params& params);

}  // namespace steper::retrieve
