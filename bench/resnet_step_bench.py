#!/usr/bin/env python3
"""One ResNet-18 training step, advcl vs PyTorch, on this CPU with the same
thread count (or on one GPU), in one run.

    python3 bench/resnet_step_bench.py [--build build/cpu] [--threads 2] [--batches 32,128]
                                       [--warmup 2] [--repeat 5]
    python3 bench/resnet_step_bench.py --build build/cuda --device cuda --batches 128,512 [--tf32 on]
    python3 bench/resnet_step_bench.py --batches 128 --bf16     # mixed precision on the CPU, 4 columns

The step: ResNet-18 (CIFAR variant: 3x3 stem, no max-pool, width 64, one BN
set) and a Linear(512, 10) head on 3x32x32 images; forward in training mode,
mean cross-entropy, backward, SGD (momentum 0.9, weight decay 5e-4). The
PyTorch model is scripts/torch_resnet.py (not torchvision's: its ResNet-18 is
the ImageNet variant). Each figure is the median of --repeat steps after
--warmup steps.

--bf16 (CPU) adds mixed precision: ours with --precision bf16 (conv2d and
linear in bf16 with float32 sums, docs/precision.md) and PyTorch under
torch.autocast("cpu", dtype=torch.bfloat16) with the model and input in
channels_last (its fastest CPU mode), next to both float32 steps, with the
ratios the goals of docs/precision.md speak of.
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


def torch_step_ms(threads, batch, warmup, repeat, device="cpu", tf32=False, bf16=False, channels_last=False):
    import contextlib
    import torch
    import torch.nn.functional as F
    from run import torch_setup
    torch_setup(device, threads, tf32)
    torch.manual_seed(0)
    model = torch_model().to(device).train()
    x = torch.rand(batch, 3, 32, 32, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    y = torch.randint(0, 10, (batch,), device=device)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    times = []
    for i in range(warmup + repeat):
        a = time.perf_counter()
        opt.zero_grad()
        with autocast():
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
    ap.add_argument("--bf16", action="store_true",
                    help="CPU: also bf16 (ours --precision bf16; PyTorch autocast + channels_last)")
    a = ap.parse_args()
    if a.bf16 and a.device != "cpu":
        sys.exit("bench: --bf16 compares the CPU paths; leave out --device")
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

    def run_ours(extra):
        res = subprocess.run(cmd + extra, capture_output=True, text=True, env=env)
        if res.returncode != 0:
            sys.exit(f"bench: {' '.join(cmd + extra)} failed:\n{res.stderr}")
        sys.stderr.write(res.stderr)
        return {d["name"]: d["ms"] for d in map(json.loads, res.stdout.splitlines())}

    ours = run_ours([])
    if a.device.startswith("cuda"):
        print(f"# device: {torch.cuda.get_device_name(a.device)}; PyTorch {torch.__version__} (cudnn.benchmark on); "
              f"TF32 {a.tf32} for both; advcl cuDNN deterministic {a.deterministic}; "
              f"median of {a.repeat} steps after {a.warmup} warm-up")
    else:
        print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; threads {a.threads} "
              f"(advcl and PyTorch {torch.__version__}); median of {a.repeat} steps after {a.warmup} warm-up")
    if a.bf16:
        ours_bf16 = run_ours(["--precision", "bf16"])
        print(f"{'step':22s} {'advcl fp32':>10s} {'advcl bf16':>10s} {'torch fp32':>10s} {'torch bf16+CL':>13s} "
              f"{'bf16/fp32':>9s} {'bf16/t fp32':>11s} {'bf16/t bf16CL':>13s}")
        for b in (int(s) for s in a.batches.split(",")):
            name = f"resnet18_step_b{b}"
            tf = torch_step_ms(a.threads, b, a.warmup, a.repeat)
            tb = torch_step_ms(a.threads, b, a.warmup, a.repeat, bf16=True, channels_last=True)
            of, ob = ours[name], ours_bf16[name]
            print(f"{name:22s} {of:10.1f} {ob:10.1f} {tf:10.1f} {tb:13.1f} {ob / of:9.2f} {ob / tf:11.2f} "
                  f"{ob / tb:13.2f}")
        print("# goals (docs/precision.md): advcl bf16 <= 0.5 x torch fp32 and <= 0.85 x torch bf16 + channels_last")
        return
    print(f"{'step':22s} {'advcl ms':>10s} {'torch ms':>10s} {'ratio':>7s}")
    for b in (int(s) for s in a.batches.split(",")):
        name = f"resnet18_step_b{b}"
        t = torch_step_ms(a.threads, b, a.warmup, a.repeat, a.device, a.tf32 == "on")
        print(f"{name:22s} {ours[name]:10.1f} {t:10.1f} {ours[name] / t:7.2f}")


if __name__ == "__main__":
    main()
