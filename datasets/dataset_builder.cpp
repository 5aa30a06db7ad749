#include "datasets/dataset_builder.h"

namespace advcl::data {

DatasetBuilder::DatasetBuilder(const DatasetSpec& spec, std::string name, int64_t in_c, int64_t in_h, int64_t in_w)
    : spec_(spec), fitter_(in_c, in_h, in_w, spec.size, spec.channels, spec.fit, name), max_(spec.read_limit()) {
  ds_.name = std::move(name);
  ds_.channels = fitter_.out_c();
  ds_.height = fitter_.out_h();
  ds_.width = fitter_.out_w();
  ds_.notes = fitter_.note();
}

void DatasetBuilder::add(const uint8_t* chw, int64_t label) {
  size_t at = ds_.images.size();
  ds_.images.resize(at + static_cast<size_t>(fitter_.out_bytes()));
  fitter_.apply(chw, ds_.images.data() + at);
  ds_.labels.push_back(label);
  ++ds_.n;
}

void DatasetBuilder::add_fitted(const uint8_t* chw, int64_t label) {
  ds_.images.insert(ds_.images.end(), chw, chw + fitter_.out_bytes());
  ds_.labels.push_back(label);
  ++ds_.n;
}

ImageDataset DatasetBuilder::finish(std::vector<std::string> class_names) {
  ds_.num_classes = static_cast<int64_t>(class_names.size());
  ds_.class_names = std::move(class_names);
  ds_.check();
  take_subset(ds_, spec_.limit, spec_.per_class);
  return std::move(ds_);
}

}  // namespace advcl::data
