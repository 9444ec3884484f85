// The learner group's collectives through libtorch's own c10d: a TCPStore where the ranks meet
// (rank 0 serves it), and a ProcessGroupGloo (CPU tensors) or ProcessGroupNCCL (CUDA tensors,
// in builds with RL_NCCL) over it. Tensors arrive as the at::Tensor pointers that tch's handles
// hold. Errors never cross the ABI as exceptions: a call returns null or nonzero and
// rl_group_last_error says why.

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef RL_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstddef>
#include <exception>
#include <string>
#include <vector>

namespace {

thread_local std::string last_error;

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
};

std::vector<at::Tensor> gather(at::Tensor* const* tensors, std::size_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(*tensors[i]);
  return out;
}

template <typename F>
int guarded(F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    last_error = e.what();
    return 1;
  }
}

}  // namespace

extern "C" {

const char* rl_group_last_error() { return last_error.c_str(); }

// Whether this build has the NCCL backend.
int rl_group_has_nccl() {
#ifdef RL_NCCL
  return 1;
#else
  return 0;
#endif
}

// Joins the group of `world` ranks that meets at host:port as `rank`, over Gloo (`nccl` 0) or
// NCCL (`nccl` 1). Rank 0 serves the store there unless a launcher's agent already does
// (`agent_store`). Null on failure.
void* rl_group_new(const char* host, int port, int rank, int world, long timeout_ms, int nccl,
                   int agent_store) {
  try {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(port);
    options.isServer = rank == 0 && !agent_store;
    options.numWorkers = world;
    options.waitWorkers = false;
    options.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(host), options);
    auto group = new Group{store, {}};
    if (nccl) {
#ifdef RL_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      group->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, opts);
#else
      delete group;
      last_error = "this build of rl has no NCCL (nccl.h and the CUDA headers were not found)";
      return nullptr;
#endif
    } else {
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      group->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, opts);
    }
    return group;
  } catch (const std::exception& e) {
    last_error = e.what();
    return nullptr;
  }
}

void rl_group_free(void* group) { delete static_cast<Group*>(group); }

// Sums the `n` tensors elementwise over the ranks, in place.
int rl_group_all_reduce_sum(void* group, at::Tensor* const* tensors, std::size_t n) {
  return guarded([&] {
    auto ts = gather(tensors, n);
    static_cast<Group*>(group)->backend->allreduce(ts)->wait();
  });
}

// Copies rank `root`'s `n` tensors into every rank's, in place.
int rl_group_broadcast(void* group, at::Tensor* const* tensors, std::size_t n, int root) {
  return guarded([&] {
    auto ts = gather(tensors, n);
    c10d::BroadcastOptions options;
    options.rootRank = root;
    static_cast<Group*>(group)->backend->broadcast(ts, options)->wait();
  });
}

// Returns once every rank has called it.
int rl_group_barrier(void* group) {
  return guarded([&] { static_cast<Group*>(group)->backend->barrier()->wait(); });
}

}  // extern "C"
