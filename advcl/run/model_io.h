// Building the ResNet-18 a stage needs and recording its shape in checkpoint
// metadata (and the finetuned model's classifier size), so that later stages
// rebuild the same model from the file alone.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "advcl/finetune/finetune_model.h"
#include "advcl/pretrain/contrastive_model.h"
#include "nn/resnet.h"

namespace advcl::cli {

// Metadata entries describing a pretraining stage's model: the backbone
// (model.width, model.in_channels, model.bn_sets) and its heads
// (model.heads = 1, model.proj_dim, model.pseudo_classes).
std::map<std::string, std::string> model_metadata(const method::ContrastiveModelOptions& o);
// The same entries for a bare encoder (a finetuned model's, an exported one):
// model.heads = 0 and no pseudo-label classes.
std::map<std::string, std::string> encoder_metadata(const nn::ResNetOptions& o);
// The backbone a checkpoint's metadata describes (error naming the file if absent).
nn::ResNetOptions model_options_from(const std::string& checkpoint);
// The names of a checkpoint's BN statistic sets, in bn_list order: those its
// pretraining method declared (metadata model.bn_set_names); for a file
// without them (written before that key, or the reference's), AdvCL's
// normal, pgd, pgd_ce when it has three sets, else "0", "1", ...
std::vector<std::string> bn_set_names_from(const std::string& checkpoint);
// The value of metadata model.bn_set_names that bn_set_names_from reads back.
std::string bn_set_names_entry(const std::vector<std::string>& names);
// The set finetuning and export take from a multi-set file unless told:
// set 1, `pgd` in AdvCL and ACL (the reference finetunes it).
constexpr int kDefaultFinetuneBnSet = 1;
// Loads the encoder of a checkpoint (any stage) into a fresh single-BN-set
// model with BN set `bn_set` of the file (-1: the file's only set), eval mode.
// `bn_sync`: synchronised batch norm for a model that trains data-parallel (AFF).
std::unique_ptr<nn::ResNet18> load_encoder(const std::string& checkpoint, int bn_set,
                                           std::shared_ptr<const nn::BatchNormSync> bn_sync = nullptr);

}  // namespace advcl::cli

namespace advcl::method {

// Checkpoint metadata describing the model (model_io's entries plus the
// number of classes), so that load_finetuned rebuilds it from the file alone.
std::map<std::string, std::string> finetune_metadata(FinetuneModel& model);

// Rebuilds a finetuned model from a checkpoint written by `advcl finetune`
// (strict load: every tensor by name and shape), in eval mode. Fails naming
// the file when it has no classifier (e.g. a pretraining checkpoint).
std::unique_ptr<FinetuneModel> load_finetuned(const std::string& checkpoint);

}  // namespace advcl::method
