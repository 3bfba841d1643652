#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "steper/text.h"
#include "text_chunks.h"
#include "unicode.h"
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

// Exact ids on every line of the reference encodings of GPT-2's, Llama-3's
// and Qwen's tokenizers: expected_encodings.jsonl, and more_encodings.jsonl
// whose texts exercise Qwen's NFC normalizer (114 of its lines fail without
// it) and Llama-3's ignore_merges (144 lines).
class ReferenceEncodings : public ::testing::TestWithParam<std::tuple<const char*, const char*>> {};

TEST_P(ReferenceEncodings, EveryLineExactly) {
  const std::string dir = testing::shared_data(std::string("tokenizers/") + std::get<0>(GetParam()));
  auto tok = load_tokenizer(dir);
  std::ifstream in(dir + "/" + std::get<1>(GetParam()));
  ASSERT_TRUE(in) << dir;
  std::string line;
  int cases = 0, wrong = 0;
  while (std::getline(in, line)) {
    json j = json::parse(line);
    std::string text = j["text"];
    std::vector<int> want = j["ids"];
    std::vector<int> got = tok->encode(text);
    if (got != want && ++wrong <= 3) ADD_FAILURE() << json(text).dump() << "\n want " << json(want).dump() << "\n got  " << json(got).dump();
    // Back to the text, in the normal form the tokenizer's normalizer gives.
    EXPECT_EQ(tok->decode(got), std::get<0>(GetParam()) == std::string("qwen3") ? normalize_unicode(text, NormalForm::nfc) : text);
    ++cases;
  }
  EXPECT_EQ(wrong, 0) << "of " << cases;
  EXPECT_GE(cases, 18);
}
INSTANTIATE_TEST_SUITE_P(BpeTokenizer, ReferenceEncodings,
                         ::testing::Combine(::testing::Values("gpt2", "llama3", "qwen3"),
                                            ::testing::Values("expected_encodings.jsonl", "more_encodings.jsonl")));

TEST(BpeTokenizer, QwenComposesAccentsAsItsNfcNormalizerDoes) {
  auto tok = load_tokenizer(testing::shared_data("tokenizers/qwen3"));
  EXPECT_EQ(tok->encode("e\u0301 composed"), tok->encode("\u00e9 composed"));
  auto llama = load_tokenizer(testing::shared_data("tokenizers/llama3"));  // no normalizer: bytes as written
  EXPECT_NE(llama->encode("e\u0301 composed"), llama->encode("\u00e9 composed"));
}

TEST(BpeTokenizer, AddedTokensStripTheBlanksTheirFlagsSay) {
  std::ifstream in(testing::shared_data("tokenizers/gpt2/tokenizer.json"));
  json j = json::parse(in);
  for (auto& t : j["added_tokens"]) {
    t["lstrip"] = true;
    t["rstrip"] = true;
  }
  testing::TempDir dir;
  testing::write_file(dir / "tokenizer.json", j.dump());
  auto plain = load_tokenizer(testing::shared_data("tokenizers/gpt2"));
  auto stripping = load_tokenizer(dir / "tokenizer.json");
  std::vector<int> want = plain->encode(" a");
  want.push_back(50256);
  for (int id : plain->encode("b")) want.push_back(id);
  EXPECT_EQ(stripping->encode(" a  <|endoftext|>\n b"), want);
  EXPECT_NE(plain->encode(" a  <|endoftext|>\n b"), want);
}

// BOS and EOS as the folder's tokenizer_config.json names them, and the one
// rule for adding BOS (Tokenizer::add_bos) from the post-processor.
TEST(BpeTokenizer, SpecialTokensComeFromTheFolderAndTheBosRuleFromItsPostProcessor) {
  auto qwen = load_tokenizer(testing::shared_data("tokenizers/qwen3"));
  EXPECT_EQ(qwen->bos_id(), -1);       // "bos_token": null
  EXPECT_EQ(qwen->eos_id(), 151645);   // <|im_end|>, not <|endoftext|>
  EXPECT_FALSE(qwen->add_bos());
  auto llama = load_tokenizer(testing::shared_data("tokenizers/llama3"));
  EXPECT_EQ(llama->bos_id(), 128000);
  EXPECT_EQ(llama->eos_id(), 128001);
  EXPECT_FALSE(llama->add_bos());  // this copy's post-processor is plain ByteLevel

  // Llama-3's own tokenizer.json adds <|begin_of_text|> through a template.
  std::ifstream in(testing::shared_data("tokenizers/llama3/tokenizer.json"));
  json j = json::parse(in);
  j["post_processor"] = json::parse(R"({"type": "Sequence", "processors": [
      {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
      {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                                                {"Sequence": {"id": "A", "type_id": 0}}],
       "pair": [], "special_tokens": {}}]})");
  testing::TempDir dir;
  testing::write_file(dir / "tokenizer.json", j.dump());
  auto templated = load_tokenizer(dir.path());
  EXPECT_TRUE(templated->add_bos());
  EXPECT_EQ(templated->bos_id(), 128000);
  testing::write_file(dir / "tokenizer_config.json", R"({"add_bos_token": false, "eos_token": "<|eot_id|>"})");
  auto configured = load_tokenizer(dir.path());
  EXPECT_FALSE(configured->add_bos());
  EXPECT_EQ(configured->eos_id(), 128009);
  testing::write_file(dir / "tokenizer_config.json", R"({"eos_token": "<|no_such_token|>"})");
  EXPECT_THROW(load_tokenizer(dir.path()), InputError);
}

TEST(BpeTokenizer, AnUnknownNormalizerIsRefusedByName) {
  std::ifstream in(testing::shared_data("tokenizers/gpt2/tokenizer.json"));
  json j = json::parse(in);
  j["normalizer"] = {{"type", "Lowercase"}};
  testing::TempDir dir;
  testing::write_file(dir / "tokenizer.json", j.dump());
  try {
    load_tokenizer(dir.path());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("normalizer"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Lowercase"), std::string::npos) << e.what();
  }
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
  // Ids that are not integers from 0 to 2^24, in the vocabulary or among the
  // added tokens (tokenizer_json_fuzz found a float id cast to int).
  for (const char* bad : {R"("vocab": {"a": 2e43}, "merges": [])", R"("vocab": {"a": -1}, "merges": [])",
                          R"("vocab": {"a": 4294967296}, "merges": [])",
                          R"("vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": 1.5, "content": "<s>"}], "x": {)"}) {
    testing::write_file(dir / "ids.json", std::string(R"({"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", )") + bad + "}}");
    try {
      load_tokenizer(dir / "ids.json");
      ADD_FAILURE() << bad << " was accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("is not an integer from 0 to 16777216"), std::string::npos) << bad << ": " << e.what();
    }
  }
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

// Text that reads like a corpus: words, names, numbers and punctuation in
// a seeded order, `bytes` long.
std::string long_text(std::size_t bytes, unsigned seed) {
  static const char* words[] = {"The", "director", "of", "the", "film", "was", "born", "in", "Paris,", "Zürich", "1898.", "and",
                                "Łódź", "日本語", "who's", "answer", "is:", "(born", "it)", "\n\n", "  ", "city's", "won't", "42"};
  std::mt19937 rng(seed);
  std::string out;
  while (out.size() < bytes) {
    out += words[rng() % (sizeof words / sizeof *words)];
    out += ' ';
  }
  out.resize(bytes);
  while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();  // whole characters
  if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) out.pop_back();
  return out;
}

// A SentencePiece model as steper trains them, in `dir`.
std::unique_ptr<Tokenizer> trained_sentencepiece(const std::string& dir) {
  std::size_t next = 0;
  SentencePieceTrainOptions options;
  options.vocab_size = 600;
  train_sentencepiece([&](std::string& s) {
    if (next == 300) return false;
    s = long_text(300, static_cast<unsigned>(next++));
    return true;
  }, dir, options);
  return load_tokenizer(dir);
}

// Long texts go a window at a time; joined, the windows' tokens must be the
// text's. Any two halves cut before a space that follows a letter encode
// apart as the whole does, and the windows fall elsewhere than that cut.
TEST(LongTexts, WindowsJoinToTheWholeTextsTokens) {
  testing::TempDir dir;
  std::vector<std::unique_ptr<Tokenizer>> toks;
  for (const char* name : {"gpt2", "llama3", "qwen3"}) toks.push_back(load_tokenizer(testing::shared_data(std::string("tokenizers/") + name)));
  toks.push_back(trained_sentencepiece(dir.path()));
  const std::string text = long_text(300000, 7);
  std::size_t cut = 100001;
  while (!(text[cut] == ' ' && is_ascii_letter(text[cut - 1]) && is_ascii_letter(text[cut + 1]))) ++cut;
  for (const auto& tok : toks) {
    const bool sentencepiece = tok->kind() == "sentencepiece";
    std::vector<int> apart = tok->encode(text.substr(0, cut));
    const std::vector<int> rest = tok->encode(text.substr(sentencepiece ? cut + 1 : cut));  // SentencePiece: the space is the "▁"
    apart.insert(apart.end(), rest.begin(), rest.end());
    EXPECT_EQ(tok->encode(text), apart) << tok->kind();
    if (!sentencepiece) {  // SentencePiece folds white space
      EXPECT_EQ(tok->decode(tok->encode(text)), text) << tok->kind();
    }
  }
}

// One long word has no place for a window to end: its merges cost n log n
// (rescanning every pair after each merge took 4.7 s for 20,000 bytes).
TEST(LongTexts, ALongWordMergesInTime) {
  auto tok = load_tokenizer(testing::shared_data("tokenizers/gpt2"));
  const std::string word(1 << 20, 'a');
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int> ids = tok->encode(word);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 60.0);
  EXPECT_EQ(tok->decode(ids), word);
  EXPECT_LE(ids.size(), word.size() / 4);
}

long status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::strlen(field)));
  }
  return -1;
}

// Memory while tokenizing is at most 10 bytes per input byte (ids
// included): a 50 MB line took 7.6 GB through SentencePiece and 1.4 GB
// through byte-level BPE. The peak is measured from a reset of VmHWM.
TEST(LongTexts, TokenizingTakesAtMostTenBytesPerInputByte) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's shadow memory is not the tokenizer's";
#endif
  testing::TempDir dir;
  std::vector<std::unique_ptr<Tokenizer>> toks;
  toks.push_back(load_tokenizer(testing::shared_data("tokenizers/gpt2")));
  toks.push_back(trained_sentencepiece(dir.path()));
  const std::string text = long_text(16 << 20, 3);
  for (const auto& tok : toks) {
    std::ofstream("/proc/self/clear_refs") << "5";
    const long before = status_kib("VmRSS:");
    std::size_t n = tok->encode(text).size();
    const long peak = status_kib("VmHWM:");
    ASSERT_GT(n, 0u);
    std::printf("%s: peak %.2f bytes per input byte\n", tok->kind().c_str(), (peak - before) * 1024.0 / static_cast<double>(text.size()));
    EXPECT_LE((peak - before) * 1024.0 / static_cast<double>(text.size()), 10.0) << tok->kind() << ": peak " << peak << " KiB, before " << before;
  }
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
