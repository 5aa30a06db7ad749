// What every layer shares, at the bottom of the layers (docs/layout.md): the
// error type, fail(), and the qualifier that lets one function serve both a
// CPU loop and a CUDA grid. It includes nothing of ours, so cuda/ can use it
// without depending on engine/ (engine/common.h includes it for everyone else).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

#if defined(__CUDACC__)
#define ADVCL_HD __host__ __device__ inline
#else
#define ADVCL_HD inline
#endif

namespace advcl {

// Every user-facing failure of the engine is an advcl::Error with a message
// that names the operation and what was wrong.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Streams its arguments into one string: fail("conv2d: bad ", x).
template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw Error(os.str());
}

}  // namespace advcl

#define ADVCL_CHECK(cond, ...)                 \
  do {                                         \
    if (!(cond)) ::advcl::fail(__VA_ARGS__);   \
  } while (0)
