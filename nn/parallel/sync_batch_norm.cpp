#include "nn/parallel/sync_batch_norm.h"

#include <vector>

#include "nn/parallel/communicator.h"

namespace advcl::dist {

namespace {

void all_reduce_stats(ops::ChannelStats& st) {
  Communicator& comm = world();
  if (comm.size() == 1) return;
  std::vector<double> sum = st.sum.to_vector<double>(), sum_sq = st.sum_sq.to_vector<double>();
  size_t C = sum.size();
  // [sum (C), sum_sq (C), count]: one all-reduce. Counts are integers far
  // below 2^53, exact in float64.
  std::vector<double> buf(sum);
  buf.insert(buf.end(), sum_sq.begin(), sum_sq.end());
  buf.push_back(static_cast<double>(st.count));
  buf.push_back(static_cast<double>(C));  // every rank must reduce the same layer
  comm.all_reduce(buf.data(), static_cast<int64_t>(buf.size()), ReduceOp::Sum, "synchronised batch norm (forward)");
  if (buf[2 * C + 1] != static_cast<double>(C) * comm.size())
    fail("synchronised batch norm: the ranks reached different layers (this rank: ", C,
         " channels); every rank must run the same BN calls in the same order");
  Device dev = st.sum.device();
  st.sum = Tensor::from_vector<double>(std::vector<double>(buf.begin(), buf.begin() + C), {static_cast<int64_t>(C)}, dev);
  st.sum_sq = Tensor::from_vector<double>(std::vector<double>(buf.begin() + C, buf.begin() + 2 * C),
                                          {static_cast<int64_t>(C)}, dev);
  st.count = static_cast<int64_t>(buf[2 * C]);
}

void all_reduce_backward_sums(Tensor& sum_g_t, Tensor& sum_gx_t) {
  Communicator& comm = world();
  if (comm.size() == 1) return;
  std::vector<double> sum_g = sum_g_t.to_vector<double>(), sum_gx = sum_gx_t.to_vector<double>();
  size_t C = sum_g.size();
  std::vector<double> buf(sum_g);
  buf.insert(buf.end(), sum_gx.begin(), sum_gx.end());
  buf.push_back(static_cast<double>(C));
  comm.all_reduce(buf.data(), static_cast<int64_t>(buf.size()), ReduceOp::Sum, "synchronised batch norm (backward)");
  if (buf[2 * C] != static_cast<double>(C) * comm.size())
    fail("synchronised batch norm (backward): the ranks reached different layers (this rank: ", C, " channels)");
  // MPI sums on the host (GPU ranks stage through host memory).
  Device dev = sum_g_t.device();
  auto C64 = static_cast<int64_t>(C);
  sum_g_t = Tensor::from_vector<double>(std::vector<double>(buf.begin(), buf.begin() + C64), {C64}, dev);
  sum_gx_t = Tensor::from_vector<double>(std::vector<double>(buf.begin() + C64, buf.begin() + 2 * C64), {C64}, dev);
}

}  // namespace

std::shared_ptr<const nn::BatchNormSync> make_batch_norm_sync() {
  auto s = std::make_shared<nn::BatchNormSync>();
  s->all_reduce_stats = all_reduce_stats;
  s->all_reduce_backward_sums = all_reduce_backward_sums;
  return s;
}

}  // namespace advcl::dist
