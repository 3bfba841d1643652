#include "world_names.h"

#include <cctype>

namespace steper::data::world {
namespace {

const std::vector<std::string> kOnsets = {"b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v",
                                          "z", "br", "dr", "gr", "st", "th", "sh", "tr", "kl", "vr"};
const std::vector<std::string> kVowels = {"a", "e", "i", "o", "u", "a", "e", "o", "ia", "ei", "ou"};
const std::vector<std::string> kCodas = {"", "", "", "n", "r", "l", "s", "m", "th", "x", "nd", "rk"};
const std::vector<std::string> kCitySuffix = {"", "", "ville", "burg", "ford", "haven", "mouth", "stad", "field", "port"};
const std::vector<std::string> kCityPrefix = {"", "", "", "", "New ", "Port ", "Saint ", "East ", "Upper "};
const std::vector<std::string> kCountrySuffix = {"ia", "land", "istan", "ovia", "ania", "ea"};
const std::vector<std::string> kTitleAdjectives = {"Silent", "Red", "Last", "Golden", "Broken", "Hidden", "Lost", "Bright",
                                                   "Distant", "Iron", "Secret", "Wild", "Pale", "Crimson", "Frozen", "Quiet"};
const std::vector<std::string> kTitleNouns = {"River", "Garden", "Crown", "Harbor", "Letter", "Mirror", "Storm", "Road",
                                              "Summer", "Shadow", "Bridge", "Island", "Promise", "Winter", "Tower", "Valley"};
const std::vector<std::string> kCompanyWords = {"Pictures", "Motors", "Records", "Works", "Industries", "Holdings",
                                                "Studios", "Press", "Foods", "Airlines", "Textiles", "Labs"};

std::string capitalise(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

}  // namespace

std::string NameMaker::word(int min_syllables, int max_syllables) {
  int n = rng_.between(min_syllables, max_syllables);
  std::string w;
  for (int i = 0; i < n; ++i) w += rng_.pick(kOnsets) + rng_.pick(kVowels);
  return capitalise(w + rng_.pick(kCodas));
}

std::string NameMaker::unique(const std::function<std::string()>& make) {
  // Alike is the point; identical is not: a title names one entity. After a
  // few tries, number it like a sequel or a namesake.
  std::string name = make();
  for (int i = 0; i < 20 && used_.count(name); ++i) name = make();
  static const char* const kNumerals[] = {"II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X"};
  std::string base = name;
  for (std::size_t i = 0; used_.count(name); ++i) {
    name = base + " " + (i < std::size(kNumerals) ? std::string(kNumerals[i]) : std::to_string(i + 2));
  }
  used_.insert(name);
  return name;
}

std::string NameMaker::family_name() { return word(2, 3); }
std::string NameMaker::given_name() { return word(1, 2); }
std::string NameMaker::person(const std::string& family) {
  return unique([&] { return given_name() + " " + family; });
}
std::string NameMaker::city() {
  return unique([&] { return rng_.pick(kCityPrefix) + word(1, 2) + rng_.pick(kCitySuffix); });
}
std::string NameMaker::country() {
  return unique([&] { return word(1, 2) + rng_.pick(kCountrySuffix); });
}

std::string NameMaker::film() {
  return unique([&] {
    switch (rng_.below(4)) {
      case 0: return "The " + rng_.pick(kTitleAdjectives) + " " + rng_.pick(kTitleNouns);
      case 1: return rng_.pick(kTitleNouns) + " of " + word(1, 2);
      case 2: return rng_.pick(kTitleAdjectives) + " " + rng_.pick(kTitleNouns) + " " + word(1, 2);
      default: return "The " + rng_.pick(kTitleNouns) + " of " + rng_.pick(kTitleAdjectives) + " " + rng_.pick(kTitleNouns);
    }
  });
}

std::string NameMaker::company(const std::string& founder_family) {
  return unique([&] { return (rng_.chance(0.5) ? founder_family : word(2, 2)) + " " + rng_.pick(kCompanyWords); });
}

}  // namespace steper::data::world
