"""Per-attribute accuracy of every evaluation, joined to the runs that used it.

    exp ls > /dev/null        # merges new runs into results/runs/index.parquet
    python examples/attributes_by_run.py [results]

Each cache entry's `attributes.parquet` holds one stage's scores (stage,
split, attribute, accuracy, balanced_accuracy, majority_accuracy,
positive_rate). An entry is shared by every run whose stage has its inputs,
so the file names no run: its folder name is its cache key, which the run
index records per run and stage.
"""
import sys

import polars as pl

results = sys.argv[1] if len(sys.argv) > 1 else "results"
scores = (
    pl.scan_parquet(f"{results}/cache/*/*/attributes.parquet", include_file_paths="path")
    .with_columns(key=pl.col("path").str.extract(r"([0-9a-f]{64})[/\\]attributes\.parquet$"))
    .drop("path")
    .collect()
)
index = pl.read_parquet(f"{results}/runs/index.parquet").select("run", "seed", "params", "stage", "key")
per_run = scores.join(index, on=["key", "stage"]).select(
    "run", "seed", "params", "stage", "attribute", "accuracy", "balanced_accuracy"
)
print(per_run.sort("run", "stage", "attribute"))
