#include "advcl/pretrain/encode.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "advcl/step/data_parallel.h"
#include "datasets/batch_loader.h"
#include "nn/parallel/all_gather.h"
#include "engine/ops.h"
#include "engine/safetensors.h"

namespace advcl::cli {

namespace {

// Rows gathered from the ranks (rank order) put back in data-set order:
// row i of `rows` is image indices[i]; every image must come exactly once.
Tensor to_dataset_order(const Tensor& rows, const std::vector<int64_t>& indices, int64_t n) {
  if (static_cast<int64_t>(indices.size()) != n || rows.size(0) != n)
    fail("encode_all: gathered ", rows.size(0), " rows and ", indices.size(), " indices for ", n, " images");
  Tensor out = Tensor::empty(rows.shape(), rows.dtype());
  const size_t row_bytes = rows.nbytes() / static_cast<size_t>(std::max<int64_t>(n, 1));
  const char* src = static_cast<const char*>(rows.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  std::vector<char> seen(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t k = indices[static_cast<size_t>(i)];
    if (k < 0 || k >= n || seen[static_cast<size_t>(k)]++)
      fail("encode_all: image ", k, " gathered twice or out of range (the ranks' shards overlap)");
    std::memcpy(dst + static_cast<size_t>(k) * row_bytes, src + static_cast<size_t>(i) * row_bytes, row_bytes);
  }
  return out;
}

}  // namespace

Tensor encode_all(nn::ResNet18& model, std::shared_ptr<const data::ImageDataset> ds, int64_t batch_size, int workers,
                  dist::Communicator& comm) {
  data::LoaderOptions lo;
  lo.batch_size = batch_size;
  lo.workers = workers;
  data::BatchLoader loader(ds, std::make_shared<data::ToFloat>(), shard_eval_loader(lo, comm));
  model.eval();
  NoGradGuard no_grad;
  std::vector<Tensor> parts;
  std::vector<int64_t> indices;
  data::Batch b;
  int64_t done = 0, batches = 0;
  while (loader.next(b)) {
    if (b.size() == 0) continue;  // this rank's share of a short last batch
    parts.push_back(model.features(b.images(), 0).to(Device::cpu()));
    std::vector<int64_t> idx = b.indices.to_vector<int64_t>();
    indices.insert(indices.end(), idx.begin(), idx.end());
    done += b.size();
    if (++batches % 20 == 0 && comm.is_root())
      std::fprintf(stderr, "features: %lld/%lld%s\n", static_cast<long long>(done),
                   static_cast<long long>(comm.distributed() ? ds->n / comm.size() : ds->n),
                   comm.distributed() ? " (rank 0's share)" : "");
  }
  if (!comm.distributed()) {
    if (parts.empty()) fail("encode_all: the dataset has no images");
    return ops::cat(parts);  // an unsharded, unshuffled loader: already in data-set order
  }
  // A rank without images still sends [0, D] rows of the model's dtype.
  DType dtype = model.named_parameters().at(0).tensor.dtype();
  Tensor mine = parts.empty() ? Tensor::zeros({0, model.feature_dim()}, dtype) : ops::cat(parts);
  Tensor rows = dist::all_gather_rows(mine, comm);
  std::vector<int64_t> counts = comm.all_gather(static_cast<int64_t>(indices.size()), "encode_all (index counts)");
  std::vector<int64_t> bytes;
  int64_t total = 0;
  for (int64_t c : counts) {
    bytes.push_back(c * static_cast<int64_t>(sizeof(int64_t)));
    total += c;
  }
  std::vector<int64_t> all(static_cast<size_t>(total));
  comm.all_gather_bytes(indices.data(), indices.size() * sizeof(int64_t), all.data(), bytes, "encode_all (indices)");
  return to_dataset_order(rows, all, ds->n);
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
