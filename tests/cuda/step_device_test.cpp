// On a GPU, the AdvCL and finetuning steps after the first allocate no device
// memory (the caching allocator serves every tensor from its cache) and make
// no host round trip, uploads included (data::upload is asynchronous).
// Skips without a GPU.
#include <gtest/gtest.h>

#include "advcl/finetune/finetune.h"
#include "advcl/pretrain/advcl_step.h"
#include "advcl/pretrain/contrastive_model.h"
#include "cuda/pinned_upload.h"
#include "cuda/runtime.h"
#include "datasets/batch_loader.h"
#include "engine/counters.h"
#include "engine/ops.h"
#include "tests/cuda/gpu_test_util.h"
#include "tests/tiny_data.h"

using namespace advcl;

namespace {

using gpu_test::kGpu;

// Host images and labels of step s (what the loader hands over).
Tensor host_images(int64_t n, int64_t channels, uint32_t s, uint32_t view) {
  return ops::rand_uniform({n, channels, 16, 16}, RngKey{3, view, s, 0}, 0, 1);
}
Tensor host_labels(int64_t n, int64_t classes, uint32_t s, uint32_t head) {
  return ops::rand_int({n}, RngKey{4, head, s, 0}, 0, classes);
}

}  // namespace

TEST(StepOnDevice, AdvclStepAfterTheFirstAllocatesNothingAndReadsNothing) {
  REQUIRE_GPU();
  cuda::set_current_device(0);
  method::ContrastiveModelOptions mo;
  mo.backbone.width = 8;
  mo.pseudo_classes = {2, 10};
  method::ContrastiveModel model(mo);
  model.to(kGpu);
  nn::Sgd sgd(model.named_parameters(), {0.1, 0.9, 1e-4});
  method::AdvclStepOptions opt;
  opt.radius = 4;
  auto step = [&](uint32_t s) {
    method::AdvclBatch b{data::upload(host_images(16, 3, s, 0), kGpu), data::upload(host_images(16, 3, s, 1), kGpu),
                         data::upload(host_images(16, 3, s, 2), kGpu), {}};
    b.pseudo = {data::upload(host_labels(16, 2, s, 0), kGpu), data::upload(host_labels(16, 10, s, 1), kGpu)};
    auto starts = method::advcl_attack_starts(b.x_org, opt, RngKey{1, 0, s, 0});
    return method::advcl_step(model, sgd, b, starts, opt);
  };
  step(0).loss.item();  // warm-up: the cache fills
  cuda::synchronize();
  const uint64_t allocs = cuda::memory_stats(0).raw_allocs;
  const size_t staging = cuda::pinned_staging_buffers();
  for (uint32_t s = 1; s <= 2; ++s) {
    const int64_t syncs = counters::host_syncs();
    method::AdvclStepResult r = step(s);
    EXPECT_EQ(counters::host_syncs(), syncs) << "step " << s;
    EXPECT_TRUE(std::isfinite(r.loss.item()));
  }
  // With ADVCL_CUDA_NO_CACHE=1 (the sanitizer's mode) every tensor is its own
  // raw allocation by design: only the cache makes a warm step allocate nothing.
  if (cuda::memory_stats(0).caching) {
    EXPECT_EQ(cuda::memory_stats(0).raw_allocs, allocs) << cuda::memory_summary(0);
  }
  EXPECT_EQ(cuda::pinned_staging_buffers(), staging);
}

TEST(StepOnDevice, FinetuneStepsAfterTheFirstAllocateNothingAndReadNothing) {
  REQUIRE_GPU();
  cuda::set_current_device(0);
  for (method::FinetuneMode mode : {method::FinetuneMode::Slf, method::FinetuneMode::Alf, method::FinetuneMode::Aff}) {
    SCOPED_TRACE(method::finetune_mode_name(mode));
    method::FinetuneModel model(std::make_unique<nn::ResNet18>(test::tiny_encoder()), 10, 7);
    model.to(kGpu);
    nn::Sgd sgd(mode == method::FinetuneMode::Aff ? model.named_parameters() : model.classifier.named_parameters(),
                {0.1, 0.9, 2e-4});
    method::FinetuneStepOptions opt;
    opt.mode = mode;
    auto step = [&](uint32_t s) {
      return method::finetune_step(model, sgd, data::upload(host_images(16, 1, s, 5), kGpu),
                                   data::upload(host_labels(16, 10, s, 6), kGpu), opt, RngKey{2, 0, s, 0});
    };
    method::read_values(step(0));
    cuda::synchronize();
    const uint64_t allocs = cuda::memory_stats(0).raw_allocs;
    for (uint32_t s = 1; s <= 2; ++s) {
      const int64_t syncs = counters::host_syncs();
      method::StepValues v = step(s);
      EXPECT_EQ(counters::host_syncs(), syncs) << "step " << s;
      method::read_values(v);
    }
    if (cuda::memory_stats(0).caching) {  // (see above: not under ADVCL_CUDA_NO_CACHE=1)
      EXPECT_EQ(cuda::memory_stats(0).raw_allocs, allocs) << cuda::memory_summary(0);
    }
  }
}
