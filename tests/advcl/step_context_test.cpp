// The step context (advcl/step/step_context.h) does nothing on one process:
// gather returns its input, the scale is 1, logged values pass unchanged and
// backward is the plain backward pass, so a step given the one-process
// context computes what it computed before the context existed. (N ranks =
// one process is tests/mpi/.)
#include <gtest/gtest.h>

#include "advcl/step/step_context.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "nn/parallel/communicator.h"
#include "tests/golden_util.h"

using namespace advcl;

namespace {

Tensor param(uint32_t stream) {
  Tensor p = ops::rand_uniform({3, 4}, RngKey{9, 0, stream, 0}, -1, 1, DType::Float64);
  p.set_requires_grad(true);
  return p;
}

}  // namespace

TEST(StepContext, OneProcessIsTheIdentity) {
  method::StepContext& ctx = method::StepContext::one_process();
  EXPECT_FALSE(ctx.distributed());
  Tensor rows = ops::rand_uniform({5, 2}, RngKey{9, 1, 0, 0}, 0, 1, DType::Float32);
  Tensor gathered = ctx.gather(rows);
  EXPECT_EQ(gathered.raw_data(), rows.raw_data()) << "gather on one process must return its input's data, not a copy";
  EXPECT_EQ(ctx.local_scale(5), 1.0);
  EXPECT_EQ(ctx.local_scale(1), 1.0);
  method::StepValues values{{"loss", Tensor::full({}, 2.5, DType::Float32)}, {"acc", Tensor::full({}, 0.75, DType::Float64)}};
  method::StepValues same = ctx.global_means(values, 7);
  ASSERT_EQ(same.size(), 2u);
  EXPECT_EQ(same.at("loss").raw_data(), values.at("loss").raw_data());
  EXPECT_EQ(same.at("acc").raw_data(), values.at("acc").raw_data());
}

TEST(StepContext, BackwardIsThePlainBackwardOnOneProcess) {
  Tensor a = param(0), b = param(0);  // the same values
  Tensor x = ops::rand_uniform({4, 2}, RngKey{9, 2, 0, 0}, -1, 1, DType::Float64);
  advcl::backward(ops::sum(ops::mul(ops::matmul(a, x), ops::matmul(a, x))));
  method::StepContext::one_process().backward(ops::sum(ops::mul(ops::matmul(b, x), ops::matmul(b, x))));
  EXPECT_TRUE(testing_util::close("grad", b.grad(), a.grad(), {0, 0}));
}

TEST(StepContext, AWorldOfOneBuildsNoReducer) {
  // What the commands build: a context over the run's parameters and the
  // world; without mpirun the world has one rank and the context is the
  // one-process one (a plain backward, no buckets).
  ASSERT_FALSE(dist::world().distributed());
  Tensor p = param(1);
  method::StepContext ctx({{"p", p, nn::TensorKind::Parameter}}, dist::world());
  EXPECT_FALSE(ctx.distributed());
  Tensor rows = ops::rand_uniform({2, 2}, RngKey{9, 3, 0, 0}, 0, 1, DType::Float32);
  EXPECT_EQ(ctx.gather(rows).raw_data(), rows.raw_data());
  EXPECT_EQ(ctx.local_scale(3), 1.0);
  ctx.backward(ops::sum(ops::mul(p, p)));
  EXPECT_TRUE(testing_util::close("grad", p.grad(), ops::mul(p.detach(), 2.0), {0, 0}));
}
