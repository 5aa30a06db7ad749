#include <gtest/gtest.h>

#include "engine/tensor.h"

using namespace advcl;

TEST(Tensor, CreateFillAndRead) {
  Tensor t = Tensor::full({2, 3}, 1.5);
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.dim(), 2);
  EXPECT_EQ(t.size(-1), 3);
  for (float v : t.to_vector<float>()) EXPECT_EQ(v, 1.5f);
  Tensor z = Tensor::zeros({4}, DType::Int64);
  for (int64_t v : z.to_vector<int64_t>()) EXPECT_EQ(v, 0);
}

TEST(Tensor, CloneIsDeepViewIsShared) {
  Tensor a = Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2});
  Tensor c = a.clone();
  Tensor v = a.view({4});
  a.data<float>()[0] = 9;
  EXPECT_EQ(c.data<float>()[0], 1);
  EXPECT_EQ(v.data<float>()[0], 9);
  Tensor row = a.narrow0(1, 1);
  EXPECT_EQ(row.shape(), (Shape{1, 2}));
  EXPECT_EQ(row.data<float>()[0], 3);
}

TEST(Tensor, DtypeConversionsRoundTrip) {
  Tensor a = Tensor::from_vector<float>({-1.25f, 0.f, 3.75f, 255.f}, {4});
  EXPECT_EQ(a.to(DType::Float64).to_vector<double>(), (std::vector<double>{-1.25, 0, 3.75, 255}));
  EXPECT_EQ(a.to(DType::Int32).to_vector<int32_t>(), (std::vector<int32_t>{-1, 0, 3, 255}));
  EXPECT_EQ(a.to(DType::UInt8).to(DType::Float32).to_vector<float>()[3], 255.f);
  // bfloat16 keeps 8 significant bits: these values are exact.
  EXPECT_EQ(a.to(DType::BFloat16).to(DType::Float32).to_vector<float>(), a.to_vector<float>());
}

TEST(Tensor, BFloat16RoundsToNearestEven) {
  // 1 + 2^-8 lies exactly between two bfloat16 values (1 and 1 + 2^-7): ties go to even (1).
  EXPECT_EQ(static_cast<float>(BFloat16(1.0f + 1.0f / 256)), 1.0f);
  // 1 + 3 * 2^-8 lies between 1 + 2^-7 and 1 + 2^-6: tie goes to even mantissa (1 + 2^-6).
  EXPECT_EQ(static_cast<float>(BFloat16(1.0f + 3.0f / 256)), 1.0f + 1.0f / 64);
  EXPECT_EQ(static_cast<float>(BFloat16(1.0f + 1.1f / 256)), 1.0f + 1.0f / 128);
}

TEST(Tensor, MismatchErrorsNameOpAndShapes) {
  Tensor a = Tensor::zeros({2, 3});
  Tensor b = Tensor::zeros({3}, DType::Float64);
  try {
    check_same_kind("add", a, b);
    FAIL() << "no exception";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("add"), std::string::npos);
    EXPECT_NE(m.find("[2, 3]"), std::string::npos);
    EXPECT_NE(m.find("[3]"), std::string::npos);
  }
  EXPECT_THROW(a.data<double>(), Error);
  EXPECT_THROW(a.item(), Error);
  EXPECT_THROW(a.view({4}), Error);
}

TEST(Tensor, PrintsSmallTensors) {
  Tensor a = Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2});
  EXPECT_EQ(a.str(), "tensor([[1.0000, 2.0000],\n        [3.0000, 4.0000]], shape=[2, 2], dtype=float32, device=cpu)");
  Tensor i = Tensor::from_vector<int64_t>({7}, {});
  EXPECT_EQ(i.str(), "tensor(7, shape=[], dtype=int64, device=cpu)");
}

TEST(Tensor, CudaWithoutBackendIsAClearError) {
  if (cuda_built()) GTEST_SKIP() << "built with CUDA";
  try {
    Tensor::zeros({2}, DType::Float32, Device::cuda(0));
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("without CUDA"), std::string::npos);
  }
}

TEST(Device, Parse) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda:1"), Device::cuda(1));
  EXPECT_THROW(Device::parse("gpu"), Error);
  EXPECT_THROW(Device::parse("cuda:x"), Error);
}
