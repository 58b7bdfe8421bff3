#!/usr/bin/env bash
# Framework overhead with a long history: the cached no-op rerun of a
# 100-point sweep, first in a fresh results directory, then with N earlier
# run records present (default 10,000; copies of real records under new ids).
#   bench/history.sh            (prints seconds; paste into bench/results/)
set -euo pipefail
cd "$(dirname "$0")/.."
exp="$PWD/target/release/exp"
n="${N:-10000}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export EXP_RESULTS_DIR="$dir/results"
lrs=$(python3 -c 'print(", ".join(f"{0.01 + i * 1e-4:.4f}" for i in range(100)))')
cat > "$dir/sweep.toml" <<TOML
[experiment]
name = "history"
seed = 1

[data]
image-size = 32
train-images = 32
val-images = 8
test-images = 8
attributes = ["Male", "Smiling"]

[train]
epochs = 1
batch-size = 16

[[stage]]
id = "train"
kind = "train"

[[stage]]
id = "eval"
kind = "evaluate"
model = "train"

[sweep]
grid = { "train.lr" = [$lrs] }
TOML
"$exp" run "$dir/sweep.toml" >/dev/null 2>&1   # computes the 100 points once
median_of_3() {
  for _ in 1 2 3; do
    s=$(date +%s.%N); "$exp" run "$dir/sweep.toml" >/dev/null 2>&1; e=$(date +%s.%N)
    awk "BEGIN { print $e - $s }"
  done | sort -n | sed -n 2p
}
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%F)"
echo "100-point no-op rerun, $(ls "$EXP_RESULTS_DIR/runs" | grep -c -- -history-) records: $(median_of_3) s"
python3 - "$EXP_RESULTS_DIR/runs" "$n" <<'PY'
import json, os, sys
runs, n = sys.argv[1], int(sys.argv[2])
src = next(d for d in sorted(os.listdir(runs)) if "-history-" in d)
record = json.load(open(os.path.join(runs, src, "run.json")))
for i in range(n):
    rid = f"20200101-000000-old-{i:05x}"
    os.makedirs(os.path.join(runs, rid))
    record.update(id=rid, name="old", started=f"2020-01-01T00:00:00.{i:06d}Z", pid=None)
    json.dump(record, open(os.path.join(runs, rid, "run.json"), "w"))
PY
echo "100-point no-op rerun, $(ls "$EXP_RESULTS_DIR/runs" | grep -c -- -) records: $(median_of_3) s"
