// Module basics: state-dict order and kinds, train/eval reaching every layer,
// zero_grad, dtype conversion, the finetuning classifier's names.
#include <gtest/gtest.h>

#include "nn/layers.h"
#include "nn/resnet.h"
#include "tests/nn/nn_test_util.h"

using namespace advcl;
using namespace advcl::nn;

TEST(NnModule, OrderKindsAndModes) {
  ResNetOptions o;
  o.width = 2;
  o.num_bn_sets = 2;
  ResNet18 m(o);
  StateDict s = m.state_dict();
  EXPECT_EQ(s[0].name, "conv1.weight");
  EXPECT_EQ(s[1].name, "bn1.bn_list.0.weight");
  EXPECT_EQ(s[3].name, "bn1.bn_list.0.running_mean");
  EXPECT_EQ(s[3].kind, TensorKind::Buffer);
  EXPECT_EQ(s.back().name, "layer4.1.bn2.bn_list.1.num_batches_tracked");
  EXPECT_TRUE(m.blocks[3]->bn2.is_training());
  m.eval();
  EXPECT_FALSE(m.blocks[3]->bn2.is_training());
  EXPECT_FALSE(m.blocks[7]->bn2.set(1).is_training());
  m.train();
  EXPECT_TRUE(m.blocks[7]->bn2.set(1).is_training());
  for (const NamedTensor& p : m.named_parameters()) EXPECT_TRUE(p.tensor.requires_grad()) << p.name;
}

TEST(NnModule, ToDtypeKeepsHandlesAndCounters) {
  Linear l(3, 2);
  Tensor handle = l.weight;
  l.to(DType::Float64);
  EXPECT_EQ(handle.dtype(), DType::Float64);
  EXPECT_EQ(l.state_dict()[0].tensor.dtype(), DType::Float64);
  BatchNorm bn(2);
  bn.to(DType::Float64);
  EXPECT_EQ(bn.set(0).num_batches_tracked.dtype(), DType::Int64);
  EXPECT_EQ(bn.set(0).running_var.dtype(), DType::Float64);
}

TEST(NnModule, ZeroGradDropsGradients) {
  Linear l(3, 2);
  Tensor w = l.weight;
  w.set_grad(Tensor::ones({2, 3}));
  l.zero_grad();
  EXPECT_FALSE(l.weight.grad().defined());
}

TEST(NnModule, LinearClassifierNames) {
  LinearClassifier c(512, 10, 0);
  StateDict s = c.state_dict();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].name, "fc.weight");
  EXPECT_EQ(s[1].name, "fc.bias");
  Tensor y = c.forward(Tensor::zeros({4, 512}));
  EXPECT_EQ(shape_str(y.shape()), shape_str({4, 10}));
}
