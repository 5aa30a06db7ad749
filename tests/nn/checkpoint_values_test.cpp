// Checkpoint values, not only names and shapes: no inf/NaN is written or
// loaded, a dtype other than the model's is refused by name, and the
// optimiser state loads whole or not at all.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/safetensors.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "tests/datasets/dataset_test_util.h"

using namespace advcl;
using namespace advcl::nn;
using data::testing::read_file;
using data::testing::TempDir;

namespace {

using data::testing::error_of;

// A 3-input linear model after one SGD step with momentum (both parameters have a buffer).
struct Trained {
  Linear model{3, 2};
  Sgd sgd{model.named_parameters(), {0.1, 0.9, 0}};
  Trained() {
    model.init_parameters(3);
    Tensor x = Tensor::from_vector<float>({1, 2, 3, -1, 0, 2}, {2, 3});
    backward(ops::sum(model.forward(x)));
    sgd.step();
  }
};

// Rewrites `path` with `edit` applied to its tensors (the metadata kept).
template <class Edit>
void edit_file(const std::string& path, Edit edit) {
  SafetensorsFile f = load_safetensors(path);
  edit(f.tensors);
  save_safetensors(path, {f.tensors.begin(), f.tensors.end()}, f.metadata);
}

}  // namespace

TEST(CheckpointValues, NonFiniteStateIsNotWrittenAndThePreviousFileIsKept) {
  TempDir t;
  Trained a;
  const std::string path = t / "ck.safetensors";
  save_checkpoint(path, a.model, &a.sgd, {});
  const auto before = read_file(path);
  // A running statistic or a momentum buffer overflowing is as bad as a weight.
  Tensor buf = a.sgd.momentum_buffers().at("bias");  // (a handle: fills the optimiser's buffer)
  buf.fill_(std::nan(""));
  std::string m = error_of([&] { save_checkpoint(path, a.model, &a.sgd, {}); });
  EXPECT_NE(m.find("optim.momentum.bias holds non-finite values"), std::string::npos) << m;
  EXPECT_NE(m.find("not written"), std::string::npos) << m;
  EXPECT_EQ(read_file(path), before);
  a.model.weight.fill_(INFINITY);
  m = error_of([&] { save_checkpoint(path, a.model, nullptr, {}); });
  EXPECT_NE(m.find("weight holds non-finite values"), std::string::npos) << m;
  EXPECT_EQ(read_file(path), before);
}

TEST(CheckpointValues, NonFiniteWeightIsRefusedOnLoadNamingIt) {
  TempDir t;
  Trained a;
  const std::string path = t / "ck.safetensors";
  save_checkpoint(path, a.model, &a.sgd, {});
  edit_file(path, [](auto& ts) {
    std::vector<float> w = ts.at("weight").template to_vector<float>();
    w[4] = std::nanf("");
    ts["weight"] = Tensor::from_vector<float>(w, {2, 3});
  });
  Linear b(3, 2);
  std::string m = error_of([&] { load_checkpoint(path, b, nullptr); });
  EXPECT_NE(m.find("weight holds non-finite values (inf or NaN)"), std::string::npos) << m;
  EXPECT_NE(m.find(path), std::string::npos) << m;
}

TEST(CheckpointValues, AnotherDtypeThanTheModelsIsRefusedNamingBoth) {
  TempDir t;
  Trained a;
  const std::string path = t / "ck.safetensors";
  save_checkpoint(path, a.model, &a.sgd, {});
  edit_file(path, [](auto& ts) { ts["bias"] = ts.at("bias").to(DType::Float64); });
  Linear b(3, 2);
  std::string m = error_of([&] { load_checkpoint(path, b, nullptr); });
  EXPECT_NE(m.find("bias (float64 in the file, the model's bias is float32"), std::string::npos) << m;
  // From memory (golden data made in float64) the conversion stays.
  EXPECT_NO_THROW(load_state_dict(b, load_safetensors(path).tensors));
}

TEST(CheckpointValues, OptimizerStateLoadsWholeOrNotAtAll) {
  TempDir t;
  Trained a;
  const std::string path = t / "ck.safetensors";
  save_checkpoint(path, a.model, &a.sgd, {});
  EXPECT_EQ(load_safetensors(path).metadata.at("optim.momentum_buffers"), "2");
  {
    Trained b;
    EXPECT_NO_THROW(load_checkpoint(path, b.model, &b.sgd));
  }
  // One buffer lost: refused, naming the parameter without one.
  edit_file(path, [](auto& ts) { ts.erase("optim.momentum.bias"); });
  Trained b;
  std::string m = error_of([&] { load_checkpoint(path, b.model, &b.sgd); });
  EXPECT_NE(m.find("optimizer state is incomplete: 2 momentum buffers"), std::string::npos) << m;
  EXPECT_NE(m.find("without one: bias"), std::string::npos) << m;
  // All of them lost: refused too.
  edit_file(path, [](auto& ts) { ts.erase("optim.momentum.weight"); });
  m = error_of([&] { load_checkpoint(path, b.model, &b.sgd); });
  EXPECT_NE(m.find("optimizer state is incomplete"), std::string::npos) << m;
  // The weights alone (finetuning, export) never needed the buffers.
  LoadOptions weights_only;
  weights_only.optimizer_state = false;
  EXPECT_NO_THROW(load_checkpoint(path, b.model, &b.sgd, weights_only));
}

TEST(CheckpointValues, FileWithoutTheBufferCountNeedsAllBuffersOrNone) {
  TempDir t;
  Trained a;
  const std::string path = t / "ck.safetensors";
  save_checkpoint(path, a.model, &a.sgd, {});
  SafetensorsFile f = load_safetensors(path);
  f.metadata.erase("optim.momentum_buffers");  // as written before the count was recorded
  f.tensors.erase("optim.momentum.weight");
  save_safetensors(path, {f.tensors.begin(), f.tensors.end()}, f.metadata);
  Trained b;
  std::string m = error_of([&] { load_checkpoint(path, b.model, &b.sgd); });
  EXPECT_NE(m.find("1 of the 2 trained parameters have no momentum buffer"), std::string::npos) << m;
  f.tensors.erase("optim.momentum.bias");
  save_safetensors(path, {f.tensors.begin(), f.tensors.end()}, f.metadata);
  EXPECT_NO_THROW(load_checkpoint(path, b.model, &b.sgd));  // none: an optimiser that had not stepped
}
