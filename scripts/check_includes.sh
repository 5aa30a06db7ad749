#!/usr/bin/env bash
# The include direction of the project's layers (docs/layout.md): a file may
# include its own layer and the layers below it, never one above. The table
# says, for each folder, which top folders its #include "..." lines may name.
# It also checks that docs/layout.md describes every layer and that every
# folder of sources belongs to one. `make test` runs this before the suite; it
# prints every offending line and exits 1 if there is one.
set -euo pipefail
cd "$(dirname "$0")/.."

# folder: the folders it may include (its own is always allowed). Longest
# folder first: a file belongs to the first row whose folder contains it.
rules=(
  "advcl/cli:      advcl/run advcl/pretrain advcl/finetune advcl/attacks advcl/step nn datasets engine cuda"
  "advcl/run:      advcl/pretrain advcl/finetune advcl/attacks advcl/step nn datasets engine cuda"
  "advcl/pretrain: advcl/attacks advcl/step nn datasets engine cuda"
  "advcl/finetune: advcl/attacks advcl/step nn datasets engine cuda"
  "advcl/attacks:  advcl/step nn datasets engine cuda"
  "advcl/step:     nn datasets engine cuda"
  "nn/parallel:    nn engine cuda"
  "nn:             engine cuda"
  "datasets:       engine cuda"
  "engine:         cuda"
  "cuda:           "
)

status=0
for rule in "${rules[@]}"; do
  folder=${rule%%:*}
  allowed="$folder ${rule#*:}"
  # Files of this folder, not of a deeper folder that has its own row.
  deeper=()
  for other in "${rules[@]}"; do
    o=${other%%:*}
    [[ $o == "$folder"/* ]] && deeper+=(-path "./$o" -prune -o)
  done
  while IFS= read -r file; do
    while IFS= read -r line; do
      target=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/' <<<"${line#*:}")
      ok=0
      for a in $allowed; do
        [[ $target == "$a"/* ]] && ok=1
      done
      # A project path names a layer; anything else (e.g. a system header in quotes) is not ours to judge.
      if [[ $ok == 0 && -e $target ]]; then
        echo "include direction: $file:${line%%:*}: includes $target (allowed from $folder: ${allowed})"
        status=1
      fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" || true)
  done < <(find "./$folder" "${deeper[@]}" -type f \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' \) -print | sed 's#^\./##' | sort)
done
# The map in docs/layout.md names every layer, and every folder of sources
# belongs to a layer of the table.
for rule in "${rules[@]}"; do
  folder=${rule%%:*}
  if ! grep -q "\`$folder/\`" docs/layout.md; then
    echo "include direction: docs/layout.md does not describe \`$folder/\`"
    status=1
  fi
done
while IFS= read -r dir; do
  covered=0
  for rule in "${rules[@]}"; do
    folder=${rule%%:*}
    [[ $dir == "$folder" || $dir == "$folder"/* ]] && covered=1
  done
  if [[ $covered == 0 ]]; then
    echo "include direction: $dir/ holds sources but is in no layer of scripts/check_includes.sh"
    status=1
  fi
done < <(find advcl nn datasets engine cuda -type f \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' \) \
           -printf '%h\n' | sort -u)
[[ $status == 0 ]] && echo "include direction: every #include of advcl/, nn/, datasets/, engine/ and cuda/ points down the layers"
exit $status
