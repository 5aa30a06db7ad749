#!/usr/bin/env python3
"""Convert between the reference's PyTorch checkpoints (LijieFan/AdvCL) and
advcl's safetensors checkpoints (nn/checkpoint.h). Not used by the build.

    # reference .ckpt/.pth -> advcl safetensors
    python3 nn/convert_reference_checkpoint.py to-advcl epoch_1000.ckpt advcl.safetensors
    # advcl safetensors -> a .ckpt the reference's scripts load ({'model': ..., 'epoch': ...})
    python3 nn/convert_reference_checkpoint.py to-reference advcl.safetensors epoch_100.ckpt [--module-prefix]

to-advcl:
  * takes the state dict from the file's 'model' or 'state_dict' entry (or the
    file itself when it is a plain state dict);
  * strips DataParallel's `module.` prefix;
  * drops `head_pred.*` and `head_ce.*` (built by the reference but used by no
    loss; advcl does not build them) and says how many it dropped;
  * renames the reference finetuning model's shortcut (`shortcut.0.` ->
    `downsample.conv.`, `shortcut.1.` -> `downsample.bn.`); `linear.*` stays;
  * stores floating tensors as float32 and integers (num_batches_tracked) as
    int64, with metadata format=advcl.checkpoint, format_version=1, epoch
    (from the file, else 0), step=0, source=<input file>.
to-reference: writes {'model': state_dict, 'epoch': epoch}
  as the reference's pretraining saves it (`--module-prefix` adds `module.` as
  its DataParallel model has); a single-set (finetuning) model's
  `downsample.conv/bn` become the reference finetuning model's `shortcut.0/1`. Momentum buffers (`optim.*`) are not part of
  the reference's checkpoints and are left out.
advcl's loader then checks every name and shape, so a wrong file fails loudly.
"""

import argparse
import sys

import torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open

DROPPED_PREFIXES = ("head_pred.", "head_ce.")
RENAMES = [(".shortcut.0.", ".downsample.conv."), (".shortcut.1.", ".downsample.bn.")]


def reference_state_dict(obj):
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if key in obj and isinstance(obj[key], dict):
                return obj[key]
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    sys.exit("error: no state dict found (expected a dict with 'model' or 'state_dict', or a plain state dict)")


def to_advcl(src, dst):
    obj = torch.load(src, map_location="cpu", weights_only=False)
    sd = reference_state_dict(obj)
    out, dropped = {}, 0
    for name, t in sd.items():
        if name.startswith("module."):
            name = name[len("module."):]
        if name.startswith(DROPPED_PREFIXES):
            dropped += 1
            continue
        for old, new in RENAMES:
            name = name.replace(old, new)
        if name in out:
            sys.exit(f"error: two tensors map to '{name}'")
        t = t.detach().cpu().contiguous()
        out[name] = t.float() if t.is_floating_point() else t.long()
    epoch = obj.get("epoch", 0) if isinstance(obj, dict) else 0
    meta = {"format": "advcl.checkpoint", "format_version": "1", "epoch": str(int(epoch)), "step": "0",
            "source": str(src)}
    save_file(out, dst, metadata=meta)
    print(f"wrote {dst}: {len(out)} tensors (dropped {dropped} head_pred/head_ce tensors), epoch {epoch}")


def to_reference(src, dst, module_prefix):
    with safe_open(src, framework="pt") as f:
        meta = f.metadata() or {}
    tensors = load_file(src)
    # A multi-set (pretraining) model keeps `downsample.*`, as the reference's
    # pretraining model names it; a single-set (finetuning) model gets the
    # reference finetuning model's `shortcut.0/1`.
    single_set = not any(".bn_list." in n or n.startswith("bn_list.") for n in tensors)
    sd = {}
    for name, t in tensors.items():
        if name.startswith("optim."):
            continue
        if single_set:
            for old, new in RENAMES:
                name = name.replace(new, old)
        sd[("module." if module_prefix else "") + name] = t
    epoch = int(meta.get("epoch", "0"))
    torch.save({"model": sd, "epoch": epoch}, dst)
    print(f"wrote {dst}: {len(sd)} tensors, epoch {epoch}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("to-advcl")
    a.add_argument("src")
    a.add_argument("dst")
    b = sub.add_parser("to-reference")
    b.add_argument("src")
    b.add_argument("dst")
    b.add_argument("--module-prefix", action="store_true", help="prefix names with 'module.' (DataParallel)")
    args = p.parse_args()
    if args.cmd == "to-advcl":
        to_advcl(args.src, args.dst)
    else:
        to_reference(args.src, args.dst, args.module_prefix)


if __name__ == "__main__":
    main()
