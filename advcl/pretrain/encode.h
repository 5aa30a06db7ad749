// The pooled (512-d at width 64) features of every image of a dataset, from
// an encoder: what `advcl features` saves and `advcl pseudo-labels` clusters.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "datasets/image_dataset.h"
#include "nn/parallel/communicator.h"
#include "engine/tensor.h"
#include "nn/resnet.h"

namespace advcl::cli {

// Features [N, D] of every image, in dataset order, with the model in eval
// mode and no gradients; progress goes to stderr (rank 0's).
//
// Data parallel: each rank of `comm` encodes its shard of the data set
// (cli::shard_eval_loader; `batch_size` is the global batch), then the rows
// and their data-set indices are gathered and put in data-set order, so
// every rank returns the whole [N, D] one process computes (a collective).
Tensor encode_all(nn::ResNet18& model, std::shared_ptr<const data::ImageDataset> ds, int64_t batch_size, int workers,
                  dist::Communicator& comm = dist::world());

// The file `advcl features` writes: float32 `features` [N, D] and int64
// `labels` [N] (the dataset's, -1 for unlabelled images).
void save_features(const std::string& path, const Tensor& features, const data::ImageDataset& ds,
                   const std::map<std::string, std::string>& metadata);
// Reads `features` back (error naming the file when it is missing or not [N, D]).
Tensor load_features(const std::string& path);

}  // namespace advcl::cli
