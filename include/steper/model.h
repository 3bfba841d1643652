// steper/model.h — model checkpoints in Hugging Face layout.
//
// So far: our own safetensors reader and writer (the format is an 8-byte
// little-endian header length, a JSON header naming each tensor's dtype,
// shape and byte range, then the raw little-endian data), and checkpoint
// folders with one model.safetensors or shards listed in
// model.safetensors.index.json. The LibTorch transformer builds on these.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "steper/error.h"

namespace steper::model {

enum class DType { f32, f16, bf16, f64, i64, i32, i16, i8, u8, boolean };

// "F32", "F16", "BF16", ...; throws InputError for other names.
DType parse_dtype(const std::string& name);
std::string dtype_name(DType dtype);
std::size_t dtype_size(DType dtype);

// One tensor inside a mapped file: valid while the file object lives.
struct TensorView {
  std::string name;
  DType dtype;
  std::vector<std::int64_t> shape;
  const std::byte* data;
  std::size_t bytes;
  std::int64_t numel() const;
  // The values as float32, converting F16 and BF16. REQUIRES: a float dtype.
  std::vector<float> to_floats() const;
};

// A safetensors file, memory-mapped read-only and validated on open: the
// header length fits the file, the header is a JSON object of well-formed
// entries, each tensor's shape times its dtype size equals its byte range,
// the ranges lie inside the data and cover it without gaps or overlaps.
// Throws InputError "PATH: ..." saying what is wrong.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<TensorView>& tensors() const { return tensors_; }  // in data order
  const TensorView* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  void* map_ = nullptr;
  std::size_t map_bytes_ = 0;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

struct TensorData {
  std::string name;
  DType dtype;
  std::vector<std::int64_t> shape;
  const void* data;  // little-endian values, numel * dtype_size bytes
};

// Writes a safetensors file the way Hugging Face's library does (header
// padded with spaces to 8 bytes, tensors in the given order). Written to
// PATH.partial and renamed, so a crash never leaves a torn checkpoint.
// Throws InputError for duplicate names, RuntimeError for I/O failures.
void write_safetensors(const std::string& path, const std::vector<TensorData>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// A checkpoint folder's weights: model.safetensors, or the shards that
// model.safetensors.index.json maps each tensor name to.
class Checkpoint {
 public:
  explicit Checkpoint(const std::string& dir);
  const TensorView* find(const std::string& name) const;
  // Throws InputError naming the tensor and the folder when it is absent.
  const TensorView& get(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> index_;
};

// IEEE half and bfloat16 conversions (round to nearest even).
float f16_to_f32(std::uint16_t h);
float bf16_to_f32(std::uint16_t b);
std::uint16_t f32_to_f16(float f);
std::uint16_t f32_to_bf16(float f);

}  // namespace steper::model
