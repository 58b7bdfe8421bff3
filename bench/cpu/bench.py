"""exp's training step on the CPU against PyTorch eager, side by side.

usage: python3 bench/cpu/bench.py EXP_BINARY OUT_DIR
       [env ROUNDS=3, BATCH=32, CASES=tnet:128:3,snet3:64:8 (net:px:steps)]
For TNet and SNet3 (Table 3's layers, 40 attributes, batch 32) at 64 and
128 px, alternates `exp bench` (burn's flex backend, and `--device tch-cpu`
when the binary has the `tch` feature) with PyTorch eager on the CPU
(bench/gpu/torch_step.py, DEVICE=cpu), ROUNDS times each, and writes
OUT_DIR/<date>-cpu-side-by-side.md: img/s min / median / max per
implementation and the ratio of exp's median to PyTorch's, with the range
of the per-round ratios. Alternating runs share the machine's state, so a
busy moment hits both sides.
"""
import datetime, json, os, platform, re, statistics, subprocess, sys

exp, out_dir = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
torch_step = os.path.join(here, "..", "gpu", "torch_step.py")
BATCH = int(os.environ.get("BATCH", "32"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
CASES = [("snet3", 64, 8), ("snet3", 128, 5), ("tnet", 64, 4), ("tnet", 128, 3)]
if os.environ.get("CASES"):  # e.g. CASES=tnet:128:3,snet3:64:8 (net:px:steps)
    CASES = [(n, int(px), int(st)) for n, px, st in (c.split(":") for c in os.environ["CASES"].split(","))]
if os.environ.get("BENCH_SMOKE") == "1":
    BATCH, ROUNDS, CASES = 4, 1, [("snet3", 64, 2)]


def torch_ips(net, size, steps):
    env = dict(os.environ, NET=net, DEVICE="cpu")
    line = subprocess.run([sys.executable, torch_step, str(BATCH), str(size), str(steps + 3), "fp32"],
                          env=env, capture_output=True, text=True, check=True).stdout
    return float(re.search(r"([\d.]+) img/s", line).group(1))


def exp_ips(net, size, steps, device):
    r = subprocess.run([exp, "bench", "--net", net, "--size", str(size), "--batch", str(BATCH),
                        "--steps", str(steps), "--device", device, "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)["images_per_s"]


def has_tch():
    r = subprocess.run([exp, "bench", "--net", "snet3", "--size", "16", "--batch", "1", "--steps", "1",
                        "--device", "tch-cpu"], capture_output=True, text=True)
    return r.returncode == 0


devices = ["cpu"] + (["tch-cpu"] if has_tch() else [])
rows = []
for net, size, steps in CASES:
    got = {"PyTorch eager": []} | {f"exp {d}": [] for d in devices}
    for _ in range(ROUNDS):
        for d in devices:
            got[f"exp {d}"].append(exp_ips(net, size, steps, d))
        got["PyTorch eager"].append(torch_ips(net, size, steps))
    ref = got["PyTorch eager"]
    for name, v in got.items():
        if any(x is None for x in v):
            rows.append(f"| {net} | {size} | {name} | failed | |")
            continue
        ratios = [a / b for a, b in zip(v, ref)]
        ratio = "" if name == "PyTorch eager" else \
            f"{statistics.median(v) / statistics.median(ref):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})"
        rows.append(f"| {net} | {size} | {name} | {min(v):.1f} / {statistics.median(v):.1f} / {max(v):.1f} | {ratio} |")
        print(rows[-1], flush=True)

date = datetime.date.today().isoformat()
cores = os.cpu_count()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
import torch
text = f"""# Training step on the CPU, exp vs PyTorch eager — {cores} cores ({cpu}), {date}

`python3 bench/cpu/bench.py` (bench/cpu/run.sh): batch {BATCH}, 40 attributes, Table 3's layers at full
width, SGD momentum 0.9, weight decay 5e-4, BCE with logits; exp and PyTorch {torch.__version__} alternate,
{ROUNDS} rounds. Ratio: exp's median over PyTorch's (range of the per-round ratios).

| net | px | implementation | img/s min / median / max | vs PyTorch |
|---|---|---|---|---|
""" + "\n".join(rows) + "\n"
os.makedirs(out_dir, exist_ok=True)
path = os.path.join(out_dir, f"{date}-cpu-side-by-side.md")
open(path, "w").write(text)
print(text)
print("wrote", path)
