// One function per benchmark format: a parsed JSON record in, a question and
// its paragraphs out. Each throws FieldError naming the offending field.
#pragma once

#include "steper/data.h"

namespace steper::data {

// Appends `value` unless it is already there (answers, supporting titles).
void add_unique(std::vector<std::string>& list, std::string value);

// Reads a list of {title, paragraph_text, is_supporting} objects, the shape
// IRCoT's "contexts" and MuSiQue's "paragraphs" share.
void read_titled_paragraphs(const json& j, const char* field, ConvertedRecord& record);

ConvertedRecord convert_ircot_record(const json& j);
ConvertedRecord convert_hotpotqa_record(const json& j);
ConvertedRecord convert_2wiki_record(const json& j);
ConvertedRecord convert_musique_record(const json& j);

}  // namespace steper::data
