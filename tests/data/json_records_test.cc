#include <gtest/gtest.h>

#include "steper/data.h"
#include "test_util.h"

namespace steper::data {
namespace {

using testing::TempDir;
using testing::write_file;

std::vector<json> read_all(const std::string& path) {
  JsonRecords r(path);
  std::vector<json> out;
  json j;
  while (r.next(j)) out.push_back(j);
  return out;
}

TEST(JsonRecords, ReadsJsonLinesSkippingBlankLinesCrlfAndBom) {
  TempDir dir;
  write_file(dir / "a.jsonl", "\xEF\xBB\xBF{\"a\":1}\r\n\r\n   \n{\"a\":2}\n{\"a\":3}");
  auto rows = read_all(dir / "a.jsonl");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["a"], 1);
  EXPECT_EQ(rows[2]["a"], 3);
}

TEST(JsonRecords, MalformedLineNamesFileAndLine) {
  TempDir dir;
  write_file(dir / "b.jsonl", "{\"a\":1}\n\n{\"a\":\n{\"a\":3}\n");
  JsonRecords r(dir / "b.jsonl");
  json j;
  ASSERT_TRUE(r.next(j));
  try {
    r.next(j);
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("b.jsonl:3: invalid JSON"), std::string::npos) << e.what();
  }
  // The reader stays usable after a bad record.
  ASSERT_TRUE(r.next(j));
  EXPECT_EQ(j["a"], 3);
  EXPECT_EQ(r.line(), 4u);
}

// A record over the limit is refused with its line, in JSON Lines and in
// arrays alike, and a JSON Lines reader goes on after it: one 50 MB line
// once took 12.9 GB to read and train on.
TEST(JsonRecords, RecordsOverTheLimitAreRefusedWithTheirLine) {
  TempDir dir;
  const std::uint64_t old = max_record_bytes();
  set_max_record_bytes(64);
  const std::string big = "{\"text\":\"" + std::string(100, 'x') + "\"}";
  write_file(dir / "c.jsonl", "{\"a\":1}\n" + big + "\n{\"a\":3}\n");
  write_file(dir / "c.json", "[{\"a\":1},\n" + big + "]");
  for (const char* name : {"c.jsonl", "c.json"}) {
    JsonRecords r(dir / name);
    json j;
    ASSERT_TRUE(r.next(j));
    try {
      r.next(j);
      ADD_FAILURE() << "expected an InputError";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(std::string(name) + ":2: the record is longer than 64 bytes"), std::string::npos) << e.what();
    }
    if (std::string(name) == "c.jsonl") {
      ASSERT_TRUE(r.next(j));
      EXPECT_EQ(j["a"], 3);
      EXPECT_EQ(r.line(), 3u);
    }
  }
  set_max_record_bytes(old);
  EXPECT_EQ(read_all(dir / "c.jsonl").size(), 3u);
}

// Lines are read in 64 KiB pieces: a record across several, and one that
// ends exactly at a piece's edge, come whole, with their lines and offsets.
TEST(JsonRecords, LongRecordsAcrossReadPiecesComeWhole) {
  TempDir dir;
  const std::string a = "{\"t\":\"" + std::string(200000, 'a') + "\"}";
  const std::string b = "{\"t\":\"" + std::string((1 << 16) - 1 - 8, 'b') + "\"}";  // 65535 bytes: one full piece
  write_file(dir / "long.jsonl", a + "\n" + b + "\n{\"t\":\"c\"}");
  JsonRecords r(dir / "long.jsonl");
  json j;
  ASSERT_TRUE(r.next(j));
  EXPECT_EQ(j["t"].get<std::string>().size(), 200000u);
  ASSERT_TRUE(r.next(j));
  EXPECT_EQ(j["t"].get<std::string>().size(), b.size() - 8);
  EXPECT_EQ(r.line(), 2u);
  EXPECT_EQ(r.bytes_read(), a.size() + b.size() + 2);
  ASSERT_TRUE(r.next(j));
  EXPECT_EQ(j["t"], "c");
  EXPECT_EQ(r.line(), 3u);
  EXPECT_FALSE(r.next(j));
}

TEST(JsonRecords, SplitsTopLevelArrayTrackingLines) {
  TempDir dir;
  // Brackets, commas and escaped quotes inside strings must not end an element.
  write_file(dir / "c.json",
             "[\n  {\"s\": \"a],b\\\"[{\"},\n  [1, [2]],\n  \"plain\",\n  7\n,\n  {\"last\": true}\n]\n");
  JsonRecords r(dir / "c.json");
  EXPECT_TRUE(r.is_array());
  json j;
  ASSERT_TRUE(r.next(j));
  EXPECT_EQ(j["s"], "a],b\"[{");
  EXPECT_EQ(r.line(), 2u);
  ASSERT_TRUE(r.next(j));
  EXPECT_EQ(j, json::parse("[1,[2]]"));
  ASSERT_TRUE(r.next(j));
  EXPECT_EQ(j, "plain");
  ASSERT_TRUE(r.next(j));
  EXPECT_EQ(j, 7);
  ASSERT_TRUE(r.next(j));
  EXPECT_EQ(j["last"], true);
  EXPECT_EQ(r.line(), 7u);
  EXPECT_FALSE(r.next(j));
}

TEST(JsonRecords, EmptyArrayAndEmptyFileHaveNoRecords) {
  TempDir dir;
  write_file(dir / "e.json", " [ ] ");
  write_file(dir / "f.jsonl", "");
  EXPECT_TRUE(read_all(dir / "e.json").empty());
  EXPECT_TRUE(read_all(dir / "f.jsonl").empty());
}

TEST(JsonRecords, UnclosedArrayAndMissingCommaAreErrors) {
  TempDir dir;
  write_file(dir / "g.json", "[{\"a\":1},\n{\"a\":2}");
  EXPECT_THROW(read_all(dir / "g.json"), InputError);
  write_file(dir / "h.json", "[{\"a\":1}\n{\"a\":2}]");
  try {
    read_all(dir / "h.json");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("h.json:2: invalid JSON: expected ','"), std::string::npos) << e.what();
  }
}

// A number past double's range is valid JSON syntax that nlohmann refuses
// with out_of_range, not parse_error: it escaped as an uncaught exception
// (found by json_records_fuzz) and must be an InputError naming the line.
TEST(JsonRecords, ANumberPastDoublesRangeIsAnErrorNamingTheLine) {
  TempDir dir;
  write_file(dir / "n.jsonl", "{\"a\": 1}\n{\"a\": 7e7777}\n");
  try {
    read_all(dir / "n.jsonl");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("n.jsonl:2: invalid JSON: number overflow"), std::string::npos) << e.what();
  }
}

TEST(JsonRecords, MissingFileAndDirectoryAreInputErrors) {
  TempDir dir;
  EXPECT_THROW(JsonRecords(dir / "nope.jsonl"), InputError);
  EXPECT_THROW(JsonRecords(dir.path()), InputError);
}

TEST(JsonRecords, SeekResumesAtARecordedOffset) {
  TempDir dir;
  write_file(dir / "s.jsonl", "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n");
  std::uint64_t offset, line;
  {
    JsonRecords r(dir / "s.jsonl");
    json j;
    r.next(j);
    offset = r.bytes_read();
    line = r.line();
  }
  JsonRecords r(dir / "s.jsonl");
  r.seek(offset, line);
  json j;
  ASSERT_TRUE(r.next(j));
  EXPECT_EQ(j["a"], 2);
  EXPECT_EQ(r.line(), 2u);
}

}  // namespace
}  // namespace steper::data
