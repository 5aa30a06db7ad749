// A projection head: Linear(in, in) -> BN1d -> ReLU -> Linear(in, out), then
// every row scaled to unit L2 norm: the MLP that SimCLR-style contrastive
// methods put on an encoder's feature.
//
// A generic block, apart from any method: which heads a model carries is the
// method's choice (advcl/pretrain/contrastive_model.h composes AdvCL's). The
// tensor names are nn.Sequential's indices, 0 (Linear), 1 (BatchNorm1d) and
// 3 (Linear; the ReLU at 2 holds none), as PyTorch code writes such a head.
#pragma once
#include <cstdint>

#include "nn/batch_norm.h"
#include "nn/layers.h"
#include "nn/module.h"

namespace advcl::nn {

class ProjectionHead : public Module {
 public:
  ProjectionHead(int64_t in, int64_t out, const BatchNormOptions& bn);
  // `views`: how many views are stacked in `features`; each gets its own
  // batch statistics, all in BN set 0 (a head's BN normally has one set).
  Tensor forward(const Tensor& features, int64_t views);
  Linear fc0;
  BatchNorm bn1;
  Linear fc3;
};

}  // namespace advcl::nn
