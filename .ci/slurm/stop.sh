#!/usr/bin/env bash
# Stop the cluster .ci/slurm/start.sh started (by its pid files).
PREFIX=${EXP_SLURM_PREFIX:-/tmp/exp-slurm}
for d in slurmd slurmctld munged; do
    f=$PREFIX/run/$d.pid
    [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null && echo "stopped $d"
    rm -f "$f"
done
true
