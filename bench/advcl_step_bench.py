#!/usr/bin/env python3
"""Times whole AdvCL training steps, advcl's against PyTorch's, on the CPU
(same thread count) or on one GPU (both sides on it): ResNet-18 (three BN
sets, head_proj, five pseudo-label heads) at the given widths, random 3x32x32
batches, the paper's attack (5 x 2/255, eps 8/255, high-pass radius 8), SGD;
float32. The PyTorch step is the one tests/golden/make_advcl_step_golden.py
checks ours against (imported, not copied), every view a separate forward per
attack iteration as in the reference.

    python3 bench/advcl_step_bench.py [--build build/cpu] [--threads 2] [--batch 64] [--widths 16,64] [--steps 2]
    python3 bench/advcl_step_bench.py --build build/cuda --device cuda --batch 512 --widths 64 --steps 3 --tf32 on

Prints each side's per-step times; the ratio uses the fastest step of each
(the first includes allocation and, on a GPU, algorithm-search warm-up). Each
step's time includes waiting for the device. --tf32 sets TensorFloat-32 for
convolutions and matmuls on both sides (PyTorch: torch.backends.cuda.matmul.
allow_tf32 and torch.backends.cudnn.allow_tf32). Needs torch (never needed by
the build or tests).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden")


def torch_steps(width, batch, steps, threads, device="cpu", tf32=False, bf16=False):
    import contextlib
    import torch
    from run import torch_setup
    sys.path.insert(0, GOLDEN)
    import make_advcl_step_golden as step_ref
    import make_nn_golden as model_ref

    sync = torch_setup(device, threads, tf32)
    model_ref.WIDTH = width  # Net reads the module's width when built
    torch.manual_seed(0)
    net = model_ref.Net().to(device).train()
    opt = torch.optim.SGD(net.parameters(), lr=step_ref.LR, momentum=step_ref.MOMENTUM, weight_decay=step_ref.WD)
    x1, x2, x_org = (torch.rand(batch, 3, 32, 32, device=device) for _ in range(3))
    labels = {k: torch.randint(0, k, (batch,), device=device) for k in model_ref.PSEUDO}
    start_cl = x_org + (torch.rand_like(x_org) * 2 - 1) * step_ref.EPS
    start_ce = x_org + (torch.rand_like(x_org) * 2 - 1) * step_ref.EPS
    if bf16:  # PyTorch's fastest CPU mode: autocast with channels_last
        net = net.to(memory_format=torch.channels_last)
        x1, x2, x_org, start_cl, start_ce = (t.contiguous(memory_format=torch.channels_last)
                                             for t in (x1, x2, x_org, start_cl, start_ce))
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        with autocast():
            step_ref.advcl_step(net, opt, x1, x2, x_org, labels, start_cl, start_ce, radius=8)
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    return times, torch.__version__


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build/cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--widths", default="16,64")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (both sides)")
    ap.add_argument("--tf32", default="off", choices=["on", "off"], help="TensorFloat-32 on a GPU (both sides)")
    ap.add_argument("--deterministic", default="on", choices=["on", "off"],
                    help="advcl's cuDNN algorithms deterministic only (its default) or any")
    ap.add_argument("--bf16", action="store_true",
                    help="CPU: also ours under --precision bf16 and PyTorch under bf16 autocast + channels_last")
    a = ap.parse_args()
    binary = os.path.join(a.build, "bin", "advcl_step_bench")
    if not os.path.exists(binary):
        sys.exit(f"advcl_step_bench: {binary} not found; run `make bench-step` (it builds it)")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OPENBLAS_NUM_THREADS=str(a.threads))
    # Each width's row is printed as soon as it is measured: width 64 can take minutes per side.
    header = False
    for width in map(int, a.widths.split(",")):
        cmd = [binary, "--width", str(width), "--batch", str(a.batch), "--steps", str(a.steps),
               "--threads", str(a.threads), "--device", a.device, "--tf32", a.tf32, "--deterministic", a.deterministic]

        def run_ours(extra):
            res = subprocess.run(cmd + extra, capture_output=True, text=True, env=env)
            if res.returncode != 0:
                sys.exit(f"advcl_step_bench: {' '.join(cmd + extra)} failed:\n{res.stderr}")
            sys.stderr.write(res.stderr)
            return [json.loads(line)["ms"] for line in res.stdout.splitlines()]

        ours = run_ours([])
        theirs, version = torch_steps(width, a.batch, a.steps, a.threads, a.device, a.tf32 == "on")
        if a.bf16:
            ours_bf16 = run_ours(["--precision", "bf16"])
            theirs_bf16, _ = torch_steps(width, a.batch, a.steps, a.threads, bf16=True)
        if not header:
            if a.device.startswith("cuda"):
                import torch
                where = (f"device: {torch.cuda.get_device_name(a.device)}; TF32 {a.tf32} for both; "
                         f"advcl cuDNN deterministic {a.deterministic}; PyTorch cudnn.benchmark on")
            else:
                where = f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; threads {a.threads}"
            print(f"# {where}; PyTorch {version}; batch {a.batch}, 3x32x32, float32; {a.steps} steps each")
            print(f"{'width':>5s} {'advcl s/step':>22s} {'torch s/step':>22s} {'ratio (best)':>13s}")
            header = True
        fmt = lambda ts: ", ".join(f"{t / 1000:.2f}" for t in ts)  # noqa: E731
        print(f"{width:5d} {fmt(ours):>22s} {fmt(theirs):>22s} {min(ours) / min(theirs):13.2f}", flush=True)
        if a.bf16:
            print(f"{'bf16':>5s} {fmt(ours_bf16):>22s} {fmt(theirs_bf16):>22s} "
                  f"{min(ours_bf16) / min(theirs_bf16):13.2f}   (advcl bf16 / PyTorch fp32: "
                  f"{min(ours_bf16) / min(theirs):.2f}; PyTorch bf16 with autocast + channels_last)", flush=True)

if __name__ == "__main__":
    main()
