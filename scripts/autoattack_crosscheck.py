#!/usr/bin/env python3
"""Cross-check of `advcl eval --attack autoattack` against torchattacks.

Takes a checkpoint written by `advcl finetune` (encoder + linear classifier),
rebuilds the same ResNet-18 in PyTorch from its safetensors file, and on the
first N test images:

  1. checks that PyTorch's features and logits equal ours (`advcl features`
     on the same images) and that every prediction agrees; stops otherwise;
  2. runs our AutoAttack (`advcl eval --attack autoattack`) and reads its
     per-stage counts;
  3. runs torchattacks' APGD-CE, APGD-T, FAB-T and Square in turn, each on the
     points still robust, configured as fra31/auto-attack's standard version
     (100 iterations for APGD and FAB, 9 target classes, 5000 Square queries,
     p_init 0.8, Square's schedule not rescaled); optionally also
     torchattacks.AutoAttack as shipped (--torchattacks-autoattack: its
     defaults are 10 iterations and a rescaled Square schedule, so it is a
     weaker attack than the standard version);
  4. prints both sets of accuracies (clean, after each stage) side by side and
     writes them to OUT/crosscheck.json.

Needs PyTorch, safetensors and torchattacks (pip install torchattacks); not
part of the build or the tests. Data: (Fashion-)MNIST IDX files (zero-padded
28x28 -> 32x32, as advcl's default fit) or CIFAR-10's python pickles.

    python3 scripts/autoattack_crosscheck.py --ckpt runs/slf/last.safetensors \\
        --data /usr/share/datasets/fashion-mnist --dataset fashion-mnist --n 1000 --out /tmp/xcheck

Both sides' results are kept in OUT (ours.json and ours.err, torchattacks.json)
and reused on a rerun with the same N (--rerun-ours, --rerun-torchattacks run
them again), so the two long runs can be made separately (--skip-torchattacks
makes only ours; a later run without it adds torchattacks and the table).

Long runs in slices, two at a time on two cores, then one table:

    for s in 0 200 400 600 800; do ... --start $s --n 200 --out /tmp/xc/s$s; done
    python3 scripts/autoattack_crosscheck.py --merge /tmp/xc/s* --out /tmp/xc

(A slice after the first is copied into OUT/data as a test set of its own.)
"""

import argparse
import gzip
import json
import os
import pickle
import re
import subprocess
import sys
import time

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from torch_resnet import FinetunedResNet18

STAGES = ["apgd-ce", "apgd-t", "fab-t", "square"]


# --- the model ------------------------------------------------------------------

def load_model(path):
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
    if "finetune.classes" not in meta:
        sys.exit(f"error: {path} has no classifier (no 'finetune.classes' metadata); use `advcl finetune`'s output")
    if meta.get("model.bn_sets", "1") != "1":
        sys.exit(f"error: {path} has {meta['model.bn_sets']} BN sets; a finetuned model has one")
    model = FinetunedResNet18(int(meta["model.width"]), int(meta["model.in_channels"]), int(meta["finetune.classes"]))
    sd = {k: v for k, v in load_file(path).items() if not k.startswith("optim.")}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    # num_batches_tracked is a buffer PyTorch has and advcl may store; anything else must match.
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    if missing or unexpected:
        sys.exit(f"error: {path}: names do not match the model (missing {missing}, unexpected {unexpected})")
    return model.eval(), meta


# --- the data -------------------------------------------------------------------

def _open(folder, name):
    for candidate in (name, name + ".gz"):
        p = os.path.join(folder, candidate)
        if os.path.exists(p):
            return gzip.open(p, "rb") if p.endswith(".gz") else open(p, "rb")
    sys.exit(f"error: --data: {name}(.gz) not found in {folder}")


def read_idx_test(folder, start, n):
    """Test images [start, start + n) and their labels, as stored (uint8)."""
    with _open(folder, "t10k-images-idx3-ubyte") as f:
        magic, count, rows, cols = np.frombuffer(f.read(16), ">i4")
        if magic != 2051:
            sys.exit("error: --data: t10k-images is not an IDX image file")
        imgs = np.frombuffer(f.read(), np.uint8).reshape(count, rows, cols)[start:start + n]
    with _open(folder, "t10k-labels-idx1-ubyte") as f:
        f.read(8)
        labels = np.frombuffer(f.read(), np.uint8)[start:start + n]
    if len(imgs) == 0:
        sys.exit(f"error: --start {start}: the test set has only {count} images")
    return imgs, labels


def write_idx_test(folder, imgs, labels):
    """The slice as a test set of its own (uncompressed IDX), so that advcl reads the same images."""
    os.makedirs(folder, exist_ok=True)
    n, rows, cols = imgs.shape
    with open(os.path.join(folder, "t10k-images-idx3-ubyte"), "wb") as f:
        f.write(np.array([2051, n, rows, cols], ">i4").tobytes() + imgs.tobytes())
    with open(os.path.join(folder, "t10k-labels-idx1-ubyte"), "wb") as f:
        f.write(np.array([2049, n], ">i4").tobytes() + labels.tobytes())


def to_tensors(imgs, labels, size):
    rows, cols = imgs.shape[1:]
    if rows > size or cols > size:
        sys.exit(f"error: images are {rows}x{cols}, larger than --size {size} (only padding is done here)")
    top, left = (size - rows) // 2, (size - cols) // 2
    x = np.zeros((len(imgs), 1, size, size), np.float32)
    x[:, 0, top:top + rows, left:left + cols] = imgs / np.float32(255)
    return torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64))


def load_cifar10_test(folder, n):
    p = os.path.join(folder, "test_batch")
    if not os.path.exists(p):
        p = os.path.join(folder, "cifar-10-batches-py", "test_batch")
    with open(p, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    x = np.asarray(d[b"data"][:n], np.uint8).reshape(-1, 3, 32, 32).astype(np.float32) / np.float32(255)
    return torch.from_numpy(x), torch.tensor(d[b"labels"][:n], dtype=torch.int64)


# --- our side -------------------------------------------------------------------

def data_args(args, channels):
    return ["--data", args.data, "--dataset", args.dataset, "--channels", str(channels), "--limit", str(args.n)]


def check_logits(args, model, x, y, channels):
    """PyTorch's features/logits vs `advcl features` on the same images; exits on a mismatch."""
    path = os.path.join(args.out, "ours_features.safetensors")
    subprocess.run([args.advcl, "features", "--ckpt", args.ckpt, "--split", "test", "--out", path,
                    "--threads", str(args.threads)] + data_args(args, channels), check=True,
                   stdout=subprocess.DEVNULL)
    ours = load_file(path)
    if not torch.equal(ours["labels"].long(), y):
        sys.exit("error: advcl's labels differ from the ones read here: not the same images")
    with torch.no_grad():
        feats = model.features(x)
        logits_ours = model.fc(ours["features"].float())
        logits = model.fc(feats)
    fdiff = (feats - ours["features"].float()).abs().max().item()
    ldiff = (logits - logits_ours).abs().max().item()
    agree = (logits.argmax(1) == logits_ours.argmax(1)).float().mean().item()
    scale = logits.abs().max().item()
    print(f"logit check on {len(y)} images: max |features diff| {fdiff:.3g}, max |logits diff| {ldiff:.3g} "
          f"(logits up to {scale:.3g}), predictions agree on {100 * agree:.2f}%")
    if agree < 1 or ldiff > 1e-3 * max(scale, 1):
        sys.exit("error: PyTorch's model does not reproduce advcl's logits; the comparison would mean nothing")
    return {"max_feature_diff": fdiff, "max_logit_diff": ldiff, "prediction_agreement": agree}


def run_ours(args, channels, alone=None):
    """Our AutoAttack through `advcl eval` (the standard chain, or the stage `alone` by itself);
    returns clean/per-stage counts read from its output."""
    tag = f"_{alone}" if alone else ""
    js, err = os.path.join(args.out, f"ours{tag}.json"), os.path.join(args.out, f"ours{tag}.err")
    if args.rerun_ours or not (os.path.exists(js) and os.path.exists(err)):
        cmd = [args.advcl, "eval", "--ckpt", args.ckpt, "--attack", "autoattack", "--eps", str(args.eps),
               "--threads", str(args.threads), "--json", js] + data_args(args, channels)
        if alone:
            cmd += ["--attacks", alone]
        print("running:", " ".join(cmd), flush=True)
        with open(err, "w") as e:
            subprocess.run(cmd, check=True, stderr=e, stdout=subprocess.DEVNULL)
    with open(js) as f:
        res = json.load(f)
    if res["images"] != args.n:
        sys.exit(f"error: {js} is for {res['images']} images, not {args.n} (use --rerun-ours)")
    broken = {}
    with open(err) as f:
        for line in f:
            m = re.match(r"autoattack: (\S+)\s+broke (\d+) points", line)
            if m:
                broken[m.group(1)] = int(m.group(2))
    clean = round(res["sa"] * args.n / 100)
    robust, stages = clean, {}
    for s in STAGES:
        robust -= broken.get(s, 0)
        stages[s] = robust
    if robust != round(res["ra"] * args.n / 100):
        sys.exit(f"error: {err}: the per-stage counts do not add up to the reported RA")
    return {"clean": clean, "robust_after": stages, "seconds": res["seconds"]}


def run_ours_individual(args, channels):
    """Each of args.stages alone on every correctly classified point (`advcl eval --attacks NAME`)."""
    out = {"robust_alone": {}, "seconds": {}}
    for name in args.stages:
        r = run_ours(args, channels, alone=name)
        out["clean"] = r["clean"]
        out["robust_alone"][name] = r["robust_after"][name]
        out["seconds"][name] = r["seconds"]
        print(f"advcl {name} alone: robust {out['robust_alone'][name]}/{args.n} ({r['seconds']:.0f}s)", flush=True)
    return out


# --- torchattacks ---------------------------------------------------------------

def standard_attacks(model, eps, classes, seed, only=STAGES):
    import torchattacks as ta
    # fra31/auto-attack's standard version; torchattacks' own defaults differ (10 iterations, rescaled Square).
    return [a for a in [
        ("apgd-ce", ta.APGD(model, norm="Linf", eps=eps, steps=100, n_restarts=1, loss="ce", rho=0.75, seed=seed)),
        ("apgd-t", ta.APGDT(model, norm="Linf", eps=eps, steps=100, n_restarts=1, rho=0.75, n_classes=classes,
                            seed=seed)),
        ("fab-t", ta.FAB(model, norm="Linf", eps=eps, steps=100, n_restarts=1, multi_targeted=True,
                         n_classes=classes, seed=seed)),
        ("square", ta.Square(model, norm="Linf", eps=eps, n_queries=5000, n_restarts=1, p_init=0.8,
                             loss="margin", resc_schedule=False, seed=seed)),
    ] if a[0] in only]


def predict(model, x, bs):
    with torch.no_grad():
        return torch.cat([model(x[i:i + bs]).argmax(1) for i in range(0, len(x), bs)])


def run_torchattacks(model, x, y, eps, classes, bs, seed):
    """Each attack on the points every earlier one left robust, in batches of bs (as AutoAttack)."""
    robust = predict(model, x, bs) == y
    out = {"clean": int(robust.sum()), "robust_after": {}, "seconds": {}}
    for name, attack in standard_attacks(model, eps, classes, seed):
        t0 = time.time()
        idx = robust.nonzero().flatten()
        for i in range(0, len(idx), bs):
            j = idx[i:i + bs]
            adv = attack(x[j], y[j])
            dist = (adv - x[j]).abs().flatten(1).max(1)[0]
            if dist.max() > eps + 1e-6 or adv.min() < 0 or adv.max() > 1:
                sys.exit(f"error: torchattacks {name} left the eps-ball or [0, 1] (distance {dist.max():.3g})")
            robust[j] &= predict(model, adv, bs) == y[j]
        out["robust_after"][name] = int(robust.sum())
        out["seconds"][name] = time.time() - t0
        print(f"torchattacks {name}: robust {int(robust.sum())}/{len(y)} ({time.time() - t0:.0f}s)", flush=True)
    return out


def run_torchattacks_individual(model, x, y, eps, classes, bs, seed, stages):
    """Each attack of `stages` alone on every correctly classified point: robust count after it."""
    correct = predict(model, x, bs) == y
    out = {"clean": int(correct.sum()), "robust_alone": {}, "seconds": {}}
    for name, attack in standard_attacks(model, eps, classes, seed, stages):
        t0 = time.time()
        robust = correct.clone()
        idx = correct.nonzero().flatten()
        for i in range(0, len(idx), bs):
            j = idx[i:i + bs]
            robust[j] &= predict(model, attack(x[j], y[j]), bs) == y[j]
        out["robust_alone"][name] = int(robust.sum())
        out["seconds"][name] = time.time() - t0
        print(f"torchattacks {name} alone: robust {int(robust.sum())}/{len(y)} ({time.time() - t0:.0f}s)", flush=True)
    return out


def run_torchattacks_autoattack(model, x, y, eps, classes, bs, seed):
    import torchattacks as ta
    attack = ta.AutoAttack(model, norm="Linf", eps=eps, version="standard", n_classes=classes, seed=seed)
    robust = predict(model, x, bs) == y
    t0 = time.time()
    idx = robust.nonzero().flatten()
    for i in range(0, len(idx), bs):
        j = idx[i:i + bs]
        robust[j] &= predict(model, attack(x[j], y[j]), bs) == y[j]
    return {"robust": int(robust.sum()), "seconds": time.time() - t0}

# --- the comparison -------------------------------------------------------------

def print_individual_table(report):
    """Each attack alone, both sides (robust accuracy %); sets report["max_individual_gap_points"]."""
    n = report["images"]
    ta, ours = report.get("torchattacks_individual"), report.get("advcl_individual")
    if not ta or not ours:
        return
    print(f"\n{n} images, each attack alone on every correctly classified point (robust accuracy %)")
    print(f"{'':10} {'advcl':>8} {'torchatt.':>10} {'diff':>7}")
    print(f"{'clean':10} {100 * ours['clean'] / n:8.2f} {100 * ta['clean'] / n:10.2f} "
          f"{100 * (ours['clean'] - ta['clean']) / n:+7.2f}")
    gaps = []
    for s in STAGES:
        if s in ours["robust_alone"] and s in ta["robust_alone"]:
            a, b = ours["robust_alone"][s], ta["robust_alone"][s]
            gaps.append(abs(a - b) * 100 / n)
            print(f"{s:10} {100 * a / n:8.2f} {100 * b / n:10.2f} {100 * (a - b) / n:+7.2f}")
    report["max_individual_gap_points"] = max(gaps) if gaps else None


def print_table(report, dataset):
    """Both sides' accuracies (clean, after each stage); sets report["final_gap_points"]."""
    n = report["images"]
    pct = lambda k: f"{100 * k / n:6.2f}"
    ta, ours = report["torchattacks_standard"], report.get("advcl")
    print(f"\n{n} images of {dataset}, eps {report['eps']} (accuracy %, advcl vs torchattacks)")
    print(f"{'':10} {'advcl':>8} {'torchatt.':>10} {'diff':>7}")
    rows = [("clean", ours and ours["clean"], ta["clean"])]
    rows += [(s, ours and ours["robust_after"][s], ta["robust_after"][s]) for s in STAGES]
    for name, a, b in rows:
        a_s = pct(a) if a is not None else "     -"
        d = f"{100 * (a - b) / n:+6.2f}" if a is not None else "     -"
        print(f"{name:10} {a_s:>8} {pct(b):>10} {d:>7}")
    if "torchattacks_autoattack_defaults" in report:
        print(f"torchattacks.AutoAttack as shipped (10 iterations): "
              f"{pct(report['torchattacks_autoattack_defaults']['robust'])}")
    if ours:
        gap = abs(ours["robust_after"]["square"] - ta["robust_after"]["square"]) * 100 / n
        report["final_gap_points"] = gap
        print(f"final robust accuracy gap: {gap:.2f} points ({'within' if gap <= 1 else 'OVER'} 1 point)")


def add_counts(total, part):
    """total += part for the counts and seconds of one side's result (dicts of numbers, nested)."""
    for k, v in part.items():
        if isinstance(v, dict):
            add_counts(total.setdefault(k, {}), v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            total[k] = total.get(k, 0) + v


def merge(args):
    """One report for the union of disjoint slices, each run with its own --start/--n/--out."""
    parts = []
    for d in args.merge:
        with open(os.path.join(d, "crosscheck.json")) as f:
            parts.append(json.load(f))
        if "advcl" not in parts[-1] and "advcl_individual" not in parts[-1]:
            sys.exit(f"error: {d}/crosscheck.json has no advcl result")
    ranges = sorted((r.get("start", 0), r.get("start", 0) + r["images"]) for r in parts)
    for (a0, a1), (b0, b1) in zip(ranges, ranges[1:]):
        if b0 < a1:
            sys.exit(f"error: --merge: slices [{a0}, {a1}) and [{b0}, {b1}) overlap")
    report = {"merged": args.merge, "slices": ranges, "images": sum(r["images"] for r in parts),
              "eps": parts[0]["eps"],
              "max_logit_diff": max(r["logit_check"]["max_logit_diff"] for r in parts)}
    results = ["advcl", "torchattacks_standard", "advcl_individual", "torchattacks_individual"]
    for r in parts:
        if r["eps"] != report["eps"] or r["checkpoint"] != parts[0]["checkpoint"]:
            sys.exit("error: --merge: the runs differ in checkpoint or eps")
        if [k for k in results if k in r] != [k for k in results if k in parts[0]]:
            sys.exit("error: --merge: the runs hold different results (chain / attacks alone)")
        for k in results:
            if k in r:
                add_counts(report.setdefault(k, {}), r[k])
    report["checkpoint"] = parts[0]["checkpoint"]
    if "advcl" in report:
        print_table(report, f"slices {ranges}")
    print_individual_table(report)
    with open(os.path.join(args.out, "crosscheck.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(f"written: {os.path.join(args.out, 'crosscheck.json')}")


# --- main -----------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", help="`advcl finetune`'s last.safetensors")
    p.add_argument("--data", help="dataset folder (IDX files or CIFAR-10 python pickles)")
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist", "cifar10"])
    p.add_argument("--n", type=int, default=1000, help="N test images, from --start on")
    p.add_argument("--start", type=int, default=0, help="index of the first test image (IDX data)")
    p.add_argument("--merge", nargs="+", metavar="DIR",
                   help="add up the crosscheck.json of runs on disjoint slices (each DIR an earlier --out) "
                        "into OUT/crosscheck.json; runs nothing")
    p.add_argument("--eps", type=float, default=8, help="L-inf radius in 1/255 units")
    p.add_argument("--batch-size", type=int, default=250, help="torchattacks batch (AutoAttack's bs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="CPU threads for both sides")
    p.add_argument("--advcl", default="build/cpu/bin/advcl")
    p.add_argument("--out", required=True, help="folder for our run's output and crosscheck.json")
    p.add_argument("--rerun-ours", action="store_true", help="run `advcl eval` again even if OUT has its output")
    p.add_argument("--rerun-torchattacks", action="store_true",
                   help="run torchattacks again even if OUT has its result (torchattacks.json)")
    p.add_argument("--skip-ours", action="store_true", help="only the logit check and torchattacks")
    p.add_argument("--skip-torchattacks", action="store_true",
                   help="only the logit check and our run (a later run without it reuses our output)")
    p.add_argument("--individual-only", action="store_true",
                   help="instead of the chain: each attack of --stages alone on every correctly classified point, "
                        "on both sides (ours: `advcl eval --attacks NAME`)")
    p.add_argument("--stages", default=",".join(STAGES),
                   help="with --individual-only: the attacks to run alone (comma-separated)")
    p.add_argument("--torchattacks-autoattack", action="store_true",
                   help="also run torchattacks.AutoAttack as shipped (its defaults: 10 iterations)")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.merge:
        return merge(args)
    args.stages = [s for s in args.stages.split(",") if s]
    if not args.stages or any(s not in STAGES for s in args.stages):
        p.error(f"--stages: names from {','.join(STAGES)}")
    if not args.ckpt or not args.data:
        p.error("--ckpt and --data are required (except with --merge)")
    torch.set_num_threads(args.threads)
    eps = args.eps / 255

    model, meta = load_model(args.ckpt)
    channels = int(meta["model.in_channels"])
    classes = int(meta["finetune.classes"])
    if args.dataset == "cifar10":
        if args.start:
            sys.exit("error: --start works with IDX data only")
        x, y = load_cifar10_test(args.data, args.n)
    else:
        imgs, labels = read_idx_test(args.data, args.start, args.n)
        if args.start:
            # advcl reads the slice from a test set of its own; its random numbers are keyed by the
            # index within that file, so they differ from a run over the whole set (as torch's do).
            args.data = os.path.join(args.out, "data")
            write_idx_test(args.data, imgs, labels)
        x, y = to_tensors(imgs, labels, 32)
    if x.shape[1] != channels:
        sys.exit(f"error: the model takes {channels}-channel images, the data has {x.shape[1]}")
    args.n = len(y)

    report = {"checkpoint": args.ckpt, "data": args.data, "start": args.start, "images": args.n,
              "eps": f"{args.eps}/255",
              "threads": args.threads, "logit_check": check_logits(args, model, x, y, channels)}
    if args.individual_only:
        if not args.skip_ours:
            report["advcl_individual"] = run_ours_individual(args, channels)
        if args.skip_torchattacks:
            return
        ta_path = os.path.join(args.out, "torchattacks_individual.json")
        done = {}
        if os.path.exists(ta_path) and not args.rerun_torchattacks:
            with open(ta_path) as f:
                done = json.load(f)
        if done.get("images") != args.n or any(s not in done["robust_alone"] for s in args.stages):
            done = run_torchattacks_individual(model, x, y, eps, classes, args.batch_size, args.seed, args.stages)
            done["images"] = args.n
            with open(ta_path, "w") as f:
                json.dump(done, f, indent=1)
        report["torchattacks_individual"] = done
        print_individual_table(report)
        with open(os.path.join(args.out, "crosscheck.json"), "w") as f:
            json.dump(report, f, indent=1)
        print(f"written: {os.path.join(args.out, 'crosscheck.json')}")
        return
    if not args.skip_ours:
        report["advcl"] = run_ours(args, channels)
    if args.skip_torchattacks:
        print(f"advcl: {report.get('advcl')}")
        return
    ta_path = os.path.join(args.out, "torchattacks.json")
    if args.rerun_torchattacks or not os.path.exists(ta_path):
        result = run_torchattacks(model, x, y, eps, classes, args.batch_size, args.seed)
        result["images"] = args.n
        with open(ta_path, "w") as f:
            json.dump(result, f, indent=1)
    with open(ta_path) as f:
        report["torchattacks_standard"] = json.load(f)
    if report["torchattacks_standard"]["images"] != args.n:
        sys.exit(f"error: {ta_path} is for another N (use --rerun-torchattacks)")
    if args.torchattacks_autoattack:
        report["torchattacks_autoattack_defaults"] = run_torchattacks_autoattack(model, x, y, eps, classes,
                                                                                args.batch_size, args.seed)

    print_table(report, args.dataset)
    with open(os.path.join(args.out, "crosscheck.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(f"written: {os.path.join(args.out, 'crosscheck.json')}")


if __name__ == "__main__":
    main()
