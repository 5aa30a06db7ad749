#!/usr/bin/env python3
"""One ResNet-18 training step, advcl vs PyTorch, on this CPU with the same
thread count, in one run.

    python3 bench/resnet_step_bench.py [--build build/cpu] [--threads 2] [--batches 32,128]
                                       [--warmup 2] [--repeat 5]

The step: ResNet-18 (CIFAR variant: 3x3 stem, no max-pool, width 64, one BN
set) and a Linear(512, 10) head on 3x32x32 images; forward in training mode,
mean cross-entropy, backward, SGD (momentum 0.9, weight decay 5e-4). The
PyTorch model is written here (no torchvision: its ResNet-18 is the ImageNet
variant). Each figure is the median of --repeat steps after --warmup steps.
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
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = nn.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    class ResNet18(nn.Module):
        def __init__(self, width=64, classes=10):
            super().__init__()
            self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            blocks, cin = [], width
            for stage in range(4):
                cout = width << stage
                blocks += [Block(cin, cout, 1 if stage == 0 else 2), Block(cout, cout, 1)]
                cin = cout
            self.blocks = nn.Sequential(*blocks)
            self.linear = nn.Linear(cin, classes)

        def forward(self, x):
            h = self.blocks(F.relu(self.bn1(self.conv1(x))))
            return self.linear(h.mean(dim=(2, 3)))

    return ResNet18()


def torch_step_ms(threads, batch, warmup, repeat):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch_model().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    times = []
    for i in range(warmup + repeat):
        a = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()
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
    a = ap.parse_args()
    binary = os.path.join(a.build, "bin", "advcl_resnet_bench")
    if not os.path.exists(binary):
        sys.exit(f"bench: {binary} not found; run `make resnet-bench` (it builds it)")
    try:
        import torch
    except ImportError:
        sys.exit("bench: PyTorch is not installed (pip install torch)")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OPENBLAS_NUM_THREADS=str(a.threads))
    res = subprocess.run([binary, "--threads", str(a.threads), "--batches", a.batches, "--warmup", str(a.warmup),
                          "--repeat", str(a.repeat)], capture_output=True, text=True, env=env, check=True)
    ours = {d["name"]: d["ms"] for d in map(json.loads, res.stdout.splitlines())}
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; threads {a.threads} "
          f"(advcl and PyTorch {torch.__version__}); median of {a.repeat} steps after {a.warmup} warm-up")
    print(f"{'step':22s} {'advcl ms':>10s} {'torch ms':>10s} {'ratio':>7s}")
    for b in (int(s) for s in a.batches.split(",")):
        name = f"resnet18_step_b{b}"
        t = torch_step_ms(a.threads, b, a.warmup, a.repeat)
        print(f"{name:22s} {ours[name]:10.1f} {t:10.1f} {ours[name] / t:7.2f}")


if __name__ == "__main__":
    main()
