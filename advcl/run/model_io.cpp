#include "advcl/run/model_io.h"

#include <sstream>
#include <utility>

#include "advcl/pretrain/advcl_step.h"
#include "engine/parse_number.h"
#include "engine/safetensors.h"
#include "nn/checkpoint.h"

namespace advcl::cli {

namespace {

// The model.* entries. Every checkpoint advcl has written carries these same
// keys, so a file reads the same whichever version wrote it.
std::map<std::string, std::string> entries(const nn::ResNetOptions& backbone, bool heads, int64_t proj_dim,
                                           const std::vector<int64_t>& pseudo_classes) {
  std::string ks;
  for (int64_t k : pseudo_classes) ks += (ks.empty() ? "" : ",") + std::to_string(k);
  return {{"model.width", std::to_string(backbone.width)},
          {"model.in_channels", std::to_string(backbone.in_channels)},
          {"model.bn_sets", std::to_string(backbone.num_bn_sets)},
          {"model.heads", heads ? "1" : "0"},
          {"model.pseudo_classes", ks},
          {"model.proj_dim", std::to_string(proj_dim)}};
}

// The entry `key` of `metadata`, the metadata of file `checkpoint` (named in errors).
std::string entry(const std::string& checkpoint, const std::map<std::string, std::string>& metadata,
                  const std::string& key) {
  auto it = metadata.find(key);
  if (it == metadata.end())
    fail(checkpoint, ": no '", key, "' in the metadata; was it written by `advcl pretrain` or `advcl simclr`?");
  return it->second;
}

// The backbone described by `metadata`, the metadata of file `checkpoint`.
nn::ResNetOptions backbone_in(const std::string& checkpoint, const std::map<std::string, std::string>& metadata) {
  // Integers with an error naming the file and key (not a bare "stoll"), in a
  // range the model can be built with.
  auto get_int = [&](const std::string& key, int64_t lo, int64_t hi) {
    int64_t v = metadata_int(checkpoint, key, entry(checkpoint, metadata, key));
    if (v < lo || v > hi) fail(checkpoint, ": metadata '", key, "' is ", v, ", outside [", lo, ", ", hi, "]");
    return v;
  };
  nn::ResNetOptions o;
  o.width = get_int("model.width", 1, 4096);
  o.in_channels = get_int("model.in_channels", 1, 4);
  o.num_bn_sets = static_cast<int>(get_int("model.bn_sets", 1, 64));
  return o;
}

}  // namespace

std::map<std::string, std::string> model_metadata(const method::ContrastiveModelOptions& o) {
  return entries(o.backbone, true, o.proj_dim, o.pseudo_classes);
}

std::map<std::string, std::string> encoder_metadata(const nn::ResNetOptions& o) {
  // model.proj_dim has no head to describe here; it keeps the default, as in
  // every earlier file of a model without heads, whose readers require the key.
  return entries(o, false, method::ContrastiveModelOptions{}.proj_dim, {});
}

nn::ResNetOptions model_options_from(const std::string& checkpoint) {
  return backbone_in(checkpoint, load_safetensors(checkpoint).metadata);
}

std::vector<std::string> bn_set_names_from(const std::string& checkpoint) {
  SafetensorsFile f = load_safetensors(checkpoint);
  const int sets = backbone_in(checkpoint, f.metadata).num_bn_sets;
  std::vector<std::string> names;
  auto it = f.metadata.find("model.bn_set_names");
  if (it != f.metadata.end()) {
    std::stringstream ss(it->second);
    for (std::string n; std::getline(ss, n, ',');) names.push_back(n);
    if (static_cast<int>(names.size()) != sets)
      fail(checkpoint, ": metadata 'model.bn_set_names' names ", names.size(), " sets, the model has ", sets);
    return names;
  }
  if (sets == 3) return method::kAdvclBnSetNames;
  for (int i = 0; i < sets; ++i) names.push_back(std::to_string(i));
  return names;
}

std::string bn_set_names_entry(const std::vector<std::string>& names) {
  for (const std::string& n : names)
    if (n.empty() || n.find(',') != std::string::npos) fail("BN set name '", n, "' must be non-empty and without ','");
  return join(names, ",");
}

std::unique_ptr<nn::ResNet18> load_encoder(const std::string& checkpoint, int bn_set,
                                           std::shared_ptr<const nn::BatchNormSync> bn_sync) {
  nn::ResNetOptions file_opts = model_options_from(checkpoint);
  nn::ResNetOptions o = file_opts;
  o.num_bn_sets = 1;
  o.bn_sync = std::move(bn_sync);
  auto model = std::make_unique<nn::ResNet18>(o);
  nn::LoadOptions lo;
  lo.only_prefixes = model->encoder_prefixes();
  lo.optimizer_state = false;
  if (file_opts.num_bn_sets > 1) {
    if (bn_set < 0) bn_set = kDefaultFinetuneBnSet;  // the reference's finetuning keeps `pgd`
    if (bn_set >= file_opts.num_bn_sets)
      fail(checkpoint, ": BN set ", bn_set, " asked for, the file has ", file_opts.num_bn_sets);
    lo.bn_set_from_file = bn_set;
  }
  nn::load_checkpoint(checkpoint, *model, nullptr, lo);
  model->eval();
  return model;
}

}  // namespace advcl::cli

namespace advcl::method {

namespace {
constexpr const char* kClassesKey = "finetune.classes";
}

std::map<std::string, std::string> finetune_metadata(FinetuneModel& model) {
  std::map<std::string, std::string> m = cli::encoder_metadata(model.encoder().options());
  m[kClassesKey] = std::to_string(model.num_classes());
  return m;
}

std::unique_ptr<FinetuneModel> load_finetuned(const std::string& checkpoint) {
  SafetensorsFile f = load_safetensors(checkpoint);
  auto it = f.metadata.find(kClassesKey);
  if (it == f.metadata.end())
    fail(checkpoint, ": no classifier in this checkpoint (no '", kClassesKey,
         "' in its metadata); evaluate a checkpoint written by `advcl finetune`");
  nn::ResNetOptions o = cli::backbone_in(checkpoint, f.metadata);
  const bool heads = cli::entry(checkpoint, f.metadata, "model.heads") == "1";
  if (o.num_bn_sets != 1 || heads)
    fail(checkpoint, ": a finetuned model has one BN set and no heads; this file says ", o.num_bn_sets,
         " sets, heads ", heads ? "on" : "off");
  const int64_t classes = metadata_int(checkpoint, kClassesKey, it->second);
  if (classes < 2) fail(checkpoint, ": metadata '", kClassesKey, "' is ", classes, "; a classifier needs 2 or more classes");
  auto model = std::make_unique<FinetuneModel>(std::make_unique<nn::ResNet18>(o), classes, 0);
  nn::LoadOptions lo;
  lo.optimizer_state = false;
  nn::load_checkpoint(checkpoint, *model, nullptr, lo);
  model->eval();
  return model;
}

}  // namespace advcl::method
