// Reverse-mode automatic differentiation, define-by-run.
//
// An op that has a differentiable input which requires a gradient records a
// Node on its output: the inputs (edges of the graph) and a backward function.
// backward(loss) walks the graph from the loss in reverse topological order,
// calls each node's backward with the gradient of its output, and accumulates
// the results into the leaves that require gradients.
//
// Each backward function is told WHICH inputs need a gradient. grad(out, {x})
// marks only the inputs that lie on a path to x, so asking for an image's
// gradient never computes a weight gradient (conv2d then runs backward-data only).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace advcl {

using Needs = std::vector<bool>;
// grad_out: gradient of the node's output. needs[i]: input i wants a gradient.
// Returns one tensor per input; undefined where needs[i] is false.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_out, const Needs& needs)>;

struct Node {
  std::string name;            // the op, for error messages
  std::vector<Tensor> inputs;  // one entry per op input (undefined for inputs that cannot need grads)
  BackwardFn backward;
  bool differentiable = true;  // false: reaching it during backward is an error
  bool released = false;       // its saved tensors were freed by a backward pass
};

// Anomaly detection (as torch.autograd.detect_anomaly): while on, every op
// that records a node has its output checked for inf/NaN when it is made,
// and every backward function its input gradients, and the first non-finite
// value stops the computation with an AnomalyError naming the op. Each check
// reads one number back to the host, so this is for finding where a run
// diverged (`--detect-anomaly`), not for normal training; off, it costs one
// flag test per recorded op.
void set_detect_anomaly(bool on);
bool detect_anomaly_enabled();

// Thrown by the anomaly checks; `op` is the op's name ("conv2d", ...).
class AnomalyError : public Error {
 public:
  AnomalyError(const std::string& what, std::string op) : Error(what), op(std::move(op)) {}
  std::string op;
};

// Turns anomaly detection on for its lifetime (nestable).
class DetectAnomalyGuard {
 public:
  DetectAnomalyGuard();
  ~DetectAnomalyGuard();
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

 private:
  bool previous_;
};

// True when gradient recording is on (it is, outside a NoGradGuard).
bool grad_mode_enabled();

// Turns recording off for its lifetime (nestable), like torch.no_grad().
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True if recording is on and any defined input requires a gradient. Ops call
// this before saving anything for backward.
bool needs_graph(const std::vector<Tensor>& inputs);

// Makes `out` the output of a new node (sets requires_grad and grad_fn).
void record(Tensor& out, const char* name, std::vector<Tensor> inputs, BackwardFn fn);
// Marks `out` as the output of an op that has no derivative (sign, argmax,
// top-k indices...): backpropagating through it is an error naming the op.
void record_nondifferentiable(Tensor& out, const char* name, std::vector<Tensor> inputs);

// Accumulates d(loss)/d(leaf) into leaf.grad() for every leaf that requires a
// gradient. `loss` must have one element unless grad_out is given.
// Without retain_graph the graph's saved tensors are freed afterwards and a
// second backward through it is an error.
void backward(const Tensor& loss, const Tensor& grad_out = Tensor(), bool retain_graph = false);

// Called by backward() for a leaf as soon as its gradient from this pass is
// complete (no later node of the walk contributes to it) and accumulated
// into leaf.grad(). Data-parallel training starts a parameter's all-reduce
// from here while the rest of the backward pass still runs. Leaves that get
// no gradient from this pass are not reported.
using LeafGradReadyFn = std::function<void(const Tensor& leaf)>;
void backward(const Tensor& loss, const LeafGradReadyFn& on_leaf_ready, const Tensor& grad_out = Tensor(),
              bool retain_graph = false);

// Returns d(output)/d(inputs[i]) for each input (zeros where output does not
// depend on it) and nothing else: leaves' grad() are untouched and only the
// part of the graph between output and `inputs` is differentiated.
std::vector<Tensor> grad(const Tensor& output, const std::vector<Tensor>& inputs,
                         const Tensor& grad_out = Tensor(), bool retain_graph = false);

}  // namespace advcl
