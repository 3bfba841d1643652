// The shipped prompt templates (prompts/*.txt, embedded at configure time).
#pragma once

namespace steper::reason {

extern const char* const kDefaultPassage;
extern const char* const kDefaultReasoning;
extern const char* const kDefaultSelfask;
extern const char* const kDefaultDemos;

}  // namespace steper::reason
