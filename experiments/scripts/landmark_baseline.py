#!/usr/bin/env python3
"""Do the annotations leak the labels? A landmark-only baseline.

A logistic regression per attribute on landmark geometry (coordinates
relative to the face box, eye distance, mouth width, ...), trained on the
train split of a CelebA-format data set and scored on `--split`. On exp's
synthetic faces it should score at the majority baseline: the attributes are
drawn in pixels, not encoded in where the landmarks are. Standard library
only. exp runs it as a `command` stage: see experiments/command.toml.

Writes into --out: weights.json (the fitted model) and metrics.json
(mean_accuracy on --split, val_mean_accuracy, majority_accuracy).
"""
import argparse
import json
import math
import os
import sys


def read_table(path):
    """CelebA's annotation format: a count line, a header line, rows."""
    with open(path) as f:
        lines = f.read().splitlines()
    header = lines[1].split()
    rows = {}
    for line in lines[2:]:
        parts = line.split()
        if parts:
            rows[parts[0]] = [float(x) for x in parts[1:]]
    return header, rows


def features(landmarks, box):
    x0, y0, w, h = box
    pts = [((landmarks[2 * i] - x0) / w, (landmarks[2 * i + 1] - y0) / h) for i in range(5)]
    dist = lambda a, b: math.hypot(pts[a][0] - pts[b][0], pts[a][1] - pts[b][1])
    flat = [c for p in pts for c in p]
    # eyes, mouth width, eye-to-mouth height, nose offset from the eye midline
    extra = [dist(0, 1), dist(3, 4), (pts[3][1] + pts[4][1] - pts[0][1] - pts[1][1]) / 2,
             pts[2][0] - (pts[0][0] + pts[1][0]) / 2, w / max(h, 1e-6)]
    return flat + extra + [1.0]


def fit(xs, ys, l2, epochs, lr):
    w = [0.0] * len(xs[0])
    n = len(xs)
    for _ in range(epochs):
        grad = [l2 * wi for wi in w]
        for x, y in zip(xs, ys):
            z = sum(wi * xi for wi, xi in zip(w, x))
            p = 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))
            for j, xj in enumerate(x):
                grad[j] += (p - y) * xj / n
        w = [wi - lr * g for wi, g in zip(w, grad)]
    return w


def accuracy(w, xs, ys):
    right = sum((sum(wi * xi for wi, xi in zip(w, x)) > 0) == (y == 1) for x, y in zip(xs, ys))
    return right / max(len(xs), 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a CelebA-format folder (or an exp data entry)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--l2", type=float, default=0.01)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--split", choices=["val", "test"], default="test")
    args = ap.parse_args()
    if args.epochs < 1 or args.l2 < 0:
        sys.exit(f"--epochs must be >= 1 and --l2 >= 0 (got {args.epochs}, {args.l2})")

    root = args.data
    if os.path.isdir(os.path.join(root, "celeba")):
        root = os.path.join(root, "celeba")
    names, attrs = read_table(os.path.join(root, "Anno", "list_attr_celeba.txt"))
    _, marks = read_table(os.path.join(root, "Anno", "list_landmarks_celeba.txt"))
    _, boxes = read_table(os.path.join(root, "Anno", "list_bbox_celeba.txt"))
    split_of = {}
    with open(os.path.join(root, "Eval", "list_eval_partition.txt")) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                split_of[parts[0]] = int(parts[1])
    data = {0: [], 1: [], 2: []}
    for image, a in attrs.items():
        data[split_of[image]].append((features(marks[image], boxes[image]), a))
    # Standardise with the train split's statistics (the bias column stays 1).
    train_x = [x for x, _ in data[0]]
    d = len(train_x[0]) - 1
    mu = [sum(x[k] for x in train_x) / len(train_x) for k in range(d)]
    sd = [max(math.sqrt(sum((x[k] - mu[k]) ** 2 for x in train_x) / len(train_x)), 1e-9) for k in range(d)]
    for split in data.values():
        for x, _ in split:
            for k in range(d):
                x[k] = (x[k] - mu[k]) / sd[k]
    print(f"{len(data[0])} train, {len(data[1])} val, {len(data[2])} test images; {len(names)} attributes")

    scored = data[2] if args.split == "test" else data[1]
    weights, acc, val_acc, majority = {}, [], [], []
    for j, name in enumerate(names):
        xs = [x for x, _ in data[0]]
        ys = [1 if a[j] > 0 else 0 for _, a in data[0]]
        w = fit(xs, ys, args.l2, args.epochs, args.lr)
        weights[name] = w
        sy = [1 if a[j] > 0 else 0 for _, a in scored]
        acc.append(accuracy(w, [x for x, _ in scored], sy))
        val_acc.append(accuracy(w, [x for x, _ in data[1]], [1 if a[j] > 0 else 0 for _, a in data[1]]))
        positive = sum(ys) / max(len(ys), 1)
        majority.append(sum((positive > 0.5) == (y == 1) for y in sy) / max(len(sy), 1))
        print(f"{name:>20}: {100 * acc[-1]:.1f}% (majority {100 * majority[-1]:.1f}%)")

    mean = lambda v: sum(v) / len(v)
    with open(os.path.join(args.out, "weights.json"), "w") as f:
        json.dump(weights, f)
    metrics = {"mean_accuracy": mean(acc), "val_mean_accuracy": mean(val_acc),
               "majority_accuracy": mean(majority), "split": args.split}
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f)
    print(f"mean accuracy {100 * metrics['mean_accuracy']:.2f}% on {args.split}")


if __name__ == "__main__":
    main()
