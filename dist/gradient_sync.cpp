#include "dist/gradient_sync.h"

#include <string>
#include <vector>

namespace advcl::dist {

void average_gradients(const nn::StateDict& params, Communicator& comm) {
  if (comm.size() == 1) return;
  // Layout: [count, count^2], then per parameter [has-gradient flag, values...].
  // Sums of count and count^2 equal size*count and size*count^2 only if
  // every rank has the same count (a cheap layout check riding along).
  int64_t total = 0;
  for (const nn::NamedTensor& p : params) total += 1 + p.tensor.numel();
  std::vector<double> buf;
  buf.reserve(static_cast<size_t>(total) + 2);
  double count = static_cast<double>(total);
  buf.push_back(count);
  buf.push_back(count * count);
  for (const nn::NamedTensor& p : params) {
    Tensor g = p.tensor.grad();
    buf.push_back(g.defined() ? 1.0 : 0.0);
    if (!g.defined()) {
      buf.insert(buf.end(), static_cast<size_t>(p.tensor.numel()), 0.0);
      continue;
    }
    if (g.shape() != p.tensor.shape())
      fail("average_gradients: the gradient of '", p.name, "' has shape ", shape_str(g.shape()), ", the parameter ",
           shape_str(p.tensor.shape()));
    std::vector<double> v = g.to(DType::Float64).to_vector<double>();
    buf.insert(buf.end(), v.begin(), v.end());
  }
  comm.all_reduce(buf.data(), static_cast<int64_t>(buf.size()), ReduceOp::Sum, "average_gradients");
  double n = comm.size();
  if (buf[0] != n * count || buf[1] != n * count * count)
    fail("average_gradients: the ranks pass different parameter lists (this rank: ", params.size(),
         " parameters, ", total - static_cast<int64_t>(params.size()), " values)");
  size_t at = 2;
  for (const nn::NamedTensor& p : params) {
    bool any = buf[at] > 0;
    ++at;
    auto first = buf.begin() + static_cast<std::ptrdiff_t>(at);
    at += static_cast<size_t>(p.tensor.numel());
    if (!any) continue;
    std::vector<double> mean(first, buf.begin() + static_cast<std::ptrdiff_t>(at));
    for (double& x : mean) x /= n;
    Tensor g = p.tensor.grad();
    Tensor avg = Tensor::from_vector<double>(mean, p.tensor.shape());
    if (g.defined())
      g.copy_(avg);  // keeps the gradient's own dtype and device
    else
      Tensor(p.tensor).set_grad(avg.to(p.tensor.dtype()).to(p.tensor.device()));
  }
}

double local_loss_scale(int64_t local_count, Communicator& comm) {
  if (local_count < 0) fail("local_loss_scale: negative sample count ", local_count);
  if (comm.size() == 1) return 1.0;
  int64_t global = local_count;
  comm.all_reduce(&global, 1, ReduceOp::Sum, "local_loss_scale");
  if (global == 0) fail("local_loss_scale: no rank holds a sample");
  return static_cast<double>(local_count) * comm.size() / static_cast<double>(global);
}

}  // namespace advcl::dist
