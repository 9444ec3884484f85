// One AdamW step over many parameters in a single pass per parameter, through ATen's fused kernel
// (at::_fused_adamw_, the kernel behind torch.optim.AdamW(fused=True)) for rl's AdamW
// (crates/rl-learner/src/optimizer/fused.rs). The step is memory-bound: the kernel reads and
// writes each parameter, gradient and moment once, where separate tensor operations make about
// eight passes. Tensors arrive as the at::Tensor pointers that tch's handles hold. Errors never
// cross the ABI as exceptions: the call returns nonzero and rl_fused_adamw_last_error says why.

#include <ATen/ATen.h>

#include <cstddef>
#include <exception>
#include <string>
#include <vector>

namespace {

thread_local std::string last_error;

std::vector<at::Tensor> gather(at::Tensor* const* tensors, std::size_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(*tensors[i]);
  return out;
}

}  // namespace

extern "C" {

const char* rl_fused_adamw_last_error() { return last_error.c_str(); }

// params, grads, exp_avgs, exp_avg_sqs: n tensors each, on one device, of one dtype; `step` is the
// step being taken (1 for the first), after which the bias corrections are computed.
int rl_fused_adamw(at::Tensor* const* params, at::Tensor* const* grads, at::Tensor* const* exp_avgs,
                   at::Tensor* const* exp_avg_sqs, std::size_t n, double step, double lr, double beta1,
                   double beta2, double weight_decay, double eps) {
  try {
    if (n == 0) return 0;
    auto p = gather(params, n);
    auto g = gather(grads, n);
    auto m = gather(exp_avgs, n);
    auto v = gather(exp_avg_sqs, n);
    auto count = at::full({}, step, p[0].options().dtype(at::kFloat));
    std::vector<at::Tensor> steps(n, count);
    at::_fused_adamw_(p, g, m, v, {}, steps, lr, beta1, beta2, weight_decay, eps, /*amsgrad=*/false,
                      /*maximize=*/false);
    return 0;
  } catch (const std::exception& e) {
    last_error = e.what();
    return 1;
  }
}

}  // extern "C"
