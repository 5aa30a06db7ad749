#!/usr/bin/env bash
# Builds bench/onednn_layout_bench.cpp against Debian's oneDNN 2.6 and against
# oneDNN 3.x from pip (each one that is installed), runs each at 2 threads, then
# times PyTorch's convolutions (its own oneDNN 3.x) at the same geometries, so
# the three stand side by side. See "oneDNN 2.6 or 3.x, and layouts" in
# bench/README.md.
#
#   bench/onednn_layout_bench.sh [--quick] [--repeat N] [--no-torch] [--impl]
#
# --quick: two geometries only (checks that everything builds and runs).
# --repeat: timed runs per measurement after one warm-up (default 3).
# --impl:  also print each primitive's implementation, layouts and pass times.
# Environment:
#   ONEDNN_BENCH_DIR   build outputs (default /tmp/onednn_bench)
#   ONEDNN3_PREFIX     `pip install --prefix $ONEDNN3_PREFIX onednn-devel`
#                      (default /tmp/onednn3; oneDNN 3.13, SYCL CPU runtime + TBB)
#   ONEDNN3_OMP_PREFIX optional, a third build: `pip install --prefix $ONEDNN3_OMP_PREFIX
#                      onednn-devel-cpu-gomp` (oneDNN 3.2 with GNU OpenMP, Debian's
#                      threading, to tell the version from the threading runtime)
#   THREADS            default 2; on a machine with more cores every run is also
#                      pinned to the first THREADS cores (a TBB build ignores
#                      OMP_NUM_THREADS and takes every core it may run on)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${ONEDNN_BENCH_DIR:-/tmp/onednn_bench}
ONEDNN3=${ONEDNN3_PREFIX:-/tmp/onednn3}
ONEDNN3_OMP=${ONEDNN3_OMP_PREFIX:-}
THREADS=${THREADS:-2}
REPEAT=3
ONLY=""
TORCH=1
IMPL=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) ONLY="c64_64_32,c512_512_4" ;;
    --repeat) REPEAT="$2"; shift ;;
    --no-torch) TORCH=0 ;;
    --impl) IMPL="--impl" ;;
    *) echo "usage: $0 [--quick] [--repeat N] [--no-torch] [--impl]" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT"
export OMP_NUM_THREADS=$THREADS
PIN=()
[ "$(nproc)" -gt "$THREADS" ] && PIN=(taskset -c "0-$((THREADS - 1))")

ARGS=(--repeat "$REPEAT" $IMPL)
[ -n "$ONLY" ] && ARGS+=(--only "$ONLY")

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# Debian's oneDNN 2.6 (/usr/include, libdnnl.so.2).
g++ -O2 -std=c++17 bench/onednn_layout_bench.cpp -ldnnl -o "$OUT/onednn_layout_bench_2"
echo; echo "== Debian oneDNN 2.6"
"${PIN[@]}" "$OUT/onednn_layout_bench_2" "${ARGS[@]}"

# A pip prefix: headers under include/, libdnnl.so.3 and the libraries it
# needs under lib/. The rpath is an old-style DT_RPATH so that it also finds
# libdnnl's own dependencies (tbb, sycl), which a RUNPATH would not.
build_from_prefix() {  # prefix, binary name
  g++ -O2 -std=c++17 -I"$1/include" bench/onednn_layout_bench.cpp -L"$1/lib" -ldnnl \
    -Wl,--disable-new-dtags,-rpath,"$1/lib" -o "$OUT/$2"
}

if [ -f "$ONEDNN3/include/oneapi/dnnl/dnnl.hpp" ]; then
  build_from_prefix "$ONEDNN3" onednn_layout_bench_3
  echo; echo "== pip onednn-devel ($ONEDNN3)"
  # A SYCL-runtime build runs CPU primitives on the SYCL CPU device: point the
  # OpenCL loader at the CPU runtime that came with it.
  if grep -q "define DNNL_CPU_RUNTIME DNNL_RUNTIME_SYCL" "$ONEDNN3/include/oneapi/dnnl/dnnl_config.h"; then
    export OCL_ICD_FILENAMES="$ONEDNN3/lib/libintelocl.so" ONEAPI_DEVICE_SELECTOR=opencl:cpu
  fi
  "${PIN[@]}" "$OUT/onednn_layout_bench_3" "${ARGS[@]}"
  unset OCL_ICD_FILENAMES ONEAPI_DEVICE_SELECTOR
else
  echo; echo "(no oneDNN 3.x at $ONEDNN3: pip install --prefix $ONEDNN3 onednn-devel)"
fi

if [ -n "$ONEDNN3_OMP" ]; then
  build_from_prefix "$ONEDNN3_OMP" onednn_layout_bench_3omp
  echo; echo "== pip onednn-devel-cpu-gomp ($ONEDNN3_OMP)"
  "${PIN[@]}" "$OUT/onednn_layout_bench_3omp" "${ARGS[@]}"
fi

[ "$TORCH" = 1 ] || exit 0
echo; echo "== PyTorch"
"${PIN[@]}" python3 - "$THREADS" "$REPEAT" "$ONLY" <<'EOF' 2> >(grep -v -e "Failed to initialize NumPy" -e "_conversion_method_template" >&2)
# The same geometries through torch.nn.functional.conv2d: forward, then the
# gradients of x and w in one autograd.grad call, median of repeat after one
# warm-up. bf16 is autocast as in training: x and w are float32, the cast to
# bf16 is part of the op, y is bf16. channels_last: x, w and gy in that format.
import sys, time
import torch
import torch.nn.functional as F

threads, repeat, only = int(sys.argv[1]), int(sys.argv[2]), [s for s in sys.argv[3].split(",") if s]
torch.set_num_threads(threads)
dnnl = [l.strip() for l in torch.__config__.show().splitlines() if "DNN v" in l]
print(f"torch {torch.__version__}, {dnnl[0] if dnnl else 'oneDNN version unknown'}, {threads} threads, "
      f"batch 128, median of {repeat}")

GEOMS = [  # name, count in ResNet-18, cin, cout, hw, k, stride, pad (as in onednn_layout_bench.cpp)
    ("stem_3_64_32", 1, 3, 64, 32, 3, 1, 1), ("c64_64_32", 4, 64, 64, 32, 3, 1, 1),
    ("c64_128_s2", 1, 64, 128, 32, 3, 2, 1), ("c128_128_16", 3, 128, 128, 16, 3, 1, 1),
    ("c128_256_s2", 1, 128, 256, 16, 3, 2, 1), ("c256_256_8", 3, 256, 256, 8, 3, 1, 1),
    ("c256_512_s2", 1, 256, 512, 8, 3, 2, 1), ("c512_512_4", 3, 512, 512, 4, 3, 1, 1),
    ("sc1x1_64_128_s2", 1, 64, 128, 32, 1, 2, 0), ("sc1x1_128_256_s2", 1, 128, 256, 16, 1, 2, 0),
    ("sc1x1_256_512_s2", 1, 256, 512, 8, 1, 2, 0),
]
VARIANTS = [("fp32_nchw", False, False), ("fp32_cl", False, True), ("bf16_nchw", True, False), ("bf16_cl", True, True)]


def time_conv(cin, cout, hw, k, stride, pad, bf16, cl):
    fmt = torch.channels_last if cl else torch.contiguous_format
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(128, cin, hw, hw, generator=g) * 2 - 1).to(memory_format=fmt).requires_grad_()
    w = ((torch.rand(cout, cin, k, k, generator=g) * 2 - 1) * 0.1).to(memory_format=fmt).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = F.conv2d(x, w, stride=stride, padding=pad)
    gy = torch.rand_like(y)  # y's dtype and memory format
    times = []
    for i in range(repeat + 1):
        a = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = F.conv2d(x, w, stride=stride, padding=pad)
        torch.autograd.grad(y, [x, w], gy)
        if i > 0:
            times.append(1000 * (time.perf_counter() - a))
    return sorted(times)[len(times) // 2]


geoms = [g for g in GEOMS if not only or g[0] in only]
print(f"\nms per forward + backward (x and w) (median)\n{'geometry':17} {'count':>5}"
      + "".join(f" {v[0]:>13}" for v in VARIANTS))
sums = [0.0] * len(VARIANTS)
for name, count, *shape in geoms:
    row = [time_conv(*shape, bf16, cl) for _, bf16, cl in VARIANTS]
    sums = [s + count * t for s, t in zip(sums, row)]
    print(f"{name:17} {count:5}" + "".join(f" {t:13.2f}" for t in row), flush=True)
print(f"\nweighted by the count of each geometry in ResNet-18 ({len(geoms)} of its geometries), ms")
print(f"{'ResNet-18 sum':23}" + "".join(f" {s:13.1f}" for s in sums))
EOF
echo; echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
