#include "advcl/finetune_model.h"

#include "advcl/model_io.h"
#include "advcl/parse_number.h"
#include "engine/safetensors.h"
#include "nn/checkpoint.h"

namespace advcl::method {

namespace {
constexpr const char* kClassesKey = "finetune.classes";
}

FinetuneModel::FinetuneModel(std::unique_ptr<nn::ResNet18> encoder, int64_t classes, uint64_t seed)
    : encoder_(std::move(encoder)), classifier(encoder_->feature_dim(), classes, seed) {
  if (encoder_->options().num_bn_sets != 1)
    fail("FinetuneModel: the encoder must have one BN set (load it with load_encoder), it has ",
         encoder_->options().num_bn_sets);
  if (classes < 2) fail("FinetuneModel: need at least 2 classes, got ", classes);
  // Empty names: the encoder's and the classifier's names stay as they are.
  register_module("", *encoder_);
  register_module("", classifier);
}

Tensor FinetuneModel::features(const Tensor& images) { return encoder_->features(images, nn::BnSets(0)); }

Tensor FinetuneModel::logits(const Tensor& images) { return classifier.forward(features(images)); }

std::map<std::string, std::string> finetune_metadata(FinetuneModel& model) {
  std::map<std::string, std::string> m = cli::model_metadata(model.encoder().options());
  m[kClassesKey] = std::to_string(model.num_classes());
  return m;
}

std::unique_ptr<FinetuneModel> load_finetuned(const std::string& checkpoint) {
  SafetensorsFile f = load_safetensors(checkpoint);
  auto it = f.metadata.find(kClassesKey);
  if (it == f.metadata.end())
    fail(checkpoint, ": no classifier in this checkpoint (no '", kClassesKey,
         "' in its metadata); evaluate a checkpoint written by `advcl finetune`");
  nn::ResNetOptions o = cli::model_options_from(checkpoint);
  if (o.num_bn_sets != 1 || o.heads)
    fail(checkpoint, ": a finetuned model has one BN set and no heads; this file says ", o.num_bn_sets,
         " sets, heads ", o.heads ? "on" : "off");
  const int64_t classes = cli::metadata_int(checkpoint, kClassesKey, it->second);
  if (classes < 2) fail(checkpoint, ": metadata '", kClassesKey, "' is ", classes, "; a classifier needs 2 or more classes");
  auto model = std::make_unique<FinetuneModel>(std::make_unique<nn::ResNet18>(o), classes, 0);
  nn::LoadOptions lo;
  lo.optimizer_state = false;
  nn::load_checkpoint(checkpoint, *model, nullptr, lo);
  model->eval();
  return model;
}

}  // namespace advcl::method
