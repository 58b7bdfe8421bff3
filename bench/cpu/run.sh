#!/usr/bin/env bash
# The CPU benchmark, one command: exp (flex; tch-cpu when built with
# `--features tch`) against PyTorch eager on this machine.
#   bench/cpu/run.sh [EXP_BINARY] [OUT_DIR]
# PyTorch comes from .ci/install-libtorch (.venv-torch). Writes
# <date>-cpu-side-by-side.md into OUT_DIR (default bench/results).
set -euo pipefail
cd "$(dirname "$0")/../.."
exp="${1:-target/release/exp}"
out="${2:-bench/results}"
eval "$(.ci/install-libtorch)"
# A binary built with `--features tch` loads libtorch from the torch wheel.
site=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
export LD_LIBRARY_PATH="$site/lib:${LD_LIBRARY_PATH:-}"
python3 bench/cpu/bench.py "$exp" "$out"
