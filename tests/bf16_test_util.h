// What the bf16 tests share: whether bf16 autocast can run on this CPU.
#pragma once
#include <gtest/gtest.h>

#include <exception>
#include <string>

#include "engine/autocast.h"
#include "engine/cpu_features.h"
#include "engine/ops.h"

namespace advcl::testing_util {

// Why bf16 cannot run here ("" when it can). The engine takes autocast on any
// CPU oneDNN has bf16 primitives for (native, or emulated on avx512_core); on
// one without (avx2), the primitive cannot be created and the op throws. Only
// a CPU without native bf16 may skip: on one with it, a throw is a failure.
inline std::string bf16_refused() {
  if (cpu::bf16_support().native()) return "";
  try {
    autocast::AutocastGuard on(true);
    ops::conv2d(Tensor::zeros({1, 1, 3, 3}, DType::Float32), Tensor::zeros({1, 1, 1, 1}, DType::Float32));
    return "";
  } catch (const std::exception& e) {
    return cpu::bf16_support().missing() + "; the bf16 convolution refused: " + e.what();
  }
}

}  // namespace advcl::testing_util

// In a test body: skips, saying why, where bf16 autocast cannot run.
#define SKIP_WITHOUT_BF16()                                                       \
  do {                                                                            \
    const std::string why = ::advcl::testing_util::bf16_refused();                \
    if (!why.empty()) GTEST_SKIP() << "bf16 autocast cannot run here: " << why;   \
  } while (0)
