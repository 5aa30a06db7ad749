#!/usr/bin/env python3
"""Golden values for one whole AdvCL training step in bf16 mixed precision:
the step of make_advcl_step_golden.py (the same model, weights, inputs, attack
starts and pseudo-labels), run in float32 two ways:

  torch.  under torch.autocast("cpu", dtype=torch.bfloat16), as PyTorch does it;
  policy. with our policy (engine/autocast.h) emulated exactly: conv2d and the
          linear layers' products go through the autograd Functions below,
          whose forward rounds the float32 input and weight to bf16 (nearest
          even), computes in float64 and returns float32, and whose backward
          rounds the incoming gradient to bf16 and uses the saved bf16-rounded
          input and weight (float64 math, float32 results). The linear bias is
          added in float32 after the product, as ours does. Everything else
          (batch norm, SupCon with its similarity matmul, CE, the attack's
          steps, SGD) is plain float32.

The step in float64 (the fp32 reference) is advcl_step_golden.safetensors,
which also holds the initial weights and inputs: this file holds only what the
bf16 steps produce.

PyTorch's autocast differs from our policy in what it stores: its conv and
linear outputs are bf16 tensors, so batch norm, ReLU and the residual sums see
bf16 activations, and SupCon's similarity matmul runs in bf16 too. So
`policy.*` is the sharp reference and `torch.*` agrees with ours only to bf16's
resolution. Even `policy.*` cannot agree with ours to float32 rounding over a
whole step: a float32 difference (ours and PyTorch sum batch norm in other
orders) that moves a value across the midpoint of two bf16 neighbours is a
jump of 2^-8, which this network magnifies and PGD's sign() turns into a full
step; tests/advcl/advcl_bf16_golden_test.cpp says what is compared and why.
The per-iteration views below let it start each attack iteration from the
reference's own views.

Regenerate (needs torch, safetensors and numpy; the build and the tests never
need them):

    python3 tests/golden/make_advcl_bf16_golden.py

writes tests/golden/advcl_bf16_golden.safetensors, read by
tests/advcl/advcl_bf16_golden_test.cpp.

Stored, for p in {torch, policy}: p.attack.<t>.x_cl and p.attack.<t>.x_ce (the
views after attack iteration t = 1..5; the step trains on t = 5), p.loss and
p.final.<state name> (every parameter, and the running statistics of the
`pgd` and `pgd_ce` sets; the others are updated fewer times by design in our
step, see step_golden_test.cpp).
"""

import contextlib
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_advcl_step_golden import LR, MOMENTUM, WD, advcl_step, setup  # noqa: E402
from make_nn_golden import Net  # noqa: E402

OUT = os.path.join(HERE, "advcl_bf16_golden.safetensors")


def bf16(t):
    """float32 -> the nearest bf16 value (ties to even), held exactly in float64."""
    assert t.dtype == torch.float32
    return t.to(torch.bfloat16).double()


class Bf16Conv2d(torch.autograd.Function):
    """conv2d under our policy: bf16 operands, exact (float64) sums, float32 out; backward likewise."""

    @staticmethod
    def forward(ctx, x, w, stride, padding):
        xb, wb = bf16(x), bf16(w)
        ctx.save_for_backward(xb, wb)
        ctx.stride, ctx.padding = stride, padding
        return F.conv2d(xb, wb, None, stride, padding).float()

    @staticmethod
    def backward(ctx, gy):
        xb, wb = ctx.saved_tensors
        gb = bf16(gy.contiguous())
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = torch.nn.grad.conv2d_input(xb.shape, wb, gb, ctx.stride, ctx.padding).float()
        if ctx.needs_input_grad[1]:
            gw = torch.nn.grad.conv2d_weight(xb, wb.shape, gb, ctx.stride, ctx.padding).float()
        return gx, gw, None, None


class Bf16Linear(torch.autograd.Function):
    """x @ w^T under our policy (the bias is added in float32 by the caller, as ours does)."""

    @staticmethod
    def forward(ctx, x, w):
        xb, wb = bf16(x), bf16(w)
        ctx.save_for_backward(xb, wb)
        return (xb @ wb.T).float()

    @staticmethod
    def backward(ctx, gy):
        xb, wb = ctx.saved_tensors
        gb = bf16(gy.contiguous())
        gx = (gb @ wb).float() if ctx.needs_input_grad[0] else None
        gw = (gb.T @ xb).float() if ctx.needs_input_grad[1] else None
        return gx, gw


@contextlib.contextmanager
def our_policy(net):
    """Routes every Conv2d and Linear of `net` through the Functions above while the scope lasts."""
    patched = []
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            assert m.bias is None and m.groups == 1 and m.dilation == (1, 1)
            m.forward = lambda x, m=m: Bf16Conv2d.apply(x, m.weight, m.stride, m.padding)
        elif isinstance(m, torch.nn.Linear):
            m.forward = lambda x, m=m: Bf16Linear.apply(x, m.weight) + m.bias
        else:
            continue
        patched.append(m)
    try:
        yield
    finally:
        for m in patched:
            del m.forward


def kept_state(name):
    """The state compared after the step (as tests/advcl/step_golden_test.cpp): every parameter, and the
    running statistics of the `pgd` and `pgd_ce` sets only."""
    stat = "running_" in name or "num_batches_tracked" in name
    return not (stat and ("bn_list.0." in name or name.startswith("head_proj.1.")))


def run(init, inputs, mode):
    """The step in float32 from `init`; mode "torch" (PyTorch's autocast), "policy" (ours emulated) or
    "fp32". Returns the loss, the views after each attack iteration and the state after the step."""
    net = Net()
    net.load_state_dict(init)
    net = net.float().train()
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    x = {k: (v.float() if k != "labels" else v) for k, v in inputs.items()}
    scope = {"torch": lambda: torch.autocast("cpu", dtype=torch.bfloat16),
             "policy": lambda: our_policy(net), "fp32": contextlib.nullcontext}[mode]
    trace = []
    with scope():
        _, _, _, loss = advcl_step(net, opt, **x, trace=trace)
    out = {"loss": loss.detach().float()}
    for t, (x_cl, x_ce) in enumerate(trace, 1):
        out[f"attack.{t}.x_cl"], out[f"attack.{t}.x_ce"] = x_cl.float(), x_ce.float()
    for name, t in net.state_dict().items():
        if kept_state(name):
            out[f"final.{name}"] = t.detach().clone()
    return out


def main():
    from safetensors.torch import save_file

    torch.set_num_threads(1)  # one summation order
    net64, inputs = setup()
    init = {k: (v.float() if v.is_floating_point() else v) for k, v in net64.state_dict().items()}
    tensors = {}
    for mode in ("torch", "policy"):
        for k, v in run(init, inputs, mode).items():
            tensors[f"{mode}.{k}"] = v.contiguous()
    save_file(tensors, OUT, metadata={"generator": "tests/golden/make_advcl_bf16_golden.py", "torch": torch.__version__})
    print(f"wrote {OUT}: {len(tensors)} tensors, {os.path.getsize(OUT)} bytes, "
          f"loss torch {tensors['torch.loss'].item():.6f} policy {tensors['policy.loss'].item():.6f}")


if __name__ == "__main__":
    main()
