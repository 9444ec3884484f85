// CUDA graph capture and replay for rl (crates/rl-model/src/cuda_graph.rs): a thin C ABI over
// libtorch's at::cuda::CUDAGraph. Work launched by tch between capture_begin and capture_end
// (on the side stream this installs) is recorded once and replayed with one launch. Errors
// never cross the ABI as exceptions: calls return nonzero and rl_cuda_graph_last_error says why.

#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <exception>
#include <optional>
#include <string>

namespace {

struct Graph {
  at::cuda::CUDAGraph graph;
  std::optional<c10::cuda::CUDAStreamGuard> stream;
};

thread_local std::string last_error;

int fail(const char* what) {
  last_error = what;
  return 1;
}

}  // namespace

extern "C" {

const char* rl_cuda_graph_last_error() { return last_error.c_str(); }

// A fresh memory pool id that several graphs can share (*first, *second).
int rl_cuda_graph_pool(unsigned long long* first, unsigned long long* second) {
  try {
    auto pool = at::cuda::graph_pool_handle();
    *first = pool.first;
    *second = pool.second;
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

void* rl_cuda_graph_new() {
  try {
    return new Graph();
  } catch (const std::exception& e) {
    fail(e.what());
    return nullptr;
  }
}

// Switches this thread to a side stream of `device` and starts capturing into pool (first, second).
int rl_cuda_graph_begin(void* handle, int device, unsigned long long first, unsigned long long second) {
  try {
    auto* g = static_cast<Graph*>(handle);
    g->stream.emplace(c10::cuda::getStreamFromPool(false, static_cast<c10::DeviceIndex>(device)));
    g->graph.capture_begin({first, second}, cudaStreamCaptureModeThreadLocal);
    return 0;
  } catch (const std::exception& e) {
    static_cast<Graph*>(handle)->stream.reset();
    return fail(e.what());
  }
}

// Ends the capture (instantiating the graph) and restores the previous stream.
int rl_cuda_graph_end(void* handle) {
  auto* g = static_cast<Graph*>(handle);
  try {
    g->graph.capture_end();
    g->stream.reset();
    return 0;
  } catch (const std::exception& e) {
    g->stream.reset();
    return fail(e.what());
  }
}

// Launches the recorded work on the current stream.
int rl_cuda_graph_replay(void* handle) {
  try {
    static_cast<Graph*>(handle)->graph.replay();
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

void rl_cuda_graph_free(void* handle) { delete static_cast<Graph*>(handle); }

}  // extern "C"
