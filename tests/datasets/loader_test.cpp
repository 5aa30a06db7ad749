// The batch loader: epoch order, sharding, transforms, determinism across
// worker counts, resumable state, errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "datasets/batch_loader.h"
#include "datasets/epoch_order.h"
#include "datasets/transforms.h"
#include "tests/datasets/dataset_test_util.h"

namespace advcl::data {
namespace {

// n images of 1 x 6 x 6 whose pixels encode the index; label = index % 10.
std::shared_ptr<const ImageDataset> toy(int64_t n, int64_t c = 1, int64_t side = 6) {
  auto ds = std::make_shared<ImageDataset>();
  ds->name = "toy";
  ds->n = n;
  ds->channels = c;
  ds->height = ds->width = side;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < c * side * side; ++j) ds->images.push_back(testing::pattern(i, j));
    ds->labels.push_back(i % 10);
  }
  ds->num_classes = 10;
  for (int k = 0; k < 10; ++k) ds->class_names.push_back(std::to_string(k));
  return ds;
}

struct Epoch {
  std::vector<int64_t> indices, labels;
  std::vector<std::vector<float>> views;  // concatenated per view
  std::vector<int64_t> sizes;
};

Epoch run_epoch(BatchLoader& loader) {
  Epoch e;
  Batch b;
  int64_t expect = loader.state().batch;
  while (loader.next(b)) {
    EXPECT_EQ(b.index, expect++);
    auto idx = b.indices.to_vector<int64_t>();
    auto lab = b.labels.to_vector<int64_t>();
    e.indices.insert(e.indices.end(), idx.begin(), idx.end());
    e.labels.insert(e.labels.end(), lab.begin(), lab.end());
    e.sizes.push_back(b.size());
    e.views.resize(b.views.size());
    for (size_t v = 0; v < b.views.size(); ++v) {
      auto x = b.views[v].to_vector<float>();
      e.views[v].insert(e.views[v].end(), x.begin(), x.end());
    }
  }
  return e;
}

std::shared_ptr<const SampleTransform> crop_flip() { return std::make_shared<CropFlip>(6, 2); }

LoaderOptions opts(int64_t batch, int workers, int prefetch = 2, uint64_t seed = 7) {
  LoaderOptions o;
  o.batch_size = batch;
  o.workers = workers;
  o.prefetch = prefetch;
  o.seed = seed;
  return o;
}

TEST(LoaderOrder, EpochOrderIsAFixedPermutation) {
  auto a = epoch_order(1000, 42, 3, true);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(1000);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
  EXPECT_NE(a, iota);
  EXPECT_EQ(a, epoch_order(1000, 42, 3, true));
  EXPECT_NE(a, epoch_order(1000, 42, 4, true));
  EXPECT_NE(a, epoch_order(1000, 43, 3, true));
  EXPECT_EQ(epoch_order(1000, 42, 3, false), iota);
  // Pinned: the Fisher-Yates over RngKey{seed, Shuffle, epoch}.below(i, i+1).
  std::vector<int64_t> manual(10);
  std::iota(manual.begin(), manual.end(), 0);
  RngKey key{5, static_cast<uint32_t>(RngPurpose::Shuffle), 2, 0};
  for (int64_t i = 9; i > 0; --i) std::swap(manual[i], manual[key.below(i, static_cast<uint32_t>(i + 1))]);
  EXPECT_EQ(epoch_order(10, 5, 2, true), manual);
}

TEST(LoaderOrder, SameBatchesForAnyWorkerCountAndPrefetch) {
  auto ds = toy(103);
  BatchLoader serial(ds, crop_flip(), opts(8, 0));
  Epoch ref = run_epoch(serial);
  ASSERT_EQ(ref.indices.size(), 103u);
  EXPECT_EQ(ref.indices, epoch_order(103, 7, 0, true));
  for (int64_t k = 0; k < 103; ++k) EXPECT_EQ(ref.labels[k], ref.indices[k] % 10);
  for (auto [workers, prefetch] : {std::pair<int, int>{1, 1}, {3, 2}, {4, 8}}) {
    BatchLoader par(ds, crop_flip(), opts(8, workers, prefetch));
    Epoch e = run_epoch(par);
    EXPECT_EQ(e.indices, ref.indices) << workers << " workers";
    EXPECT_EQ(e.views, ref.views) << workers << " workers";  // augmentation too, bit for bit
  }
  // The next epoch: another order and other augmentations.
  Epoch second = run_epoch(serial);
  EXPECT_EQ(second.indices, epoch_order(103, 7, 1, true));
  EXPECT_NE(second.indices, ref.indices);
}

TEST(LoaderOrder, AugmentationDependsOnSampleNotOnBatching) {
  auto ds = toy(40);
  BatchLoader a(ds, crop_flip(), opts(4, 2));
  BatchLoader b(ds, crop_flip(), opts(16, 0));
  Epoch ea = run_epoch(a), eb = run_epoch(b);
  ASSERT_EQ(ea.indices, eb.indices);
  EXPECT_EQ(ea.views, eb.views);
  LoaderOptions other = opts(4, 2);
  other.seed = 8;
  BatchLoader c(ds, crop_flip(), other);
  EXPECT_NE(run_epoch(c).indices, ea.indices);
}

TEST(LoaderShard, RanksAreDisjointAndCoverTheEpoch) {
  for (int64_t n : {96, 103, 98, 5}) {
    for (int64_t world : {1, 2, 3, 4}) {
      auto ds = toy(n);
      std::vector<int64_t> all;
      int64_t nb = -1;
      std::vector<std::vector<int64_t>> per_rank_sizes;
      for (int64_t r = 0; r < world; ++r) {
        LoaderOptions o = opts(8, r % 2 ? 2 : 0);
        o.rank = r;
        o.world = world;
        BatchLoader l(ds, std::make_shared<ToFloat>(), o);
        if (nb < 0) nb = l.batches_per_epoch();
        EXPECT_EQ(l.batches_per_epoch(), nb);  // every rank takes the same number of steps
        Epoch e = run_epoch(l);
        EXPECT_EQ(static_cast<int64_t>(e.sizes.size()), nb);
        per_rank_sizes.push_back(e.sizes);
        all.insert(all.end(), e.indices.begin(), e.indices.end());
      }
      std::set<int64_t> uniq(all.begin(), all.end());
      EXPECT_EQ(uniq.size(), all.size()) << "overlap, n=" << n << " world=" << world;
      EXPECT_EQ(static_cast<int64_t>(all.size()), n) << "n=" << n << " world=" << world;
      // The last batch is split as evenly as possible.
      int64_t lo = INT64_MAX, hi = 0;
      for (const auto& s : per_rank_sizes) {
        lo = std::min(lo, s.back());
        hi = std::max(hi, s.back());
      }
      EXPECT_LE(hi - lo, 1) << "n=" << n << " world=" << world;
    }
  }
}

TEST(LoaderShard, GlobalBatchIsTheRanksSlicesInOrder) {
  const int64_t n = 50, world = 3, batch = 4;
  auto order = epoch_order(n, 7, 0, true);
  ShardOptions so{batch, 0, world, false};
  for (int64_t b = 0; b < batches_per_epoch(n, so); ++b) {
    std::vector<int64_t> global;
    for (int64_t r = 0; r < world; ++r) {
      so.rank = r;
      int64_t begin, end;
      batch_range(n, so, b, begin, end);
      for (int64_t k = begin; k < end; ++k) global.push_back(order[k]);
    }
    std::vector<int64_t> want(order.begin() + b * batch * world,
                              order.begin() + std::min(n, (b + 1) * batch * world));
    EXPECT_EQ(global, want) << "batch " << b;
  }
}

TEST(LoaderShard, DropLast) {
  auto ds = toy(103);
  LoaderOptions o = opts(8, 2);
  o.drop_last = true;
  o.world = 2;
  o.rank = 1;
  BatchLoader l(ds, std::make_shared<ToFloat>(), o);
  EXPECT_EQ(l.batches_per_epoch(), 6);  // 103 / 16
  Epoch e = run_epoch(l);
  EXPECT_EQ(e.sizes, std::vector<int64_t>(6, 8));
  auto order = epoch_order(103, 7, 0, true);
  EXPECT_EQ(e.indices[0], order[8]);  // rank 1 takes the second half of global batch 0
  o.batch_size = 100;
  EXPECT_ERROR_MENTIONS(BatchLoader(ds, std::make_shared<ToFloat>(), o), "toy", "drop_last");
}

TEST(LoaderTransforms, CropAndFlipOnAKnownImage) {
  // 1 x 3 x 3 image with values 1..9; padding 1 makes it 5 x 5.
  std::vector<uint8_t> px = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  ImageU8 img{px.data(), 1, 3, 3};
  std::vector<float> out(9);
  crop_padded_to_float(img, 1, 0, 0, 3, false, out.data());  // top-left window of the padded image
  std::vector<float> want = {0, 0, 0, 0, 1, 2, 0, 4, 5};
  for (auto& w : want) w /= 255.0f;
  EXPECT_EQ(out, want);
  crop_padded_to_float(img, 1, 2, 1, 3, true, out.data());  // bottom-middle window, mirrored
  want = {6, 5, 4, 9, 8, 7, 0, 0, 0};
  for (auto& w : want) w /= 255.0f;
  EXPECT_EQ(out, want);

  // CropFlip draws top, left, then the flip, from the sample's stream.
  RngKey key{11, static_cast<uint32_t>(RngPurpose::Augment), 4, 17};
  SampleRng rng(key);
  float* o[1] = {out.data()};
  CropFlip(3, 1, 0.5).apply(img, rng, o);
  int64_t top = key.below(0, 3), left = key.below(1, 3);
  bool flip = key.uniform_double(2) < 0.5;
  std::vector<float> expect(9);
  crop_padded_to_float(img, 1, top, left, 3, flip, expect.data());
  EXPECT_EQ(out, expect);

  // Over many samples every offset and both flips occur.
  std::set<std::tuple<int64_t, int64_t, bool>> seen;
  for (uint32_t s = 0; s < 400; ++s) {
    RngKey k{11, static_cast<uint32_t>(RngPurpose::Augment), 0, s};
    seen.insert({k.below(0, 3), k.below(1, 3), k.uniform_double(2) < 0.5});
  }
  EXPECT_EQ(seen.size(), 18u);
  EXPECT_ERROR_MENTIONS(CropFlip(8, 1).view_shape(0, 1, 3, 3), "CropFlip", "larger");
}

TEST(LoaderTransforms, MultiViewPipelines) {
  auto ds = toy(20, 3);
  auto mv = std::make_shared<MultiView>(
      std::vector<std::shared_ptr<const SampleTransform>>{crop_flip(), crop_flip(), std::make_shared<ToFloat>()});
  BatchLoader l(ds, mv, opts(5, 2));
  Batch b;
  ASSERT_TRUE(l.next(b));
  ASSERT_EQ(b.views.size(), 3u);
  EXPECT_EQ(b.views[0].shape(), (Shape{5, 3, 6, 6}));
  EXPECT_EQ(b.views[0].dtype(), DType::Float32);
  EXPECT_EQ(b.labels.dtype(), DType::Int64);
  EXPECT_EQ(b.indices.shape(), (Shape{5}));
  auto plain = b.views[2].to_vector<float>();
  auto idx = b.indices.to_vector<int64_t>();
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 108; ++j)
      ASSERT_EQ(plain[i * 108 + j], ds->image(idx[i])[j] / 255.0f);
  // The two augmented views draw from different streams.
  EXPECT_NE(b.views[0].to_vector<float>(), b.views[1].to_vector<float>());
  for (float v : b.views[0].to_vector<float>()) ASSERT_TRUE(v >= 0.0f && v <= 1.0f);
}

TEST(LoaderResume, StateRoundTripsMidEpochAndAcrossEpochs) {
  auto ds = toy(45);
  BatchLoader a(ds, crop_flip(), opts(4, 3));
  EXPECT_EQ(a.batches_per_epoch(), 12);
  EXPECT_EQ(a.state(), (LoaderState{0, 0}));
  Batch b;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(a.next(b));
  LoaderState saved = a.state();
  EXPECT_EQ(saved, (LoaderState{0, 5}));
  Epoch rest = run_epoch(a);  // batches 5..11
  EXPECT_EQ(rest.sizes.size(), 7u);
  EXPECT_EQ(a.state(), (LoaderState{1, 0}));  // an epoch end moves to the next epoch
  Epoch next_epoch = run_epoch(a);

  BatchLoader r(ds, crop_flip(), opts(4, 1), saved);  // a fresh loader resumed from the checkpoint
  Epoch r_rest = run_epoch(r);
  EXPECT_EQ(r_rest.indices, rest.indices);
  EXPECT_EQ(r_rest.views, rest.views);
  EXPECT_EQ(run_epoch(r).indices, next_epoch.indices);

  BatchLoader s(ds, crop_flip(), opts(4, 2));
  s.set_state({1, 0});
  EXPECT_EQ(run_epoch(s).views, next_epoch.views);
  s.set_state({0, 12});  // saved right at the end of epoch 0
  EXPECT_EQ(s.state(), (LoaderState{1, 0}));
  EXPECT_ERROR_MENTIONS(s.set_state({0, 13}), "resume", "batch 13");
}

class Throwing : public SampleTransform {
 public:
  Shape view_shape(int64_t, int64_t c, int64_t h, int64_t w) const override { return {c, h, w}; }
  void apply(const ImageU8&, SampleRng& rng, float* const*) const override {
    if (rng.key().sample == 3) fail("Throwing: sample 3 is bad");
  }
};

TEST(LoaderErrors, WorkerErrorsReachTheCaller) {
  auto ds = toy(8);
  LoaderOptions o = opts(8, 2);
  o.shuffle = false;
  BatchLoader l(ds, std::make_shared<Throwing>(), o);
  Batch b;
  EXPECT_ERROR_MENTIONS(l.next(b), "sample 3 is bad");
  EXPECT_ERROR_MENTIONS(BatchLoader(ds, crop_flip(), opts(0, 1)), "--batch-size");
  LoaderOptions bad = opts(4, 1);
  bad.rank = 2;
  bad.world = 2;
  EXPECT_ERROR_MENTIONS(BatchLoader(ds, crop_flip(), bad), "rank 2");
  EXPECT_ERROR_MENTIONS(BatchLoader(ds, crop_flip(), opts(4, -1)), "--workers");
  EXPECT_ERROR_MENTIONS(BatchLoader(ds, crop_flip(), opts(4, 1, 0)), "--prefetch");
  BatchLoader ok(ds, crop_flip(), opts(4, 1));
  EXPECT_NE(ok.describe().find("8 images, batch 4, 2 batches/epoch"), std::string::npos) << ok.describe();
}

}  // namespace
}  // namespace advcl::data
