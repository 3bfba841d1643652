#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "steper/model_config.h"
#include "test_util.h"

namespace steper::model {
namespace {

using testing::TempDir;

std::string script() { return std::string(STEPER_TESTS_DIR) + "/model/safetensors_ref.py"; }

void write_sample(const std::string& path) {
  float emb[] = {0.5f, -1.0f, 2.0f, 3.25f, 0.0f, -0.125f};
  std::uint16_t norm[] = {f32_to_f16(1.0f), f32_to_f16(0.5f), f32_to_f16(-2.0f)};
  std::int64_t step = 42;
  write_safetensors(path,
                    {{"model.embed_tokens.weight", DType::f32, {2, 3}, emb},
                     {"model.norm.weight", DType::f16, {3}, norm},
                     {"step", DType::i64, {}, &step}},
                    {{"format", "pt"}});
}

TEST(Safetensors, WriteThenReadGivesTheSameTensors) {
  TempDir dir;
  write_sample(dir / "m.safetensors");
  SafetensorsFile f(dir / "m.safetensors");
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const TensorView* e = f.find("model.embed_tokens.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(e->to_floats(), (std::vector<float>{0.5f, -1.0f, 2.0f, 3.25f, 0.0f, -0.125f}));
  EXPECT_EQ(f.find("model.norm.weight")->to_floats(), (std::vector<float>{1.0f, 0.5f, -2.0f}));
  EXPECT_EQ(f.find("step")->numel(), 1);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(e->data) % 8, 0u);  // data aligned
  EXPECT_FALSE(std::filesystem::exists(dir / "m.safetensors.partial"));
}

TEST(Safetensors, InteroperatesWithAnIndependentImplementation) {
  TempDir dir;
  write_sample(dir / "ours.safetensors");
  ASSERT_EQ(std::system(("python3 " + script() + " check " + (dir / "ours.safetensors")).c_str()), 0);
  ASSERT_EQ(std::system(("python3 " + script() + " write " + (dir / "theirs.safetensors")).c_str()), 0);
  SafetensorsFile f(dir / "theirs.safetensors");  // unpadded header: must read too
  EXPECT_EQ(f.find("a.weight")->to_floats(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(f.find("b.bias")->to_floats(), (std::vector<float>{0.25f, -0.5f, 8.0f}));
  EXPECT_EQ(f.metadata().at("source"), "python");
}

// Rewrites the header of a valid file, keeping its data.
void corrupt(const std::string& path, const std::string& header, std::size_t data_bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  std::uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header << std::string(data_bytes, '\0');
}

void expect_refused(const std::string& path, const std::string& why) {
  try {
    SafetensorsFile f(path);
    FAIL() << "accepted a file that should be refused for: " << why;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(Safetensors, CorruptFilesAreRefusedWithTheReason) {
  TempDir dir;
  const std::string p = dir / "bad.safetensors";
  write_sample(p);
  std::filesystem::resize_file(p, std::filesystem::file_size(p) - 5);
  expect_refused(p, "(truncated?)");  // the last tensor no longer fits
  std::filesystem::resize_file(p, 4);
  expect_refused(p, "shorter than the 8-byte header length");
  corrupt(p, "{\"a\":", 0);
  expect_refused(p, "header is not valid JSON");
  {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    std::uint64_t n = 1000;
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << "{}";
  }
  expect_refused(p, "runs past the end");
  corrupt(p, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", 8);
  expect_refused(p, "lie outside");
  corrupt(p, R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8);
  expect_refused(p, "needs 12 bytes");
  corrupt(p, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8);
  expect_refused(p, "overlaps");
  corrupt(p, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8);
  expect_refused(p, "gap");
  corrupt(p, R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", 1);
  expect_refused(p, "unknown dtype 'Q4'");
  corrupt(p, R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4);
  expect_refused(p, "not a size");
  corrupt(p, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 6);
  expect_refused(p, "2 bytes after the last tensor");
  corrupt(p, R"([1,2])", 0);
  expect_refused(p, "not a JSON object");
}

TEST(Checkpoint, ReadsSingleAndShardedFolders) {
  TempDir dir;
  std::filesystem::create_directories(dir / "one");
  write_sample(dir / "one/model.safetensors");
  Checkpoint one(dir / "one");
  EXPECT_EQ(one.names().size(), 3u);
  EXPECT_EQ(one.get("step").dtype, DType::i64);
  EXPECT_THROW(one.get("lm_head.weight"), InputError);

  std::filesystem::create_directories(dir / "two");
  float a[] = {1, 2}, b[] = {3};
  write_safetensors(dir / "two/model-00001-of-00002.safetensors", {{"x", DType::f32, {2}, a}});
  write_safetensors(dir / "two/model-00002-of-00002.safetensors", {{"y", DType::f32, {1}, b}});
  testing::write_file(dir / "two/model.safetensors.index.json",
                      R"({"metadata": {}, "weight_map": {"x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"}})");
  Checkpoint two(dir / "two");
  EXPECT_EQ(two.get("y").to_floats(), std::vector<float>{3});
  EXPECT_EQ(two.names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_THROW(Checkpoint(dir / "missing"), InputError);
}

TEST(Conversions, HalfAndBfloat16) {
  // Every finite half value survives f16 -> f32 -> f16.
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    float f = f16_to_f32(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
  }
  EXPECT_EQ(f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);                // rounds to infinity
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie: to even
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(3.140625f)), 3.140625f);
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);   // tie: to even
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

}  // namespace
}  // namespace steper::model
