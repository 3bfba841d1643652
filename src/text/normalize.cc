// Unicode normal forms through ICU, for the normalizers of tokenizer.json.
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include "steper/error.h"
#include "unicode.h"

namespace steper::text {
namespace {

bool is_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

bool is_valid_utf8(std::string_view s) {
  Utf8Text t = decode_utf8(s);
  for (std::size_t k = 0; k < t.cps.size(); ++k) {
    // decode_utf8 marks a bad byte as a one-byte U+FFFD; a real U+FFFD takes three.
    if (t.cps[k] == 0xFFFD && t.offsets[k + 1] - t.offsets[k] == 1) return false;
  }
  return true;
}

}  // namespace

std::string normalize_unicode(std::string_view text, NormalForm form) {
  // Every normal form leaves ASCII as it is; and a text that is not UTF-8
  // has no normal form, so its bytes go through untouched (byte-level BPE
  // encodes any bytes).
  if (form == NormalForm::none || is_ascii(text) || !is_valid_utf8(text)) return std::string(text);
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (form) {
    case NormalForm::nfc: n = icu::Normalizer2::getNFCInstance(status); break;
    case NormalForm::nfd: n = icu::Normalizer2::getNFDInstance(status); break;
    case NormalForm::nfkc: n = icu::Normalizer2::getNFKCInstance(status); break;
    case NormalForm::nfkd: n = icu::Normalizer2::getNFKDInstance(status); break;
    case NormalForm::none: break;
  }
  if (U_FAILURE(status) || !n) throw RuntimeError(std::string("ICU normaliser unavailable: ") + u_errorName(status));
  icu::UnicodeString u = icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  icu::UnicodeString out = n->normalize(u, status);
  if (U_FAILURE(status)) throw RuntimeError(std::string("ICU normalisation failed: ") + u_errorName(status));
  std::string result;
  out.toUTF8String(result);
  return result;
}

}  // namespace steper::text
