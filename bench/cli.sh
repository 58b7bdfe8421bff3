#!/usr/bin/env bash
# End-to-end CLI timings, with public tools only. Usage: bench/cli.sh
# Writes nothing; paste the output into bench/results/<date>-<machine>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
EXP=./target/release/exp
cargo build --release -q
export EXP_RESULTS_DIR=$(mktemp -d)
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_runs() { # n, command...
  local n=$1; shift
  for _ in $(seq "$n"); do
    local s=$(date +%s.%N); "$@" >/dev/null 2>&1; local e=$(date +%s.%N)
    awk "BEGIN { print $e - $s }"
  done | median
}
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%F)"
echo "quickstart, first run (s):        $(time_runs 1 $EXP run experiments/quickstart.toml)"
echo "quickstart, cached rerun (s):     $(time_runs 5 $EXP run experiments/quickstart.toml)"
echo "quickstart, plan (s):             $(time_runs 5 $EXP plan experiments/quickstart.toml)"
echo "generate 10,000 faces @128px (s): $(time_runs 1 $EXP run bench/generate128.toml)"
grep -h "images/s" "$EXP_RESULTS_DIR"/runs/*bench-generate128*/logs/data.log
