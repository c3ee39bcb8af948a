#!/bin/sh
# The bounded libFuzzer run that ctest does in the fuzz tree:
#
#   run_bounded_fuzz.sh FUZZER SEED_CORPUS SCRATCH SECONDS
#
# SCRATCH is emptied first; new inputs go to SCRATCH/corpus and a crash, leak or timeout
# input to SCRATCH/artifacts/ (libFuzzer prints its path). SEED_CORPUS is only read.
set -eu
fuzzer=$1 seeds=$2 scratch=$3 seconds=$4
rm -rf "$scratch"
mkdir -p "$scratch/corpus" "$scratch/artifacts"
exec "$fuzzer" "$scratch/corpus" "$seeds" \
  -max_total_time="$seconds" -artifact_prefix="$scratch/artifacts/" -print_final_stats=1
