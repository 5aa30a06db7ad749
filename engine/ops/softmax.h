// Softmax family and the losses built on it, along the last dimension of a
// 2-D [N, C] input.
#pragma once
#include "engine/tensor.h"

namespace advcl::ops {

Tensor softmax(const Tensor& x);
Tensor log_softmax(const Tensor& x);

enum class Reduction { Sum, Mean };

// Cross-entropy of logits [N, C] against int64 class labels [N]. Labels equal
// to ignore_index (-1) contribute nothing; Mean divides by the number of
// labels not ignored (and gives 0 when all are ignored, where PyTorch gives NaN).
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction = Reduction::Mean,
                     int64_t ignore_index = -1);

// KL divergence as torch.nn.functional.kl_div(input, target): input holds
// log-probabilities, target probabilities; sum of target * (log target - input)
// (0 where target is 0). Mean divides by the number of elements; BatchMean
// by N. The gradient flows to both input and target.
enum class KLReduction { Sum, Mean, BatchMean };
Tensor kl_div(const Tensor& input_log_prob, const Tensor& target_prob, KLReduction reduction = KLReduction::Sum);

}  // namespace advcl::ops
