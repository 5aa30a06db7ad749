#include "engine/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include <atomic>

#include "engine/finite_check.h"
#include "engine/ops/elementwise.h"

namespace advcl {

namespace {
thread_local bool g_grad_mode = true;
// Process-wide: worker threads (OpenMP, the loader) run ops for the same step.
std::atomic<bool> g_detect_anomaly{false};

// The anomaly check of one op's output (forward) or input gradient (backward).
void check_anomaly(const Tensor& t, const std::string& op, const char* what) {
  if (!t.defined() || all_finite(t)) return;
  throw AnomalyError("anomaly: op '" + op + "' produced a non-finite value (inf or NaN) in " + what + " of shape " +
                         shape_str(t.shape()) + "; it is the first op whose result was not finite",
                     op);
}
}  // namespace

void set_detect_anomaly(bool on) { g_detect_anomaly.store(on, std::memory_order_relaxed); }
bool detect_anomaly_enabled() { return g_detect_anomaly.load(std::memory_order_relaxed); }

DetectAnomalyGuard::DetectAnomalyGuard() : previous_(detect_anomaly_enabled()) { set_detect_anomaly(true); }
DetectAnomalyGuard::~DetectAnomalyGuard() { set_detect_anomaly(previous_); }

bool grad_mode_enabled() { return g_grad_mode; }

NoGradGuard::NoGradGuard() : previous_(g_grad_mode) { g_grad_mode = false; }
NoGradGuard::~NoGradGuard() { g_grad_mode = previous_; }

bool needs_graph(const std::vector<Tensor>& inputs) {
  if (!g_grad_mode) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(Tensor& out, const char* name, std::vector<Tensor> inputs, BackwardFn fn) {
  if (detect_anomaly_enabled()) check_anomaly(out, name, "its output");
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs = std::move(inputs);
  node->backward = std::move(fn);
  out.get()->grad_fn = std::move(node);
  out.get()->requires_grad = true;
}

void record_nondifferentiable(Tensor& out, const char* name, std::vector<Tensor> inputs) {
  if (!needs_graph(inputs)) return;
  record(out, name, std::move(inputs), nullptr);  // (checked there in anomaly mode)
  out.grad_fn()->differentiable = false;
}

namespace {

// Tensors reachable from `root` through grad_fn edges, ordered so that every
// tensor comes before the inputs of its node (root first).
std::vector<TensorImpl*> reverse_topological(const Tensor& root) {
  std::vector<TensorImpl*> order;
  std::unordered_set<TensorImpl*> seen;
  // Iterative post-order DFS (deep graphs must not overflow the stack).
  std::vector<std::pair<TensorImpl*, size_t>> stack{{root.get(), 0}};
  seen.insert(root.get());
  while (!stack.empty()) {
    auto& [t, next] = stack.back();
    Node* node = t->grad_fn.get();
    if (node && next < node->inputs.size()) {
      const Tensor& in = node->inputs[next++];
      if (in.defined() && in.requires_grad() && seen.insert(in.get()).second) stack.push_back({in.get(), 0});
      continue;
    }
    order.push_back(t);
    stack.pop_back();
  }
  return {order.rbegin(), order.rend()};
}

void accumulate(std::unordered_map<TensorImpl*, Tensor>& grads, TensorImpl* t, const Tensor& g, const Node& from) {
  if (g.shape() != t->shape)
    fail("autograd: backward of '", from.name, "' returned a gradient of shape ", shape_str(g.shape()),
         " for an input of shape ", shape_str(t->shape));
  auto it = grads.find(t);
  if (it == grads.end())
    grads.emplace(t, g);
  else
    it->second = ops::add(it->second, g);
}

Tensor seed_gradient(const Tensor& output, const Tensor& grad_out, const char* who) {
  if (!output.requires_grad())
    fail(who, ": the output does not require a gradient (no input of the ops that made it requires one, "
              "or it was computed under NoGradGuard)");
  if (grad_out.defined()) {
    check_same_shape(who, output, grad_out);
    return grad_out;
  }
  if (output.numel() != 1)
    fail(who, ": the output has shape ", shape_str(output.shape()),
         "; pass grad_out for an output with more than one element");
  return Tensor::ones(output.shape(), output.dtype(), output.device());
}

// The shared engine of backward() and grad(). `relevant` (may be null) limits
// the walk to tensors from which a target is reachable.
// `leaf_done` (backward only) receives each leaf's gradient once no later
// node contributes to it; such leaves leave the returned map.
std::unordered_map<TensorImpl*, Tensor> run(const Tensor& output, const Tensor& seed,
                                            const std::unordered_set<TensorImpl*>* targets, bool retain_graph,
                                            const std::function<void(const Tensor&, const Tensor&)>& leaf_done = {}) {
  NoGradGuard no_grad;  // backward computations are not themselves recorded
  std::vector<TensorImpl*> order = reverse_topological(output);

  // relevant: a target, or a tensor whose node has a relevant input.
  // Walking `order` backwards visits inputs before the tensors made from them.
  std::unordered_set<TensorImpl*> relevant;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    TensorImpl* t = *it;
    bool r = targets ? targets->count(t) > 0 : t->grad_fn == nullptr;
    if (!r && t->grad_fn)
      for (const Tensor& in : t->grad_fn->inputs)
        if (in.defined() && relevant.count(in.get())) r = true;
    if (r) relevant.insert(t);
  }

  // For each leaf, the position in `order` of the last node that takes it as
  // an input: after that node its gradient is final.
  std::unordered_map<size_t, std::vector<Tensor>> leaves_final_after;
  if (leaf_done) {
    std::unordered_map<TensorImpl*, std::pair<size_t, Tensor>> last_use;
    for (size_t i = 0; i < order.size(); ++i)
      if (Node* node = order[i]->grad_fn.get())
        for (const Tensor& in : node->inputs)
          if (in.defined() && !in.get()->grad_fn && relevant.count(in.get())) last_use[in.get()] = {i, in};
    for (auto& [impl, use] : last_use) leaves_final_after[use.first].push_back(use.second);
  }
  std::unordered_map<TensorImpl*, Tensor> grads;
  grads.emplace(output.get(), seed);
  auto finish_leaves_after = [&](size_t i) {
    auto it = leaves_final_after.find(i);
    if (it == leaves_final_after.end()) return;
    for (const Tensor& leaf : it->second) {
      auto g = grads.find(leaf.get());
      if (g == grads.end()) continue;  // no gradient reached it
      Tensor done = std::move(g->second);
      grads.erase(g);
      leaf_done(leaf, done);
    }
  };
  for (size_t step = 0; step < order.size(); ++step) {
    TensorImpl* t = order[step];
    Node* node = t->grad_fn.get();
    auto git = grads.find(t);
    if (!node || git == grads.end() || !relevant.count(t)) {
      finish_leaves_after(step);
      continue;
    }
    if (!node->differentiable)
      fail("backward: op '", node->name, "' is not differentiable, but a gradient was asked through it");
    if (node->released)
      fail("backward: the graph through op '", node->name,
           "' was already freed by an earlier backward; pass retain_graph=true to the first one");
    Needs needs(node->inputs.size(), false);
    bool any = false;
    for (size_t i = 0; i < needs.size(); ++i) {
      const Tensor& in = node->inputs[i];
      needs[i] = in.defined() && in.requires_grad() && relevant.count(in.get());
      any = any || needs[i];
    }
    if (any) {
      Tensor g = git->second;
      if (!targets || !targets->count(t)) grads.erase(git);  // free intermediate gradients early
      std::vector<Tensor> in_grads = node->backward(g, needs);
      if (detect_anomaly_enabled())
        for (size_t i = 0; i < needs.size(); ++i)
          if (needs[i] && i < in_grads.size())
            check_anomaly(in_grads[i], node->name, ("the gradient of its input " + std::to_string(i) +
                                                    " (backward)").c_str());
      for (size_t i = 0; i < needs.size(); ++i)
        if (needs[i] && i < in_grads.size() && in_grads[i].defined())
          accumulate(grads, node->inputs[i].get(), in_grads[i], *node);
    }
    finish_leaves_after(step);
  }
  if (!retain_graph) {
    for (TensorImpl* t : order)
      if (t->grad_fn && relevant.count(t)) {
        t->grad_fn->backward = nullptr;  // drops the saved tensors
        t->grad_fn->released = true;
      }
  }
  return grads;
}

}  // namespace

void backward(const Tensor& loss, const Tensor& grad_out, bool retain_graph) {
  backward(loss, LeafGradReadyFn(), grad_out, retain_graph);
}

void backward(const Tensor& loss, const LeafGradReadyFn& on_leaf_ready, const Tensor& grad_out, bool retain_graph) {
  Tensor seed = seed_gradient(loss, grad_out, "backward");
  auto store = [&](const Tensor& leaf, const Tensor& g) {
    TensorImpl* t = leaf.get();
    if (t->grad_fn || !t->requires_grad) return;
    if (t->grad)
      t->grad = ops::add(Tensor(t->grad), g).impl_ptr();
    else
      t->grad = g.clone().impl_ptr();  // own storage: later accumulation must not alias
    if (on_leaf_ready) on_leaf_ready(leaf);
  };
  auto grads = run(loss, seed, nullptr, retain_graph, store);
  // What is left: a loss that is itself a leaf (no node ever consumed it).
  for (auto& [t, g] : grads)
    if (t == loss.get()) store(loss, g);
}

std::vector<Tensor> grad(const Tensor& output, const std::vector<Tensor>& inputs, const Tensor& grad_out,
                         bool retain_graph) {
  Tensor seed = seed_gradient(output, grad_out, "grad");
  std::unordered_set<TensorImpl*> targets;
  for (const Tensor& x : inputs) {
    if (!x.defined() || !x.requires_grad())
      fail("grad: every input must require a gradient (call set_requires_grad on it)");
    targets.insert(x.get());
  }
  auto grads = run(output, seed, &targets, retain_graph);
  std::vector<Tensor> result;
  for (const Tensor& x : inputs) {
    auto it = grads.find(x.get());
    result.push_back(it != grads.end() ? it->second : Tensor::zeros(x.shape(), x.dtype(), x.device()));
  }
  return result;
}

}  // namespace advcl
