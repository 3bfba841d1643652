#include <gtest/gtest.h>

#include "bpe_pretokenizer.h"
#include "steper/error.h"

namespace steper::text {
namespace {

std::vector<std::string> split(const std::string& s, PreTokenizer k) {
  std::vector<std::string> out;
  for (auto v : pretokenize(s, k)) out.emplace_back(v);
  return out;
}
using V = std::vector<std::string>;

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(split(" Hello  world   ", PreTokenizer::gpt2), (V{" Hello", " ", " world", "   "}));
  EXPECT_EQ(split("it's 1234 ok!!", PreTokenizer::gpt2), (V{"it", "'s", " 1234", " ok", "!!"}));
  EXPECT_EQ(split("IT'S", PreTokenizer::gpt2), (V{"IT", "'", "S"}));  // contractions are case-sensitive here
  EXPECT_EQ(split("a\n\nb", PreTokenizer::gpt2), (V{"a", "\n", "\n", "b"}));
}

TEST(PreTokenizer, Llama3GroupsDigitsByThreeAndKeepsNewlines) {
  EXPECT_EQ(split("1234567 x", PreTokenizer::llama3), (V{"123", "456", "7", " x"}));
  EXPECT_EQ(split("IT'S ok", PreTokenizer::llama3), (V{"IT", "'S", " ok"}));
  EXPECT_EQ(split("(hello) world", PreTokenizer::llama3), (V{"(hello", ")", " world"}));
  EXPECT_EQ(split("a:\n\n  b", PreTokenizer::llama3), (V{"a", ":\n\n", " ", " b"}));
  EXPECT_EQ(split("x \n\n y", PreTokenizer::llama3), (V{"x", " \n\n", " y"}));
  EXPECT_EQ(split("1234", PreTokenizer::qwen2), (V{"1", "2", "3", "4"}));
}

TEST(PreTokenizer, UnknownPatternIsRefused) {
  EXPECT_THROW(pretokenizer_from_pattern("\\w+"), InputError);
}

}  // namespace
}  // namespace steper::text
