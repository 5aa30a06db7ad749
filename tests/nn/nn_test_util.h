// Helpers shared by the nn/ tests.
#pragma once
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "engine/ops/random.h"
#include "engine/tensor.h"
#include "nn/module.h"
#include "tests/golden_util.h"

namespace advcl::nn_test {

// The reference model's statistic sets, by index in bn_list (AdvCL's order:
// normal, pgd, pgd_ce; the method declares them, nn/ only counts them).
inline constexpr int kBnNormal = 0, kBnPgd = 1, kBnPgdCe = 2;

// Deterministic test data: uniform in [lo, hi) from the Test stream `tag`.
inline Tensor rand_tensor(const Shape& shape, uint32_t tag, double lo = -1, double hi = 1,
                          DType dtype = DType::Float64) {
  return ops::rand_uniform(shape, RngKey{1234, static_cast<uint32_t>(RngPurpose::Test), tag, 0}, lo, hi, dtype);
}

// tests/nn/reference_state_dict_keys.txt: "name (d0, d1, ...)" per line, a
// copy of the reference's pretraining state dict (width 64) without
// `module.`, head_pred and head_ce: the backbone's names, then the heads'.
inline std::vector<std::pair<std::string, Shape>> reference_keys() {
  std::string path = testing_util::source_path("tests/nn/reference_state_dict_keys.txt");
  std::ifstream in(path);
  if (!in) fail(testing_util::missing_file_message(path));
  std::vector<std::pair<std::string, Shape>> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    size_t sp = line.find(' ');
    std::string name = line.substr(0, sp), dims = line.substr(sp + 1);
    Shape shape;
    for (char& c : dims)
      if (c == '(' || c == ')' || c == ',') c = ' ';
    std::istringstream ds(dims);
    int64_t d;
    while (ds >> d) shape.push_back(d);
    out.emplace_back(name, shape);
  }
  return out;
}

// Every tensor of `a`'s state dict equals (bit for bit) `b`'s under the same name.
inline ::testing::AssertionResult same_state(const nn::Module& a, const nn::Module& b) {
  nn::StateDict sa = a.state_dict(), sb = b.state_dict();
  if (sa.size() != sb.size()) return ::testing::AssertionFailure() << sa.size() << " vs " << sb.size() << " tensors";
  for (size_t i = 0; i < sa.size(); ++i) {
    if (sa[i].name != sb[i].name)
      return ::testing::AssertionFailure() << "name " << sa[i].name << " vs " << sb[i].name;
    auto r = testing_util::close(sa[i].name, sa[i].tensor, sb[i].tensor, {0, 0});
    if (!r) return r;
  }
  return ::testing::AssertionSuccess();
}

// Sets floating tensors of the model's state to deterministic random values
// (weights and running_var in [0.5, 1.5), others in [-0.5, 0.5)), so that tests
// see distinct statistic sets. `bn_only`: only batch-norm tensors (names with
// "bn" or under head_proj.1), keeping the convolutions' well-scaled init.
inline void randomize_state(nn::Module& m, uint32_t tag, bool bn_only = false) {
  uint32_t i = 0;
  for (nn::NamedTensor& t : m.state_dict()) {
    if (!is_floating(t.tensor.dtype())) continue;
    if (bn_only && t.name.find("bn") == std::string::npos && t.name.rfind("head_proj.1.", 0) != 0) continue;
    bool var = t.name.find("running_var") != std::string::npos;
    bool w = t.name.size() >= 6 && t.name.compare(t.name.size() - 6, 6, "weight") == 0;
    Tensor v = rand_tensor(t.tensor.shape(), tag * 1000 + i++, var ? 0.5 : (w ? 0.5 : -0.5), var ? 1.5 : (w ? 1.5 : 0.5),
                           t.tensor.dtype());
    t.tensor.copy_(v);
  }
}

}  // namespace advcl::nn_test
