// The library handles (cuBLAS, cuDNN) and the error checks of the CUDA
// libraries, for .cu files only. A handle is created once per thread and
// device (creation is slow; a handle must not be used by two threads at
// once) and is bound to the current stream each time it is fetched.
#pragma once
#include <cublas_v2.h>
#include <cudnn.h>
#include <cufft.h>

#include "cuda/check.cuh"

namespace advcl::cuda {

cublasHandle_t cublas_handle();
cudnnHandle_t cudnn_handle();

const char* cufft_error_name(cufftResult r);

}  // namespace advcl::cuda

#define ADVCL_CUBLAS_CHECK(op, call)                                                                          \
  do {                                                                                                        \
    cublasStatus_t advcl_st_ = (call);                                                                        \
    if (advcl_st_ != CUBLAS_STATUS_SUCCESS)                                                                   \
      ::advcl::fail((op), ": ", #call, " failed: ", cublasGetStatusName(advcl_st_), " (",                    \
                    cublasGetStatusString(advcl_st_), ") [", __FILE__, ":", __LINE__, "]");                   \
  } while (0)

#define ADVCL_CUDNN_CHECK(op, call)                                                                           \
  do {                                                                                                        \
    cudnnStatus_t advcl_st_ = (call);                                                                         \
    if (advcl_st_ != CUDNN_STATUS_SUCCESS)                                                                    \
      ::advcl::fail((op), ": ", #call, " failed: ", cudnnGetErrorString(advcl_st_), " [", __FILE__, ":",     \
                    __LINE__, "]");                                                                           \
  } while (0)

#define ADVCL_CUFFT_CHECK(op, call)                                                                           \
  do {                                                                                                        \
    cufftResult advcl_st_ = (call);                                                                           \
    if (advcl_st_ != CUFFT_SUCCESS)                                                                           \
      ::advcl::fail((op), ": ", #call, " failed: ", ::advcl::cuda::cufft_error_name(advcl_st_), " [", __FILE__, \
                    ":", __LINE__, "]");                                                                      \
  } while (0)
