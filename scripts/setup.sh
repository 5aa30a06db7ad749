#!/usr/bin/env bash
# Installs what advcl needs to build and test on a Debian machine, and only
# what is missing. Called by `make` (quietly when all is present).
#   scripts/setup.sh          build + test dependencies
#   scripts/setup.sh --demo   also the Fashion-MNIST data package and matplotlib (the curves) for `make demo`
#   scripts/setup.sh --data   also the Fashion-MNIST data package alone (scripts/gpu_bundle.sh packs its test files)
#   scripts/setup.sh --fuzz   also clang and its libFuzzer runtime for `make fuzz`
set -euo pipefail

packages=(g++ make pkg-config libopenblas-dev libdnnl-dev libgtest-dev zlib1g-dev nlohmann-json3-dev libcli11-dev libstb-dev
          openmpi-bin libopenmpi-dev)
for arg in "$@"; do
  case "$arg" in
    --demo) packages+=(dataset-fashion-mnist python3-matplotlib) ;;
    --data) packages+=(dataset-fashion-mnist) ;;
    --fuzz) packages+=(clang libclang-rt-14-dev) ;;
    *) echo "setup.sh: unknown option '$arg' (expected --demo, --data or --fuzz)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "setup: not root and no sudo; please install: ${missing[*]}" >&2; exit 1
  fi
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
