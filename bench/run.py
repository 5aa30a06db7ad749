#!/usr/bin/env python3
"""Times advcl's heavy ops side by side with PyTorch on this CPU, same shapes,
same thread count, and prints the ratio (ours / PyTorch; below 1 = we are faster).

    python3 bench/run.py [--build build/cpu] [--threads 2] [--batch 128] [--repeat 5]
                         [--only SUBSTRING] [--matmul-path onednn|blas]

--only times just the ops whose name contains SUBSTRING (e.g. linear);
--matmul-path blas sends advcl's float32 matrix products through OpenBLAS,
as before they went through oneDNN. Both sides run with the same thread
count: OMP_NUM_THREADS (and OPENBLAS_NUM_THREADS) for both processes, and
torch.set_num_threads for PyTorch.

PyTorch (`pip install torch`) is needed only here, never by the build or tests.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

CONVS = [  # name, cin, cout, hw, k, stride, pad: the distinct convolutions of ResNet-18 (CIFAR)
    ("conv_stem_3_64_32", 3, 64, 32, 3, 1, 1), ("conv_64_64_32", 64, 64, 32, 3, 1, 1),
    ("conv_64_128_32_s2", 64, 128, 32, 3, 2, 1), ("conv_128_128_16", 128, 128, 16, 3, 1, 1),
    ("conv_128_256_16_s2", 128, 256, 16, 3, 2, 1), ("conv_256_256_8", 256, 256, 8, 3, 1, 1),
    ("conv_256_512_8_s2", 256, 512, 8, 3, 2, 1), ("conv_512_512_4", 512, 512, 4, 3, 1, 1),
    ("conv1x1_64_128_32_s2", 64, 128, 32, 1, 2, 0),
]


def median_ms(f, repeat):
    f()
    times = []
    for _ in range(repeat):
        a = time.perf_counter()
        f()
        times.append((time.perf_counter() - a) * 1000)
    return statistics.median(times)


def torch_timings(threads, batch, repeat, only):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    out = {}
    for name, cin, cout, hw, k, s, p in CONVS:
        if only and only not in name:
            continue
        x = torch.rand(batch, cin, hw, hw, requires_grad=True)
        w = (torch.rand(cout, cin, k, k) * 0.2 - 0.1).requires_grad_()

        def fwd():
            with torch.no_grad():
                F.conv2d(x, w, stride=s, padding=p)

        def fwd_bwd():
            y = F.conv2d(x, w, stride=s, padding=p)
            torch.autograd.grad(y, (x, w), torch.ones_like(y))

        out[name + ".fwd"] = median_ms(fwd, repeat)
        out[name + ".fwd_bwd"] = median_ms(fwd_bwd, repeat)
    if only and only not in "linear_512x512_b512":
        return out, torch.__version__, torch.get_num_threads()
    x = torch.rand(512, 512, requires_grad=True)
    w = (torch.rand(512, 512) * 0.1 - 0.05).requires_grad_()
    b = (torch.rand(512) * 0.1 - 0.05).requires_grad_()

    def lin():
        y = F.linear(x, w, b)
        torch.autograd.grad(y, (x, w, b), torch.ones_like(y))

    out["linear_512x512_b512.fwd_bwd"] = median_ms(lin, repeat * 4)
    return out, torch.__version__, torch.get_num_threads()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build/cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", default="", help="time only the ops whose name contains this")
    ap.add_argument("--matmul-path", default="onednn", choices=["onednn", "blas"])
    a = ap.parse_args()
    # Set before torch loads its OpenMP runtime, for this process and ours alike.
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = str(a.threads)
    binary = os.path.join(a.build, "bin", "advcl_bench")
    if not os.path.exists(binary):
        sys.exit(f"bench: {binary} not found; run `make bench` (it builds it)")
    cmd = [binary, "--threads", str(a.threads), "--batch", str(a.batch), "--repeat", str(a.repeat),
           "--matmul-path", a.matmul_path] + (["--only", a.only] if a.only else [])
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    ours = {}
    for line in res.stdout.splitlines():
        d = json.loads(line)
        ours[d["name"]] = d["ms"]
    try:
        theirs, version, torch_threads = torch_timings(a.threads, a.batch, a.repeat, a.only)
    except ImportError:
        sys.exit("bench: PyTorch is not installed (pip install torch); our timings:\n" + res.stdout)
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; advcl threads {a.threads} "
          f"(float32 matmul: {a.matmul_path}), PyTorch {version} torch.get_num_threads() {torch_threads}; "
          f"batch {a.batch}; median of {a.repeat}")
    print(f"{'op':34s} {'advcl ms':>10s} {'torch ms':>10s} {'ratio':>7s}")
    ratios = []
    for name, ms in ours.items():
        t = theirs.get(name)
        r = ms / t if t else float("nan")
        ratios.append(r)
        print(f"{name:34s} {ms:10.2f} {t:10.2f} {r:7.2f}")
    total_ours = sum(v for k, v in ours.items() if k.endswith("fwd_bwd"))
    total_theirs = sum(v for k, v in theirs.items() if k.endswith("fwd_bwd"))
    if total_theirs:
        print(f"{'total fwd+bwd':34s} {total_ours:10.2f} {total_theirs:10.2f} {total_ours / total_theirs:7.2f}")


if __name__ == "__main__":
    main()
