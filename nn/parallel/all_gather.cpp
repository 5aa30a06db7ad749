#include "nn/parallel/all_gather.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "engine/autograd.h"

namespace advcl::dist {

Tensor all_gather_rows(const Tensor& x, Communicator& comm) {
  if (x.dim() < 1) fail("all_gather_rows: expected a tensor with a batch dimension, got a scalar");
  if (!is_floating(x.dtype())) fail("all_gather_rows: expected a floating tensor, got ", dtype_name(x.dtype()));
  int64_t row = 1;  // values per row
  for (int64_t d = 1; d < x.dim(); ++d) row *= x.size(d);
  std::vector<int64_t> rows = comm.all_gather(x.size(0), "all_gather_rows (row counts)");
  std::vector<int64_t> widths = comm.all_gather(row, "all_gather_rows (row sizes)");
  for (int64_t w : widths)
    if (w != row)
      fail("all_gather_rows: the ranks' rows differ in size (this rank: ", shape_str(x.shape()), ")");
  int64_t total = std::accumulate(rows.begin(), rows.end(), int64_t{0});
  int64_t offset = std::accumulate(rows.begin(), rows.begin() + comm.rank(), int64_t{0});
  size_t elem = dtype_size(x.dtype());
  std::vector<int64_t> bytes;
  for (int64_t n : rows) bytes.push_back(n * row * static_cast<int64_t>(elem));

  Shape out_shape = x.shape();
  out_shape[0] = total;
  Tensor host = x.device().is_cpu() ? x : x.to(Device::cpu());
  Tensor gathered = Tensor::empty(out_shape, x.dtype());
  comm.all_gather_bytes(host.raw_data(), host.nbytes(), gathered.raw_data(), bytes, "all_gather_rows");
  Tensor out = x.device().is_cpu() ? gathered : gathered.to(x.device());
  if (needs_graph({x})) {
    int64_t n = x.size(0);
    Communicator* c = &comm;
    record(out, "all_gather_rows", {x}, [c, offset, n](const Tensor& g, const Needs& needs) {
      // Every rank calls this (the same graph on every rank), needed or not.
      Tensor sum = g.detach().clone();
      c->all_reduce(sum, ReduceOp::Sum, "all_gather_rows (backward)");
      std::vector<Tensor> r(1);
      if (needs[0]) r[0] = sum.narrow0(offset, n).clone();
      return r;
    });
  }
  return out;
}

}  // namespace advcl::dist
