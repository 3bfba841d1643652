// Python's str methods over UTF-8 text (jinja_strings.cc), for the
// builtins: lengths, slices and strips count code points as Python does,
// and white space is Python's str.isspace(). Errors are TemplateErrors.
#pragma once

#include <cstdint>
#include <string>

#include "jinja.h"

namespace steper::text::jinja::py {

// Python's str.isspace() of one code point: Unicode white space and the
// separators U+001C..U+001F.
bool space(char32_t c);
std::u32string to_u32(const std::string& s);
std::string to_utf8(const std::u32string& s);
// strip/lstrip/rstrip: `chars` none means white space.
std::string strip(const std::string& s, const Value& chars, bool left, bool right);
// split/rsplit: `sep` none splits on runs of white space; maxsplit < 0: all.
List split(const std::string& s, const Value& sep, std::int64_t maxsplit, bool from_right);
// str.replace: count < 0 replaces all.
std::string replace(const std::string& s, const std::string& from, const std::string& to, std::int64_t count);
std::string lower(const std::string& s);
std::string upper(const std::string& s);
std::string capitalize(const std::string& s);
// jinja's title filter (ASCII words), not Python's str.title.
std::string title(const std::string& s);
// startswith/endswith: `what` a string or a list (tuple) of strings.
bool starts_or_ends(const std::string& s, const Value& what, bool start);

}  // namespace steper::text::jinja::py
