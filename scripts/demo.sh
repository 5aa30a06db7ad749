#!/usr/bin/env bash
# The paper's whole pipeline on real Fashion-MNIST, on the CPU, at a reduced
# size (ResNet-18 of width 8, a class-balanced subset of 3,840 images, few
# epochs), so that it ends in about 5-15 minutes on 2 cores:
#   SimCLR -> features -> k-means pseudo-labels -> AdvCL pretraining -> SLF
#   (whose last epoch is evaluated: SA and RA under PGD-20), then the
#   curves of every stage as PNG (scripts/plot_metrics.py)
# Usage: scripts/demo.sh BUILD_DIR [OUT_DIR]   (`make demo` calls it)
# Every stage resumes if interrupted: run it again with the same OUT_DIR.
set -euo pipefail

BUILD=${1:-build/cpu}
OUT=${2:-demo_out}
ADVCL="$BUILD/bin/advcl"
DATA=${ADVCL_DEMO_DATA:-/usr/share/datasets/fashion-mnist}
# Sizes, overridable from the environment for a quicker or a longer run.
PER_CLASS=${DEMO_PER_CLASS:-384}        # training images per class (3,840 in all: 30 batches of 128, no short last batch)
TEST_LIMIT=${DEMO_TEST_LIMIT:-1000}     # test images for SA / RA
WIDTH=${DEMO_WIDTH:-8}
SIMCLR_EPOCHS=${DEMO_SIMCLR_EPOCHS:-10}
PRETRAIN_EPOCHS=${DEMO_PRETRAIN_EPOCHS:-5}
SLF_EPOCHS=${DEMO_SLF_EPOCHS:-15}
# fp32 (the paper's numerics) or bf16 (mixed precision on CPUs with native
# bf16: conv2d and linear in bf16 with float32 sums; docs/precision.md).
PRECISION=${DEMO_PRECISION:-fp32}

if [ ! -x "$ADVCL" ]; then echo "demo: $ADVCL not built (run \`make\`)" >&2; exit 1; fi
if [ ! -e "$DATA/train-images-idx3-ubyte.gz" ] && [ ! -e "$DATA/train-images-idx3-ubyte" ]; then
  echo "demo: Fashion-MNIST not found in $DATA (apt-get install dataset-fashion-mnist)" >&2
  exit 1
fi
mkdir -p "$OUT"
COMMON=(--data "$DATA" --dataset fashion-mnist --per-class "$PER_CLASS" --channels 1)
start=$(date +%s)
stamp() { echo "== [$(( $(date +%s) - start ))s] $*"; }

stamp "1/4 SimCLR pretraining (standard contrastive, the encoder for pseudo-labels)"
"$ADVCL" simclr "${COMMON[@]}" --width "$WIDTH" --epoch "$SIMCLR_EPOCHS" --batch-size 128 \
  --learning_rate 0.5 --out "$OUT/simclr" --log-every 4 --precision "$PRECISION"

stamp "2/4 features + k-means pseudo-labels (k = 2, 10, 50, 100, 500)"
"$ADVCL" pseudo-labels "${COMMON[@]}" --encoder "$OUT/simclr/last.safetensors" \
  --out "$OUT/pseudo_labels.safetensors"

stamp "3/4 AdvCL pretraining (PGD-5 at eps 8/255, high-frequency view, pseudo-label heads)"
"$ADVCL" pretrain "${COMMON[@]}" --labels "$OUT/pseudo_labels.safetensors" --width "$WIDTH" \
  --epoch "$PRETRAIN_EPOCHS" --batch-size 128 --learning_rate 0.5 --out "$OUT/advcl" --log-every 4 \
  --precision "$PRECISION"

# The paper's SLF takes 25 epochs of batch 512 at lr 0.01 over 50,000 images;
# on 3,840 images that would be about 190 steps, so the demo uses batch 128 and lr 0.1
# (the protocol is otherwise SLF's: frozen encoder in eval mode, crop+flip).
# --eval-every SLF_EPOCHS: the only evaluation is the last epoch's, the same
# SA/RA that `advcl eval --attack pgd --steps 20 --limit TEST_LIMIT` gives on
# slf/last.safetensors (same images, attack and random starts), so the demo
# does not evaluate a second time.
stamp "4/4 SLF: linear classifier on the frozen encoder (BN set pgd), then SA/RA under PGD-20 (eps 8/255, step 2/255, random start)"
"$ADVCL" finetune --mode slf --ckpt "$OUT/advcl/last.safetensors" "${COMMON[@]}" \
  --epochs "$SLF_EPOCHS" --batch-size 128 --lr 0.1 --milestones 10,13 --test-limit "$TEST_LIMIT" \
  --eval-every "$SLF_EPOCHS" --out "$OUT/slf" --precision "$PRECISION"

# The last epoch's figures and the attack, from the results file finetune
# wrote ("last": {"epoch": E, "sa": SA, "ra": RA, "n": N, ...}), read as JSON.
read_last='import json, sys
r = json.load(open(sys.argv[1]))
last = r.get("last")
if last:
    print(last["epoch"], last["sa"], last["ra"], last["n"], r["attack"])'
last=$(python3 -c "$read_last" "$OUT/slf/results.json")
if [ -z "$last" ]; then echo "demo: no last-epoch evaluation in $OUT/slf/results.json" >&2; exit 1; fi
read -r epoch sa ra n attack <<< "$last"
printf '%s (SLF epoch %s) on %s test images: SA %.2f%%  RA %.2f%%  (%s)\n' "$OUT/slf/last.safetensors" "$epoch" "$n" \
  "$sa" "$ra" "$attack" | tee "$OUT/eval.txt"

# Loss, lr and accuracy curves of every stage as PNG (Debian's matplotlib:
# /usr/bin/python3 first, since another python3 may come first on PATH).
plots=""
for py in /usr/bin/python3 python3; do
  if command -v "$py" >/dev/null && "$py" -c 'import matplotlib' 2>/dev/null; then
    "$py" "$(dirname "$0")/plot_metrics.py" "$OUT/simclr" "$OUT/advcl" "$OUT/slf" --out "$OUT/plots"
    plots=", plots/ (loss, lr and accuracy curves)"
    break
  fi
done
[ -n "$plots" ] || echo "demo: no matplotlib for the curves (apt-get install python3-matplotlib); skipped" >&2
stamp "done. Outputs in $OUT/: simclr/, pseudo_labels.safetensors, advcl/, slf/ (last.safetensors, results.json), eval.txt$plots"
