// FAB-T, L-inf: the targeted Fast Adaptive Boundary attack (Croce & Hein,
// "Minimally distorted adversarial examples with a fast adaptive boundary
// attack", ICML 2020) with AutoAttack's standard settings (one run per target
// class, no random start, 100 iterations, alpha_max 0.1, eta 1.05, beta 0.9).
//
// FAB looks for the smallest perturbation: each step linearises
// f_t - f_y around the iterate, projects both the iterate and the clean point
// onto the linearised boundary (within [0, 1]), and moves to a convex
// combination biased towards the clean point. A found example counts only if
// it is within eps of the clean point.
//
// The model runs on the tensors' device; the projection (a sort per row) and
// the per-row update run on the host in double precision, on whole-batch
// arrays (one gradient copy in and one iterate copy out per iteration).
#pragma once
#include <cstdint>
#include <vector>

#include "advcl/attacks/autoattack_util.h"

namespace advcl::autoattack {

struct FabOptions {
  double epsilon = 8.0 / 255;
  int iterations = 100;
  int target_classes = 9;  // the 2nd..10th most likely classes at the clean point
  double alpha_max = 0.1;  // largest weight of the step taken from the clean point
  double eta = 1.05;       // overshoot of the projection
  double beta = 0.9;       // after a success, pull the iterate back towards the clean point
};

// The smallest L-inf step d with w . (t + d) = b and t + d in [0, 1], for one
// point t of D coordinates (in [0, 1]). Where the box makes the hyperplane
// unreachable, d moves every coordinate with w_i != 0 to its box edge on the
// hyperplane's side. Coordinates with w_i = 0 never move. Returns ||d||_inf.
double fab_project_linf(const double* t, const double* w, double b, int64_t D, double* d);

// fab_project_linf for n points at once: row r of t, w and d (contiguous
// n x D arrays) with offset b[r]; norms[r] = ||d_r||_inf. Rows run in
// parallel when the batch is large enough; no allocation per row.
void fab_project_linf_rows(int64_t n, int64_t D, const double* t, const double* w, const double* b, double* d,
                           double* norms);

// FAB-T on x [B, ...] with labels y. Returns x with its broken rows replaced
// by adversarial examples within eps (the smallest FAB found per row).
Tensor fab_targeted(const LogitsFn& model, const Tensor& x, const std::vector<int64_t>& y, const FabOptions& opt);

}  // namespace advcl::autoattack
