#!/usr/bin/env bash
# The GPU benchmark, one command on a machine with an NVIDIA GPU and PyTorch:
#   bench/gpu/run.sh [EXP_BINARY] [OUT_DIR]
# EXP_BINARY: an exp built with `--features tch` against that machine's torch
# (README, "GPU users"); default target/release/exp. OUT_DIR: default
# bench/results. Writes <date>-<gpu>.md there (see bench.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
exp="${1:-target/release/exp}"
out="${2:-bench/results}"
export LD_LIBRARY_PATH="$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__) + "/lib")'):${LD_LIBRARY_PATH:-}"
"$exp" bench --net snet3 --size 64 --batch 8 --steps 1 --device cuda:0 >/dev/null  # fails early if the build has no CUDA
python3 bench/gpu/bench.py "$exp" "$out" cuda:0
