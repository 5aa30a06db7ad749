// The loss of the contrastive-model golden step, shared by its float32/64
// test (contrastive_model_golden_test.cpp, tests/golden/make_nn_golden.py)
// and its bf16 test (contrastive_model_bf16_golden_test.cpp,
// tests/golden/make_bf16_golden.py): two views of B images each (BN sets
// normal and pgd), minus the mean agreement of their projections, plus
// ce_weight times the mean pseudo-label cross-entropy of the second view.
#pragma once
#include <string>
#include <vector>

#include "advcl/pretrain/contrastive_model.h"
#include "engine/ops.h"
#include "tests/golden_util.h"
#include "tests/nn/nn_test_util.h"

namespace advcl::testing_util {

inline const std::vector<int64_t>& golden_pseudo_classes() {
  static const std::vector<int64_t> k = {2, 10, 50, 100, 500};
  return k;
}

// x: both views stacked, B images each; labels and ce_weight come from `f`.
inline Tensor golden_step_loss(method::ContrastiveModel& model, const Tensor& x, int64_t B, const GoldenFile& f) {
  Tensor feat = model.features(x, {nn_test::kBnNormal, nn_test::kBnPgd});
  Tensor proj = model.project(feat, 2);
  Tensor pa = ops::slice(proj, 0, B), pb = ops::slice(proj, B, 2 * B);
  Tensor agree = ops::mean(ops::sum(ops::mul(pa, pb), 1));
  std::vector<Tensor> logits = model.pseudo_logits(ops::slice(feat, B, 2 * B));
  const std::vector<int64_t>& pseudo = golden_pseudo_classes();
  Tensor ce;
  for (size_t k = 0; k < pseudo.size(); ++k) {
    Tensor l = ops::cross_entropy(logits[k], f.tensor("labels." + std::to_string(pseudo[k])));
    ce = ce.defined() ? ops::add(ce, l) : l;
  }
  double ce_weight = std::stod(f.metadata("ce_weight"));
  return ops::add(ops::neg(agree), ops::mul(ce, ce_weight / static_cast<double>(pseudo.size())));
}

}  // namespace advcl::testing_util
