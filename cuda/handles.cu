#include "cuda/handles.cuh"

#include <vector>

#include "cuda/launch.cuh"
#include "cuda/runtime.h"
#include "cuda/settings.h"

namespace advcl::cuda {

namespace {

// Handles of this thread, by device. Never destroyed: destroying them at
// thread or process exit can run after the CUDA runtime has shut down.
struct ThreadHandles {
  std::vector<cublasHandle_t> cublas;
  std::vector<cudnnHandle_t> cudnn;
};
thread_local ThreadHandles t_handles;

}  // namespace

cublasHandle_t cublas_handle() {
  int d = current_device();
  auto& v = t_handles.cublas;
  if (static_cast<int>(v.size()) <= d) v.resize(d + 1, nullptr);
  if (!v[d]) ADVCL_CUBLAS_CHECK("cublas_handle", cublasCreate(&v[d]));
  // TF32 tensor-op math for float32 when allowed (cuda/settings.h: the
  // default), full FP32 otherwise; set on every fetch since the setting may
  // change between calls.
  ADVCL_CUBLAS_CHECK("cublas_handle",
                     cublasSetMathMode(v[d], allow_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  ADVCL_CUBLAS_CHECK("cublas_handle", cublasSetStream(v[d], stream()));
  return v[d];
}

cudnnHandle_t cudnn_handle() {
  int d = current_device();
  auto& v = t_handles.cudnn;
  if (static_cast<int>(v.size()) <= d) v.resize(d + 1, nullptr);
  if (!v[d]) ADVCL_CUDNN_CHECK("cudnn_handle", cudnnCreate(&v[d]));
  ADVCL_CUDNN_CHECK("cudnn_handle", cudnnSetStream(v[d], stream()));
  return v[d];
}

const char* cufft_error_name(cufftResult r) {
  switch (r) {
    case CUFFT_SUCCESS: return "CUFFT_SUCCESS";
    case CUFFT_INVALID_PLAN: return "CUFFT_INVALID_PLAN";
    case CUFFT_ALLOC_FAILED: return "CUFFT_ALLOC_FAILED (out of memory)";
    case CUFFT_INVALID_VALUE: return "CUFFT_INVALID_VALUE";
    case CUFFT_INTERNAL_ERROR: return "CUFFT_INTERNAL_ERROR";
    case CUFFT_EXEC_FAILED: return "CUFFT_EXEC_FAILED";
    case CUFFT_SETUP_FAILED: return "CUFFT_SETUP_FAILED";
    case CUFFT_INVALID_SIZE: return "CUFFT_INVALID_SIZE";
    case CUFFT_NOT_SUPPORTED: return "CUFFT_NOT_SUPPORTED";
    default: return "unknown cufftResult";
  }
}

}  // namespace advcl::cuda
