// The training losses of AdvCL (docs/method.md section 10).
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace advcl::method {

// The SimCLR case of SupCon over V views of B images. `views[v]` holds the
// unit-norm features [B, D] of view v; rows are stacked view-major into V*B
// anchors. For each anchor the denominator runs over the other V*B - 1 rows,
// the positives are the V - 1 other views of the same image, and
//   loss(anchor) = -(temperature / base_temperature) * mean over positives of log_softmax,
// averaged over all anchors. With temperature 0.5 and base 0.07 the factor is
// about 7.14, as in the reference.
Tensor supcon_loss(const std::vector<Tensor>& views, double temperature = 0.5, double base_temperature = 0.07);

// mean over heads of CE_mean(logits[k], labels[k]) (labels int64, -1 ignored).
Tensor pseudo_label_ce(const std::vector<Tensor>& logits, const std::vector<Tensor>& labels);

}  // namespace advcl::method
