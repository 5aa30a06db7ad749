// Which tensors hold a non-finite value (inf or NaN), found on the tensors'
// device with one host read for the whole list: each floating tensor is
// reduced to one number, sum(x * 0), which is exactly 0 when every element is
// finite and NaN otherwise (inf * 0 and NaN * 0 are NaN, and a NaN survives
// the sum); the per-tensor numbers are gathered into one vector and read
// once. A training step keeps its values on the device
// (docs/engine.md section 8), so checks before a checkpoint must not add a
// read per tensor. Integer tensors are always finite and cost nothing.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace advcl {

// Indices (into `tensors`) of the tensors with a non-finite element, in
// order. Undefined and integer tensors are skipped. All floating tensors
// must be on one device. One host read (none when no tensor is floating).
std::vector<size_t> non_finite_tensors(const std::vector<Tensor>& tensors);

// The same for named tensors: the names of those with a non-finite element.
std::vector<std::string> non_finite_names(const std::vector<std::pair<std::string, Tensor>>& tensors);

// Whether every element of `t` is finite (one host read for a floating tensor).
bool all_finite(const Tensor& t);

}  // namespace advcl
