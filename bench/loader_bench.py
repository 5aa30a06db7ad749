#!/usr/bin/env python3
"""Loader throughput, ours against PyTorch's DataLoader, in one run.

Both load a CIFAR-10-shaped training set (50,000 random 3x32x32 uint8 images
synthesised in memory; pixel values do not change either loader's cost) with
the standard CIFAR augmentation, RandomCrop(32, padding=4) + random
horizontal flip, to float [0, 1], batch 128, 2 worker processes/threads, and
the same number of compute threads. PyTorch's side is what the reference
AdvCL code runs: a torchvision-CIFAR10-like Dataset holding HWC uint8 numpy
arrays, each sample turned into a PIL image and passed through
transforms.Compose([RandomCrop(32, 4), RandomHorizontalFlip(), ToTensor()]).

Usage: python3 bench/loader_bench.py [--build build/cpu] [--images 50000]
           [--batch 128] [--workers 2] [--epochs 3] [--threads 1]
Prints both figures (best epoch, images/s) and the ratio ours / PyTorch.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def ours(args):
    exe = os.path.join(args.build, "bin", "advcl_loader_bench")
    if not os.path.exists(exe):
        sys.exit(f"loader_bench.py: {exe} not found; build it with `make {exe}`")
    cmd = [exe, "--images", str(args.images), "--batch", str(args.batch), "--workers", str(args.workers),
           "--epochs", str(args.epochs), "--threads", str(args.threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["images_per_s"]


def pytorch(args):
    import numpy as np
    import torch
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, size=(args.images, 32, 32, 3), dtype=np.uint8)  # HWC, as CIFAR10.data
    labels = rng.integers(0, 10, size=args.images).tolist()

    class Cifar(Dataset):
        def __init__(self, tf):
            self.tf = tf

        def __len__(self):
            return len(labels)

        def __getitem__(self, i):  # as torchvision.datasets.CIFAR10
            return self.tf(Image.fromarray(data[i])), labels[i]

    tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor()])
    loader = DataLoader(Cifar(tf), batch_size=args.batch, shuffle=True, num_workers=args.workers,
                        persistent_workers=args.workers > 0)
    best = float("inf")
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        seen = 0
        for x, _y in loader:
            seen += x.shape[0]
        best = min(best, time.perf_counter() - t0)
        assert seen == args.images
    return args.images / best


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build/cpu")
    p.add_argument("--images", type=int, default=50000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    a = ours(args)
    print(f"advcl loader   : {a:10.0f} images/s (best of {args.epochs} epochs)", flush=True)
    b = pytorch(args)
    print(f"torch DataLoader: {b:10.0f} images/s (best of {args.epochs} epochs)")
    print(f"ratio advcl / torch: {a / b:.2f}x  ({args.images} images, batch {args.batch}, "
          f"{args.workers} workers, {args.threads} compute thread(s))")


if __name__ == "__main__":
    main()
