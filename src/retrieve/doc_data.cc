#include "doc_data.h"

namespace steper::retrieve {

std::string encode_doc_data(const data::Passage& p) {
  if (p.id.find('\0') != std::string::npos) throw FieldError("id", "contains a NUL character");
  if (p.title.find('\0') != std::string::npos) throw FieldError("title", "contains a NUL character");
  std::string blob;
  blob.reserve(p.id.size() + p.title.size() + p.text.size() + 2);
  blob.append(p.id).push_back('\0');
  blob.append(p.title).push_back('\0');
  blob.append(p.text);
  return blob;
}

void decode_doc_data(const std::string& blob, std::string& id, std::string& title, std::string& text) {
  auto a = blob.find('\0');
  auto b = a == std::string::npos ? a : blob.find('\0', a + 1);
  if (b == std::string::npos) throw RuntimeError("index document data is not in steper's layout; was this index built by `steper index`?");
  id.assign(blob, 0, a);
  title.assign(blob, a + 1, b - a - 1);
  text.assign(blob, b + 1, std::string::npos);
}

}  // namespace steper::retrieve
