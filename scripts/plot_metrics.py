#!/usr/bin/env python3
"""Curves of a run, as PNG, from the metrics.jsonl files advcl's stages write.

    plot_metrics.py RUN_DIR [RUN_DIR ...] [--out DIR]

For every RUN_DIR holding a metrics.jsonl (simclr, pretrain, finetune), one
PNG beside it (or in --out) named after the stage: the training losses
against the step (every logged line), the learning rate, and for
finetuning the test accuracies SA and RA per evaluated epoch. Needs
matplotlib (Debian: python3-matplotlib; `make demo` installs it).

metrics.jsonl lines are JSON objects: per-step lines carry "step" (and the
logged values), per-epoch summaries carry "epoch_seconds", evaluations
carry "test_sa"/"test_ra" (fractions).
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

# Per-step values that are not losses (drawn elsewhere or not at all).
NOT_LOSSES = {"step", "epoch", "lr", "stage", "acc"}


def read_metrics(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"plot_metrics: {path}:{n}: not a JSON line ({e})")
    return rows


def plot_run(run_dir, out_dir):
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        sys.exit(f"plot_metrics: {path} does not exist (is {run_dir} an advcl run folder?)")
    rows = read_metrics(path)
    steps = [r for r in rows if "step" in r]
    evals = [r for r in rows if "test_sa" in r]
    if not steps:
        sys.exit(f"plot_metrics: {path} has no per-step lines to plot")
    stage = steps[0].get("stage", os.path.basename(os.path.normpath(run_dir)))
    x = [r["step"] for r in steps]  # the run's global step

    panels = 2 + (1 if evals else 0)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6))
    ax = axes[0]
    for key in sorted({k for r in steps for k in r if k not in NOT_LOSSES}):
        pts = [(xi, r[key]) for xi, r in zip(x, steps) if key in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=key)
    if any("acc" in r for r in steps):
        ax2 = ax.twinx()
        ax2.plot(x, [r.get("acc", float("nan")) * 100 for r in steps], color="grey", alpha=0.6, label="train acc %")
        ax2.set_ylabel("train accuracy %")
        ax2.legend(loc="upper right", fontsize=8)
    ax.set_xlabel(f"step ({max(r.get('epoch', 1) for r in steps)} epochs)")
    ax.set_title(f"{stage}: training loss")
    ax.legend(loc="upper left" if any("acc" in r for r in steps) else "best", fontsize=8)

    ax = axes[1]
    ax.plot(x, [r.get("lr", float("nan")) for r in steps], color="tab:green")
    ax.set_xlabel("step")
    ax.set_title("learning rate")

    if evals:
        ax = axes[2]
        ep = [r["epoch"] for r in evals]
        ax.plot(ep, [r["test_sa"] * 100 for r in evals], "o-", label="SA (clean)")
        ax.plot(ep, [r["test_ra"] * 100 for r in evals], "s-", label="RA (PGD)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("%")
        ax.set_title(f"test accuracy ({evals[-1].get('test_images', '?')} images)")
        ax.legend(fontsize=8)

    fig.tight_layout()
    os.makedirs(out_dir or run_dir, exist_ok=True)
    png = os.path.join(out_dir or run_dir, f"{stage}.png")
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders (each with a metrics.jsonl)")
    p.add_argument("--out", help="write the PNGs here instead of into each run folder")
    a = p.parse_args()
    for run in a.runs:
        print(f"plot: {plot_run(run, a.out)}")


if __name__ == "__main__":
    main()
