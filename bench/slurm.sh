#!/usr/bin/env bash
# Per-job overhead of `--executor slurm`: a 24-point sweep of a command stage
# that does nothing (`true`), each point one Slurm job; the time from submit
# to the result read back, per stage (the run records' `seconds`), median
# and range. Needs a cluster: .ci/slurm/start.sh && source /tmp/exp-slurm/env
#
#   bench/slurm.sh [POLL_SECONDS] [PARALLELISM]
# PARALLELISM 1 sends one job at a time: the latency of a job without
# queueing behind the others.
set -euo pipefail
cd "$(dirname "$0")/.."
poll=${1:-0.5}
parallelism=${2:-64}
exp=${EXP:-target/release/exp}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/spec.toml" <<SPEC
[experiment]
name = "overhead"
[executor]
kind = "slurm"
poll = $poll
parallelism = $parallelism
[[stage]]
id = "noop"
kind = "command"
run = ["true", "{i}"]
params = { i = 0 }
SPEC
points=$(seq -s, 1 24)
start=$(date +%s.%N)
"$exp" --results "$work/results" run "$work/spec.toml" -s "stage.noop.params.i=$points" --json >"$work/runs.json"
end=$(date +%s.%N)
python3 - "$work/runs.json" "$start" "$end" "$poll" "$parallelism" "$work/results/runs" <<'PY'
import glob, json, re, statistics, sys
runs = json.load(open(sys.argv[1]))
# Each stage log says "slurm job N: result after X s (submit to result)".
secs = sorted(float(m.group(1)) for f in glob.glob(sys.argv[6] + "/*/logs/noop.log")
              for m in re.finditer(r"result after ([0-9.]+) s", open(f).read()))
wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"{len(secs)} jobs, poll {sys.argv[4]} s, {sys.argv[5]} in flight: submit→result median {statistics.median(secs):.2f} s "
      f"(min {secs[0]:.2f}, max {secs[-1]:.2f}); whole sweep {wall:.1f} s wall")
PY
