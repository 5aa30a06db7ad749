#include "nn/checkpoint.h"

#include <cctype>
#include <set>
#include <sstream>

#include "engine/finite_check.h"
#include "engine/safetensors.h"

namespace advcl::nn {

namespace {

const std::string kMomentumPrefix = "optim.momentum.";
// How many momentum buffers the optimiser had when the file was written (the
// parameters that had stepped), so that a load can tell a file that lost
// some of them from one written before they existed.
const char* const kMomentumCountKey = "optim.momentum_buffers";

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

bool wanted(const std::string& name, const std::vector<std::string>& prefixes) {
  if (prefixes.empty()) return true;
  for (const std::string& p : prefixes)
    if (starts_with(name, p)) return true;
  return false;
}

// `X.bn_list.{i}.Y` -> ("X.Y", i); names without a set index -> (name, -1).
std::pair<std::string, int> strip_bn_set(const std::string& name) {
  const std::string key = "bn_list.";
  size_t at = name.find(key);
  while (at != std::string::npos && at != 0 && name[at - 1] != '.') at = name.find(key, at + 1);
  if (at == std::string::npos) return {name, -1};
  size_t digits = at + key.size(), end = digits;
  while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end]))) ++end;
  if (end == digits || end >= name.size() || name[end] != '.') return {name, -1};
  return {name.substr(0, at) + name.substr(end + 1), std::stoi(name.substr(digits, end - digits))};
}

// "a, b, c" (at most `limit` names, then "and N more").
std::string list(const std::vector<std::string>& names, size_t limit = 12) {
  std::ostringstream os;
  for (size_t i = 0; i < names.size() && i < limit; ++i) os << (i ? ", " : "") << names[i];
  if (names.size() > limit) os << " and " << names.size() - limit << " more";
  return os.str();
}

int64_t parse_int(const std::string& path, const std::map<std::string, std::string>& md, const char* key) {
  auto it = md.find(key);
  if (it == md.end()) return 0;
  try {
    size_t used = 0;
    int64_t v = std::stoll(it->second, &used);
    if (used == it->second.size()) return v;
  } catch (const std::exception&) {
  }
  fail("checkpoint ", path, ": metadata '", key, "' is '", it->second, "', not an integer");
}

}  // namespace

namespace {

// The resume load is as strict as the weights load: the file must hold the
// momentum buffer of every parameter that had stepped when it was written
// (their count is in the metadata), so that a resumed run continues exactly;
// a file that lost some is refused, naming the trained parameters without one.
// Files without the count (written before it was recorded) must hold a buffer
// for every trained parameter, or none (an optimiser that had not stepped, or
// ran without momentum).
void check_momentum_complete(const std::string& path, const std::map<std::string, std::string>& md,
                             const std::map<std::string, Tensor>& momentum, const Sgd& optimizer) {
  std::vector<std::string> without;
  for (const NamedTensor& p : optimizer.params())
    if (!momentum.count(p.name)) without.push_back(p.name);
  auto it = md.find(kMomentumCountKey);
  if (it != md.end()) {
    const int64_t saved = parse_int(path, md, kMomentumCountKey);
    if (saved == static_cast<int64_t>(momentum.size())) return;
    fail("checkpoint ", path, ": the optimizer state is incomplete: ", saved, " momentum buffers (",
         kMomentumPrefix, "*) were saved, the file holds ", momentum.size(),
         without.empty() ? std::string() : "; trained parameters without one: " + list(without),
         "; resuming would not continue the run exactly (use --no-resume to start afresh)");
  }
  if (momentum.empty() || without.empty()) return;
  fail("checkpoint ", path, ": the optimizer state is incomplete: ", without.size(), " of the ",
       optimizer.params().size(), " trained parameters have no momentum buffer (", kMomentumPrefix, "*): ",
       list(without), "; resuming would not continue the run exactly (use --no-resume to start afresh)");
}

}  // namespace

LoadOptions LoadOptions::encoder_from_pretraining(int bn_set) {
  LoadOptions o;
  o.only_prefixes = {"conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4."};
  o.bn_set_from_file = bn_set;
  o.optimizer_state = false;
  return o;
}

namespace {

// "a (and 3 more: b, c, d)": the first of `names`, then the rest.
std::string first_and_rest(const std::vector<std::string>& names) {
  std::string r = names.front();
  if (names.size() > 1) {
    std::vector<std::string> rest(names.begin() + 1, names.end());
    r += " (and " + std::to_string(rest.size()) + " more: " + list(rest, 8) + ")";
  }
  return r;
}

// load_state_dict, and for a file (`exact_dtypes`) also refusing a floating
// tensor stored in another precision than the model's.
void load_tensors(Module& model, const std::map<std::string, Tensor>& tensors, const LoadOptions& options,
                  const std::string& source, bool exact_dtypes) {
  std::map<std::string, Tensor> expect;
  for (const NamedTensor& t : model.state_dict())
    if (wanted(t.name, options.only_prefixes)) expect[t.name] = t.tensor;

  std::vector<std::string> unexpected, misshaped;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, source)
  std::vector<std::string> copied_names;          // the file's name of each copy's source
  std::set<std::string> found;
  for (const auto& [file_name, value] : tensors) {
    if (starts_with(file_name, "optim.")) continue;  // optimiser state, not the model's
    std::string name = file_name;
    if (options.bn_set_from_file >= 0) {
      auto [stripped, set] = strip_bn_set(file_name);
      if (set >= 0 && set != options.bn_set_from_file) continue;  // another statistic set: deliberately skipped
      name = stripped;
    }
    if (!wanted(name, options.only_prefixes)) continue;
    auto it = expect.find(name);
    if (it == expect.end()) {
      unexpected.push_back(file_name);
      continue;
    }
    const Tensor& dst = it->second;
    if (value.shape() != dst.shape() || is_floating(value.dtype()) != is_floating(dst.dtype())) {
      misshaped.push_back(file_name + " (" + dtype_name(value.dtype()) + " " + shape_str(value.shape()) +
                          " in the file, the model's " + name + " is " + dtype_name(dst.dtype()) + " " +
                          shape_str(dst.shape()) + ")");
      continue;
    }
    if (exact_dtypes && value.dtype() != dst.dtype()) {
      misshaped.push_back(file_name + " (" + dtype_name(value.dtype()) + " in the file, the model's " + name + " is " +
                          dtype_name(dst.dtype()) + "; a checkpoint stores the model's own dtype: convert the file "
                          "deliberately if this is intended)");
      continue;
    }
    found.insert(name);
    copies.emplace_back(dst, value);
    copied_names.push_back(file_name);
  }
  std::vector<std::string> missing;
  for (const auto& [name, t] : expect)
    if (!found.count(name)) missing.push_back(name);
  if (!missing.empty() || !unexpected.empty() || !misshaped.empty()) {
    std::ostringstream os;
    os << source << " does not match the model";
    if (options.bn_set_from_file >= 0) os << " (loading BN set " << options.bn_set_from_file << " of the file)";
    os << ":";
    if (!missing.empty()) os << " missing tensors (" << missing.size() << "): " << list(missing) << ".";
    if (!unexpected.empty()) os << " unexpected tensors (" << unexpected.size() << "): " << list(unexpected) << ".";
    if (!misshaped.empty()) os << " mismatched tensors (" << misshaped.size() << "): " << list(misshaped) << ".";
    fail(os.str());
  }
  // A diverged model (inf/NaN weights or statistics) must not load as if it
  // were one: it evaluates to chance, or resumes into the same failure.
  // (Only the tensors loaded: a skipped BN set does not matter.) One read.
  std::vector<Tensor> sources;
  for (auto& c : copies) sources.push_back(c.second);
  std::vector<std::string> bad;
  for (size_t i : non_finite_tensors(sources)) bad.push_back(copied_names[i]);
  if (!bad.empty())
    fail(source, ": ", first_and_rest(bad), " holds non-finite values (inf or NaN); this is a diverged model, refused");
  for (auto& [dst, src] : copies) {
    Tensor d = dst;
    d.copy_(src.to(d.device()));
  }
}

}  // namespace

void load_state_dict(Module& model, const std::map<std::string, Tensor>& tensors, const LoadOptions& options,
                     const std::string& source) {
  load_tensors(model, tensors, options, source, /*exact_dtypes=*/false);
}

void save_checkpoint(const std::string& path, const Module& model, const Sgd* optimizer, const CheckpointInfo& info) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const NamedTensor& t : model.state_dict()) tensors.emplace_back(t.name, t.tensor);
  std::map<std::string, std::string> md = info.metadata;
  for (const char* reserved : {"format", "format_version", "epoch", "step", "optim.lr", kMomentumCountKey})
    if (info.metadata.count(reserved)) fail("save_checkpoint ", path, ": metadata key '", reserved, "' is reserved");
  md["format"] = kCheckpointFormat;
  md["format_version"] = std::to_string(kCheckpointVersion);
  md["epoch"] = std::to_string(info.epoch);
  md["step"] = std::to_string(info.step);
  if (optimizer) {
    std::ostringstream lr;
    lr.precision(17);
    lr << optimizer->lr();
    md["optim.lr"] = lr.str();
    for (const auto& [name, buf] : optimizer->momentum_buffers()) tensors.emplace_back(kMomentumPrefix + name, buf);
    md[kMomentumCountKey] = std::to_string(optimizer->momentum_buffers().size());
  }
  // Never a diverged model on disk: the caller keeps the previous file.
  std::vector<std::string> bad = non_finite_names(tensors);
  if (!bad.empty())
    fail("save_checkpoint ", path, ": ", first_and_rest(bad),
         " holds non-finite values (inf or NaN); not written (the previous file, if any, is unchanged)");
  save_safetensors(path, tensors, md);
}

CheckpointInfo load_checkpoint(const std::string& path, Module& model, Sgd* optimizer, const LoadOptions& options) {
  SafetensorsFile file = load_safetensors(path);
  auto fmt = file.metadata.find("format");
  if (fmt != file.metadata.end()) {
    if (fmt->second != kCheckpointFormat)
      fail("checkpoint ", path, ": metadata format is '", fmt->second, "', expected '", kCheckpointFormat, "'");
    int64_t version = parse_int(path, file.metadata, "format_version");
    if (version < 1 || version > kCheckpointVersion)
      fail("checkpoint ", path, ": format_version ", version, " is not supported (this build reads 1..",
           kCheckpointVersion, ")");
  }
  load_tensors(model, file.tensors, options, "checkpoint " + path, /*exact_dtypes=*/true);
  if (optimizer && options.optimizer_state) {
    std::map<std::string, Tensor> momentum;
    std::vector<std::pair<std::string, Tensor>> named;
    for (const auto& [name, t] : file.tensors)
      if (starts_with(name, kMomentumPrefix)) {
        momentum[name.substr(kMomentumPrefix.size())] = t;
        named.emplace_back(name, t);
      }
    check_momentum_complete(path, file.metadata, momentum, *optimizer);
    std::vector<std::string> bad = non_finite_names(named);
    if (!bad.empty())
      fail("checkpoint ", path, ": ", first_and_rest(bad), " holds non-finite values (inf or NaN); refused");
    try {
      optimizer->set_momentum_buffers(momentum);
    } catch (const Error& e) {
      fail("checkpoint ", path, ": ", e.what());
    }
  }
  CheckpointInfo info;
  info.epoch = parse_int(path, file.metadata, "epoch");
  info.step = parse_int(path, file.metadata, "step");
  info.metadata = file.metadata;
  return info;
}

}  // namespace advcl::nn
