// cuda/pinned_upload.h for builds without CUDA: nothing lives on a GPU, so
// the loader never uploads (data::upload returns its host tensor).
#include "cuda/pinned_upload.h"

#if !ADVCL_CUDA
#include "cuda/base.h"

namespace advcl::cuda {

void upload_async(void*, const void*, size_t) {
  fail("upload_async: this advcl was built without CUDA (rebuild with `make CUDA=1` on a machine with nvcc)");
}

size_t pinned_staging_buffers() { return 0; }

}  // namespace advcl::cuda
#endif
