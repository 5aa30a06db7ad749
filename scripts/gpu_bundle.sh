#!/usr/bin/env bash
# Packs what a GPU machine without our Debian packages (and without git) needs
# to run advcl's CUDA build: builds it here (nvcc compiles and links without a
# GPU), then puts into .gpu/ (git-ignored):
#   .gpu/bundle.tar.xz   bin/ (advcl, advcl_tests and the three benches; stripped)
#                        lib/ (the shared libraries they need that are neither
#                        the C runtime nor CUDA's: oneDNN, OpenBLAS, libgomp, ...)
#   .gpu/data/           Fashion-MNIST's test files (the CLI check trains on them)
#   .gpu/commit          the commit built, and the tracked files that differed from it
# scripts/gpu_check.sh unpacks it on the GPU machine, finds CUDA's libraries
# there (cuDNN and NCCL may live in a Python environment) and runs the checks.
#
#   bash scripts/gpu_bundle.sh            # then carry .gpu to the GPU machine
#
# Fails (non-zero, nothing usable left in .gpu) when Fashion-MNIST cannot be
# installed or found, or when .gpu comes to more than GPU_BUNDLE_MAX_MIB
# (default 64: what a device call can carry).
#
# The build is MPI=0 (one process: the GPU machine has no Open MPI; NCCL still
# runs, as a group of one) in build/gpu, apart from build/cuda.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=build/gpu
BINS=(advcl advcl_tests advcl_bench advcl_resnet_bench advcl_step_bench)
DATA=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
DATA_FILES=(t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
MAX_MIB=${GPU_BUNDLE_MAX_MIB:-64}

# The data first (it takes seconds, the build minutes): installed the way
# `scripts/setup.sh --demo` does, unless FASHION_MNIST names another place.
have_data() {
  local f
  for f in "${DATA_FILES[@]}"; do [ -f "$DATA/$f" ] || return 1; done
}
if ! have_data && [ -z "${FASHION_MNIST:-}" ]; then
  bash scripts/setup.sh --data
fi
if ! have_data; then
  echo "gpu_bundle: Fashion-MNIST's ${DATA_FILES[*]} not found in $DATA" \
    "(apt-get install dataset-fashion-mnist, or set FASHION_MNIST to a folder that holds them);" \
    "the GPU check's cli stage needs them" >&2
  exit 1
fi

make CUDA=1 MPI=0 BUILD=$BUILD "${BINS[@]/#/$BUILD/bin/}"

rm -rf .gpu && mkdir -p .gpu/stage/bin .gpu/stage/lib .gpu/data
for b in "${BINS[@]}"; do
  strip -o .gpu/stage/bin/$b $BUILD/bin/$b
done
# Every library a binary loads, except the C/C++ runtime (the GPU machine's
# own, newer, serves) and CUDA's (the driver's and toolkit's there must match).
for b in "${BINS[@]}"; do ldd $BUILD/bin/$b; done | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
  while read -r name path; do
    case "$name" in
      libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libstdc++.so*|libgcc_s.so*) continue ;;
      libcu*|libnccl*|libnv*) continue ;;
    esac
    case "$path" in /usr/local/cuda*) continue ;; esac
    cp -L "$path" .gpu/stage/lib/"$name"
  done
# One stream with a dictionary larger than a binary: the five binaries share
# most of their code (libadvcl.a and its CUDA kernels), so each after the
# first costs little (xz's default 8 MiB window, or its threaded blocks,
# would see none of that).
tar -C .gpu/stage -cf - bin lib | xz -T1 --lzma2=preset=6,dict=256MiB > .gpu/bundle.tar.xz
rm -rf .gpu/stage

for f in "${DATA_FILES[@]}"; do cp "$DATA/$f" .gpu/data/; done
# The GPU machine has no git: the commit travels as a file.
git rev-parse HEAD > .gpu/commit
changed=$(git status --porcelain --untracked-files=no | awk '{print $2}' | tr '\n' ' ')
if [ -n "$changed" ]; then echo "built with uncommitted changes to: $changed" >> .gpu/commit; fi

bytes=$(du -sb .gpu | cut -f1)
mib=$(python3 -c "print(f'{$bytes / 2**20:.1f}')")
if [ "$bytes" -gt $((MAX_MIB * 1024 * 1024)) ]; then
  echo "gpu_bundle: .gpu holds $mib MiB, over the $MAX_MIB MiB a device call can carry:" >&2
  du -sh .gpu/* >&2
  mv .gpu/bundle.tar.xz .gpu/bundle.tar.xz.too-big
  exit 1
fi
echo "gpu_bundle: .gpu/ holds $mib MiB (limit $MAX_MIB; commit $(head -1 .gpu/commit | cut -c1-8)); on the GPU machine,"
echo "  one call per stage, carrying .gpu (cuda/README.md):"
echo "  nvidia-smi; bash scripts/gpu_check.sh tests  |  bash scripts/gpu_check.sh cli  |  bash scripts/gpu_check.sh bench"
