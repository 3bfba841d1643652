// Streaming index build with periodic commits and resume.
//
// Every `batch_documents` documents the builder commits, and with the same
// commit records how far into the corpus it got (byte offset and line).
// Xapian commits are atomic, so after a crash or Ctrl-C the index holds
// exactly the documents up to that point, and a rerun seeks there and goes
// on. Documents are keyed by their corpus id (replace_document), so redoing
// part of a batch can never duplicate a passage.
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "analyzer.h"
#include "doc_data.h"
#include "steper/retrieve.h"

namespace steper::retrieve {
namespace {

constexpr std::size_t kFingerprintBytes = 1 << 16;
// The value slot holding each passage's corpus line.
constexpr Xapian::valueno kLineSlot = 0;
constexpr std::size_t kMaxIdBytes = 200;  // Xapian terms stop at 245 bytes

// Size plus a hash of the first 64 KiB: enough to tell a different corpus
// from the one an interrupted build was reading, without reading it all.
std::string fingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open for reading");
  std::string head(kFingerprintBytes, '\0');
  in.read(&head[0], static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(in.gcount()));
  in.clear();
  in.seekg(0, std::ios::end);
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : head) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%llu:%016llx", static_cast<unsigned long long>(in.tellg()),
                static_cast<unsigned long long>(h));
  return buf;
}

std::uint64_t dir_bytes(const std::string& dir) {
  std::uint64_t total = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}

// Compacts `dir` into a sibling folder and swaps it in; the original stays
// until the compacted copy is complete, so a failure loses nothing.
void compact_in_place(const std::string& dir) {
  const std::string tmp = dir + ".compacting", old = dir + ".old";
  std::filesystem::remove_all(tmp);
  try {
    Xapian::Database(dir).compact(tmp);
  } catch (const Xapian::Error& e) {
    std::filesystem::remove_all(tmp);
    throw RuntimeError("compacting '" + dir + "' failed: " + e.get_description() + " (the uncompacted index is intact)");
  }
  std::filesystem::rename(dir, old);
  std::filesystem::rename(tmp, dir);
  std::filesystem::remove_all(old);
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::uint64_t to_u64(const std::string& s) { return s.empty() ? 0 : std::stoull(s); }

}  // namespace

IndexStats build_index(const std::string& corpus_path, const std::string& dir, const IndexOptions& options) {
  check_stemmer(options.stemmer);
  if (options.batch_documents == 0) throw InputError("batch size must be at least 1 document");
  data::RecordReader<data::Passage> reader(corpus_path, data::parse_passage, options.skip_bad);
  if (reader.records().is_array()) {
    throw InputError(corpus_path + ": a corpus must be JSON Lines (one {\"id\", \"title\", \"text\"} per line), not a JSON array");
  }
  const std::string print = fingerprint(corpus_path);

  IndexStats stats;
  Xapian::WritableDatabase db;
  try {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) throw InputError("'" + dir + "' exists and is not a folder");
    bool had_index = exists(dir + "/iamglass") || exists(dir + "/iamchert");
    db = Xapian::WritableDatabase(dir, options.overwrite ? Xapian::DB_CREATE_OR_OVERWRITE : Xapian::DB_CREATE_OR_OPEN);
    if (had_index && !options.overwrite) {
      if (db.get_metadata(meta::kFormat) != meta::kFormatName) {
        throw InputError("'" + dir + "' holds a Xapian database that is not a steper index\n  hint: choose another folder, or --overwrite to replace it");
      }
      if (db.get_metadata(meta::kFingerprint) != print || db.get_metadata(meta::kStemmer) != options.stemmer) {
        throw InputError("'" + dir + "' holds an index of another corpus (" + db.get_metadata(meta::kCorpus) +
                         ") or stemmer\n  hint: --overwrite rebuilds it from " + corpus_path);
      }
      if (db.get_metadata(meta::kComplete) == "1") {
        stats.already_complete = stats.complete = true;
        stats.documents = db.get_doccount();
        return stats;
      }
      std::uint64_t offset = to_u64(db.get_metadata(meta::kResumeOffset));
      std::uint64_t line = to_u64(db.get_metadata(meta::kResumeLine));
      reader.records().seek(offset, line);
      stats.resumed = true;
    }
    db.set_metadata(meta::kFormat, meta::kFormatName);
    db.set_metadata(meta::kVersion, meta::kVersionNumber);
    db.set_metadata(meta::kStemmer, options.stemmer);
    db.set_metadata(meta::kCorpus, corpus_path);
    db.set_metadata(meta::kFingerprint, print);
    db.set_metadata(meta::kComplete, "0");
  } catch (const Xapian::DatabaseLockError& e) {
    throw InputError("index '" + dir + "' is locked: another `steper index` is writing it (" + e.get_description() + ")");
  } catch (const Xapian::Error& e) {
    throw RuntimeError("cannot open index '" + dir + "' for writing: " + e.get_description());
  }

  auto report = [&]() {
    if (!options.progress) return true;
    return options.progress(IndexProgress{stats.added, reader.records().bytes_read(), reader.records().total_bytes()});
  };
  auto commit = [&](bool done) {
    db.set_metadata(meta::kResumeOffset, std::to_string(reader.records().bytes_read()));
    db.set_metadata(meta::kResumeLine, std::to_string(reader.records().line()));
    if (done) db.set_metadata(meta::kComplete, "1");
    db.commit();
  };

  Analyzer analyzer(options.stemmer);
  data::Passage passage;
  std::uint64_t in_batch = 0;
  try {
    while (reader.next(passage)) {
      if (passage.id.empty() || passage.id.size() > kMaxIdBytes) {
        std::string message = reader.records().where() + ": field 'id': must be 1 to " + std::to_string(kMaxIdBytes) + " bytes";
        if (!options.skip_bad) throw InputError(message);
        if (stats.skipped++ == 0 && reader.skipped() == 0) stats.first_error = message;
        continue;
      }
      Xapian::Document doc;
      try {
        doc.set_data(encode_doc_data(passage));
      } catch (const FieldError& e) {
        throw InputError(reader.records().where() + ": " + e.what());
      }
      analyzer.index(doc, passage.title, passage.text);
      std::string term = id_term(passage.id);
      doc.add_boolean_term(term);
      // A passage already there from the same corpus line is not a repeat:
      // Xapian flushes on its own (and on the way out of an error) between
      // our commits, so a resumed build adds such passages a second time.
      const std::string line = std::to_string(reader.records().line());
      doc.add_value(kLineSlot, line);
      if (db.term_exists(term) && db.get_document(*db.postlist_begin(term)).get_value(kLineSlot) != line) ++stats.duplicates;
      db.replace_document(term, doc);
      ++stats.added;
      if (++in_batch == options.batch_documents) {
        in_batch = 0;
        commit(false);
        if (!report()) {
          stats.documents = db.get_doccount();
          stats.skipped += reader.skipped();
          return stats;
        }
      }
    }
    commit(true);
  } catch (const Xapian::Error& e) {
    throw RuntimeError("indexing into '" + dir + "' failed at " + reader.records().where() + ": " + e.get_description() +
                       "\n  hint: what was committed is kept; rerun the same command to resume");
  }
  stats.skipped += reader.skipped();
  if (stats.first_error.empty()) stats.first_error = reader.first_error();
  stats.documents = db.get_doccount();
  stats.complete = true;
  report();
  if (options.compact) {
    db.close();
    stats.bytes_before_compaction = dir_bytes(dir);
    compact_in_place(dir);
  }
  return stats;
}

}  // namespace steper::retrieve
