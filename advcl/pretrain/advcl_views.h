// The per-sample view sets of the two pretraining stages (docs/method.md section 7).
//
// AdvCL: three views per image, in this order,
//   kViewX1, kViewX2: two independent SimCLR draws (datasets/simclr_transform.h);
//   kViewOrg: x_org = RandomCrop(size, padding 4, zero fill) + horizontal
//             flip (data::CropFlip).
// x_HFC is made later from the batch of x_org (ops::fft_highpass), x_cl and
// x_ce by the attack. SimCLR (the stage that makes the pseudo-labels): the
// two SimCLR views only.
//
// Built on data::MultiView, so view v draws from the sample's stream forked
// at v: each view depends on (seed, epoch, dataset index, v) alone.
// The images should already be at the model's resolution (datasets fit them
// on loading): x_org crops `size` pixels out of the padded image.
#pragma once
#include <memory>

#include "datasets/simclr_transform.h"
#include "datasets/transforms.h"

namespace advcl::views {

inline constexpr int kViewX1 = 0, kViewX2 = 1, kViewOrg = 2;

// x1, x2, x_org. org_padding: RandomCrop's padding for x_org (4 in the paper).
std::shared_ptr<const data::SampleTransform> make_advcl_views(const SimclrOptions& opt = {}, int64_t org_padding = 4);

// x1, x2.
std::shared_ptr<const data::SampleTransform> make_simclr_views(const SimclrOptions& opt = {});

}  // namespace advcl::views
