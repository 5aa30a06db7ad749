// Encoding data-parallel (advcl features, advcl pseudo-labels --encoder
// under mpirun): each rank encodes its shard, and encode_all gathers the rows
// into data-set order, so every rank holds the features one process
// computes. 19 images in global batches of 5: unequal shards, and ranks
// with empty batches (or no images at all in the last global batch).
#include <gtest/gtest.h>

#include "advcl/pretrain/encode.h"
#include "datasets/batch_loader.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "mpi_test_util.h"
#include "tests/tiny_data.h"

using namespace advcl;

TEST(DataParallelFeatures, GatheredFeaturesEqualOneProcessInDatasetOrder) {
  dist::Communicator& comm = dist::world();
  dist::Communicator one;
  auto ds = test::tiny_images(19, 3, 3);
  nn::ResNet18 model(test::tiny_encoder());
  for (int64_t batch : {5, 64}) {  // 64: one global batch, each rank a part of it
    SCOPED_TRACE("batch " + std::to_string(batch));
    Tensor want = cli::encode_all(model, ds, batch, 0, one);
    Tensor got = cli::encode_all(model, ds, batch, 1, comm);
    ASSERT_EQ(shape_str(got.shape()), shape_str(want.shape()));
    EXPECT_EQ(want.size(0), 19);
    // Rows in data-set order: each image's row is its own, whichever rank encoded it.
    test::expect_state_near({{"features", got, nn::TensorKind::Buffer}}, {{"features", want, nn::TensorKind::Buffer}},
                            1e-6, 1e-5);
    // Row i is image i: encoding image 7 alone gives row 7.
    NoGradGuard no_grad;
    data::LoaderOptions lo;
    lo.batch_size = 1;
    lo.shuffle = false;
    lo.workers = 0;
    data::BatchLoader single(ds, std::make_shared<data::ToFloat>(), lo, {0, 7});
    data::Batch b;
    ASSERT_TRUE(single.next(b));
    test::expect_state_near({{"row7", ops::slice(got, 7, 8), nn::TensorKind::Buffer}},
                            {{"row7", model.features(b.images(), 0), nn::TensorKind::Buffer}}, 1e-6, 1e-5);
  }
}
