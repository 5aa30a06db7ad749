#include "advcl/cli/common_options.h"

#include <cstdio>

#include "advcl/run/json_out.h"
#include "advcl/run/run_dir.h"
#include "cuda/runtime.h"
#include "cuda/settings.h"
#include "datasets/load_dataset.h"
#include "nn/parallel/communicator.h"
#include "engine/parallel.h"

namespace advcl::cli {

void add_data_options(CLI::App& app, DataOptions& o, bool with_split) {
  app.add_option("--data", o.data, "dataset folder or archive (CIFAR, STL-10, (Fashion-)MNIST, image folder)")
      ->required();
  app.add_option("--dataset", o.format, "format: auto, cifar10, cifar100, stl10, mnist, fashion-mnist, folder")
      ->capture_default_str();
  if (with_split) app.add_option("--split", o.split, "train, test (STL-10: also unlabeled)")->capture_default_str();
  app.add_option("--limit", o.limit, "use only the first N images (0: all)")->capture_default_str();
  app.add_option("--per-class", o.per_class, "use only the first N images of each class (0: all)");
  app.add_option("--size", o.size, "image size the model sees (height = width)")->capture_default_str();
  app.add_option("--channels", o.channels, "1 or 3 (0: as stored)");
  app.add_option("--fit", o.fit, "how 28x28 or other sizes reach --size: pad or resize (default: per format)");
}

void add_common_options(CLI::App& app, CommonOptions& o) {
  add_data_options(app, o.data);
  app.add_option("--out", o.out, "output folder (checkpoints, metrics.jsonl)")->required();
  app.add_option("--seed", o.seed, "seed of every random choice")->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads (0: OpenMP default)");
  app.add_option("--workers", o.workers, "data loader threads")->capture_default_str();
  app.add_option("--log-every", o.log_every, "print progress every N steps")->capture_default_str();
}

std::shared_ptr<const data::ImageDataset> load_data(const DataOptions& o, const std::string& split) {
  data::DatasetSpec spec;
  auto set = [&](const char* name, const std::string& v) {
    if (!v.empty()) data::apply_dataset_option(spec, name, v);
  };
  set("data", o.data);
  set("dataset", o.format);
  set("split", split);
  set("limit", std::to_string(o.limit));
  set("per-class", std::to_string(o.per_class));
  set("size", std::to_string(o.size));
  if (o.channels) set("channels", std::to_string(o.channels));
  set("fit", o.fit);
  auto ds = std::make_shared<const data::ImageDataset>(data::load_dataset(spec));
  std::fprintf(stderr, "data: %s\n", ds->describe().c_str());
  return ds;
}

void apply_threads(const CommonOptions& o) {
  if (o.threads > 0) set_num_threads(o.threads);
  std::fprintf(stderr, "threads: %d\n", num_threads());
}

Device device_from_option(const std::string& device_option) {
  Device d;
  try {
    d = Device::parse(device_option);
  } catch (const Error& e) {
    fail("--device: ", e.what());
  }
  dist::Communicator& comm = dist::world();
  if (d.is_cuda() && comm.distributed() && device_option == "cuda") d = Device::cuda(comm.local_rank());
  return d;
}

Device resolve_device(const std::string& device_option) {
  const Device d = device_from_option(device_option);
  // Ops run on the thread's current device, not on the tensor's: select it
  // here, once, for the whole run (without a GPU this says why it cannot).
  if (d.is_cuda()) cuda::set_current_device(d.index);
  return d;
}

void add_device_options(CLI::App& app, DeviceOptions& o) {
  app.add_option("--device", o.device, "cpu, cuda or cuda:N (under mpirun, cuda: the rank's local GPU)")
      ->capture_default_str();
  app.add_option("--precision", o.precision,
                 "arithmetic of convolutions and matmuls: fp32, tf32 (GPU tensor cores), bf16 (mixed precision: "
                 "GPUs of compute capability 8.0+, CPUs with native bf16; docs/precision.md), or auto (tf32 on a "
                 "GPU, fp32 on a CPU)")
      ->capture_default_str();
}

void add_training_run_options(CLI::App& app, int64_t& save_epoch, int64_t& save_steps, bool& no_resume,
                              bool& detect_anomaly, DeviceOptions& compute) {
  app.add_option("--save-epoch", save_epoch, "keep epoch_N.safetensors every N epochs (0: never)")->capture_default_str();
  app.add_option("--save-steps", save_steps, "also checkpoint every N steps inside an epoch (0: epoch ends only)");
  app.add_flag("--no-resume", no_resume, "start afresh even if --out holds a checkpoint");
  app.add_flag("--detect-anomaly", detect_anomaly,
               "check every op's result for inf/NaN and name the first op that made one (slow: for a diverged run)");
  add_device_options(app, compute);
}

std::string precision_for(const std::string& precision_option, const Device& device) {
  // The CPU's features are looked at only when bf16 is asked for on the CPU.
  if (precision_option != "bf16" || device.is_cuda())
    return precision_for(precision_option, device, cpu::Bf16Support{});
  return precision_for(precision_option, device, cpu::bf16_support());
}

std::string precision_for(const std::string& precision_option, const Device& device,
                          const cpu::Bf16Support& bf16) {
  if (precision_option == "bf16") {
    if (device.is_cuda()) return "bf16";  // the GPU's capability: gpu_bf16_missing, once it is selected
    if (!bf16.native())
      fail("--precision bf16: ", bf16.missing(), "; bf16 would be emulated, slower than fp32. Use fp32 (or auto)");
    return "bf16";
  }
  if (precision_option == "auto") return device.is_cuda() ? "tf32" : "fp32";
  if (precision_option == "fp32") return "fp32";
  if (precision_option == "tf32") {
    if (!device.is_cuda())
      fail("--precision tf32: TensorFloat-32 is a GPU arithmetic and --device is ", device.str(),
           "; use fp32 (or auto) on a CPU");
    return "tf32";
  }
  fail("--precision: '", precision_option, "' is not a precision; use fp32, tf32, bf16 or auto");
}

std::string gpu_bf16_missing(int capability) {
  if (capability >= 80) return "";
  return "this GPU has compute capability " + std::to_string(capability / 10) + "." + std::to_string(capability % 10) +
         "; bf16 tensor cores need 8.0 (Ampere) or newer";
}

ComputeSetup resolve_compute(const DeviceOptions& o) {
  ComputeSetup c;
  c.precision = precision_for(o.precision, device_from_option(o.device));  // checked before a GPU is touched
  c.device = resolve_device(o.device);
  if (c.precision == "bf16" && c.device.is_cuda()) {  // the GPU is selected and checked now: ask it
    const int capability = cuda::compute_capability(c.device.index);
    const std::string missing = gpu_bf16_missing(capability);
    if (!missing.empty())
      fail("--precision bf16: ", missing, " (--device ", c.device.str(), ": ",
           cuda::device_description(c.device.index), "). Use fp32");
  }
  // The setting is the GPU's; a CPU run leaves it alone (it has no effect there).
  if (c.device.is_cuda()) cuda::set_allow_tf32(c.precision == "tf32");
  if (c.precision == "bf16") c.autocast = std::make_shared<autocast::AutocastGuard>(true);
  std::fprintf(stderr, "device: %s, precision %s%s\n", c.device.str().c_str(), c.precision.c_str(),
               c.precision == "bf16" ? " (conv2d and matmul in bf16 with fp32 sums; the rest fp32)" : "");
  return c;
}

std::string options_json(const CLI::App& app) {
  OrderedJson r = OrderedJson::object();
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_name() == "--help" || opt->get_name() == "-h" || opt->get_lnames().empty()) continue;
    // Every value of a list option (--milestones 15,20), else the default.
    std::string v;
    const CLI::results_t& given = opt->results();
    if (given.empty()) v = opt->as<std::string>();
    for (size_t i = 0; i < given.size(); ++i) v += (i ? "," : "") + given[i];
    r[opt->get_lnames()[0]] = v;
  }
  return json_line(r);
}

}  // namespace advcl::cli
