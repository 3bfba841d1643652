#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

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
  EXPECT_THROW(JsonlWriter(dir / "no/such/dir/x.jsonl", JsonlWriter::Mode::truncate), InputError);  // the caller named a folder that is not there
}

// metrics.jsonl and train_log.jsonl were written with unchecked streams: a
// full disk lost every line after it without a word. A file-size limit
// (RLIMIT_FSIZE) makes the kernel refuse the write, as a full disk does.
TEST(JsonlWriter, AFailedWriteIsAnErrorNamingTheFile) {
  TempDir dir;
  const std::string log = dir / "metrics.jsonl";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // the limit applies to this child alone
    std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit {64, 64};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    try {
      JsonlWriter w(log, JsonlWriter::Mode::append);
      for (int i = 0; i < 100; ++i) w.write(json{{"step", i}, {"loss", 1.5}});
      std::_Exit(1);  // every write "succeeded"
    } catch (const RuntimeError& e) {
      std::_Exit(std::string(e.what()).find("metrics.jsonl: write failed") != std::string::npos ? 0 : 2);
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: a failed write went unnoticed; 2: the error did not name the file";
}

// As root, `stepwise --out /dev/full` replaced the device node with a
// regular file, and `run --out` on an endless device read it for minutes.
TEST(Files, OutputsThatAreNotRegularFilesAreRefused) {
  TempDir dir;
  const std::string fifo = dir / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THROW(JsonlWriter(fifo, JsonlWriter::Mode::append), InputError);
  EXPECT_THROW(JsonlWriter(fifo, JsonlWriter::Mode::staged), InputError);
  EXPECT_THROW(write_atomic(fifo, "x"), InputError);
  EXPECT_THROW(write_atomic(dir.path(), "x"), InputError);
  EXPECT_THROW(require_regular_or_absent("/dev/null"), InputError);
  struct stat st {};
  ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));  // still the pipe
  require_regular_or_absent(dir / "absent");
  write_atomic(dir / "plain", "x");
  require_regular_or_absent(dir / "plain");
}

// After a kill between checkpoints, the resumed run logged the steps after
// the checkpoint a second time (322 rows for 240 steps).
TEST(Files, TruncateJsonlAtDropsTheStepsFromTheResumePointOn) {
  TempDir dir;
  const std::string log = dir / "metrics.jsonl";
  testing::write_file(log, "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n{\"step\":4,\"lo");  // torn last line
  truncate_jsonl_at(log, "step", 3);
  EXPECT_EQ(read_file(log), "{\"step\":1}\n{\"step\":2}\n");
  truncate_jsonl_at(log, "step", 9);  // nothing to drop
  EXPECT_EQ(read_file(log), "{\"step\":1}\n{\"step\":2}\n");
  truncate_jsonl_at(dir / "absent.jsonl", "step", 1);
  EXPECT_FALSE(std::filesystem::exists(dir / "absent.jsonl"));
}

}  // namespace
}  // namespace steper::io

namespace steper::io {
namespace {

// Two writers of one output: the second stops at once, naming the output
// and the holder (two `run`s appending to one file once left 296
// duplicate ids). Released, the lock is free again and its file gone.
TEST(OutputLock, ASecondWriterIsRefusedUntilTheFirstLetsGo) {
  TempDir dir;
  const std::string out = dir / "traces.jsonl";
  {
    OutputLock first(out);
    try {
      OutputLock second(out);
      ADD_FAILURE() << "a second lock was granted";
    } catch (const InputError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(out + " is being written by another steper (pid " + std::to_string(::getpid()) + ")"), std::string::npos) << what;
    }
    // A folder named with a trailing slash is the same output.
    OutputLock folder(dir / "model/");
    EXPECT_THROW(OutputLock again(dir / "model"), InputError);
  }
  EXPECT_FALSE(std::filesystem::exists(out + ".lock"));
  OutputLock later(out);
}

// A file where a folder must go is the caller's mistake (exit 2), not the
// environment's: `--out FILE` for a folder output once exited 1.
TEST(Files, AFileWhereAFolderGoesIsAnInputError) {
  TempDir dir;
  testing::write_file(dir / "file", "x");
  EXPECT_THROW(make_directories(dir / "file"), InputError);
  EXPECT_THROW(make_directories(dir / "file/sub"), InputError);
  EXPECT_THROW(write_atomic(dir / "file/x.json", "{}"), InputError);
  EXPECT_THROW(JsonlWriter(dir / "file/x.jsonl", JsonlWriter::Mode::append), InputError);
  make_directories(dir / "a/b");
  EXPECT_TRUE(std::filesystem::is_directory(dir / "a/b"));
}

}  // namespace
}  // namespace steper::io
