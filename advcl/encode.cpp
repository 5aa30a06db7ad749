#include "advcl/encode.h"

#include <cstdio>

#include "datasets/batch_loader.h"
#include "engine/ops.h"
#include "engine/safetensors.h"

namespace advcl::cli {

Tensor encode_all(nn::ResNet18& model, std::shared_ptr<const data::ImageDataset> ds, int64_t batch_size, int workers) {
  data::LoaderOptions lo;
  lo.batch_size = batch_size;
  lo.shuffle = false;
  lo.workers = workers;
  data::BatchLoader loader(ds, std::make_shared<data::ToFloat>(), lo);
  model.eval();
  NoGradGuard no_grad;
  std::vector<Tensor> parts;
  data::Batch b;
  int64_t done = 0;
  while (loader.next(b)) {
    parts.push_back(model.features(b.images(), 0));
    done += b.size();
    if (parts.size() % 20 == 0) std::fprintf(stderr, "features: %lld/%lld\n", static_cast<long long>(done), static_cast<long long>(ds->n));
  }
  if (parts.empty()) fail("encode_all: the dataset has no images");
  return ops::cat(parts);
}

void save_features(const std::string& path, const Tensor& features, const data::ImageDataset& ds,
                   const std::map<std::string, std::string>& metadata) {
  if (features.dim() != 2 || features.size(0) != ds.n)
    fail("save_features: features ", shape_str(features.shape()), " do not match the ", ds.n, " images");
  Tensor labels = Tensor::from_vector<int64_t>(ds.labels, {ds.n});
  save_safetensors(path, {{"features", features.to(Device::cpu()).to(DType::Float32)}, {"labels", labels}}, metadata);
}

Tensor load_features(const std::string& path) {
  SafetensorsFile f = load_safetensors(path);
  auto it = f.tensors.find("features");
  if (it == f.tensors.end()) fail(path, ": no `features` tensor (make one with `advcl features`)");
  if (it->second.dim() != 2) fail(path, ": `features` is ", shape_str(it->second.shape()), ", not [N, D]");
  return it->second;
}

}  // namespace advcl::cli
