#!/usr/bin/env python3
"""Golden values for one whole AdvCL training step (docs/method.md
sections 9 and 10: the attack and the training loss), computed with PyTorch
the way the reference computes it: every view is its own forward call at every
attack iteration.

Regenerate (needs torch and safetensors; the build and tests never need them):

    python3 tests/golden/make_advcl_step_golden.py

writes tests/golden/advcl_step_golden.safetensors, read by
tests/advcl/step_golden_test.cpp.

The model is the reference-shaped ResNet-18 of make_nn_golden.py (width 3,
3x16x16 images, three BN sets), in float64 so that no sign() of the attack can
flip on rounding. One step, batch B = 4:
  x_HFC = Re(IFFT2(ishift(mask * shift(FFT2(x_org))))), radius 4 (16x16 images)
  x_cl, x_ce from the stored starts x_org + U(-eps, eps); 5 iterations of
    x <- clip01(clip_eps(x + 2/255 * sign(grad)))  on
    loss = SupCon(proj(x_cl)[pgd], proj(x1)[normal], proj(x2)[normal], proj(x_HFC)[normal])
           + 0.2 * sum_k CE_sum(fc_k(feat(x_ce)[pgd_ce]), y_k) / 5
  then loss = SupCon(...) + 0.2 * sum_k CE_mean(...) / 5, backward, SGD
  (lr 0.1, momentum 0.9, weight decay 1e-4).
SupCon here is written as the reference's SupConLoss (temperature 0.5, base
temperature 0.07, max-subtracted logits), independently of advcl/pretrain/losses.cpp.

Stored: x1, x2, x_org, labels.<k>, start_cl, start_ce, x_hfc, x_cl, x_ce
(after the attack), loss, init.<state name>, final.<state name>.
"""

import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_nn_golden import PSEUDO, Net  # noqa: E402  (the reference-shaped model)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "advcl_step_golden.safetensors")
B, HW, RADIUS = 4, 16, 4
EPS, STEP, ITERS = 8 / 255, 2 / 255, 5
T, BASE_T, CE_WEIGHT = 0.5, 0.07, 0.2
LR, MOMENTUM, WD = 0.1, 0.9, 1e-4
NORMAL, PGD, PGD_CE = 0, 1, 2


def supcon(views):
    """The reference's SupConLoss, SimCLR case (labels None, contrast_mode 'all')."""
    features = torch.stack(views, dim=1)  # [bsz, n_views, dim]
    bsz, n_views = features.shape[0], features.shape[1]
    contrast = torch.cat(torch.unbind(features, dim=1), dim=0)
    logits = contrast @ contrast.T / T
    logits = logits - logits.max(dim=1, keepdim=True)[0].detach()
    mask = torch.eye(bsz, dtype=features.dtype, device=features.device).repeat(n_views, n_views)
    logits_mask = 1 - torch.eye(bsz * n_views, dtype=features.dtype, device=features.device)
    mask = mask * logits_mask
    exp_logits = torch.exp(logits) * logits_mask
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
    mean_log_prob_pos = (mask * log_prob).sum(1) / mask.sum(1)
    return (-(T / BASE_T) * mean_log_prob_pos).view(n_views, bsz).mean()


def highpass(x, radius=RADIUS):
    h, w = x.shape[-2:]
    i = torch.arange(h, dtype=x.dtype, device=x.device).view(-1, 1)
    j = torch.arange(w, dtype=x.dtype, device=x.device).view(1, -1)
    keep = (((i - h // 2) ** 2 + (j - w // 2) ** 2).sqrt() >= radius).to(x.dtype)
    spec = torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1)) * keep
    return torch.real(torch.fft.ifft2(torch.fft.ifftshift(spec, dim=(-2, -1))))


def advcl_step(net, opt, x1, x2, x_org, labels, start_cl, start_ce, radius=RADIUS, trace=None):
    """One AdvCL step as the reference runs it (also timed by bench/advcl_step_bench.py);
    returns x_HFC, x_cl, x_ce and the loss. `trace`, a list, receives (x_cl, x_ce) after each attack iteration."""
    pseudo = sorted(labels)
    fc = [getattr(net, f"fc_{k:03d}") for k in pseudo]
    x_hfc = highpass(x_org, radius)

    x_cl, x_ce = start_cl.clone(), start_ce.clone()
    for _ in range(ITERS):
        x_cl.requires_grad_(True)
        x_ce.requires_grad_(True)
        p_cl = net.proj(net.features(x_cl, PGD))
        p1, p2 = net.proj(net.features(x1, NORMAL)), net.proj(net.features(x2, NORMAL))
        ph = net.proj(net.features(x_hfc, NORMAL))
        f_ce = net.features(x_ce, PGD_CE)
        ce = sum(F.cross_entropy(h(f_ce), labels[k], reduction="sum") for h, k in zip(fc, pseudo)) / len(pseudo)
        loss = supcon([p_cl, p1, p2, ph]) + CE_WEIGHT * ce
        g_cl, g_ce = torch.autograd.grad(loss, [x_cl, x_ce])
        with torch.no_grad():
            x_cl = torch.clamp(torch.min(torch.max(x_cl + STEP * g_cl.sign(), x_org - EPS), x_org + EPS), 0, 1)
            x_ce = torch.clamp(torch.min(torch.max(x_ce + STEP * g_ce.sign(), x_org - EPS), x_org + EPS), 0, 1)
        if trace is not None:
            trace.append((x_cl.clone(), x_ce.clone()))

    opt.zero_grad(set_to_none=True)
    p_cl = net.proj(net.features(x_cl, PGD))
    p1, p2 = net.proj(net.features(x1, NORMAL)), net.proj(net.features(x2, NORMAL))
    ph = net.proj(net.features(x_hfc, NORMAL))
    f_ce = net.features(x_ce, PGD_CE)
    ce = sum(F.cross_entropy(h(f_ce), labels[k]) for h, k in zip(fc, pseudo)) / len(pseudo)
    loss = supcon([p_cl, p1, p2, ph]) + CE_WEIGHT * ce
    loss.backward()
    opt.step()
    return x_hfc, x_cl, x_ce, loss


def randomize_batch_norms(net, g):
    """Every batch norm's affine parameters and running statistics drawn from `g`
    (not 1/0), so that the golden exercises them; shared with make_acl_step_golden.py."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
                c = m.num_features
                m.weight.copy_(1 + 0.2 * torch.randn(c, generator=g))
                m.bias.copy_(0.2 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))


def setup():
    """The model (float64, in training mode, from float32-exact values) and the step's inputs, from fixed seeds;
    also used by make_advcl_bf16_golden.py, which runs the same step from the same start."""
    torch.manual_seed(2021)
    net = Net()
    g = torch.Generator().manual_seed(7)
    randomize_batch_norms(net, g)
    with torch.no_grad():
        for p in list(net.parameters()) + [b for b in net.buffers() if b.is_floating_point()]:
            p.copy_(p.float().double())
    net = net.double().train()

    rand = lambda *s: torch.rand(*s, generator=g, dtype=torch.float64)  # noqa: E731
    x1, x2, x_org = rand(B, 3, HW, HW), rand(B, 3, HW, HW), rand(B, 3, HW, HW)
    labels = {k: torch.randint(0, k, (B,), generator=g) for k in PSEUDO}
    start_cl = x_org + (rand(B, 3, HW, HW) * 2 - 1) * EPS
    start_ce = x_org + (rand(B, 3, HW, HW) * 2 - 1) * EPS
    inputs = {"x1": x1, "x2": x2, "x_org": x_org, "labels": labels, "start_cl": start_cl, "start_ce": start_ce}
    return net, inputs


def main():
    # Imported here, not at the top: bench/advcl_step_bench.py uses advcl_step on machines without safetensors.
    from safetensors.torch import save_file

    net, inputs = setup()
    tensors = {}

    def put(name, t):
        t = t.detach().contiguous().clone()
        # model state as float32 (init is float32-exact; final is compared at float32 precision)
        tensors[name] = t.float() if (t.is_floating_point() and name.startswith(("init.", "final."))) else t

    for name, t in net.state_dict().items():
        put(f"init.{name}", t)
    for name in ("x1", "x2", "x_org", "start_cl", "start_ce"):
        put(name, inputs[name])
    for k in PSEUDO:
        put(f"labels.{k}", inputs["labels"][k])

    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    x_hfc, x_cl, x_ce, loss = advcl_step(net, opt, **inputs)
    put("x_hfc", x_hfc)
    put("x_cl", x_cl)
    put("x_ce", x_ce)
    put("loss", loss)
    for name, t in net.state_dict().items():
        put(f"final.{name}", t)

    save_file(tensors, OUT, metadata={"generator": "tests/golden/make_advcl_step_golden.py", "torch": torch.__version__})
    print(f"wrote {OUT}: {len(tensors)} tensors, {os.path.getsize(OUT)} bytes, loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
