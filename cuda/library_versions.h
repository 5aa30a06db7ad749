// Whether the cuDNN and NCCL libraries found at run time can stand in for
// the ones advcl was built with. Plain C++ (no CUDA header), so the CPU
// tests cover the rules; cuda/runtime.cu applies them once at start-up.
//
// The rule: the same major version (another major is another ABI), and a
// minor version no older than the build's. An older minor version of the
// same major usually loads, but may lack what the build's headers promise,
// so it is a warning that says what to install, not an error.
#pragma once
#include <string>

namespace advcl::cuda {

struct LibraryVersion {
  int major = 0, minor = 0, patch = 0;
  std::string str() const;  // "9.19.0"
};

// The integer that cudnnGetVersion()/CUDNN_VERSION and ncclGetVersion()/
// NCCL_VERSION_CODE hold: major * 10000 + minor * 100 + patch since cuDNN 9
// and NCCL 2.9, major * 1000 + minor * 100 + patch before (codes below 10000).
LibraryVersion decode_library_version(int code);

enum class VersionVerdict { Ok, Older, Incompatible };

struct VersionCheck {
  VersionVerdict verdict = VersionVerdict::Ok;
  std::string message;  // empty when Ok; else what is wrong and what to install
};

// `library` names it ("cuDNN"), `built` and `installed` are version codes as
// above, `install` says where a suitable version comes from.
VersionCheck check_library_version(const std::string& library, int built, int installed, const std::string& install);

}  // namespace advcl::cuda
