// The projection head (nn/projection_head.h): nn.Sequential's names, unit
// rows, and one joint call of several views equal to a call per view (each
// view its own batch statistics in the head's one BN set).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "nn/projection_head.h"
#include "tests/nn/nn_test_util.h"

using namespace advcl;
using namespace advcl::nn;

TEST(ProjectionHead, SequentialNames) {
  ProjectionHead h(6, 4, {});
  std::vector<std::string> names;
  for (const NamedTensor& t : h.state_dict()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                             "1.running_var", "1.num_batches_tracked", "3.weight", "3.bias"}));
  EXPECT_EQ(shape_str(h.fc3.weight.shape()), shape_str({4, 6}));
}

TEST(ProjectionHead, UnitRowsAndPerViewStatistics) {
  ProjectionHead joint(6, 4, {}), separate(6, 4, {});
  for (ProjectionHead* h : {&joint, &separate}) {
    h->to(DType::Float64);
    h->init_parameters(1);
  }
  Tensor x = nn_test::rand_tensor({8, 6}, 7);
  Tensor y = joint.forward(x, 2);
  std::vector<double> v = y.to_vector<double>();
  for (int i = 0; i < 8; ++i) {
    double n = 0;
    for (int j = 0; j < 4; ++j) n += v[i * 4 + j] * v[i * 4 + j];
    EXPECT_NEAR(n, 1, 1e-12);
  }
  Tensor want = ops::cat({separate.forward(x.narrow0(0, 4), 1), separate.forward(x.narrow0(4, 4), 1)});
  EXPECT_TRUE(testing_util::close("per view", y, want, {1e-12, 1e-13}));
  // The same running statistics, updated once per view.
  StateDict a = joint.state_dict(), b = separate.state_dict();
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(testing_util::close(a[i].name, a[i].tensor, b[i].tensor, {1e-12, 1e-13}));
}
