// The one seam through which data parallelism enters a training step.
//
// Under mpirun each rank holds a shard of the global batch and runs the same
// step; for N ranks to compute what one process computes on the whole batch,
// a step needs four things, and only these (docs/distributed.md):
//
//   gather(rows)        features of every rank, in rank order, so that a
//                       contrastive loss's denominator runs over the global
//                       batch (a differentiable all-gather);
//   local_scale(n)      the factor that turns a mean over this rank's n
//                       images into its share of the global mean, so that
//                       averaged gradients are the whole batch's;
//   backward(loss)      the backward pass, with the gradients averaged over
//                       the ranks in buckets while it runs;
//   global_means(v, n)  the logged values (means over this rank's n images)
//                       turned into means over the global batch.
//
// A StepContext is built once per run, next to the model and the optimiser,
// and handed to every step (AdvCL, SimCLR, ACL, the finetuning protocols).
// On one process each of the four is the identity or a plain backward, and
// no communicator is touched: the single-process step and the data-parallel
// step are the same code.
#pragma once
#include <cstdint>
#include <memory>

#include "advcl/step/step_values.h"
#include "engine/tensor.h"
#include "nn/module.h"
#include "nn/parallel/communicator.h"

namespace advcl::dist {
class GradientReducer;
}

namespace advcl::method {

class StepContext {
 public:
  // One process: gather and the scale are identities, backward is engine
  // backward(), the values are already global.
  StepContext();
  // Data parallel over `comm` when it spans several ranks (otherwise the same
  // as the one-process context): `params` are the parameters the steps train
  // (their gradients are averaged; one bucket plan for the whole run;
  // `bucket_bytes` 0: the reducer's default bucket size).
  StepContext(const nn::StateDict& params, dist::Communicator& comm, int64_t bucket_bytes = 0);
  ~StepContext();
  StepContext(const StepContext&) = delete;
  StepContext& operator=(const StepContext&) = delete;

  // The context of a single process, shared (it holds no state): the
  // default of every step function, so tests and tools call steps without one.
  static StepContext& one_process();

  bool distributed() const { return comm_ != nullptr; }

  Tensor gather(const Tensor& rows) const;
  double local_scale(int64_t local_count) const;
  void backward(const Tensor& loss);
  // Means over this rank's images -> means over the global batch: every value
  // times this rank's count, summed over the ranks, over the global count, in
  // one float64 all-reduce (map order is the same on every rank). Give it only
  // local means: a value that is already global (a loss over the gathered
  // batch) is kept as it is by the step.
  StepValues global_means(StepValues values, int64_t local_count) const;

 private:
  dist::Communicator* comm_ = nullptr;             // null: one process
  std::unique_ptr<dist::GradientReducer> reducer_;  // built once, reused by every step
};

}  // namespace advcl::method
