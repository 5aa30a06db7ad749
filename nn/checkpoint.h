// Checkpoints: a model's state dict, the optimiser's momentum buffers and the
// training position in one safetensors file.
//
// Tensor names are the model's state-dict names, i.e. the reference's
// PyTorch names without DataParallel's `module.` (safetensors.torch reads ours;
// nn/convert_reference_checkpoint.py converts theirs). Tensors are stored in
// their own dtype: float32 for a float32 model, int64 for num_batches_tracked.
// Momentum buffers are `optim.momentum.<parameter name>`.
// Metadata (all strings): format = "advcl.checkpoint", format_version = "1",
// epoch, step, optim.lr, optim.momentum_buffers, plus the caller's entries (options as JSON, RNG seed
// and counters: our generator is counter-based, so (seed, step) is its whole
// state).
//
// Loading is strict: every tensor the model expects must be in the file with
// its exact shape, and every tensor of the file must be used (or deliberately
// skipped by the options); otherwise it fails listing the missing, unexpected
// and mis-shaped tensors by name. (The reference's finetuning loaded with
// strict=False and could silently keep random weights.)
//
// Values are checked too, each with one host read over all tensors
// (engine/finite_check.h):
//   * save_checkpoint refuses to write a tensor holding inf or NaN (model or
//     optimiser state), naming it; the previous file stays as it was.
//   * Loading refuses inf/NaN in the tensors it loads, naming the first.
//   * A file's floating tensor must have the model's dtype: an F64 tensor
//     where the model holds F32 is refused, naming both (an advcl checkpoint
//     always stores the model's dtype, so a different one means the file was
//     made or changed elsewhere; convert it deliberately). load_state_dict
//     from tensors in memory converts, as the golden tests' float64 models need.
//   * The optimiser state is as strict as the weights: the metadata records
//     how many momentum buffers were saved (optim.momentum_buffers), and a
//     file holding fewer (or more) is refused, naming the trained parameters
//     without one. Files written before the count existed must hold a buffer
//     for every trained parameter or none.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nn/module.h"
#include "nn/sgd.h"

namespace advcl::nn {

struct CheckpointInfo {
  int64_t epoch = 0;
  int64_t step = 0;
  std::map<std::string, std::string> metadata;  // the caller's entries (read back: every entry of the file)
};

struct LoadOptions {
  // Only model tensors whose names start with one of these are loaded (and
  // required); other tensors of the file are skipped. Empty: everything.
  // ResNet18::encoder_prefixes() loads the encoder alone, for finetuning.
  std::vector<std::string> only_prefixes;
  // >= 0: the file has several BN statistic sets (`X.bn_list.{i}.Y`) and the
  // model one (`X.Y`): set i is loaded, the others skipped (the reference's
  // finetuning keeps set 1, `pgd`). -1: names are used as they are.
  int bn_set_from_file = -1;
  // Load the optimiser's momentum buffers when an optimiser is given.
  bool optimizer_state = true;

  // The reference's finetuning load: the encoder, BN set `pgd`.
  static LoadOptions encoder_from_pretraining(int bn_set = 1);
};

constexpr const char* kCheckpointFormat = "advcl.checkpoint";
constexpr int kCheckpointVersion = 1;

// Saves atomically (engine/safetensors.h). `optimizer` may be null.
void save_checkpoint(const std::string& path, const Module& model, const Sgd* optimizer, const CheckpointInfo& info);

// Loads into `model` (and `optimizer`'s momentum, if given and in the file).
// Throws advcl::Error naming the file and every mismatching tensor.
CheckpointInfo load_checkpoint(const std::string& path, Module& model, Sgd* optimizer = nullptr,
                               const LoadOptions& options = {});

// The same checks and copies from tensors in memory; `source` names them in errors.
void load_state_dict(Module& model, const std::map<std::string, Tensor>& tensors, const LoadOptions& options = {},
                     const std::string& source = "state dict");

}  // namespace advcl::nn
