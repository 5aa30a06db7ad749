#include "engine/ops/sgd_update.h"

#include "engine/dispatch.h"
#include "engine/ops/sgd_update_cuda.h"
#include "engine/parallel.h"

namespace advcl::ops {

namespace {

void check_entry(const SgdEntry& e, const SgdEntry& group) {
  auto same = [&](const Tensor& t, const char* what) {
    if (t.shape() != e.param.shape() || t.dtype() != e.param.dtype() || t.device() != e.param.device())
      fail("sgd: the ", what, " of a parameter of shape ", shape_str(e.param.shape()), " (", dtype_name(e.param.dtype()),
           ") is ", shape_str(t.shape()), " (", dtype_name(t.dtype()), ")", t.device() != e.param.device() ? " on another device" : "");
  };
  same(e.grad, "gradient");
  if (e.buf.defined()) same(e.buf, "momentum buffer");
  if (e.buf.defined() != group.buf.defined())
    fail("sgd: parameters of one step must all have momentum buffers or none");
}

template <class T>
void run(const kernels::SgdTable<T>& table, Device dev, const kernels::SgdHyper& h) {
  if (table.count == 0) return;
  if (on_cuda("sgd", dev)) {
    ADVCL_CUDA_ONLY(cuda_ops::sgd_update(table, h));
  } else {
    parallel_for(table.chunk_start[table.count], [&](int64_t c) { kernels::sgd_chunk(table, c, 0, 1, h); }, 2);
  }
}

// One (dtype, device) group: tables of up to kSgdMaxTensors entries.
template <class T>
void run_group(const std::vector<SgdEntry>& entries, const std::vector<size_t>& members, const kernels::SgdHyper& h) {
  kernels::SgdTable<T> table;
  table.count = 0;
  table.chunk_start[0] = 0;
  Device dev = entries[members[0]].param.device();
  for (size_t i : members) {
    const SgdEntry& e = entries[i];
    if (e.param.numel() == 0) continue;
    if (table.count == kernels::kSgdMaxTensors) {
      run(table, dev, h);
      table.count = 0;
    }
    int k = table.count++;
    table.t[k] = {e.param.data<T>(), e.grad.data<T>(), e.buf.defined() ? e.buf.data<T>() : nullptr, e.param.numel(),
                  e.first};
    table.chunk_start[k + 1] = table.chunk_start[k] + kernels::sgd_chunks(e.param.numel());
  }
  run(table, dev, h);
}

}  // namespace

void sgd_update(const std::vector<SgdEntry>& entries, const kernels::SgdHyper& hyper) {
  std::vector<bool> done(entries.size(), false);
  for (size_t i = 0; i < entries.size(); ++i) {
    if (done[i]) continue;
    const SgdEntry& lead = entries[i];
    if (!is_floating(lead.param.dtype())) fail("sgd: parameter of dtype ", dtype_name(lead.param.dtype()));
    std::vector<size_t> members;
    for (size_t j = i; j < entries.size(); ++j) {
      if (done[j] || entries[j].param.dtype() != lead.param.dtype() || entries[j].param.device() != lead.param.device())
        continue;
      check_entry(entries[j], lead);
      members.push_back(j);
      done[j] = true;
    }
    visit_float(lead.param.dtype(), "sgd", [&](auto tag) { run_group<decltype(tag)>(entries, members, hyper); });
  }
}

}  // namespace advcl::ops
