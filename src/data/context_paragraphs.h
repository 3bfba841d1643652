// The "context" field shared by raw HotpotQA and 2WikiMultiHopQA: a list of
// [title, [sentence, ...]] pairs, with supporting_facts naming
// [title, sentence index] pairs.
#pragma once

#include "steper/data.h"

namespace steper::data {

// Fills record.paragraphs from "context" and record.question.supporting_titles
// from "supporting_facts" (titles in first-mention order, each once); marks
// the paragraphs whose titles support.
void read_context_paragraphs(const json& j, ConvertedRecord& record);

// Joins sentences with one space where neither side already has white space:
// HotpotQA's sentences carry their leading space, 2WikiMultiHopQA's do not.
std::string join_sentences(const json& sentences, const std::string& path);

}  // namespace steper::data
