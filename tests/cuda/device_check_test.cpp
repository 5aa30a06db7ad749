// Ops check that a CUDA tensor is on the calling thread's current device
// (engine/dispatch.h): kernels run on the current device, so a tensor of
// another one would fault, or be read through peer access, instead of
// failing with a message.
#include <gtest/gtest.h>

#include "cuda/device_scope_rule.h"
#include "cuda/runtime.h"
#include "engine/dispatch.h"
#include "engine/ops.h"

using namespace advcl;

namespace {
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST(DeviceCheck, MismatchNamesTheOpAndBothDevices) {
  std::string m = cuda_device_mismatch("conv2d", Device::cuda(1), 0);
  EXPECT_TRUE(contains(m, "conv2d: ")) << m;
  EXPECT_TRUE(contains(m, "the tensor is on cuda:1")) << m;
  EXPECT_TRUE(contains(m, "current device is cuda:0")) << m;
  EXPECT_TRUE(contains(m, "set_current_device(1)")) << m;
  EXPECT_EQ(cuda_device_mismatch("conv2d", Device::cuda(2), 2), "");
  EXPECT_EQ(cuda_device_mismatch("conv2d", Device::cpu(), 3), "");  // CPU tensors run anywhere
}

TEST(DeviceCheck, CpuTensorsTakeTheCpuBranchWithoutAskingCuda) {
  // In a build without CUDA, asking for the current device would throw.
  EXPECT_FALSE(on_cuda("add", Device::cpu()));
  if (!cuda_built()) {
    EXPECT_THROW(on_cuda("add", Device::cuda(0)), Error);
  }
}

// With a GPU: the current device's tensors pass, another index is refused
// before anything runs. With two GPUs: an op on a cuda:1 tensor while cuda:0
// is current fails with the check's message instead of faulting.
TEST(DeviceCheck, OpsRefuseATensorOfAnotherDevice) {
  if (!cuda_built()) GTEST_SKIP() << "built without CUDA";
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  cuda::set_current_device(0);
  EXPECT_EQ(cuda::current_device(), 0);
  EXPECT_TRUE(on_cuda("add", Device::cuda(0)));
  try {
    check_current_device("add", Device::cuda(1));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "cuda:1")) << e.what();
  }
  if (cuda::device_count() < 2) return;
  Tensor a = Tensor::ones({4}).to(Device::cuda(1));  // allocating and copying to cuda:1 is fine
  EXPECT_EQ(cuda::current_device(), 0);               // and leaves cuda:0 current
  try {
    ops::add(a, a);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "the tensor is on cuda:1 but the current device is cuda:0")) << e.what();
  }
  cuda::set_current_device(1);
  EXPECT_EQ(ops::add(a, a).to(Device::cpu()).to_vector<float>(), (std::vector<float>{2, 2, 2, 2}));
  cuda::set_current_device(0);
}

// A DeviceScope switches back only to a device that has a context: switching
// to one that nothing used would create a context there (on GPU 0, for every
// rank of a multi-GPU run that allocates on its own GPU).
TEST(DeviceCheck, ScopesSwitchBackOnlyToADeviceInUse) {
  EXPECT_EQ(cuda::device_after_scope(0, 3, true), 0);   // device 0 in use: back to it
  EXPECT_EQ(cuda::device_after_scope(0, 3, false), 3);  // device 0 unused: stay on 3
  EXPECT_EQ(cuda::device_after_scope(2, 2, false), 2);  // no switch at all
}
