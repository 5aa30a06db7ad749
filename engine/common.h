// Shared definitions for the whole engine: the host/device qualifier that lets
// one function serve both the CPU loop and the CUDA grid, and the error type.
#pragma once
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

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

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);

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
