#!/usr/bin/env bash
# Packs what a GPU machine without our Debian packages needs to run advcl's
# CUDA build: builds it here (nvcc compiles and links without a GPU), then
# puts into .gpu/ (git-ignored):
#   .gpu/bundle.tar.xz   bin/ (advcl, advcl_tests, the two benches; stripped)
#                        lib/ (the shared libraries they need that are neither
#                        the C runtime nor CUDA's: oneDNN, OpenBLAS, libgomp, ...)
#   .gpu/data/           Fashion-MNIST's test files (the CLI check trains on them)
# scripts/gpu_check.sh unpacks it on the GPU machine, finds CUDA's libraries
# there (cuDNN and NCCL may live in a Python environment) and runs the checks.
#
#   bash scripts/gpu_bundle.sh            # then carry .gpu to the GPU machine
#
# The build is MPI=0 (one process: the GPU machine has no Open MPI; NCCL still
# runs, as a group of one) in build/gpu, apart from build/cuda.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=build/gpu
BINS=(advcl advcl_tests advcl_bench advcl_resnet_bench)
DATA=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}

make CUDA=1 MPI=0 BUILD=$BUILD "${BINS[@]/#/$BUILD/bin/}"

rm -rf .gpu && mkdir -p .gpu/stage/bin .gpu/stage/lib .gpu/data
for b in "${BINS[@]}"; do
  strip -o .gpu/stage/bin/$b $BUILD/bin/$b
done
# Every library a binary loads, except the C/C++ runtime (the GPU machine's
# own, newer, serves) and CUDA's (the driver's and toolkit's there must match).
ldd $BUILD/bin/advcl_tests $BUILD/bin/advcl | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
  while read -r name path; do
    case "$name" in
      libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libstdc++.so*|libgcc_s.so*) continue ;;
      libcu*|libnccl*|libnv*) continue ;;
    esac
    case "$path" in /usr/local/cuda*) continue ;; esac
    cp -L "$path" .gpu/stage/lib/"$name"
  done
tar -C .gpu/stage -cf - bin lib | xz -T0 -6 > .gpu/bundle.tar.xz
rm -rf .gpu/stage

if [ -d "$DATA" ]; then
  cp "$DATA"/t10k-images-idx3-ubyte.gz "$DATA"/t10k-labels-idx1-ubyte.gz .gpu/data/
else
  echo "gpu_bundle: $DATA not found (apt-get install dataset-fashion-mnist): the CLI check will be skipped" >&2
fi
git rev-parse HEAD > .gpu/commit
echo "gpu_bundle: .gpu/ holds $(du -sh .gpu | cut -f1) (commit $(cut -c1-8 .gpu/commit)); on the GPU machine:"
echo "  bash scripts/gpu_check.sh [tests|sanitize|cli|bench|all]    (carry .gpu)"
