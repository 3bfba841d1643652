// Data parallelism over PyTorch's own c10d process groups, so that workers
// start the way torchrun starts them and talk the way PyTorch's do.
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef STEPER_HAVE_NCCL  // a CUDA LibTorch built with NCCL (detected when configuring)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>

#include "steper/error.h"
#include "steper/train.h"

namespace steper::train {
namespace {

int env_int(const char* name, int fallback, int min) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < min || x > 1 << 20) throw InputError(std::string("environment variable ") + name + "='" + v + "': expected an integer >= " + std::to_string(min));
  return static_cast<int>(x);
}

}  // namespace

DistributedEnv distributed_env() {
  DistributedEnv e;
  e.world_size = env_int("WORLD_SIZE", 1, 1);
  e.rank = env_int("RANK", 0, 0);
  e.local_rank = env_int("LOCAL_RANK", 0, 0);
  e.master_port = env_int("MASTER_PORT", 29500, 1);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) e.master_addr = a;
  if (const char* a = std::getenv("TORCHELASTIC_USE_AGENT_STORE"); a && std::string(a) == "True") {
    e.agent_store = true;
    e.restart_count = env_int("TORCHELASTIC_RESTART_COUNT", 0, 0);
  }
  if (e.rank >= e.world_size) {
    throw InputError("RANK=" + std::to_string(e.rank) + " is not below WORLD_SIZE=" + std::to_string(e.world_size));
  }
  if (e.master_port > 65535) throw InputError("MASTER_PORT=" + std::to_string(e.master_port) + " is not a port");
  return e;
}

torch::Device rank_device(const std::string& name) {
  if (name == "cuda") return model::parse_device("cuda:" + std::to_string(distributed_env().local_rank));
  return model::parse_device(name);
}

struct DataParallel::Group {
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  torch::Device device{torch::kCPU};  // where the group's own tensors (sums) live: CUDA under NCCL
};

bool DataParallel::nccl_available() {
#ifdef STEPER_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

DataParallel::DataParallel(const DistributedEnv& env, int timeout_s, const torch::Device& device)
    : group_(std::make_unique<Group>()), rank_(env.rank), world_(env.world_size) {
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.master_port);
    so.isServer = env.rank == 0 && !env.agent_store;
    so.numWorkers = env.agent_store ? c10::nullopt : c10::optional<std::size_t>(env.world_size);
    so.timeout = std::chrono::seconds(timeout_s);
    c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    // The prefix torch.distributed's env:// rendezvous uses under torchrun,
    // so that a restarted group does not meet the keys of the last attempt.
    if (env.agent_store) store = c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_" + std::to_string(env.restart_count), store);
#ifdef STEPER_HAVE_NCCL
    if (device.is_cuda()) {
      auto nccl = c10d::ProcessGroupNCCL::Options::create();
      nccl->timeout = std::chrono::seconds(timeout_s);
      group_->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, nccl);
      group_->device = device;
      return;
    }
#endif
    (void)device;
    auto opts = c10d::ProcessGroupGloo::Options::create();
    opts->timeout = std::chrono::seconds(timeout_s);
    // The interface that reaches the master is the one the peers reach.
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(env.master_addr));
    group_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, opts);
  } catch (const std::exception& e) {
    throw RuntimeError("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) + " could not join the group at " +
                       env.master_addr + ":" + std::to_string(env.master_port) + ": " + e.what());
  }
}

DataParallel::~DataParallel() = default;

void DataParallel::average_gradients(const std::vector<torch::Tensor>& params) {
  if (world_ == 1 || params.empty()) return;
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) grads.push_back(p.grad().defined() ? p.grad().reshape(-1) : torch::zeros({p.numel()}, p.options()));
  std::vector<at::Tensor> flat{torch::cat(grads)};
  group_->pg->allreduce(flat)->wait();
  flat[0].div_(world_);
  std::int64_t offset = 0;
  for (const auto& p : params) {
    const std::int64_t n = p.numel();
    torch::Tensor g = flat[0].narrow(0, offset, n).view(p.sizes());
    if (p.grad().defined()) p.mutable_grad().copy_(g);
    else p.mutable_grad() = g.clone();
    offset += n;
  }
}

void DataParallel::broadcast(const std::vector<torch::Tensor>& tensors) {
  if (world_ == 1 || tensors.empty()) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (const auto& t : tensors) parts.push_back(t.detach().reshape(-1));
  std::vector<at::Tensor> flat{torch::cat(parts)};
  group_->pg->broadcast(flat)->wait();
  std::int64_t offset = 0;
  for (const auto& t : tensors) {
    t.detach().copy_(flat[0].narrow(0, offset, t.numel()).view(t.sizes()));
    offset += t.numel();
  }
}

void DataParallel::reduce_scatter(std::vector<torch::Tensor>& inputs, const torch::Tensor& output) {
  if (static_cast<int>(inputs.size()) != world_) throw InputError("reduce_scatter: one input per rank");
  if (world_ > 1) {
    // LibTorch 1.13's Gloo has no reduce_scatter (nor bfloat16): one reduce
    // to each rank moves the same bytes, and sums in the order an all-reduce
    // does, so the sharded run adds the ranks' gradients as the unsharded one.
    for (int r = 0; r < world_; ++r) {
      std::vector<at::Tensor> t{inputs[static_cast<std::size_t>(r)]};
      c10d::ReduceOptions opts;
      opts.rootRank = r;
      group_->pg->reduce(t, opts)->wait();
    }
  }
  output.copy_(inputs[static_cast<std::size_t>(rank_)]);
}

void DataParallel::all_gather(const torch::Tensor& input, std::vector<torch::Tensor>& outputs) {
  if (static_cast<int>(outputs.size()) != world_) throw InputError("all_gather: one output per rank");
  if (world_ == 1) {
    outputs[0].copy_(input);
    return;
  }
  std::vector<std::vector<at::Tensor>> out{std::vector<at::Tensor>(outputs.begin(), outputs.end())};
  std::vector<at::Tensor> in{input};
  group_->pg->allgather(out, in)->wait();
}

std::vector<double> DataParallel::sum(std::vector<double> values) {
  if (world_ == 1 || values.empty()) return values;
  std::vector<at::Tensor> t{torch::tensor(values, torch::kFloat64).to(group_->device)};
  group_->pg->allreduce(t)->wait();
  t[0] = t[0].cpu();
  const double* v = t[0].data_ptr<double>();
  return std::vector<double>(v, v + values.size());
}

}  // namespace steper::train
