// Raw 2WikiMultiHopQA (Ho et al., 2020): HotpotQA's layout plus evidence
// triples and an "answer_id" that keys the release's alias file.
#include "converters.h"

namespace steper::data {

ConvertedRecord convert_2wiki_record(const json& j) {
  ConvertedRecord r = convert_hotpotqa_record(j);
  r.alias_key = optional_string(j, "answer_id");
  if (j.contains("evidences")) require_array(j, "evidences");  // checked, not kept
  return r;
}

}  // namespace steper::data
