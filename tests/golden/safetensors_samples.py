#!/usr/bin/env python3
"""Interoperability samples for engine/safetensors.cpp, with Python's `safetensors` package.

    python3 tests/golden/safetensors_samples.py
        writes tests/golden/python_samples.safetensors, which
        tests/engine/safetensors_test.cpp loads and checks value by value;

    python3 tests/golden/safetensors_samples.py --check FILE
        checks that FILE, written by our C++ writer, loads in Python with
        exactly these values and metadata. To make such a file:
        ADVCL_SAFETENSORS_EXPORT=/tmp/cpp.safetensors \
            build/cpu/bin/advcl_tests --gtest_filter='Safetensors.WritesSamplesForPython'

The values are exact in their dtypes, so every comparison is exact. Keep them in
step with kSamples in tests/engine/safetensors_test.cpp.
"""

import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python_samples.safetensors")


def samples():
    return {
        "f32": torch.tensor([[-1.0, -0.5, 0.0], [0.5, 1.0, 1.5]], dtype=torch.float32),
        "f64": torch.tensor([0.1, -2.5, 1e-300, 1e300], dtype=torch.float64),
        "bf16": torch.tensor([[1.0, -2.0], [0.5, 3.140625]], dtype=torch.bfloat16),
        "i32": torch.tensor([-2147483648, 2147483647, 0], dtype=torch.int32),
        "i64": torch.tensor([-(2**63), 2**63 - 1, 42], dtype=torch.int64),
        "u8": torch.tensor([[0], [255], [7]], dtype=torch.uint8),
        "scalar": torch.tensor(2.5, dtype=torch.float32),
        "empty": torch.zeros((0, 3), dtype=torch.float32),
        "nested.name/with:punct": torch.tensor([1, 2], dtype=torch.int64),
    }


METADATA = {"format": "pt", "note": "written by Python \u2014 safetensors"}


def check(path):
    want = samples()
    got = load_file(path)
    assert got.keys() == want.keys(), f"names differ: {sorted(got)} vs {sorted(want)}"
    for k, v in want.items():
        assert got[k].dtype == v.dtype, f"{k}: dtype {got[k].dtype}, want {v.dtype}"
        assert got[k].shape == v.shape, f"{k}: shape {tuple(got[k].shape)}, want {tuple(v.shape)}"
        assert torch.equal(got[k], v), f"{k}: values {got[k]}, want {v}"
    with safe_open(path, framework="pt") as f:
        assert f.metadata() == METADATA, f"metadata {f.metadata()}, want {METADATA}"
    print(f"{path}: {len(want)} tensors and the metadata match")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    elif len(sys.argv) == 1:
        save_file(samples(), OUT, metadata=METADATA)
        os.chmod(OUT, 0o644)
        check(OUT)
    else:
        sys.exit(__doc__)
