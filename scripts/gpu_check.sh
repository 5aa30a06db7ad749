#!/usr/bin/env bash
# The checks of the CUDA backend, for a GPU machine that has CUDA, Python and
# PyTorch but none of our Debian packages and no git (the device machines lent
# to some tasks). Prepare here with `bash scripts/gpu_bundle.sh`, carry .gpu,
# then run one stage per call, in this order (cuda/README.md has the times):
#
#   bash scripts/gpu_check.sh tests       # first: the suite, GPU tests before the rest
#   bash scripts/gpu_check.sh cli         # the CLI pipeline, --device cuda then --device cpu
#   bash scripts/gpu_check.sh bench       # ours vs PyTorch on the same GPU (bench/README.md)
#   bash scripts/gpu_check.sh sanitize    # the GPU tests under compute-sanitizer memcheck
#
# Stages (each writes $OUT/<stage>*.log; $OUT defaults to /tmp/advcl_gpu_out):
#   tests     the GPU tests (names matching $GPU_TESTS), then the rest of the
#             suite in the time left; a GPU test that skips here is a failure
#   sanitize  the GPU tests under `compute-sanitizer --tool memcheck` with
#             ADVCL_CUDA_NO_CACHE=1 (every tensor its own cudaMalloc, so an
#             access past a tensor's end is outside its allocation) and
#             --report-api-errors no (CUDA calls that fail on purpose, such as
#             a cuDNN algorithm that declines, are not memory errors)
#   cli       simclr, pseudo-labels, pretrain, SLF, PGD and AutoAttack on 512 of
#             the bundle's Fashion-MNIST test images (no data: the stage fails), once
#             per device in $GPU_CHECK_DEVICES, and on the GPU the SLF finetune
#             again with --precision bf16; prints both sides' first losses
#             and accuracies
#   bench     ResNet-18 training step at batch 512 and the AdvCL step at batch
#             512 (width 64), ours vs PyTorch on the same GPU, TF32 on for both;
#             then, in the time left, the ResNet step with TF32 off and every
#             ResNet-18 convolution
# Each stage stops within GPU_CHECK_STAGE_SECONDS if set, else its own bound
# (tests 180 s, cli 180 s, bench 240 s, sanitize 240 s: a device call gets 5
# minutes, a session 15 in all), and ends with one summary line
# "<stage>: PASS|FAIL ...". A part cut off by the bound is a failure.
# The exit status is 0 only when every stage asked for passed.
#
# GPU_CHECK_DEVICES=cpu is a dry run without a GPU: the tests and sanitize
# stages then let the GPU tests skip, the cli stage runs on the CPU only, the
# bench stage on the CPU at toy sizes.
#
# Our libraries (.gpu's lib/ and the CUDA ones found here) are put on
# LD_LIBRARY_PATH for our own commands only: PyTorch, in the bench stage,
# loads its own CUDA libraries.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
REPO=$(pwd)
OUT=${OUT:-/tmp/advcl_gpu_out}
G=/tmp/advcl_gpu             # the unpacked bundle: bin/, lib/, wrap/bin/
W=/tmp/advcl_gpu_work        # the CLI check's data and runs
DEVICES=${GPU_CHECK_DEVICES:-cuda cpu}
# gtest filter: the tests that need a GPU are named so (a GPU test named
# otherwise still runs in the tests stage, after these, but not in sanitize).
GPU_TESTS='Cuda*:Nccl*:*Cuda*:*Gpu*:*GPU*:*Device*'
BINS=(advcl advcl_tests advcl_bench advcl_resnet_bench advcl_step_bench)
case " $DEVICES " in *" cuda "*) DRY=0 ;; *) DRY=1 ;; esac
mkdir -p "$OUT"

usage() { echo "usage: bash scripts/gpu_check.sh STAGE...   (tests, sanitize, cli, bench; one per device call)" >&2; exit 2; }
[ $# -eq 0 ] && usage
for s in "$@"; do
  case "$s" in tests|sanitize|cli|bench) ;; *) echo "gpu_check: unknown stage '$s'" >&2; usage ;; esac
done

# --- the bundle and the libraries ------------------------------------------------
if [ ! -f .gpu/bundle.tar.xz ]; then
  echo "gpu_check: .gpu/bundle.tar.xz not found: run scripts/gpu_bundle.sh here and carry .gpu" >&2
  exit 2
fi
rm -rf "$G" && mkdir -p "$G"
python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' .gpu/bundle.tar.xz "$G" || exit 2

# CUDA's libraries: the toolkit's, or the NVIDIA wheels of the Python
# environment (cuDNN and NCCL often live only there).
candidate_dirs() {
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
    [ -d "$d" ] && echo "$d"
  done
  python3 - <<'EOF' 2>/dev/null
import glob, site
for p in site.getsitepackages() + [site.getusersitepackages()]:
    for d in sorted(glob.glob(p + "/nvidia/*/lib")) + sorted(glob.glob(p + "/nvidia/cu13/lib")):
        print(d)
EOF
}
LIBPATH=$G/lib
missing_libs() {
  local b
  for b in "${BINS[@]}"; do LD_LIBRARY_PATH=$LIBPATH ldd "$G/bin/$b"; done | awk '/not found/ {print $1}' | sort -u
}
for so in $(missing_libs); do
  for d in $(candidate_dirs); do
    if [ -e "$d/$so" ]; then LIBPATH=$LIBPATH:$d; break; fi
  done
done
LIBPATH=$LIBPATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if [ -n "$(missing_libs)" ]; then
  echo "gpu_check: libraries not found on this machine: $(missing_libs | tr '\n' ' ')" >&2
  exit 2
fi
# The benches' Python scripts start our binaries: wrappers give them the
# libraries while the Python process (PyTorch) keeps its own environment.
mkdir -p "$G/wrap/bin"
for b in "${BINS[@]}"; do
  printf '#!/bin/bash\nLD_LIBRARY_PATH=%q exec %q "$@"\n' "$LIBPATH" "$G/bin/$b" > "$G/wrap/bin/$b"
  chmod +x "$G/wrap/bin/$b"
done
{
  echo "bundle: commit $(head -1 .gpu/commit 2>/dev/null || echo unknown)$(tail -n +2 .gpu/commit 2>/dev/null | head -1 | sed 's/^/, /')"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  echo "our LD_LIBRARY_PATH=$LIBPATH"
  LD_LIBRARY_PATH=$LIBPATH ldd "$G/bin/advcl_tests" | grep -E "cudnn|cublas|cufft|cudart|nccl|dnnl|openblas"
} | tee "$OUT/machine.log"

# --- helpers ---------------------------------------------------------------------
SUMMARY=()
FAILED=0
# note PASS|FAIL "text": a stage's summary line.
note() {
  [ "$1" = FAIL ] && FAILED=1
  SUMMARY+=("$STAGE: $1 $2")
  echo "== $STAGE: $1 $2"
}
# Runs a command within what is left of the stage's time (status 124 when it
# ran out, as timeout(1) reports it).
bounded() {
  local left=$((DEADLINE - SECONDS))
  if [ "$left" -le 5 ]; then
    echo "gpu_check: no time left for: $*"
    return 124
  fi
  timeout -k 10 "$left" "$@"
}
# One of our binaries, with our libraries, within the stage's time.
ours() { bounded env LD_LIBRARY_PATH="$LIBPATH" "$@"; }
# "N passed, N failed, N skipped" of a GoogleTest log (also of one cut short).
gtest_counts() {
  echo "$(grep -cE '^\[       OK \] ' "$1") passed, $(grep -cE '^\[  FAILED  \] [^ ]+ \(' "$1") failed, $(grep -cE '^\[  SKIPPED \] [^ ]+ \(' "$1") skipped"
}
gtest_failures() { grep -E '^\[  FAILED  \] [^ ]+ \(' "$1" | awk '{print $4}' | head -10 | tr '\n' ' '; }
last_started() { grep -E '^\[ RUN      \] ' "$1" | tail -1 | awk '{print $4}'; }
# Skips of a GPU test for want of a GPU: gtest prints the reason after
# "Skipped", then "[  SKIPPED ] name".
gpu_skips() {
  awk '/no CUDA device|no usable GPU|built without (CUDA|NCCL)/ {why = 1}
       /^\[  SKIPPED \] [^ ]+ \(/ { if (why) n++; why = 0 }
       /^\[ RUN      \] / {why = 0}
       END {print n + 0}' "$1"
}
# How a command ended, for a summary line: "ok", "exit N", or "TIMED OUT in
# <the test it was running>" when given the GoogleTest log.
status_word() {
  case "$1" in
    0) echo "ok" ;;
    124|137) echo "TIMED OUT${2:+ in $(last_started "$2")}" ;;
    *) echo "exit $1" ;;
  esac
}

# --- stages ----------------------------------------------------------------------
stage_tests() {
  local g=$OUT/tests_gpu.log r=$OUT/tests_rest.log rc_g rc_r skips t0=$SECONDS t1
  ours "$G/bin/advcl_tests" --gtest_filter="$GPU_TESTS" > "$g" 2>&1
  rc_g=$?
  t1=$SECONDS
  ours "$G/bin/advcl_tests" --gtest_filter="-$GPU_TESTS" > "$r" 2>&1
  rc_r=$?
  grep -hE '^\[  FAILED  \] [^ ]+ \(|^\[  SKIPPED \] [^ ]+ \(' "$g" "$r" | head -30
  skips=$(( $(gpu_skips "$g") + $(gpu_skips "$r") ))
  local line="GPU tests $(gtest_counts "$g") ($(status_word $rc_g "$g"), $((t1 - t0)) s)"
  line+="; GPU tests skipped for want of a GPU: $skips"
  line+="; the rest $(gtest_counts "$r") ($(status_word $rc_r "$r"), $((SECONDS - t1)) s)"
  local failures
  failures=$(gtest_failures "$g")$(gtest_failures "$r")
  [ -n "$failures" ] && line+="; failed: $failures"
  if [ $rc_g -ne 0 ] || [ $rc_r -ne 0 ] || { [ "$DRY" = 0 ] && [ "$skips" -ne 0 ]; }; then
    note FAIL "$line"
  else
    note PASS "$line"
  fi
}

stage_sanitize() {
  local cs log=$OUT/sanitize.log rc
  cs=$(command -v compute-sanitizer ||
       ls /usr/local/cuda*/bin/compute-sanitizer /usr/local/cuda*/compute-sanitizer/compute-sanitizer 2>/dev/null | head -1)
  if [ -z "$cs" ]; then note FAIL "compute-sanitizer not found (PATH, /usr/local/cuda*)"; return; fi
  ours env ADVCL_CUDA_NO_CACHE=1 "$cs" --tool memcheck --report-api-errors no --error-exitcode 99 \
    "$G/bin/advcl_tests" --gtest_filter="$GPU_TESTS" > "$log" 2>&1
  rc=$?
  grep -E '^========= (Invalid|Program hit|Uninitialized|Address|Saved host backtrace|    at )' "$log" | head -20
  tail -5 "$log"
  # What this stage judges is memcheck's verdict. Test failures are listed
  # but judged by the tests stage: with the cache off, a test that counts
  # device allocations fails by design unless it checks memory_stats().caching.
  local errors
  errors=$(grep -E '^========= ERROR SUMMARY' "$log" | tail -1 | sed 's/^========= //')
  local line="memcheck of the GPU tests, cache off: $(status_word $rc "$log"); ${errors:-no ERROR SUMMARY line}"
  line+="; tests $(gtest_counts "$log")"
  local failures
  failures=$(gtest_failures "$log")
  [ -n "$failures" ] && line+=" (failed, judged by the tests stage: $failures)"
  # Under a sanitizer that cannot reach the GPU the tests skip: no verdict.
  local skips
  skips=$(gpu_skips "$log")
  [ "$skips" -ne 0 ] && line+="; GPU tests skipped for want of a GPU: $skips"
  if { [ $rc -eq 0 ] || [ $rc -eq 1 ]; } && [ "$errors" = "ERROR SUMMARY: 0 errors" ] &&
     { [ "$DRY" = 1 ] || [ "$skips" -eq 0 ]; }; then
    note PASS "$line"
  else
    note FAIL "$line"
  fi
}

first_loss() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline()).get("loss", "?"))' "$1" 2>/dev/null || echo "none"; }
sa_ra() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("SA %.2f RA %.2f" % (d["sa"], d["ra"]))' "$1" 2>/dev/null || echo "none"; }

stage_cli() {
  local f
  for f in t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    if [ ! -f ".gpu/data/$f" ]; then
      note FAIL "no .gpu/data/$f: the bundle carries no Fashion-MNIST (rebuild it with scripts/gpu_bundle.sh)"
      return
    fi
  done
  rm -rf "$W" && mkdir -p "$W/fm"
  # The 10,000 test images serve as the training set too: this checks
  # devices against each other, not accuracy.
  for f in images-idx3-ubyte labels-idx1-ubyte; do
    cp .gpu/data/t10k-$f.gz "$W/fm/t10k-$f.gz"
    cp .gpu/data/t10k-$f.gz "$W/fm/train-$f.gz"
  done
  local A=$G/bin/advcl rc=0 dev
  # Small enough for the CPU side to finish well inside the bound on the
  # device machine's 16 cores: 512 images, 4 steps of 128 per epoch.
  local C=(--data "$W/fm" --dataset fashion-mnist --channels 1 --limit 512)
  # cli_step NAME COMMAND...: one of our commands, timed, its status logged.
  cli_step() {
    local name=$1 t=$SECONDS r
    shift
    ours "$@"
    r=$?
    echo "[$dev] $name: $(status_word $r), $((SECONDS - t)) s"
    [ $r -eq 0 ] || rc=1
  }
  {
    for dev in $DEVICES; do
      local o=$W/$dev t0=$SECONDS
      echo "--- $dev"
      cli_step simclr "$A" simclr "${C[@]}" --width 16 --epoch 2 --batch-size 128 --device "$dev" --out "$o/simclr" \
        --log-every 1
      cli_step pseudo-labels "$A" pseudo-labels "${C[@]}" --encoder "$o/simclr/last.safetensors" --k 10,50 \
        --out "$o/labels.safetensors"
      cli_step pretrain "$A" pretrain "${C[@]}" --labels "$o/labels.safetensors" --width 16 --epoch 1 --batch-size 128 \
        --device "$dev" --out "$o/advcl" --log-every 1
      cli_step finetune "$A" finetune --mode slf --ckpt "$o/advcl/last.safetensors" "${C[@]}" --epochs 1 --batch-size 128 \
        --lr 0.1 --test-limit 256 --device "$dev" --out "$o/slf"
      [ "$dev" = cpu ] || cli_step finetune-bf16 "$A" finetune --mode slf --ckpt "$o/advcl/last.safetensors" "${C[@]}" \
        --epochs 1 --batch-size 128 --lr 0.1 --test-limit 256 --device "$dev" --precision bf16 --out "$o/slf_bf16"
      cli_step pgd "$A" eval --ckpt "$o/slf/last.safetensors" --data "$W/fm" --dataset fashion-mnist --channels 1 \
        --limit 256 --attack pgd --device "$dev" --json "$o/pgd.json"
      cli_step autoattack "$A" eval --ckpt "$o/slf/last.safetensors" --data "$W/fm" --dataset fashion-mnist --channels 1 \
        --limit 32 --attack autoattack --device "$dev" --json "$o/aa.json"
      echo "$dev seconds: $((SECONDS - t0))"
    done
  } > "$OUT/cli.log" 2>&1
  local row rows=""
  for dev in $DEVICES; do
    row="$dev: simclr first loss $(first_loss $W/$dev/simclr/metrics.jsonl), pretrain first loss $(first_loss $W/$dev/advcl/metrics.jsonl)"
    row+=", PGD $(sa_ra $W/$dev/pgd.json), AutoAttack (32) $(sa_ra $W/$dev/aa.json)"
    echo "$row" | tee -a "$OUT/cli.log"
    rows+="; $row"
  done
  grep -E "^\[(cpu|cuda[:0-9]*)\] [a-z0-9-]+: |seconds:|error|no time left" "$OUT/cli.log" | tail -17
  # A device's row without results means a command failed or ran out of time.
  if [ $rc -ne 0 ] || echo "$rows" | grep -q none; then
    note FAIL "a command failed or ran out of time (cli.log)$rows"
  else
    note PASS "compare the rows: first losses agree to about 1e-3 with TF32 (1e-4 without), accuracies closely$rows"
  fi
}

stage_bench() {
  local B=$G/wrap rc=0 extra=0 log=$OUT/bench.log
  # The GPU run's sizes; a dry run checks the plumbing on the CPU at toy sizes.
  local dev=cuda rb=512 warm=3 rep=10 ab=512 aw=64 steps=3
  [ "$DRY" = 1 ] && { dev=cpu rb=8 warm=1 rep=2 ab=8 aw=4 steps=1; }
  cd "$REPO" || return
  {
    # What the first GPU run must measure (bench/README.md), first.
    echo "--- 1: resnet18 step, batch $rb, TF32 on (both)"
    bounded python3 bench/resnet_step_bench.py --build "$B" --device $dev --batches $rb --warmup $warm --repeat $rep \
      --tf32 on || rc=1
    echo "--- 2: AdvCL step, width $aw, batch $ab, TF32 on (both)"
    bounded python3 bench/advcl_step_bench.py --build "$B" --device $dev --batch $ab --widths $aw --steps $steps \
      --tf32 on || rc=1
    # Then, in the time left: TF32 off, and the convolutions one by one.
    echo "--- 3: resnet18 step, batch $rb, TF32 off (both)"
    bounded python3 bench/resnet_step_bench.py --build "$B" --device $dev --batches $rb --warmup $warm --repeat $rep \
      --tf32 off || extra=1
    echo "--- 4: every ResNet-18 convolution, batch $rb, TF32 on (both)"
    bounded python3 bench/run.py --build "$B" --device $dev --batch $rb --repeat $rep --tf32 on || extra=1
  } > "$log" 2>&1
  grep -vE "^advcl_(bench|resnet_bench|step_bench):" "$log" | tail -40
  local step adv
  step=$(awk -v b="resnet18_step_b$rb" '/^--- / {part = $2} part == "1:" && $1 == b' "$log" | tr -s ' ')
  adv=$(awk -v w="$aw" '/^--- / {part = $2} part == "2:" && $1 == w' "$log" | tr -s ' ' | sed 's/^ //')
  local line="TF32 on, $dev: ResNet-18 step b$rb (name, advcl ms, torch ms, ratio): ${step:-none}"
  line+="; AdvCL step b$ab (width, advcl s/step, torch s/step, ratio of the best): ${adv:-none}"
  [ $extra -ne 0 ] && line+="; the extra runs (TF32 off, convolutions) did not all finish"
  if [ $rc -ne 0 ] || [ -z "$step" ] || [ -z "$adv" ]; then note FAIL "$line"; else note PASS "$line"; fi
}

declare -A BOUND=([tests]=180 [cli]=180 [bench]=240 [sanitize]=240)
for STAGE in "$@"; do
  DEADLINE=$((SECONDS + ${GPU_CHECK_STAGE_SECONDS:-${BOUND[$STAGE]}}))
  "stage_$STAGE"
done
echo
echo "summary ($(date -u +%FT%TZ), logs in $OUT):"
printf '  %s\n' "${SUMMARY[@]}" | tee "$OUT/summary.txt"
exit $FAILED
