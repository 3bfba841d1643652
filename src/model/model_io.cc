// Checkpoint folders in Hugging Face layout, and runtime choices (device,
// dtype) that stay options, never forks in the code.
#include <dlfcn.h>
#include <malloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "steper/io.h"
#include "steper/model.h"

namespace steper::model {
namespace {

torch::Dtype torch_dtype_of(DType d, const std::string& name) {
  switch (d) {
    case DType::f32: return torch::kFloat32;
    case DType::f16: return torch::kFloat16;
    case DType::bf16: return torch::kBFloat16;
    case DType::f64: return torch::kFloat64;
    default: throw InputError("tensor '" + name + "' is " + dtype_name(d) + "; weights must be floating point");
  }
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

DType file_dtype_of(torch::Dtype d) {
  if (d == torch::kFloat32) return DType::f32;
  if (d == torch::kFloat16) return DType::f16;
  if (d == torch::kBFloat16) return DType::bf16;
  throw InputError("checkpoints are written as float32, bfloat16 or float16");
}

torch::Device parse_device(const std::string& name) {
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
    throw InputError("unknown device '" + name + "': use cpu, cuda or cuda:N");
  }
  if (device.is_cuda() && !torch::cuda::is_available()) {
    throw InputError("device '" + name + "' asked for, but this LibTorch has no CUDA (or sees no GPU)");
  }
  if (device.is_cuda() && device.has_index() && device.index() >= static_cast<int>(torch::cuda::device_count())) {
    throw InputError("device '" + name + "' asked for, but only " + std::to_string(torch::cuda::device_count()) + " GPUs are visible");
  }
  return device;
}

torch::Dtype parse_dtype_name(const std::string& name) {
  if (name == "float32" || name == "fp32") return torch::kFloat32;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  if (name == "float16" || name == "fp16") return torch::kFloat16;
  throw InputError("unknown dtype '" + name + "': use float32, bfloat16 or float16");
}

std::string torch_dtype_name(torch::Dtype d) {
  if (d == torch::kFloat32) return "float32";
  if (d == torch::kBFloat16) return "bfloat16";
  if (d == torch::kFloat16) return "float16";
  return "unknown";
}

void tune_allocator() {
  ::mallopt(M_MMAP_THRESHOLD, 1 << 30);  // large blocks from the heap, reused
  ::mallopt(M_TRIM_THRESHOLD, 1 << 30);  // and not handed back at each free
  ::mallopt(M_TOP_PAD, 64 << 20);
}

std::string blas_warning() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    // Debian's reference BLAS lives in .../blas/libblas.so.3; OpenBLAS in
    // .../openblas-pthread/ (the alternatives system picks one).
    if (line.find("/blas/libblas.so") != std::string::npos) {
      return "LibTorch is using the reference BLAS (" + line.substr(line.find('/')) +
             "): matrix products run ~25x slower.\n  hint: apt-get install libopenblas0-pthread";
    }
  }
  return {};
}

namespace {

// OpenBLAS's thread count, looked up at run time: LibTorch reaches the BLAS
// through libblas.so.3, which may be OpenBLAS or another.
using BlasSetThreads = void (*)(int);
using BlasGetThreads = int (*)();
BlasSetThreads blas_set_threads() { return reinterpret_cast<BlasSetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads")); }
BlasGetThreads blas_get_threads() { return reinterpret_cast<BlasGetThreads>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads")); }

}  // namespace

CpuThreads::CpuThreads(int threads) : torch_(torch::get_num_threads()) {
  torch::set_num_threads(threads);
  const BlasGetThreads get = blas_get_threads();
  const BlasSetThreads set = blas_set_threads();
  if (get && set) {
    blas_ = get();
    set(threads);
  }
}

CpuThreads::~CpuThreads() {
  torch::set_num_threads(torch_);
  if (auto set = blas_set_threads(); set && blas_ > 0) set(blas_);
}

namespace {

// Builds the model with its parameters already in `dtype`, so that loading
// an 8B checkpoint holds one bf16 copy of it, not an fp32 one beside it.
class DefaultDtypeGuard {
 public:
  explicit DefaultDtypeGuard(torch::Dtype dtype) : saved_(torch::get_default_dtype()) {
    torch::set_default_dtype(c10::scalarTypeToTypeMeta(dtype));
  }
  ~DefaultDtypeGuard() { torch::set_default_dtype(saved_); }
  DefaultDtypeGuard(const DefaultDtypeGuard&) = delete;
  DefaultDtypeGuard& operator=(const DefaultDtypeGuard&) = delete;

 private:
  caffe2::TypeMeta saved_;
};

// generation_config.json's end-of-sequence ids join config.json's: the
// instruct models list their end-of-turn token there.
void read_generation_config(const std::string& dir, LoadedModel& out) {
  const std::string path = dir + "/generation_config.json";
  if (!io::is_file(path)) return;
  const nlohmann::json j = io::read_json(path);
  if (!j.is_object()) throw InputError(path + ": expected a JSON object");
  for (int id : read_token_ids(j, "eos_token_id", path)) {
    if (id >= out.config.vocab_size) throw InputError(path + ": field 'eos_token_id': " + std::to_string(id) + " is outside the vocabulary");
    if (std::find(out.config.eos_token_ids.begin(), out.config.eos_token_ids.end(), id) == out.config.eos_token_ids.end()) {
      out.config.eos_token_ids.push_back(id);
    }
  }
  if (out.config.eos_token_id < 0 && !out.config.eos_token_ids.empty()) out.config.eos_token_id = out.config.eos_token_ids[0];
  auto number = [&](const char* name, double& field) {
    if (!j.contains(name) || j[name].is_null()) return;
    if (!j[name].is_number() || !std::isfinite(j[name].get<double>())) throw InputError(path + ": field '" + name + "': expected a number");
    field = j[name].get<double>();
  };
  const bool sample = j.value("do_sample", false);
  number("temperature", out.generation.temperature);
  number("top_p", out.generation.top_p);
  if (!sample) out.generation.temperature = 0;  // greedy unless the file asks for sampling
}

}  // namespace

namespace {

void load_weights_from(CausalLM& model, const Checkpoint& weights, const std::string& dir, torch::Device device) {
  std::set<std::string> expected;
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    expected.insert(p.key());
    const TensorView* t = weights.find(p.key());
    if (!t) throw InputError("checkpoint '" + dir + "' lacks tensor '" + p.key() + "' that config.json implies");
    std::vector<std::int64_t> want(p.value().sizes().begin(), p.value().sizes().end());
    if (t->shape != want) {
      throw InputError("checkpoint '" + dir + "': tensor '" + p.key() + "' has shape " +
                       c10::str(c10::IntArrayRef(t->shape)) + ", config.json implies " + c10::str(p.value().sizes()));
    }
    torch::Tensor src = torch::empty(t->shape, torch::TensorOptions().dtype(torch_dtype_of(t->dtype, t->name)));
    std::memcpy(src.data_ptr(), t->data, t->bytes);  // a copy: the mapping may be unaligned
    // The parameter takes the loaded tensor itself (its identity, which an
    // optimizer holds, stays); what it held is freed.
    p.value().set_data(src.to(device, p.value().scalar_type()));
  }
  for (const auto& name : weights.names()) {
    if (expected.count(name) || ends_with(name, "rotary_emb.inv_freq")) continue;
    if (name == "lm_head.weight" && model->config.tie_word_embeddings) continue;
    throw InputError("checkpoint '" + dir + "' has tensor '" + name + "' that this Llama model does not: another architecture?");
  }
}

}  // namespace

void load_weights(CausalLM& model, const std::string& dir, torch::Device device) {
  load_weights_from(model, Checkpoint(dir), dir, device);
}

LoadedModel load_model(const std::string& dir, torch::Device device, torch::Dtype dtype) {
  LoadedModel out;
  out.config = read_model_config(dir + "/config.json");
  read_generation_config(dir, out);
  const Checkpoint weights(dir);  // opened first: a missing or corrupt file fails before the model is allocated
  {
    DefaultDtypeGuard guard(dtype);
    out.model = CausalLM(out.config, /*initialise=*/false);
  }
  load_weights_from(out.model, weights, dir, device);
  out.model->to(device, dtype);  // buffers; the parameters are there already
  struct stat st {};
  if (::stat((dir + "/tokenizer.json").c_str(), &st) == 0 || ::stat((dir + "/tokenizer.model").c_str(), &st) == 0) {
    out.tokenizer = text::load_tokenizer(dir);
  }
  return out;
}

namespace {

// The weights as Hugging Face's save_pretrained lays them out: one
// model.safetensors, or, past `max_shard_bytes`, shards filled in parameter
// order (a tensor larger than the limit gets a shard of its own) and
// model.safetensors.index.json mapping each name to its shard. The other
// layout's entry file is removed, so a loader never meets a stale one.
void write_weights(const std::string& dir, const std::vector<TensorData>& tensors, std::uint64_t max_shard_bytes) {
  std::vector<std::vector<TensorData>> shards(1);
  std::uint64_t in_shard = 0, total = 0;
  for (const auto& t : tensors) {
    std::uint64_t bytes = dtype_size(t.dtype);
    for (auto d : t.shape) bytes *= static_cast<std::uint64_t>(d);
    if (!shards.back().empty() && in_shard + bytes > max_shard_bytes) shards.emplace_back(), in_shard = 0;
    shards.back().push_back(t);
    in_shard += bytes;
    total += bytes;
  }
  const std::string single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json";
  std::error_code ec;
  if (shards.size() == 1) {
    write_safetensors(single, tensors, {{"format", "pt"}});
    std::filesystem::remove(index, ec);
    return;
  }
  nlohmann::json map = nlohmann::json::object();
  const std::size_t n = shards.size();
  for (std::size_t i = 0; i < n; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, n);
    write_safetensors(dir + "/" + name, shards[i], {{"format", "pt"}});
    for (const auto& t : shards[i]) map[t.name] = name;
  }
  io::write_json_atomic(index, nlohmann::json{{"metadata", {{"total_size", total}}}, {"weight_map", map}});
  std::filesystem::remove(single, ec);
}

}  // namespace

void save_model(CausalLM& model, const std::string& dir, const std::string& tokenizer_file, torch::Dtype dtype,
                std::uint64_t max_shard_bytes) {
  io::make_directories(dir);
  std::vector<torch::Tensor> keep;
  std::vector<TensorData> tensors;
  for (const auto& p : model->named_parameters()) {
    torch::Tensor t = p.value().detach().to(torch::kCPU, dtype).contiguous();
    keep.push_back(t);
    tensors.push_back({p.key(), file_dtype_of(dtype), std::vector<std::int64_t>(t.sizes().begin(), t.sizes().end()), t.data_ptr()});
  }
  write_weights(dir, tensors, max_shard_bytes);
  ModelConfig config = model->config;
  std::unique_ptr<text::Tokenizer> tok = tokenizer_file.empty() ? nullptr : text::load_tokenizer(tokenizer_file);
  if (config.pad_token_id < 0 && tok && tok->pad_id() >= 0 && tok->pad_id() < config.vocab_size) config.pad_token_id = tok->pad_id();
  write_model_config(config, dir + "/config.json", torch_dtype_name(dtype));
  write_hf_files(dir, config, tokenizer_file, tok.get());
  if (!tokenizer_file.empty()) {
    std::error_code ec;
    auto name = std::filesystem::path(tokenizer_file).filename();
    if (std::filesystem::absolute(tokenizer_file) != std::filesystem::absolute(std::filesystem::path(dir) / name)) {
      std::filesystem::copy_file(tokenizer_file, std::filesystem::path(dir) / name,
                                 std::filesystem::copy_options::overwrite_existing, ec);
      if (ec) throw RuntimeError("cannot copy tokenizer " + tokenizer_file + " into " + dir + ": " + ec.message());
    }
  }
}

}  // namespace steper::model
