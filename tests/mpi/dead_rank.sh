#!/usr/bin/env bash
# Proves that a stuck or dead rank ends a data-parallel run with an error
# within the collective timeout instead of hanging: runs each DISABLED_ probe
# of timeout_test.cpp in its own job and checks that the job fails, fast.
# Usage: tests/mpi/dead_rank.sh path/to/advcl_dist_tests [np]
set -u
bin=${1:?usage: dead_rank.sh advcl_dist_tests [np]}
np=${2:-2}
timeout_s=3       # the collective timeout given to the ranks
limit_s=60        # the job must end well before this (a hang would not)
status=0
for probe in StuckRank ExitedRank; do
  log=$(mktemp)
  start=$(date +%s)
  ADVCL_DIST_TIMEOUT=$timeout_s timeout "$limit_s" mpirun --allow-run-as-root --oversubscribe -np "$np" \
    -x ADVCL_DIST_TIMEOUT -x OMP_NUM_THREADS=1 "$bin" --gtest_also_run_disabled_tests \
    --gtest_filter="DeadRankProbe.DISABLED_$probe" >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  if [ "$rc" -eq 0 ]; then
    echo "dead_rank: $probe: FAILED: the job succeeded although a rank never joined"; status=1
  elif [ "$rc" -eq 124 ]; then
    echo "dead_rank: $probe: FAILED: the job hung (killed after ${limit_s}s)"; status=1
  elif [ "$probe" = StuckRank ] && ! grep -q "did not complete within" "$log"; then
    echo "dead_rank: $probe: FAILED: no timeout message; output:"; cat "$log"; status=1
  else
    echo "dead_rank: $probe: ok (job failed with status $rc after ${took}s; timeout ${timeout_s}s)"
  fi
  rm -f "$log"
done
exit $status
