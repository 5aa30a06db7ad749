#include "advcl/pretrain/advcl_views.h"

namespace advcl::views {

std::shared_ptr<const data::SampleTransform> make_advcl_views(const SimclrOptions& opt, int64_t org_padding) {
  auto simclr = std::make_shared<const SimclrTransform>(opt);
  // The same transform object twice: its views differ through the forked streams.
  return std::make_shared<const data::MultiView>(std::vector<std::shared_ptr<const data::SampleTransform>>{
      simclr, simclr, std::make_shared<const data::CropFlip>(opt.size, org_padding, 0.5)});
}

std::shared_ptr<const data::SampleTransform> make_simclr_views(const SimclrOptions& opt) {
  auto simclr = std::make_shared<const SimclrTransform>(opt);
  return std::make_shared<const data::MultiView>(
      std::vector<std::shared_ptr<const data::SampleTransform>>{simclr, simclr});
}

}  // namespace advcl::views
