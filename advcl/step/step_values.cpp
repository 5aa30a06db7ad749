#include "advcl/step/step_values.h"

#include <vector>

#include "engine/ops.h"

namespace advcl::method {

std::map<std::string, double> read_values(const StepValues& values) {
  std::map<std::string, double> out;
  if (values.empty()) return out;
  std::vector<Tensor> parts;
  for (auto& [name, v] : values) {
    if (v.numel() != 1) fail("read_values: '", name, "' has shape ", shape_str(v.shape()), ", not one value");
    check_same_device("read_values", v, values.begin()->second, name.c_str());
    parts.push_back(v.detach().to(DType::Float64).view({1}));
  }
  std::vector<double> host;
  {
    NoGradGuard no_grad;
    host = ops::cat(parts).to_vector<double>();
  }
  size_t i = 0;
  for (auto& [name, v] : values) out[name] = host[i++];
  return out;
}

}  // namespace advcl::method
