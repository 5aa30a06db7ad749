// Square attack, L-inf (Andriushchenko et al., "Square Attack: a
// query-efficient black-box adversarial attack via random search", ECCV 2020),
// as AutoAttack's standard version runs it: margin loss, p_init 0.8, 5000
// queries, the schedule of p by query index (not rescaled to the budget).
//
// Random search: start from vertical stripes of +-eps per channel; each
// iteration draws one square window (side from the schedule) and one sign per
// channel, sets the window's perturbation to +-eps (the step is +-2 eps,
// projected), and keeps the candidate where the margin loss drops or the
// point becomes misclassified. As fra31/auto-attack, one window and one set
// of signs per iteration serve every point of the batch.
#pragma once
#include <cstdint>
#include <vector>

#include "advcl/attacks/autoattack_util.h"

namespace advcl::autoattack {

struct SquareOptions {
  double epsilon = 8.0 / 255;
  int queries = 5000;   // iterations of the random search (one model query each, plus one at the start)
  double p_init = 0.8;  // initial fraction of the image the square covers
  uint64_t seed = 0;
};

// The fraction p at iteration `it` (0-based): p_init, halved after
// iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000.
double square_p(int it, double p_init);
// The square's side for fraction p on an image of C channels and H x W
// pixels: round(sqrt(p * H * W)) (round half to even, as Python), at least 1,
// at most min(H, W).
int64_t square_side(double p, int64_t H, int64_t W);

// The margin z_y - max_{i != y} z_i per row of host logits.
std::vector<double> margins(const HostLogits& h, const std::vector<int64_t>& y);

// Square attack on x [B, C, H, W]; ids[r] keys row r's initial stripes.
// Returns x with its broken rows replaced by adversarial examples.
Tensor square_linf(const LogitsFn& model, const Tensor& x, const std::vector<int64_t>& y,
                   const std::vector<int64_t>& ids, const SquareOptions& opt);

}  // namespace advcl::autoattack
