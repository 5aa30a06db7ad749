#!/usr/bin/env python3
"""Times advcl's heavy ops side by side with PyTorch on this CPU (same shapes,
same thread count) or on one GPU, and prints the ratio (ours / PyTorch; below
1 = we are faster).

    python3 bench/run.py [--build build/cpu] [--threads 2] [--batch 128] [--repeat 5]
                         [--only SUBSTRING] [--matmul-path onednn|blas]
    python3 bench/run.py --build build/cuda --device cuda --batch 512 [--tf32 on] [--deterministic off]

On a GPU both sides wait for the device before reading the clock. --tf32 sets
TensorFloat-32 for both (advcl's cuda::set_allow_tf32, PyTorch's
backends.cuda.matmul / backends.cudnn allow_tf32); --deterministic on (our
default) keeps advcl's cuDNN to deterministic algorithms, and PyTorch runs with
its defaults plus cudnn.benchmark (its fastest algorithms).

--only times just the ops whose name contains SUBSTRING (e.g. linear);
--matmul-path picks the library of advcl's float32 matrix products on the CPU:
blas (OpenBLAS, the engine's default) or onednn (oneDNN's matmul primitive).
Both sides run with the same thread count: OMP_NUM_THREADS (and
OPENBLAS_NUM_THREADS) for both processes, and torch.set_num_threads for PyTorch.

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


def median_ms(f, repeat, sync=lambda: None):
    f()
    sync()
    times = []
    for _ in range(repeat):
        a = time.perf_counter()
        f()
        sync()
        times.append((time.perf_counter() - a) * 1000)
    return statistics.median(times)


def torch_setup(device, threads, tf32):
    """PyTorch on `device` with the thread count and TF32 setting of our side; the wait-for-device function."""
    import torch
    torch.set_num_threads(threads)
    if not device.startswith("cuda"):
        return lambda: None
    if not torch.cuda.is_available():
        sys.exit("bench: PyTorch sees no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True
    return lambda: torch.cuda.synchronize(device)


def torch_timings(threads, batch, repeat, only, device="cpu", tf32=False):
    import torch
    import torch.nn.functional as F
    sync = torch_setup(device, threads, tf32)
    rand = lambda *shape: torch.rand(*shape, device=device)
    out = {}
    for name, cin, cout, hw, k, s, p in CONVS:
        if only and only not in name:
            continue
        x = rand(batch, cin, hw, hw).requires_grad_()
        w = (rand(cout, cin, k, k) * 0.2 - 0.1).requires_grad_()

        def fwd():
            with torch.no_grad():
                F.conv2d(x, w, stride=s, padding=p)

        def fwd_bwd():
            y = F.conv2d(x, w, stride=s, padding=p)
            torch.autograd.grad(y, (x, w), torch.ones_like(y))

        out[name + ".fwd"] = median_ms(fwd, repeat, sync)
        out[name + ".fwd_bwd"] = median_ms(fwd_bwd, repeat, sync)
    if only and only not in "linear_512x512_b512":
        return out, torch.__version__, torch.get_num_threads()
    x = rand(512, 512).requires_grad_()
    w = (rand(512, 512) * 0.1 - 0.05).requires_grad_()
    b = (rand(512) * 0.1 - 0.05).requires_grad_()

    def lin():
        y = F.linear(x, w, b)
        torch.autograd.grad(y, (x, w, b), torch.ones_like(y))

    out["linear_512x512_b512.fwd_bwd"] = median_ms(lin, repeat * 4, sync)
    return out, torch.__version__, torch.get_num_threads()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build/cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", default="", help="time only the ops whose name contains this")
    ap.add_argument("--matmul-path", default="blas", choices=["onednn", "blas"],
                    help="advcl's float32 matmul library on the CPU (blas: the engine's default)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (both sides)")
    ap.add_argument("--tf32", default="off", choices=["on", "off"], help="TensorFloat-32 on a GPU (both sides)")
    ap.add_argument("--deterministic", default="on", choices=["on", "off"],
                    help="advcl's cuDNN algorithms deterministic only (its default) or any")
    a = ap.parse_args()
    # Set before torch loads its OpenMP runtime, for this process and ours alike.
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = str(a.threads)
    binary = os.path.join(a.build, "bin", "advcl_bench")
    if not os.path.exists(binary):
        sys.exit(f"bench: {binary} not found; run `make bench` (it builds it)")
    cmd = [binary, "--threads", str(a.threads), "--batch", str(a.batch), "--repeat", str(a.repeat),
           "--matmul-path", a.matmul_path, "--device", a.device, "--tf32", a.tf32,
           "--deterministic", a.deterministic] + (["--only", a.only] if a.only else [])
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed:\n{res.stderr}")
    sys.stderr.write(res.stderr)
    ours = {}
    for line in res.stdout.splitlines():
        d = json.loads(line)
        ours[d["name"]] = d["ms"]
    try:
        theirs, version, torch_threads = torch_timings(a.threads, a.batch, a.repeat, a.only, a.device,
                                                       a.tf32 == "on")
    except ImportError:
        sys.exit("bench: PyTorch is not installed (pip install torch); our timings:\n" + res.stdout)
    if a.device.startswith("cuda"):
        import torch
        print(f"# device: {torch.cuda.get_device_name(a.device)}; PyTorch {version} (cudnn.benchmark on); "
              f"TF32 {a.tf32} for both; advcl cuDNN deterministic {a.deterministic}; batch {a.batch}; "
              f"median of {a.repeat}")
    else:
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
