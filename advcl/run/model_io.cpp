#include "advcl/model_io.h"

#include <sstream>

#include "advcl/parse_number.h"
#include "engine/safetensors.h"
#include "nn/checkpoint.h"

namespace advcl::cli {

std::map<std::string, std::string> model_metadata(const nn::ResNetOptions& o) {
  std::string ks;
  for (int64_t k : o.pseudo_classes) ks += (ks.empty() ? "" : ",") + std::to_string(k);
  return {{"model.width", std::to_string(o.width)},       {"model.in_channels", std::to_string(o.in_channels)},
          {"model.bn_sets", std::to_string(o.num_bn_sets)}, {"model.heads", o.heads ? "1" : "0"},
          {"model.pseudo_classes", ks},                     {"model.proj_dim", std::to_string(o.proj_dim)}};
}

nn::ResNetOptions model_options_from(const std::string& checkpoint) {
  SafetensorsFile f = load_safetensors(checkpoint);
  auto get = [&](const std::string& key) {
    auto it = f.metadata.find(key);
    if (it == f.metadata.end())
      fail(checkpoint, ": no '", key, "' in the metadata; was it written by `advcl pretrain` or `advcl simclr`?");
    return it->second;
  };
  // Integers with an error naming the file and key (not a bare "stoll"), in a
  // range the model can be built with.
  auto get_int = [&](const std::string& key, int64_t lo, int64_t hi) {
    int64_t v = metadata_int(checkpoint, key, get(key));
    if (v < lo || v > hi) fail(checkpoint, ": metadata '", key, "' is ", v, ", outside [", lo, ", ", hi, "]");
    return v;
  };
  nn::ResNetOptions o;
  o.width = get_int("model.width", 1, 4096);
  o.in_channels = get_int("model.in_channels", 1, 4);
  o.num_bn_sets = static_cast<int>(get_int("model.bn_sets", 1, 64));
  o.heads = get("model.heads") == "1";
  o.proj_dim = get_int("model.proj_dim", 1, 1 << 20);
  o.pseudo_classes.clear();
  std::stringstream ks(get("model.pseudo_classes"));
  for (std::string k; std::getline(ks, k, ',');)
    if (!k.empty()) o.pseudo_classes.push_back(metadata_int(checkpoint, "model.pseudo_classes", k));
  return o;
}

std::unique_ptr<nn::ResNet18> load_encoder(const std::string& checkpoint, int bn_set,
                                           std::shared_ptr<const nn::BatchNormSync> bn_sync) {
  nn::ResNetOptions file_opts = model_options_from(checkpoint);
  nn::ResNetOptions o = file_opts;
  o.num_bn_sets = 1;
  o.heads = false;
  o.pseudo_classes.clear();
  o.bn_sync = std::move(bn_sync);
  auto model = std::make_unique<nn::ResNet18>(o);
  nn::LoadOptions lo;
  lo.only_prefixes = model->encoder_prefixes();
  lo.optimizer_state = false;
  if (file_opts.num_bn_sets > 1) {
    if (bn_set < 0) bn_set = 1;  // the reference's finetuning keeps `pgd`
    if (bn_set >= file_opts.num_bn_sets)
      fail(checkpoint, ": BN set ", bn_set, " asked for, the file has ", file_opts.num_bn_sets);
    lo.bn_set_from_file = bn_set;
  }
  nn::load_checkpoint(checkpoint, *model, nullptr, lo);
  model->eval();
  return model;
}

}  // namespace advcl::cli
