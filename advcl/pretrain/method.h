// A pretraining method, as `advcl pretrain --method NAME` runs it, and the
// registry of methods.
//
// Everything that differs between two adversarial contrastive methods is
// declared here, once, by the method; the run around it (data, loader,
// model, optimiser, schedule, checkpoints, resume, data parallelism, logging)
// is the same for all and lives in advcl/cli/cmd_pretrain.cpp:
//
//   views     which augmented copies of each training image the loader makes
//             (advcl/pretrain/advcl_views.h);
//   bn_sets   the batch-norm statistic sets the encoder carries, by name, in
//             checkpoint order (`bn_list.0`, `bn_list.1`, ...); finetuning
//             takes set 1 by default, so a method with several sets puts its
//             adversarial one second;
//   pseudo_labels  whether it trains the pseudo-label heads (and so needs
//             `--labels`);
//   step      one training step on a batch: attack, loss, backward through
//             the step context, SGD step; it returns the values to log.
//
// From bn_sets and pseudo_labels the run composes the method's model, a
// ContrastiveModel (advcl/pretrain/contrastive_model.h): the plain backbone
// with one BN statistic set per name, head_proj and, with pseudo-labels, one
// classifier per granularity of the label file.
//
// Adding a method takes its step file, a function that returns its
// PretrainMethod, and one line in builtin_methods() (method.cpp); a test can
// also add one at run time with register_method(). docs/methods.md walks
// through ACL as the example.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "advcl/pretrain/contrastive_model.h"
#include "advcl/step/step_context.h"
#include "advcl/step/step_values.h"
#include "datasets/simclr_transform.h"
#include "datasets/transforms.h"
#include "engine/rng.h"
#include "nn/sgd.h"

namespace advcl::method {

// The settings of `advcl pretrain` that methods share; each method reads the
// ones it uses (docs/method.md sections 9-10 give AdvCL's values).
struct PretrainSettings {
  double epsilon = 8.0 / 255;    // attack radius (L-inf), in [0, 1] units
  double step_size = 2.0 / 255;  // attack step
  int iterations = 5;            // attack iterations
  double temperature = 0.5;      // contrastive temperature
  double ce_weight = 0.2;        // weight of the pseudo-label cross-entropy (AdvCL)
  double radius = 8;             // high-pass radius of the high-frequency view (AdvCL)
  bool high_frequency_view = true;  // AdvCL's ablation: false drops the HFC view
  bool use_pseudo_labels = true;    // AdvCL's ablation: false drops the pseudo-label term and heads
};

// One rank's share of a training batch, on the model's device.
struct PretrainBatch {
  std::vector<Tensor> views;   // float [B, C, H, W] in [0, 1], in the order of the method's views
  std::vector<Tensor> pseudo;  // int64 [B] per pseudo-label head (methods with pseudo-labels)
  RngKey noise;                // keys the attack's random start: seed, step, the first image's global position
};

struct PretrainMethod {
  std::string name;     // the value of --method
  std::string summary;  // one line for --help and the log
  std::vector<std::string> bn_sets;
  // Whether this run trains pseudo-label heads (may depend on the settings: AdvCL's ablation).
  std::function<bool(const PretrainSettings&)> pseudo_labels;
  std::function<std::shared_ptr<const data::SampleTransform>(const views::SimclrOptions&)> views;
  std::function<StepValues(ContrastiveModel& model, nn::Sgd& sgd, const PretrainBatch& batch,
                           const PretrainSettings& settings, StepContext& ctx)>
      step;
};

// Adds a method (its name must be new); the built-in ones are there from the start.
void register_method(PretrainMethod method);
// The method called `name`; the error lists the known names.
const PretrainMethod& find_method(const std::string& name);
// Every registered name, in registration order.
std::vector<std::string> method_names();

}  // namespace advcl::method
