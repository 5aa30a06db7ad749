#include "advcl/step/step_context.h"

#include "engine/autograd.h"
#include "engine/ops.h"
#include "nn/parallel/all_gather.h"
#include "nn/parallel/gradient_reducer.h"
#include "nn/parallel/gradient_sync.h"

namespace advcl::method {

StepContext::StepContext() = default;

StepContext::StepContext(const nn::StateDict& params, dist::Communicator& comm, int64_t bucket_bytes) {
  if (!comm.distributed()) return;
  comm_ = &comm;
  reducer_ = std::make_unique<dist::GradientReducer>(
      params, comm, nullptr, bucket_bytes > 0 ? bucket_bytes : dist::GradientReducer::kDefaultBucketBytes);
}

StepContext::~StepContext() = default;

StepContext& StepContext::one_process() {
  static StepContext single;
  return single;
}

Tensor StepContext::gather(const Tensor& rows) const {
  return comm_ ? dist::all_gather_rows(rows, *comm_) : rows;
}

double StepContext::local_scale(int64_t local_count) const {
  return comm_ ? dist::local_loss_scale(local_count, *comm_) : 1.0;
}

void StepContext::backward(const Tensor& loss) {
  if (reducer_)
    reducer_->backward(loss);
  else
    advcl::backward(loss);
}

StepValues StepContext::global_means(StepValues values, int64_t local_count) const {
  if (!comm_ || values.empty()) return values;
  NoGradGuard no_grad;
  const Device device = values.begin()->second.device();
  std::vector<Tensor> parts;
  for (auto& [name, v] : values)
    parts.push_back(ops::mul(v.to(DType::Float64).view({1}), static_cast<double>(local_count)));
  parts.push_back(Tensor::full({1}, static_cast<double>(local_count), DType::Float64, device));
  Tensor sums = ops::cat(parts);
  comm_->all_reduce(sums, dist::ReduceOp::Sum, "step values");
  const int64_t n = static_cast<int64_t>(values.size());
  Tensor count = ops::slice(sums, n, n + 1);
  int64_t i = 0;
  for (auto& [name, v] : values) {
    v = ops::div(ops::slice(sums, i, i + 1), count).view({});
    ++i;
  }
  return values;
}

}  // namespace advcl::method
