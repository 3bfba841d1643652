#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "steper/text.h"
#include "test_util.h"

namespace steper::text {
namespace {

using nlohmann::json;

// Every case of the reference file: the ids Hugging Face's own tokenizer
// gives, and its decoding.
TEST(BpeTokenizer, MatchesHuggingFaceOnGpt2ReferenceEncodings) {
  auto tok = load_tokenizer(testing::shared_data("tokenizers/gpt2"));
  EXPECT_EQ(tok->kind(), "bpe");
  EXPECT_EQ(tok->vocab_size(), 50257);
  EXPECT_EQ(tok->eos_id(), 50256);
  std::ifstream in(testing::shared_data("tokenizers/gpt2/expected_encodings.jsonl"));
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    json j = json::parse(line);
    std::string text = j["text"];
    std::vector<int> want = j["ids"];
    EXPECT_EQ(tok->encode(text), want) << text;
    EXPECT_EQ(tok->decode(want), j["decoded"].get<std::string>()) << text;
    ++cases;
  }
  EXPECT_GE(cases, 18);
}

TEST(BpeTokenizer, RoundTripsArbitraryBytesAndUnicode) {
  auto tok = load_tokenizer(testing::shared_data("tokenizers/gpt2/tokenizer.json"));
  for (std::string s : {std::string("Ünïcödé — 日本語 🤖 \t\n x"), std::string("\xff\xfe broken \xc3 utf8"),
                        std::string("a<|endoftext|>b<|endoftext|>"), std::string(1000, ' ')}) {
    EXPECT_EQ(tok->decode(tok->encode(s)), s);
  }
}

TEST(BpeTokenizer, BadFilesAreRefusedWithTheirName) {
  testing::TempDir dir;
  testing::write_file(dir / "tokenizer.json", "{\"model\": {\"type\": \"WordPiece\"}}");
  try {
    load_tokenizer(dir.path());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos) << e.what();
  }
  testing::write_file(dir / "t.json", "{not json");
  EXPECT_THROW(load_tokenizer(dir / "t.json"), InputError);
  EXPECT_THROW(load_tokenizer(dir / "nothing-here"), InputError);
}

TEST(SentencePiece, TrainsLoadsAndRoundTripsUnicode) {
  testing::TempDir dir;
  std::vector<std::string> texts;
  const char* base[] = {"The director of the film was born in Paris.", "Zürich is a city in Switzerland; Łódź in Poland.",
                        "So the answer is: 1898.", "日本語のテキストと中文文本 mixed with English words."};
  for (int i = 0; i < 400; ++i) texts.push_back(std::string(base[i % 4]) + " Sentence number " + std::to_string(i) + ".");
  std::size_t next = 0;
  SentencePieceTrainOptions options;
  options.vocab_size = 600;
  train_sentencepiece([&](std::string& s) {
    if (next == texts.size()) return false;
    s = texts[next++];
    return true;
  }, dir.path(), options);
  auto tok = load_tokenizer(dir.path());
  EXPECT_EQ(tok->kind(), "sentencepiece");
  EXPECT_GT(tok->vocab_size(), 300);
  EXPECT_LE(tok->vocab_size(), 600);  // a soft limit: this little text fills fewer
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  for (const std::string s : {"Zürich, Łódź — 日本語!", "The answer is 12345.", "never seen: ÆØÅ ☃ 🤖"}) {
    auto ids = tok->encode(s);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(tok->decode(ids), s);  // byte fallback: unseen characters survive
  }
  EXPECT_LT(tok->encode(texts[0]).size(), texts[0].size() / 2);  // it learned something
}

TEST(SentencePiece, TooSmallVocabularyIsAClearError) {
  testing::TempDir dir;
  int n = 0;
  SentencePieceTrainOptions options;
  options.vocab_size = 5;
  EXPECT_THROW(train_sentencepiece([&](std::string& s) { s = "x"; return n++ < 3; }, dir.path(), options), InputError);
}

}  // namespace
}  // namespace steper::text
