#!/usr/bin/env bash
# The AutoAttack cross-check (scripts/autoattack_crosscheck.py) on many test
# images with two cores: our side and torchattacks' side run at the same time,
# one process (one thread) each, over slices of the test set; every finished
# slice is kept, so an interrupted run resumes where it stopped. At the end
# each slice's two sides are put together and the slices merged into one
# table (OUT/merged/crosscheck.json).
#
#   bash scripts/autoattack_crosscheck_slices.sh CKPT OUT [N [SLICE]]
#     CKPT   `advcl finetune`'s last.safetensors
#     OUT    folder for everything (OUT/ours/sK, OUT/torchattacks/sK, OUT/merged)
#     N      test images from the first on (default 1000), SLICE images a slice (default 100)
# Environment: DATA (default /usr/share/datasets/fashion-mnist), DATASET
# (fashion-mnist or mnist: slices need IDX files), ADVCL (default
# build/cpu/bin/advcl), ALONE: instead of the chain, run these attacks each
# alone on every correctly classified point (e.g. ALONE=fab-t,square).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 2; fi
CKPT=$1 OUT=$2 N=${3:-1000} SLICE=${4:-100}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
DATASET=${DATASET:-fashion-mnist}
ADVCL=${ADVCL:-build/cpu/bin/advcl}
MODE=()
[ -n "${ALONE:-}" ] && MODE=(--individual-only --stages "$ALONE")
[ -f "$CKPT" ] || { echo "crosscheck_slices: checkpoint $CKPT not found" >&2; exit 2; }
mkdir -p "$OUT/ours" "$OUT/torchattacks" "$OUT/merged"
starts=$(seq 0 "$SLICE" $((N - 1)))
run() {  # run SIDE START: one side of one slice, skipped when done before
  local side=$1 s=$2 d=$OUT/$1/s$2 skip t0
  [ -f "$d/done" ] && return 0
  if [ "$side" = ours ]; then skip=--skip-torchattacks; else skip=--skip-ours; fi
  local n=$(( s + SLICE > N ? N - s : SLICE ))
  t0=$(date +%s)
  python3 scripts/autoattack_crosscheck.py --ckpt "$CKPT" --data "$DATA" --dataset "$DATASET" --advcl "$ADVCL" \
    --start "$s" --n "$n" --out "$d" "${MODE[@]}" $skip > "$d.log" 2>&1 || { echo "$side slice $s failed: see $d.log" >&2; return 1; }
  touch "$d/done"
  echo "$side slice $s: $(( $(date +%s) - t0 )) s"
}
side() { for s in $starts; do run "$1" "$s"; done; }
side ours & ours_pid=$!
side torchattacks & ta_pid=$!
wait $ours_pid && wait $ta_pid
dirs=()
for s in $starts; do
  d=$OUT/torchattacks/s$s
  cp "$OUT/ours/s$s"/ours*.json "$OUT/ours/s$s"/ours*.err "$d/"
  n=$(( s + SLICE > N ? N - s : SLICE ))
  # Both results are in $d now: this run only repeats the logit check and writes the slice's table.
  python3 scripts/autoattack_crosscheck.py --ckpt "$CKPT" --data "$DATA" --dataset "$DATASET" --advcl "$ADVCL" \
    --start "$s" --n "$n" --out "$d" "${MODE[@]}" > "$d.table.log" 2>&1 || { echo "slice $s: see $d.table.log" >&2; exit 1; }
  dirs+=("$d")
done
python3 scripts/autoattack_crosscheck.py --merge "${dirs[@]}" --out "$OUT/merged"
