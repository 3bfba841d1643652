// The data stored with each indexed document: "id\0title\0text". Cheaper to
// decode than JSON on every hit, which keeps search within a few percent of
// a bare Xapian loop.
#pragma once

#include <string>

#include "steper/data.h"

namespace steper::retrieve {

// Throws FieldError if id or title contain a NUL byte.
std::string encode_doc_data(const data::Passage& p);
// Throws RuntimeError when the data is not in this layout (not a steper index).
void decode_doc_data(const std::string& blob, std::string& id, std::string& title, std::string& text);

}  // namespace steper::retrieve
