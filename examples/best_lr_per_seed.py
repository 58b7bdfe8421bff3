"""The best learning rate per seed, from exp's run index, in one query.

    exp run experiments/quickstart.toml -s train.lr=0.1,0.01 -s experiment.seed=1,2
    exp ls > /dev/null        # merges new runs into results/runs/index.parquet
    python examples/best_lr_per_seed.py [results/runs/index.parquet]

One row per stage of every run: run, name, seed, params (the run's `-s`
overrides as JSON), stage, kind, status, key, seconds, mean/balanced/majority
accuracy.
"""
import sys

import polars as pl

index = sys.argv[1] if len(sys.argv) > 1 else "results/runs/index.parquet"
best = (
    pl.read_parquet(index)
    .filter(pl.col("kind") == "evaluate", pl.col("run_status") == "ok")
    .with_columns(lr=pl.col("params").str.json_path_match("$['train.lr']"))
    .sort("mean_accuracy")
    .group_by("seed")
    .last()
    .select("seed", "lr", "mean_accuracy", "run")
    .sort("seed")
)
print(best)
