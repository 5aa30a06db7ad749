#!/usr/bin/env bash
# The checks of the CUDA backend, for a GPU machine that has CUDA, Python and
# PyTorch but none of our Debian packages (the device machines lent to some
# tasks). Prepare here with `bash scripts/gpu_bundle.sh`, carry .gpu, then:
#
#   bash scripts/gpu_check.sh [STAGE ...]      (default: tests sanitize cli)
#
# Stages (each writes $OUT/<stage>.log; $OUT defaults to /tmp/advcl_gpu_out):
#   tests     the whole GoogleTest suite with the GPU (the CUDA tests skip
#             nowhere here: a skipped GPU test is reported as a failure)
#   sanitize  the GPU tests under compute-sanitizer memcheck
#   cli       simclr, pseudo-labels, pretrain, SLF, PGD and AutoAttack on a
#             small Fashion-MNIST set, once with --device cpu and once with
#             --device cuda; prints both sides' losses and accuracies
#   bench     conv2d (every ResNet-18 convolution) and a ResNet-18 training step
#             at batch 512, ours vs PyTorch on the same GPU, TF32 off and on
#   all       the four, in that order
# The last lines printed are a summary, one line per stage.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT=${OUT:-/tmp/advcl_gpu_out}
G=/tmp/advcl_gpu             # the unpacked bundle: bin/, lib/
W=/tmp/advcl_gpu_work        # the CLI check's data and runs
DEVICES=${GPU_CHECK_DEVICES:-cpu cuda}   # the cli stage's devices ("cpu" alone: a dry run without a GPU)
mkdir -p "$OUT"
SUMMARY=()
note() { SUMMARY+=("$1"); echo "== $1"; }

stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(tests sanitize cli)
[ "${stages[*]}" = all ] && stages=(tests sanitize cli bench)

# --- the bundle and the libraries ------------------------------------------------
if [ ! -f .gpu/bundle.tar.xz ]; then
  echo "gpu_check: .gpu/bundle.tar.xz not found: run scripts/gpu_bundle.sh and carry .gpu" >&2
  exit 2
fi
if [ -f .gpu/commit ] && [ "$(cat .gpu/commit)" != "$(git rev-parse HEAD 2>/dev/null || echo unknown)" ]; then
  echo "gpu_check: note: the bundle was built at $(cut -c1-8 .gpu/commit), the tree is at another commit"
fi
rm -rf "$G" && mkdir -p "$G"
python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' .gpu/bundle.tar.xz "$G"

# CUDA's libraries: the toolkit's, or the NVIDIA wheels of the Python
# environment (cuDNN and NCCL often live only there).
candidate_dirs() {
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
    [ -d "$d" ] && echo "$d"
  done
  python3 - <<'EOF' 2>/dev/null
import glob, site, sys
for p in site.getsitepackages() + [site.getusersitepackages()]:
    for d in sorted(glob.glob(p + "/nvidia/*/lib")) + sorted(glob.glob(p + "/nvidia/cu13/lib")):
        print(d)
EOF
}
LIBPATH=$G/lib
missing_libs() { LD_LIBRARY_PATH=$LIBPATH ldd "$G/bin/advcl_tests" "$G/bin/advcl" | awk '/not found/ {print $1}' | sort -u; }
for so in $(missing_libs); do
  for d in $(candidate_dirs); do
    if [ -e "$d/$so" ]; then LIBPATH=$LIBPATH:$d; break; fi
  done
done
export LD_LIBRARY_PATH=$LIBPATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if [ -n "$(missing_libs)" ]; then
  echo "gpu_check: libraries not found on this machine: $(missing_libs | tr '\n' ' ')" >&2
  exit 2
fi
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  LD_LIBRARY_PATH=$LIBPATH ldd "$G/bin/advcl_tests" | grep -E "cudnn|cublas|cufft|cudart|nccl|dnnl|openblas"
} | tee "$OUT/machine.log"

# --- stages ----------------------------------------------------------------------
stage_tests() {
  "$G/bin/advcl_tests" --gtest_output=xml:"$OUT/tests.xml" > "$OUT/tests.log" 2>&1
  local rc=$?
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \]" "$OUT/tests.log" | tail -30
  # A GPU test that skips on a GPU machine is a failure of this check.
  local gpu_skips
  gpu_skips=$(grep -A1 -E "no CUDA device|no usable GPU|built without (CUDA|NCCL)" "$OUT/tests.log" | grep -c "^\[  SKIPPED \]")
  local line
  line=$(grep -E "^\[  PASSED  \]" "$OUT/tests.log" | tail -1)
  note "tests: rc $rc; ${line:-no PASSED line}; $(grep -cE '^\[  FAILED  \] [A-Za-z]' "$OUT/tests.log") failed; GPU tests skipped: $gpu_skips"
}

stage_sanitize() {
  local cs
  cs=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
  if [ -z "$cs" ]; then note "sanitize: compute-sanitizer not found"; return; fi
  "$cs" --tool memcheck --error-exitcode 99 "$G/bin/advcl_tests" \
    --gtest_filter='Cuda*:Nccl*:*Cuda*:*Gpu*:*GPU*' > "$OUT/sanitize.log" 2>&1
  local rc=$?
  tail -15 "$OUT/sanitize.log"
  note "sanitize (memcheck, GPU tests): rc $rc; $(grep -E '^========= ERROR SUMMARY' "$OUT/sanitize.log" | tail -1)"
}

first_loss() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline()).get("loss", "?"))' "$1" 2>/dev/null; }
sa_ra() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("SA %.2f RA %.2f" % (d["sa"], d["ra"]))' "$1" 2>/dev/null; }

stage_cli() {
  if [ ! -f .gpu/data/t10k-images-idx3-ubyte.gz ]; then note "cli: no data in .gpu/data (see gpu_bundle.sh)"; return; fi
  rm -rf "$W" && mkdir -p "$W/fm"
  # The 10,000 test images serve as the training set too: this checks
  # devices against each other, not accuracy.
  for f in images-idx3-ubyte labels-idx1-ubyte; do
    cp .gpu/data/t10k-$f.gz "$W/fm/t10k-$f.gz"
    cp .gpu/data/t10k-$f.gz "$W/fm/train-$f.gz"
  done
  local A=$G/bin/advcl rc=0
  local C=(--data "$W/fm" --dataset fashion-mnist --channels 1 --limit 1024)
  {
    for dev in $DEVICES; do
      local o=$W/$dev t0
      echo "--- $dev"
      t0=$(date +%s.%N)
      "$A" simclr "${C[@]}" --width 16 --epoch 2 --batch-size 128 --device $dev --out $o/simclr --log-every 1 || rc=1
      "$A" pseudo-labels "${C[@]}" --encoder $o/simclr/last.safetensors --k 10,50 --out $o/labels.safetensors || rc=1
      "$A" pretrain "${C[@]}" --labels $o/labels.safetensors --width 16 --epoch 1 --batch-size 128 --device $dev \
        --out $o/advcl --log-every 1 || rc=1
      "$A" finetune --mode slf --ckpt $o/advcl/last.safetensors "${C[@]}" --epochs 2 --batch-size 128 --lr 0.1 \
        --test-limit 512 --device $dev --out $o/slf || rc=1
      "$A" eval --ckpt $o/slf/last.safetensors --data "$W/fm" --dataset fashion-mnist --channels 1 --limit 512 \
        --attack pgd --device $dev --json $o/pgd.json || rc=1
      "$A" eval --ckpt $o/slf/last.safetensors --data "$W/fm" --dataset fashion-mnist --channels 1 --limit 32 \
        --attack autoattack --device $dev --json $o/aa.json || rc=1
      echo "$dev seconds: $(python3 -c "import time; print(round(time.time() - $t0, 1))")"
    done
  } > "$OUT/cli.log" 2>&1
  local row
  for dev in $DEVICES; do
    row="$dev: simclr first loss $(first_loss $W/$dev/simclr/metrics.jsonl), pretrain first loss $(first_loss $W/$dev/advcl/metrics.jsonl)"
    row+=", PGD $(sa_ra $W/$dev/pgd.json), AutoAttack (32) $(sa_ra $W/$dev/aa.json)"
    echo "$row" | tee -a "$OUT/cli.log"
  done
  grep -E "seconds:|error" "$OUT/cli.log" | tail -8
  note "cli: rc $rc (cpu and cuda rows above; first losses should agree to ~1e-4, accuracies closely)"
}

stage_bench() {
  {
    cd "$REPO"
    for tf32 in off on; do
      python3 bench/run.py --build "$G" --device cuda --batch 512 --repeat 10 --tf32 $tf32
      python3 bench/resnet_step_bench.py --build "$G" --device cuda --batches 128,512 --warmup 3 --repeat 10 --tf32 $tf32
    done
  } > "$OUT/bench.log" 2>&1
  local rc=$?
  grep -vE "^advcl_(bench|resnet_bench):" "$OUT/bench.log" | tail -40
  note "bench: rc $rc; $(grep -E '^total fwd\+bwd' "$OUT/bench.log" | tr -s ' ' | tr '\n' ';') $(grep -E '^resnet18_step_b512' "$OUT/bench.log" | tr -s ' ' | tr '\n' ';')"
}

for s in "${stages[@]}"; do
  case "$s" in
    tests|sanitize|cli|bench) "stage_$s" ;;
    *) echo "gpu_check: unknown stage '$s' (tests, sanitize, cli, bench, all)" >&2; exit 2 ;;
  esac
done
echo
echo "summary ($(date -u +%FT%TZ), logs in $OUT):"
printf '  %s\n' "${SUMMARY[@]}" | tee "$OUT/summary.txt"
