// safetensors: [u64 little-endian N][N bytes of JSON header][data].
// The header maps names to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets relative to the data) and may hold "__metadata__": {str: str}.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "steper/io.h"
#include "steper/model_config.h"

namespace steper::model {
namespace {

using json = nlohmann::json;

constexpr std::uint64_t kMaxHeaderBytes = 100u << 20;  // as Hugging Face's reader

std::uint64_t read_le64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

}  // namespace

std::int64_t TensorView::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::vector<float> TensorView::to_floats() const {
  std::vector<float> out(static_cast<std::size_t>(numel()));
  for (std::size_t i = 0; i < out.size(); ++i) {
    switch (dtype) {
      case DType::f32: std::memcpy(&out[i], data + 4 * i, 4); break;
      case DType::f16:
      case DType::bf16: {
        std::uint16_t h;
        std::memcpy(&h, data + 2 * i, 2);
        out[i] = dtype == DType::f16 ? f16_to_f32(h) : bf16_to_f32(h);
        break;
      }
      case DType::f64: {
        double d;
        std::memcpy(&d, data + 8 * i, 8);
        out[i] = static_cast<float>(d);
        break;
      }
      default: throw InputError("tensor '" + name + "' is " + dtype_name(dtype) + ", not a float type");
    }
  }
  return out;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  auto fail = [&](const std::string& why) { return InputError(path_ + ": not a valid safetensors file: " + why); };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  map_bytes_ = static_cast<std::size_t>(st.st_size);
  if (map_bytes_ < 8) {
    ::close(fd);
    throw fail("file is " + std::to_string(map_bytes_) + " bytes, shorter than the 8-byte header length");
  }
  map_ = ::mmap(nullptr, map_bytes_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw RuntimeError(path + ": cannot map: " + std::strerror(errno));
  }
  try {
    const auto* base = static_cast<const unsigned char*>(map_);
    std::uint64_t n = read_le64(base);
    if (n > kMaxHeaderBytes) throw fail("header length " + std::to_string(n) + " exceeds 100 MiB");
    if (n > map_bytes_ - 8) {
      throw fail("header length " + std::to_string(n) + " runs past the end of the " + std::to_string(map_bytes_) +
                 "-byte file (truncated?)");
    }
    json header;
    try {
      header = json::parse(base + 8, base + 8 + n);
    } catch (const json::exception& e) {
      throw fail(std::string("header is not valid JSON: ") + e.what());
    }
    if (!header.is_object()) throw fail("header is not a JSON object");
    const std::byte* data = reinterpret_cast<const std::byte*>(base + 8 + n);
    const std::size_t data_bytes = map_bytes_ - 8 - static_cast<std::size_t>(n);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") {
        if (!entry.is_object()) throw fail("__metadata__ is not an object");
        for (const auto& [k, v] : entry.items()) {
          if (!v.is_string()) throw fail("__metadata__." + k + " is not a string");
          metadata_[k] = v.get<std::string>();
        }
        continue;
      }
      const std::string where = "tensor '" + name + "': ";
      if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets")) {
        throw fail(where + "needs dtype, shape and data_offsets");
      }
      TensorView t;
      t.name = name;
      try {
        t.dtype = parse_dtype(entry["dtype"].get<std::string>());
      } catch (const std::exception& e) {
        throw fail(where + e.what());
      }
      const json& shape = entry["shape"];
      const json& off = entry["data_offsets"];
      if (!shape.is_array()) throw fail(where + "shape is not an array");
      std::uint64_t numel = 1;
      for (const auto& d : shape) {
        if (!d.is_number_unsigned()) throw fail(where + "shape holds " + d.dump() + ", not a size");
        t.shape.push_back(d.get<std::int64_t>());
        numel *= d.get<std::uint64_t>();
        if (numel > (std::uint64_t{1} << 48)) throw fail(where + "shape is absurdly large");
      }
      if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
        throw fail(where + "data_offsets must be [begin, end]");
      }
      std::uint64_t b = off[0].get<std::uint64_t>(), e = off[1].get<std::uint64_t>();
      if (b > e || e > data_bytes) {
        throw fail(where + "data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + "] lie outside the " +
                   std::to_string(data_bytes) + " bytes of data (truncated?)");
      }
      if (e - b != numel * dtype_size(t.dtype)) {
        throw fail(where + "shape " + shape.dump() + " of " + dtype_name(t.dtype) + " needs " +
                   std::to_string(numel * dtype_size(t.dtype)) + " bytes, data_offsets give " + std::to_string(e - b));
      }
      t.data = data + b;
      t.bytes = static_cast<std::size_t>(e - b);
      ranges.emplace_back(b, e);
      tensors_.push_back(std::move(t));
    }
    // The ranges must tile the data exactly: no overlaps, no gaps.
    std::vector<std::size_t> order(tensors_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return ranges[x] < ranges[y]; });
    std::uint64_t expect = 0;
    for (std::size_t i : order) {
      if (ranges[i].first < expect) throw fail("tensor '" + tensors_[i].name + "' overlaps the tensor before it");
      if (ranges[i].first > expect) throw fail("gap of unused bytes before tensor '" + tensors_[i].name + "'");
      expect = ranges[i].second;
    }
    if (expect != data_bytes) throw fail(std::to_string(data_bytes - expect) + " bytes after the last tensor");
    std::vector<TensorView> sorted;
    for (std::size_t i : order) sorted.push_back(std::move(tensors_[i]));
    tensors_ = std::move(sorted);
  } catch (...) {
    ::munmap(map_, map_bytes_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_bytes_);
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

void write_safetensors(const std::string& path, const std::vector<TensorData>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (t.name == "__metadata__" || header.contains(t.name)) throw InputError("tensor name '" + t.name + "' repeated or reserved");
    std::uint64_t bytes = dtype_size(t.dtype);
    for (auto d : t.shape) {
      if (d < 0) throw InputError("tensor '" + t.name + "' has a negative dimension");
      bytes *= static_cast<std::uint64_t>(d);
    }
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // align the data to 8 bytes
  io::StagedFile file(path, true);
  std::ostream& out = file.stream();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(text.size()) >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : tensors) {
    std::uint64_t bytes = dtype_size(t.dtype);
    for (auto d : t.shape) bytes *= static_cast<std::uint64_t>(d);
    out.write(static_cast<const char*>(t.data), static_cast<std::streamsize>(bytes));
  }
  file.commit();
}

}  // namespace steper::model
