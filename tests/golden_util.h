// Helpers for tests that compare against stored reference files: where the
// repository's files are, the one loader of tests/golden/*.safetensors
// (GoldenFile), and a tensor comparison whose failure message names the
// tensor, the worst element's index, both values and the errors.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "engine/common.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"

namespace advcl::testing_util {

// `rel` (e.g. "tests/golden/engine_golden.safetensors") under $ADVCL_SOURCE_DIR
// when set, else under the working directory: the tests run from the repo root.
inline std::string source_path(const std::string& rel) {
  const char* root = std::getenv("ADVCL_SOURCE_DIR");
  return root && *root ? std::string(root) + "/" + rel : rel;
}

// True when `path` can be opened; the caller fails with a message saying where it looked.
inline bool readable(const std::string& path) { return std::ifstream(path).good(); }

// The message for a reference file that is not where it should be.
inline std::string missing_file_message(const std::string& path) {
  return "cannot read " + path +
         ": run the tests from the repository root or set ADVCL_SOURCE_DIR to it";
}

// One reference file of tests/golden/, written by its script there
// (engine_golden.safetensors by make_engine_golden.py, and so on). Each file
// is read once per test process; every read of a tensor gives a copy, so a
// test that changes one in place cannot change what the next test reads.
// Every failure names the file, and the tensor or key it lacked.
class GoldenFile {
 public:
  // `rel` under the repository root (source_path), e.g.
  // "tests/golden/engine_golden.safetensors".
  static const GoldenFile& load(const std::string& rel) {
    static std::map<std::string, std::unique_ptr<GoldenFile>> loaded;
    std::unique_ptr<GoldenFile>& f = loaded[rel];
    if (!f) f.reset(new GoldenFile(rel));
    return *f;
  }

  const std::string& path() const { return path_; }
  bool has(const std::string& name) const { return file_.tensors.count(name) != 0; }

  // Tensor `name` as stored (a copy).
  Tensor tensor(const std::string& name) const { return stored(name).clone(); }
  // Tensor `name` converted to `dtype`.
  Tensor tensor(const std::string& name, DType dtype) const { return stored(name).to(dtype).clone(); }
  // A floating tensor converted to `dtype`; any other as stored (labels, indices, bytes).
  Tensor floating_as(const std::string& name, DType dtype) const {
    const Tensor& t = stored(name);
    return is_floating(t.dtype()) ? t.to(dtype).clone() : t.clone();
  }

  // The tensors whose names start with `prefix`, under their names without it
  // ("init." -> the model's parameter names).
  std::map<std::string, Tensor> with_prefix(const std::string& prefix) const {
    std::map<std::string, Tensor> out;
    for (const auto& [name, t] : file_.tensors)
      if (name.rfind(prefix, 0) == 0) out[name.substr(prefix.size())] = t.clone();
    return out;
  }

  const std::string& metadata(const std::string& key) const {
    auto it = file_.metadata.find(key);
    if (it == file_.metadata.end()) fail(path_, ": no metadata '", key, "'", regenerate_hint());
    return it->second;
  }

 private:
  explicit GoldenFile(const std::string& rel) : rel_(rel), path_(source_path(rel)) {
    if (!readable(path_)) fail(missing_file_message(path_));
    file_ = load_safetensors(path_);
  }

  const Tensor& stored(const std::string& name) const {
    auto it = file_.tensors.find(name);
    if (it == file_.tensors.end()) fail(path_, ": no tensor '", name, "'", regenerate_hint());
    return it->second;
  }

  // tests/golden/x.safetensors is written by tests/golden/make_x.py.
  std::string regenerate_hint() const {
    const size_t slash = rel_.rfind('/') + 1, dot = rel_.rfind(".safetensors");
    if (dot == std::string::npos || dot < slash) return "";
    return " (regenerate it with " + rel_.substr(0, slash) + "make_" + rel_.substr(slash, dot - slash) + ".py?)";
  }

  std::string rel_, path_;
  SafetensorsFile file_;
};

inline std::string index_str(const Shape& shape, int64_t flat) {
  std::string s;
  for (size_t d = shape.size(); d-- > 0;) {
    int64_t n = shape[d] ? shape[d] : 1;
    s = std::to_string(flat % n) + (s.empty() ? "" : ", ") + s;
    flat /= n;
  }
  return "[" + s + "]";
}

// Elementwise |got - want| <= atol * max|want| + rtol * |want| + floor: rtol
// bounds the error of each element relative to itself, atol (relative to the
// tensor's largest magnitude) allows for the cancellation that leaves some
// elements of a sum near zero, and the absolute floor (default 0) is for
// tensors that are zero up to rounding as a whole (e.g. the gradient of a bias
// that a batch norm follows), where max|want| is itself rounding noise.
// NaN must meet NaN and an infinity the same infinity.
struct Tolerance {
  double rtol;
  double atol;
  double floor = 0;
};

// Compares any floating or integer tensors as doubles (integers exactly when
// tol is {0, 0}). Use as EXPECT_TRUE(close(...)).
inline ::testing::AssertionResult close(const std::string& name, const Tensor& got, const Tensor& want,
                                        Tolerance tol) {
  if (!got.defined()) return ::testing::AssertionFailure() << name << ": our result is undefined";
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << name << ": shape " << shape_str(got.shape()) << ", want "
                                         << shape_str(want.shape());
  std::vector<double> g = got.to(Device::cpu()).to(DType::Float64).to_vector<double>();
  std::vector<double> w = want.to(DType::Float64).to_vector<double>();
  double scale = 0;
  for (double v : w)
    if (std::isfinite(v)) scale = std::max(scale, std::abs(v));
  double max_abs = 0, worst_ratio = 0;
  int64_t max_at = -1, worst_at = -1;
  for (size_t i = 0; i < w.size(); ++i) {
    double err = std::abs(g[i] - w[i]);
    bool same_special = (std::isnan(g[i]) && std::isnan(w[i])) || (std::isinf(w[i]) && g[i] == w[i]);
    if (same_special) continue;
    if (std::isnan(err)) err = INFINITY;  // a NaN or an infinity where a number was expected
    if (err > max_abs || max_at < 0) max_abs = err, max_at = static_cast<int64_t>(i);
    double allowed = tol.atol * scale + tol.rtol * std::abs(w[i]) + tol.floor;
    double ratio = err == 0 ? 0 : (allowed > 0 ? err / allowed : INFINITY);
    if (ratio > worst_ratio) worst_ratio = ratio, worst_at = static_cast<int64_t>(i);
  }
  if (worst_ratio <= 1) return ::testing::AssertionSuccess();
  std::ostringstream os;
  os.precision(17);
  os << name << " " << shape_str(want.shape()) << ": max abs error " << max_abs << " at "
     << index_str(want.shape(), max_at) << " (got " << g[max_at] << ", want " << w[max_at] << "); worst element "
     << index_str(want.shape(), worst_at) << " got " << g[worst_at] << ", want " << w[worst_at] << ", "
     << worst_ratio << "x the tolerance (rtol " << tol.rtol << ", atol " << tol.atol << " x max|want| " << scale;
  if (tol.floor > 0) os << ", floor " << tol.floor;
  os << ")";
  return ::testing::AssertionFailure() << os.str();
}

// The largest |got - want| and that error over max|want| (for reports).
struct Errors {
  double max_abs = 0, max_rel = 0;
};
inline Errors errors(const Tensor& got, const Tensor& want) {
  std::vector<double> g = got.to(Device::cpu()).to(DType::Float64).to_vector<double>();
  std::vector<double> w = want.to(DType::Float64).to_vector<double>();
  Errors e;
  double scale = 0;
  for (size_t i = 0; i < w.size() && i < g.size(); ++i) {
    e.max_abs = std::max(e.max_abs, std::abs(g[i] - w[i]));
    scale = std::max(scale, std::abs(w[i]));
  }
  e.max_rel = scale > 0 ? e.max_abs / scale : e.max_abs;
  return e;
}

}  // namespace advcl::testing_util
