#!/usr/bin/env python3
"""Golden values for the engine's ops, computed with PyTorch.

Regenerate (needs `pip install torch safetensors numpy`; nothing else in the
build or the tests needs PyTorch):

    python3 tests/golden/make_engine_golden.py

writes tests/golden/engine_golden.safetensors (and checks that it reads back).
The output is deterministic: every case draws its inputs from its own
generator seeded by a CRC of the case's name, so adding a case changes no other.

Conventions (read by tests/engine/golden_test.cpp):
  * everything is float64 on the CPU, except labels/indices (int64) and masks (uint8);
  * `<case>.x` / `.a` / `.b` / `.w` ... are inputs, `.y` the forward output,
    `.gy` a random upstream gradient, `.g<input>` = torch.autograd.grad(y, input, gy);
  * scalar arguments that are not tensors (stride, eps, k, radius...) are
    written in the C++ test next to the case name, and recorded in the file's
    metadata entry "about" (a JSON string);
  * the FFT cases store their inputs as bytes (see there) to keep the file small.
"""

import json
import math
import os
import sys
import warnings
import zlib

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "engine_golden.safetensors")
torch.set_default_dtype(torch.float64)
# kl_div(reduction="mean") is recorded on purpose; PyTorch warns that it is not batchmean.
warnings.filterwarnings("ignore", message="reduction: 'mean' divides")

tensors = {}
metadata = {
    "generator": "tests/golden/make_engine_golden.py",
    "torch": torch.__version__,
}


def gen(name):
    return torch.Generator().manual_seed(zlib.crc32(name.encode()))


def randn(g, *shape):
    return torch.randn(tuple(shape), generator=g, dtype=torch.float64)


def rand(g, *shape):
    return torch.rand(tuple(shape), generator=g, dtype=torch.float64)


def put(name, t):
    assert name not in tensors, f"duplicate golden name {name}"
    tensors[name] = t.detach().contiguous().clone()


def record(case, fn, inputs, grad_inputs=None, gy_scale=1.0, extra=None):
    """Runs fn(**inputs), stores inputs, y, gy and the gradients of y w.r.t. grad_inputs."""
    g = gen(case + ".gy")
    leaves = {}
    for k, v in inputs.items():
        v = v.detach().clone()
        if grad_inputs is not None and k in grad_inputs:
            v.requires_grad_(True)
        leaves[k] = v
        put(f"{case}.{k}", v)
    y = fn(*leaves.values())
    put(f"{case}.y", y)
    if grad_inputs:
        gy = randn(g, *y.shape) * gy_scale
        put(f"{case}.gy", gy)
        grads = torch.autograd.grad(y, [leaves[k] for k in grad_inputs], gy)
        for k, gk in zip(grad_inputs, grads):
            put(f"{case}.g{k}", gk)
    if extra:
        for k, v in extra.items():
            metadata[f"{case}.{k}"] = str(v)
    return y


# --- conv2d -----------------------------------------------------------------------------------
# (case, N, Cin, H, W, Cout, k, stride, padding, bias)
CONV = [
    ("s1p0", 2, 3, 6, 6, 4, 3, 1, 0, True),
    ("s1p1", 2, 3, 6, 6, 4, 3, 1, 1, False),
    ("s2p0", 2, 3, 7, 7, 4, 3, 2, 0, False),
    ("s2p1", 2, 3, 8, 8, 4, 3, 2, 1, True),
    ("s2p1odd", 1, 2, 7, 5, 3, 3, 2, 1, True),
    ("k1s1", 2, 3, 5, 5, 4, 1, 1, 0, True),
    ("k1s2", 2, 3, 6, 6, 4, 1, 2, 0, False),
]
for name, n, cin, h, w, cout, k, s, p, bias in CONV:
    case = f"conv2d.{name}"
    g = gen(case)
    inputs = {"x": randn(g, n, cin, h, w), "w": randn(g, cout, cin, k, k) / math.sqrt(cin * k * k)}
    if bias:
        inputs["b"] = randn(g, cout)
    record(case, lambda x, w, b=None: F.conv2d(x, w, b, stride=s, padding=p), inputs, list(inputs),
           extra={"stride": s, "padding": p})

# --- batch norm -------------------------------------------------------------------------------
for shape_name, shape in [("nchw", (4, 3, 5, 5)), ("nc", (6, 5))]:
    c = shape[1]
    for mode in ["train", "eval"]:
        case = f"bn.{shape_name}.{mode}"
        g = gen(case)
        x = randn(g, *shape) * 2.0 + 0.5  # a mean and a scale far from (0, 1)
        wt = 1.0 + 0.3 * randn(g, c)
        bs = 0.3 * randn(g, c)
        rm = 0.2 * randn(g, c)
        rv = 0.5 + rand(g, c)
        training = mode == "train"
        put(f"{case}.running_mean", rm)
        put(f"{case}.running_var", rv)
        rm_run, rv_run = rm.clone(), rv.clone()
        record(case,
               lambda x, w, b: F.batch_norm(x, rm_run, rv_run, w, b, training=training, momentum=0.1, eps=1e-5),
               {"x": x, "w": wt, "b": bs}, ["x", "w", "b"], extra={"momentum": 0.1, "eps": 1e-5})
        if training:
            put(f"{case}.running_mean_out", rm_run)
            put(f"{case}.running_var_out", rv_run)

# --- elementwise binary, with broadcasting ----------------------------------------------------
BINARY = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
    "minimum": torch.minimum, "maximum": torch.maximum,
}
BCAST = {"nchw_c": ((2, 3, 4, 5), (1, 3, 1, 1)), "nc_c": ((4, 3), (3,)), "same": ((3, 4), (3, 4)),
         "c_nc": ((3,), (4, 3)), "t0d": ((2, 3), ())}
for op, fn in BINARY.items():
    for bname, (sa, sb) in BCAST.items():
        case = f"{op}.{bname}"
        g = gen(case)
        a, b = randn(g, *sa), randn(g, *sb)
        if op == "div":
            b = b.sign() * (0.5 + b.abs())  # away from zero
        record(case, fn, {"a": a, "b": b}, ["a", "b"])
# Ties: PyTorch splits the gradient of min/max equally between equal inputs.
for op in ["minimum", "maximum"]:
    case = f"{op}.ties"
    g = gen(case)
    a = randn(g, 2, 5)
    b = a.clone()
    b[:, 1::2] = randn(g, 2, 2)
    record(case, BINARY[op], {"a": a, "b": b}, ["a", "b"])

# Tensor-scalar forms (the C++ API's add(x, s), mul(x, s), div(x, s), rsub(x, s), x - s).
SCALAR = {
    "add": (1.75, lambda x, s: x + s), "sub": (0.625, lambda x, s: x - s), "rsub": (2.5, lambda x, s: s - x),
    "mul": (-1.5, lambda x, s: x * s), "div": (-0.4, lambda x, s: x / s),
}
for op, (s, fn) in SCALAR.items():
    case = f"{op}.scalar"
    g = gen(case)
    record(case, lambda x, s=s, fn=fn: fn(x, s), {"x": randn(g, 3, 4)}, ["x"], extra={"s": s})

# --- elementwise unary --------------------------------------------------------------------------
def positive(g, *shape):
    return 0.1 + 2.0 * rand(g, *shape)


UNARY = {
    "neg": (torch.neg, randn),
    "exp": (torch.exp, randn),
    "log": (torch.log, positive),
    "sqrt": (torch.sqrt, positive),
    "abs": (torch.abs, randn),
    "sign": (torch.sign, randn),
    "relu": (torch.relu, randn),
    "clamp": (lambda x: torch.clamp(x, -0.5, 0.75), randn),
    "pow2": (lambda x: torch.pow(x, 2.0), randn),
    "pow3": (lambda x: torch.pow(x, 3.0), randn),
    "powhalf": (lambda x: torch.pow(x, 0.5), positive),
    "pow-1": (lambda x: torch.pow(x, -1.0), positive),
    "pow1.5": (lambda x: torch.pow(x, 1.5), positive),
}
for op, (fn, draw) in UNARY.items():
    case = f"{op}.x34"
    g = gen(case)
    record(case, fn, {"x": draw(g, 3, 4)}, ["x"])
# Kinks hit exactly: PyTorch's derivative is 0 for relu(0), abs(0) and sign. (1e-30, not smaller,
# so that the value stays non-zero in float32 too.) clamp is left out here on purpose: PyTorch
# changed its subgradient at the bounds from 1 (AdvCL's era, inclusive bounds) to 0 (2026,
# pytorch/pytorch#191142), so the golden value would depend on the installed version.
EDGE = torch.tensor([[-1.0, 0.0, 0.5, -0.5], [0.75, 2.0, -0.0, 1e-30]])
for op, fn in [("relu", torch.relu), ("abs", torch.abs), ("sign", torch.sign)]:
    record(f"{op}.edge", fn, {"x": EDGE}, ["x"])

# --- reductions ---------------------------------------------------------------------------------
RED_X = (3, 4, 5)
REDUCE = [
    ("sum.d1", lambda x: x.sum(1)), ("sum.d0k", lambda x: x.sum(0, keepdim=True)),
    ("sum.dm1", lambda x: x.sum(-1)), ("sum.all", lambda x: x.sum()),
    ("mean.d1", lambda x: x.mean(1)), ("mean.d2k", lambda x: x.mean(2, keepdim=True)),
    ("mean.all", lambda x: x.mean()),
    ("max.d1", lambda x: x.max(1).values), ("max.d2k", lambda x: x.max(2, keepdim=True).values),
    ("min.d1", lambda x: x.min(1).values), ("min.d0", lambda x: x.min(0).values),
]
for case, fn in REDUCE:
    g = gen(case)
    record(case, fn, {"x": randn(g, *RED_X)}, ["x"])
for case, dim, keep in [("argmax.d1", 1, False), ("argmax.dm1k", -1, True)]:
    g = gen(case)
    x = randn(g, *RED_X)
    put(f"{case}.x", x)
    put(f"{case}.y", x.argmax(dim, keepdim=keep))

for case, k in [("topk.k3", 3), ("topk.k1", 1), ("topk.kall", 7)]:
    g = gen(case)
    x = randn(g, 4, 7).requires_grad_(True)
    v, i = torch.topk(x, k, dim=-1)
    gy = randn(gen(case + ".gy"), *v.shape)
    put(f"{case}.x", x)
    put(f"{case}.values", v)
    put(f"{case}.indices", i)
    put(f"{case}.gy", gy)
    put(f"{case}.gx", torch.autograd.grad(v, x, gy)[0])
    metadata[f"{case}.k"] = str(k)

case = "gap"
record(case, lambda x: x.mean((2, 3)), {"x": randn(gen(case), 2, 3, 4, 5)}, ["x"])

case = "l2norm"
record(case, lambda x: F.normalize(x, dim=1), {"x": randn(gen(case), 5, 8)}, ["x"])

# --- matmul and linear --------------------------------------------------------------------------
for case, sa, sb, ta, tb in [("matmul.nn", (3, 4), (4, 5), False, False), ("matmul.tn", (4, 3), (4, 5), True, False),
                             ("matmul.nt", (3, 4), (5, 4), False, True), ("matmul.tt", (4, 3), (5, 4), True, True)]:
    g = gen(case)
    record(case, lambda a, b, ta=ta, tb=tb: (a.T if ta else a) @ (b.T if tb else b),
           {"a": randn(g, *sa), "b": randn(g, *sb)}, ["a", "b"])
# f @ f.T with the same tensor on both sides: the gradient is the sum of both paths.
case = "matmul.ffT"
record(case, lambda f: f @ f.T, {"f": randn(gen(case), 4, 6)}, ["f"])

for case, bias in [("linear.bias", True), ("linear.nobias", False)]:
    g = gen(case)
    inputs = {"x": randn(g, 3, 4), "w": randn(g, 5, 4)}
    if bias:
        inputs["b"] = randn(g, 5)
    record(case, lambda x, w, b=None: F.linear(x, w, b), inputs, list(inputs))

# --- softmax family and losses ------------------------------------------------------------------
def logits(g):
    x = 2.0 * randn(g, 4, 6)
    x[2] += 300.0  # a row that overflows exp() unless the maximum is subtracted
    return x


record("softmax", lambda x: torch.softmax(x, -1), {"x": logits(gen("softmax"))}, ["x"])
record("log_softmax", lambda x: torch.log_softmax(x, -1), {"x": logits(gen("log_softmax"))}, ["x"])

for red in ["sum", "mean"]:
    case = f"ce.{red}"
    g = gen(case)
    labels = torch.tensor([2, -1, 0, 4, -1, 1], dtype=torch.int64)
    put(f"{case}.labels", labels)
    record(case, lambda x: F.cross_entropy(x, labels, reduction=red, ignore_index=-1),
           {"x": 2.0 * randn(g, 6, 5)}, ["x"], extra={"ignore_index": -1})

for red in ["sum", "batchmean", "mean"]:
    case = f"kl.{red}"
    g = gen(case)
    inp = torch.log_softmax(randn(g, 4, 5), -1)
    tgt = torch.softmax(randn(g, 4, 5), -1)
    record(case, lambda input, target: F.kl_div(input, target, reduction=red),
           {"input": inp, "target": tgt}, ["input", "target"])
# Zeros in the target contribute 0 to the loss (and their target gradient is -inf: not recorded).
case = "kl.zeros"
g = gen(case)
inp = torch.log_softmax(randn(g, 3, 4), -1)
tgt = torch.softmax(randn(g, 3, 4), -1)
tgt[0, 1] = 0.0
tgt[2, 3] = 0.0
record(case, lambda input, target: F.kl_div(input, target, reduction="sum"),
       {"input": inp, "target": tgt}, ["input"])

# --- shape ops ----------------------------------------------------------------------------------
g = gen("cat")
record("cat", lambda a, b, c: torch.cat([a, b, c], 0),
       {"a": randn(g, 2, 3, 4), "b": randn(g, 3, 3, 4), "c": randn(g, 1, 3, 4)}, ["a", "b", "c"])
record("slice", lambda x: x[1:4], {"x": randn(gen("slice"), 5, 3, 2)}, ["x"], extra={"start": 1, "end": 4})
record("reshape", lambda x: x.reshape(4, -1), {"x": randn(gen("reshape"), 2, 3, 4)}, ["x"])
record("flatten", lambda x: x.flatten(1), {"x": randn(gen("flatten"), 2, 3, 4)}, ["x"])
idx = torch.tensor([3, 0, 3, 4], dtype=torch.int64)  # a repeated row: its gradient accumulates
put("index_select.indices", idx)
record("index_select", lambda x: x.index_select(0, idx), {"x": randn(gen("index_select"), 5, 3)}, ["x"])

# --- FFT high-pass ------------------------------------------------------------------------------
def highpass_mask(h, w, r):
    # Shifted coordinates: after fftshift the zero frequency sits at (h // 2, w // 2).
    i = torch.arange(h, dtype=torch.float64).view(-1, 1)
    j = torch.arange(w, dtype=torch.float64).view(1, -1)
    return (((i - h // 2) ** 2 + (j - w // 2) ** 2).sqrt() >= r).to(torch.uint8)


def highpass(x, mask):
    m = mask.to(torch.float64)
    spec = torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1)) * m
    return torch.real(torch.fft.ifft2(torch.fft.ifftshift(spec, dim=(-2, -1))))


for case, shape, r in [("fft.32", (2, 3, 32, 32), 8.0), ("fft.12x10", (1, 1, 12, 10), 3.0),
                       ("fft.11x9", (1, 2, 11, 9), 3.0)]:
    g = gen(case)
    mask = highpass_mask(shape[2], shape[3], r)
    put(f"{case}.mask", mask)
    # The inputs are stored as bytes to keep the file small, and are exact in float64:
    # x = x_u8 / 255 (an image, like the data the view is made from), gy = (gy_u8 - 128) / 32.
    x_u8 = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    gy_u8 = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    put(f"{case}.x_u8", x_u8)
    put(f"{case}.gy_u8", gy_u8)
    x = (x_u8.to(torch.float64) / 255).requires_grad_(True)
    gy = (gy_u8.to(torch.float64) - 128) / 32
    y = highpass(x, mask)
    put(f"{case}.y", y)
    put(f"{case}.gx", torch.autograd.grad(y, x, gy)[0])
    metadata[f"{case}.radius"] = str(r)
assert int((tensors["fft.32.mask"] == 0).sum()) == 193, "docs/method.md section 8: r=8 on 32x32 zeroes 193 frequencies"

# -------------------------------------------------------------------------------------------------
# One metadata entry: the writer orders several entries at random, and the file should be
# byte-for-byte reproducible.
save_file(tensors, OUT, metadata={"about": json.dumps(metadata, sort_keys=True)})
os.chmod(OUT, 0o644)
back = load_file(OUT)
assert back.keys() == tensors.keys()
for k, v in tensors.items():
    assert back[k].dtype == v.dtype and torch.equal(back[k], v), k
print(f"wrote {OUT}: {len(tensors)} tensors, {os.path.getsize(OUT)} bytes", file=sys.stderr)
