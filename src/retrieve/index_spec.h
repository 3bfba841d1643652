// Turning an index spec ("dir", "tcp://host:port", comma-separated lists)
// into one Xapian::Database over all its shards.
#pragma once

#include <string>
#include <vector>

#include <xapian.h>

#include "steper/retrieve.h"

namespace steper::retrieve {

// Splits a spec at commas; throws InputError for an empty spec or part.
std::vector<std::string> split_spec(const std::string& spec);

// Opens every shard and checks it is a steper index of a version we read.
// Throws InputError (missing folder, not a steper index, bad tcp address)
// or RuntimeError (a shard that cannot be reached or read).
Xapian::Database open_shards(const std::string& spec, int remote_timeout_ms);

}  // namespace steper::retrieve
