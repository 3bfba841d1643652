#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>

#include "steper/io.h"
#include "test_util.h"

namespace steper::io {
namespace {

using testing::TempDir;

TEST(Files, WriteAtomicReplacesTheWholeFileAndLeavesNoPartial) {
  TempDir dir;
  const std::string p = dir / "state.json";
  write_json_atomic(p, json{{"step", 1}});
  write_json_atomic(p, json{{"step", 2}});
  EXPECT_EQ(read_json(p)["step"], 2);
  EXPECT_FALSE(std::filesystem::exists(p + ".partial"));
  write_atomic(p, "raw\nbytes");
  EXPECT_EQ(read_file(p), "raw\nbytes");
}

// A writer that fails half-way must leave the old file as it was, and no
// partial file behind.
TEST(Files, AStagedFileAbandonedKeepsTheOldOne) {
  TempDir dir;
  const std::string p = dir / "out.txt";
  write_atomic(p, "old");
  try {
    StagedFile f(p);
    f.stream() << "new, half";
    throw std::runtime_error("crash");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(read_file(p), "old");
  EXPECT_FALSE(std::filesystem::exists(p + ".partial"));
}

TEST(Files, ReadErrorsNameTheFile) {
  TempDir dir;
  try {
    read_file(dir / "missing.json");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.json: cannot open"), std::string::npos) << e.what();
  }
  testing::write_file(dir / "bad.json", "{\"a\": ");
  try {
    read_json(dir / "bad.json");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.json: not valid JSON"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(is_file(dir / "bad.json"));
  EXPECT_FALSE(is_file(dir.path()));
  EXPECT_FALSE(is_file(dir / "missing.json"));
}

TEST(JsonlWriter, AppendsAndStages) {
  TempDir dir;
  const std::string log = dir / "log.jsonl";
  {
    JsonlWriter w(log, JsonlWriter::Mode::append);
    w.write(json{{"step", 1}});
  }
  {
    JsonlWriter w(log, JsonlWriter::Mode::append);
    w.write_line("plain");
    EXPECT_EQ(w.written(), 1u);
  }
  EXPECT_EQ(read_file(log), "{\"step\":1}\nplain\n");

  const std::string out = dir / "samples.jsonl";
  {
    JsonlWriter w(out, JsonlWriter::Mode::staged);
    w.write(json{{"id", "a"}});
    EXPECT_FALSE(std::filesystem::exists(out));  // readers see nothing until the commit
    w.commit();
  }
  EXPECT_EQ(read_file(out), "{\"id\":\"a\"}\n");
  {
    JsonlWriter w(out, JsonlWriter::Mode::staged);
    w.write(json{{"id", "b"}});
  }  // never committed
  EXPECT_EQ(read_file(out), "{\"id\":\"a\"}\n");
  EXPECT_FALSE(std::filesystem::exists(out + ".partial"));
}

TEST(JsonlWriter, AppendsLineByLine) {
  TempDir dir;
  {
    JsonlWriter w(dir / "o.jsonl", JsonlWriter::Mode::truncate);
    w.write(json{{"a", 1}});
  }
  {
    JsonlWriter w(dir / "o.jsonl", JsonlWriter::Mode::append);
    w.write(json{{"a", 2}});
    // Invalid UTF-8 from outside data is replaced, not fatal.
    w.write(json{{"s", std::string("bad \xFF byte")}});
  }
  EXPECT_EQ(testing::read_file(dir / "o.jsonl"), "{\"a\":1}\n{\"a\":2}\n{\"s\":\"bad \xEF\xBF\xBD byte\"}\n");
  EXPECT_THROW(JsonlWriter(dir / "no/such/dir/x.jsonl", JsonlWriter::Mode::truncate), RuntimeError);
}

// metrics.jsonl and train_log.jsonl were written with unchecked streams: a
// full disk lost every line after it without a word. /dev/full is a real
// device that refuses every write with ENOSPC.
TEST(JsonlWriter, AFullDiskIsAnErrorNamingTheFile) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  JsonlWriter w("/dev/full", JsonlWriter::Mode::append);
  try {
    w.write(json{{"step", 1}});
    FAIL() << "a failed write went unnoticed";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("/dev/full: write failed"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace steper::io
