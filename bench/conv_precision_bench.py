#!/usr/bin/env python3
"""A 64->64 3x3 convolution, batch 128, 32x32, forward + backward (x and w),
in fp32 and in bf16: ours (advcl_bench --only conv_64_64_32 [--precision bf16])
and PyTorch (NCHW, torch.autocast("cpu", dtype=torch.bfloat16) for bf16), back
to back at the same thread count. Prints one line per measurement and the
load average before and after (others' work on the machine inflates both).

    python3 bench/conv_precision_bench.py --build build/cpu --threads 2
"""
import argparse
import json
import os
import subprocess
import time


def ours(build, threads, precision, repeat):
    out = subprocess.run([os.path.join(build, "bin", "advcl_bench"), "--threads", str(threads), "--batch", "128",
                          "--repeat", str(repeat), "--only", "conv_64_64_32", "--precision", precision],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        r = json.loads(line)
        if r["name"].endswith(".fwd_bwd"):
            return r["ms"]
    raise RuntimeError("advcl_bench printed no fwd_bwd line")


def torch_ms(threads, bf16, repeat):
    import torch
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(128, 64, 32, 32, generator=g) * 2 - 1).requires_grad_()
    w = ((torch.rand(64, 64, 3, 3, generator=g) * 2 - 1) * 0.1).requires_grad_()
    times = []
    for _ in range(repeat + 1):  # the first is a warm-up
        a = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = torch.nn.functional.conv2d(x, w, padding=1)
        torch.autograd.grad(y, [x, w], torch.ones_like(y))
        times.append(time.perf_counter() - a)
    t = sorted(times[1:])
    return 1000 * t[len(t) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    print("load average before:", os.getloadavg())
    for p in ("fp32", "bf16"):
        print(f"ours {p}: {ours(a.build, a.threads, p, a.repeat):.1f} ms")
    for bf16 in (False, True):
        print(f"torch {'bf16 autocast' if bf16 else 'fp32'} NCHW: {torch_ms(a.threads, bf16, a.repeat):.1f} ms")
    print("load average after:", os.getloadavg())


if __name__ == "__main__":
    main()
