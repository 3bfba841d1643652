#include "index_spec.h"

#include <sys/stat.h>

#include "analyzer.h"

namespace steper::retrieve {
namespace {

constexpr const char* kTcpScheme = "tcp://";

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

Xapian::Database open_remote(const std::string& part, int timeout_ms) {
  std::string address = part.substr(std::string(kTcpScheme).size());
  auto colon = address.rfind(':');
  unsigned long port = 0;
  if (colon != std::string::npos && colon > 0) {
    try {
      std::size_t used = 0;
      port = std::stoul(address.substr(colon + 1), &used);
      if (used != address.size() - colon - 1) port = 0;
    } catch (const std::exception&) {
      port = 0;
    }
  }
  if (port == 0 || port > 65535) {
    throw InputError("index shard '" + part + "': expected tcp://HOST:PORT");
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  try {
    auto ms = static_cast<useconds_t>(timeout_ms);
    return Xapian::Remote::open(host, static_cast<unsigned>(port), ms, ms);
  } catch (const Xapian::Error& e) {
    throw RuntimeError("cannot reach index shard " + part + ": " + e.get_description() +
                       "\n  hint: is `xapian-tcpsrv --port " + std::to_string(port) + " INDEX_DIR` running there?");
  }
}

Xapian::Database open_local(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    throw InputError("index '" + dir + "' not found\n  hint: build it with `steper index --corpus CORPUS.jsonl --out " + dir + "`");
  }
  if (!S_ISDIR(st.st_mode)) throw InputError("index '" + dir + "' is not a folder");
  try {
    return Xapian::Database(dir);
  } catch (const Xapian::DatabaseOpeningError& e) {
    throw InputError("'" + dir + "' is not a Xapian index: " + e.get_description());
  } catch (const Xapian::Error& e) {
    throw RuntimeError("cannot open index '" + dir + "': " + e.get_description());
  }
}

void check_steper_index(const Xapian::Database& db, const std::string& part) {
  std::string format = db.get_metadata(meta::kFormat);
  if (format != meta::kFormatName) {
    throw InputError("'" + part + "' is a Xapian database but not a steper index (no '" + meta::kFormat +
                     "' metadata)\n  hint: build it with `steper index`");
  }
  std::string version = db.get_metadata(meta::kVersion);
  if (version != meta::kVersionNumber) {
    throw InputError("index '" + part + "' has format version " + version + "; this steper reads version " +
                     meta::kVersionNumber + "\n  hint: rebuild it with `steper index --overwrite`");
  }
}

}  // namespace

std::vector<std::string> split_spec(const std::string& spec) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    auto comma = spec.find(',', start);
    std::string part = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (part.empty()) throw InputError("index spec '" + spec + "' has an empty part");
    parts.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return parts;
}

Xapian::Database open_shards(const std::string& spec, int remote_timeout_ms) {
  Xapian::Database all;
  std::string stemmer;
  for (const std::string& part : split_spec(spec)) {
    Xapian::Database shard = starts_with(part, kTcpScheme) ? open_remote(part, remote_timeout_ms) : open_local(part);
    try {
      check_steper_index(shard, part);
      std::string s = shard.get_metadata(meta::kStemmer);
      if (!stemmer.empty() && s != stemmer) {
        throw InputError("index shards disagree on the stemmer ('" + stemmer + "' vs '" + s + "' in " + part +
                         "): their scores cannot be merged");
      }
      stemmer = s;
    } catch (const Xapian::Error& e) {
      throw RuntimeError("cannot read index shard " + part + ": " + e.get_description());
    }
    all.add_database(shard);
  }
  return all;
}

}  // namespace steper::retrieve
