// `advcl export`: the encoder of any stage's checkpoint with one BN statistic
// set, as a single-set checkpoint — in our names (loadable by load_encoder,
// so by finetune and eval), or in the reference finetuning model's names for
// its PyTorch scripts (safetensors.torch.load_file, then load_state_dict).
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "advcl/cli/commands.h"
#include "advcl/cli/common_options.h"
#include "advcl/cli/option_checks.h"
#include "advcl/run/export_names.h"
#include "advcl/run/model_io.h"
#include "engine/safetensors.h"
#include "nn/checkpoint.h"

namespace advcl::cli {

namespace {

// --bn-set as an index: one of the file's set names (AdvCL's: normal, pgd,
// pgd_ce; ACL's: normal, pgd) or a number.
int parse_bn_set(const std::string& s, const std::vector<std::string>& names) {
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos) return std::stoi(s);
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == s) return static_cast<int>(i);
  fail("--bn-set: the checkpoint has no BN set called '", s, "' (its sets: ", join(names, ", "), ")");
}

}  // namespace

int cmd_export(int argc, char** argv) {
  CLI::App app{"Export a checkpoint's encoder with one BN set as a single-set checkpoint", "advcl export"};
  std::string ckpt, out, bn_set, format = "advcl";
  app.add_option("--ckpt", ckpt, "checkpoint of any stage (pretrain, simclr, finetune)")->required();
  app.add_option("--out", out, "output .safetensors file")->required();
  app.add_option("--bn-set", bn_set,
                 "BN statistic set of a multi-set checkpoint: its name (AdvCL: normal, pgd, pgd_ce; ACL: normal, "
                 "pgd) or its index (default: set 1, pgd, the set the reference finetunes)");
  app.add_option("--format", format,
                 "advcl: our names and metadata; reference-finetune: the reference finetuning model's names "
                 "(shortcut.0/1, plain bnK)")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  check_options(app);  // every shared option's value, before any work (advcl/cli/option_checks.h)
  if (format != "advcl" && format != "reference-finetune")
    fail("--format must be advcl or reference-finetune, got '", format, "'");

  const int file_sets = model_options_from(ckpt).num_bn_sets;
  const std::vector<std::string> names = bn_set_names_from(ckpt);
  int set = -1;  // load_encoder: the file's only set, or `pgd` of a multi-set file
  if (!bn_set.empty()) {
    // A single-set file's set was chosen when it was written; a name here would only mislead.
    if (file_sets == 1) fail(ckpt, " has a single BN set; leave out --bn-set");
    set = parse_bn_set(bn_set, names);
  }
  std::unique_ptr<nn::ResNet18> encoder = load_encoder(ckpt, set);
  const int chosen = file_sets == 1 ? 0 : (set < 0 ? kDefaultFinetuneBnSet : set);
  const std::string set_label = file_sets == 1 ? "the file's only set"
                                : chosen < static_cast<int>(names.size()) ? names[static_cast<size_t>(chosen)]
                                                                          : std::to_string(chosen);

  std::map<std::string, std::string> md = encoder_metadata(encoder->options());
  md["export.source"] = ckpt;
  md["export.bn_set"] = file_sets == 1 ? "only" : std::to_string(chosen);
  nn::StateDict sd = encoder->state_dict();
  if (format == "advcl") {
    nn::CheckpointInfo info;
    info.metadata = md;
    nn::save_checkpoint(out, *encoder, nullptr, info);
  } else {
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const nn::NamedTensor& t : sd) tensors.emplace_back(reference_finetune_name(t.name), t.tensor);
    // Not "advcl.checkpoint": these names are not ours, and our loader must not take them for ours.
    md["format"] = "advcl.reference-finetune-encoder";
    save_safetensors(out, tensors, md);
  }
  std::printf("wrote %s: encoder, %zu tensors, BN set %s, format %s\n", out.c_str(), sd.size(), set_label.c_str(),
              format.c_str());
  return 0;
}

}  // namespace advcl::cli
