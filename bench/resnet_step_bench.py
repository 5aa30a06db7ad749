#!/usr/bin/env python3
"""One ResNet-18 training step, advcl vs PyTorch, on this CPU with the same
thread count (or on one GPU), in one run.

    python3 bench/resnet_step_bench.py [--build build/cpu] [--threads 2] [--batches 32,128]
                                       [--warmup 2] [--repeat 5]
    python3 bench/resnet_step_bench.py --build build/cuda --device cuda --batches 128,512 [--tf32 on]

The step: ResNet-18 (CIFAR variant: 3x3 stem, no max-pool, width 64, one BN
set) and a Linear(512, 10) head on 3x32x32 images; forward in training mode,
mean cross-entropy, backward, SGD (momentum 0.9, weight decay 5e-4). The
PyTorch model is scripts/torch_resnet.py (not torchvision's: its ResNet-18 is
the ImageNet variant). Each figure is the median of --repeat steps after
--warmup steps.
PyTorch is needed only here, never by the build or tests.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time


def torch_model():
    """The same network, written once for the scripts (advcl's tensor names)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
    from torch_resnet import FinetunedResNet18
    return FinetunedResNet18(width=64, in_channels=3, classes=10)


def torch_step_ms(threads, batch, warmup, repeat, device="cpu", tf32=False):
    import torch
    import torch.nn.functional as F
    from run import torch_setup
    torch_setup(device, threads, tf32)
    torch.manual_seed(0)
    model = torch_model().to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    times = []
    for i in range(warmup + repeat):
        a = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()  # waits for the step, on a GPU too
        if i >= warmup:
            times.append((time.perf_counter() - a) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build/cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="32,128")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (both sides)")
    ap.add_argument("--tf32", default="off", choices=["on", "off"], help="TensorFloat-32 on a GPU (both sides)")
    ap.add_argument("--deterministic", default="on", choices=["on", "off"],
                    help="advcl's cuDNN algorithms deterministic only (its default) or any")
    a = ap.parse_args()
    binary = os.path.join(a.build, "bin", "advcl_resnet_bench")
    if not os.path.exists(binary):
        sys.exit(f"bench: {binary} not found; run `make resnet-bench` (it builds it)")
    try:
        import torch
    except ImportError:
        sys.exit("bench: PyTorch is not installed (pip install torch)")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OPENBLAS_NUM_THREADS=str(a.threads))
    cmd = [binary, "--threads", str(a.threads), "--batches", a.batches, "--warmup", str(a.warmup),
           "--repeat", str(a.repeat), "--device", a.device, "--tf32", a.tf32, "--deterministic", a.deterministic]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed:\n{res.stderr}")
    sys.stderr.write(res.stderr)
    ours = {d["name"]: d["ms"] for d in map(json.loads, res.stdout.splitlines())}
    if a.device.startswith("cuda"):
        print(f"# device: {torch.cuda.get_device_name(a.device)}; PyTorch {torch.__version__} (cudnn.benchmark on); "
              f"TF32 {a.tf32} for both; advcl cuDNN deterministic {a.deterministic}; "
              f"median of {a.repeat} steps after {a.warmup} warm-up")
    else:
        print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; threads {a.threads} "
              f"(advcl and PyTorch {torch.__version__}); median of {a.repeat} steps after {a.warmup} warm-up")
    print(f"{'step':22s} {'advcl ms':>10s} {'torch ms':>10s} {'ratio':>7s}")
    for b in (int(s) for s in a.batches.split(",")):
        name = f"resnet18_step_b{b}"
        t = torch_step_ms(a.threads, b, a.warmup, a.repeat, a.device, a.tf32 == "on")
        print(f"{name:22s} {ours[name]:10.1f} {t:10.1f} {ours[name] / t:7.2f}")


if __name__ == "__main__":
    main()
