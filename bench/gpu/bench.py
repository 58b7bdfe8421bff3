"""exp's training step against PyTorch eager, in one call on a GPU machine.

usage: python3 bench/gpu/bench.py EXP_BINARY OUT_DIR [DEVICE]
Runs PyTorch eager (fp32, bf16 autocast, bf16 autocast + channels_last) and
`exp bench` for TNet, SNet3 and PaW (224 px, batch 128, the paper's 40
attributes; PaW's 40 part subnets see 64 px patches), then writes OUT_DIR/<date>-<gpu>.md: img/s, ratio to PyTorch
fp32, achieved TFLOP/s (3 × the forward FLOPs per image) and the share of
the GPU's dense peak (TF32 for fp32 rows, bf16 for bf16 rows; H100/H200 SXM).
"""
import datetime, json, os, re, subprocess, sys

exp, out_dir = sys.argv[1], sys.argv[2]
device = sys.argv[3] if len(sys.argv) > 3 else "cuda:0"
here = os.path.dirname(os.path.abspath(__file__))
BATCH, SIZE, STEPS = 128, 224, 23
# BENCH_SMOKE=1: tiny sizes on the CPU, to check this script without a GPU.
SMOKE = os.environ.get("BENCH_SMOKE") == "1"
if SMOKE:
    BATCH, SIZE, STEPS = 4, 64, 5

# Table 3's layers: (channels, repeats, pool after, kernel).
PLANS = {
    "tnet": [(32, 2, True, 3), (64, 2, True, 3), (128, 3, True, 3), (256, 3, True, 3), (512, 3, False, 3), (1280, 1, False, 3)],
    "snet3": [(16, 1, True, 3), (32, 1, True, 3), (64, 1, True, 3), (128, 1, True, 3), (1280, 1, False, 1)],
}
PART = 32 if SMOKE else 64
PEAK_TFLOPS = {"tf32": 494.7, "bf16": 989.4}  # H100/H200 SXM, dense


def forward_flops(net, size=SIZE):
    flops, cin, side = 0, 3, size
    for c, n, pool, k in PLANS[net]:
        for _ in range(n):
            flops += 2 * cin * c * k * k * side * side
            cin = c
        if pool:
            side //= 2
    return flops


def step_flops(net):
    """3 × forward FLOPs per image (PaW: the whole SNet3 plus 40 SNet3 on patches)."""
    if net == "paw":
        return 3 * (forward_flops("snet3") + 40 * forward_flops("snet3", PART))
    return 3 * forward_flops(net)


def torch_step(net, mode):
    env = dict(os.environ, NET=net, DEVICE="cpu" if SMOKE else "cuda", PART_SIZE=str(PART))
    line = subprocess.run([sys.executable, os.path.join(here, "torch_step.py"), str(BATCH), str(SIZE), str(STEPS), mode], env=env, capture_output=True, text=True, check=True).stdout
    return float(re.search(r"([\d.]+) img/s", line).group(1)), line.strip()


def exp_step(net, extra=()):
    cmd = [exp, "bench", "--net", net, "--part-size", str(PART), "--size", str(SIZE), "--batch", str(BATCH), "--steps", str(STEPS - 3), "--device", device, "--json", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return None, (r.stderr or r.stdout).strip()[-300:]
    v = json.loads(r.stdout)
    return v["images_per_s"], json.dumps(v)


if SMOKE:
    gpu = "CPU smoke test"
else:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True).stdout.strip().splitlines()[0]
rows, log = [], []
for net in ["tnet", "snet3", "paw"]:
    fl = step_flops(net)
    ref, line = torch_step(net, "fp32")
    for label, (ips, line), peak in [
        ("PyTorch eager fp32", (ref, line), "tf32"),
        ("PyTorch eager bf16 autocast", torch_step(net, "amp"), "bf16"),
        ("PyTorch eager bf16 + channels_last", torch_step(net, "cl"), "bf16"),
        ("exp (burn-tch, libtorch conv backward) fp32", exp_step(net), "tf32"),
        ("exp bf16 (fp32 master weights)", exp_step(net, ["--precision", "bf16"]), "bf16"),
    ]:
        log.append(line)
        if ips is None:
            rows.append(f"| {net} | {label} | failed: {line} | | | |")
            continue
        tflops = ips * fl / 1e12
        rows.append(f"| {net} | {label} | {ips:,.0f} | {ips / ref:.2f}× | {tflops:.1f} | {100 * tflops / PEAK_TFLOPS[peak]:.1f}% of {peak} |")

date = datetime.date.today().isoformat()
slug = re.sub(r"[^a-z0-9]+", "-", gpu.lower()).strip("-")
text = f"""# Training step, exp vs PyTorch eager — {gpu}, {date}

`python3 bench/gpu/bench.py` (one call, same machine): batch {BATCH}, {SIZE}×{SIZE}, 40 attributes,
SGD momentum 0.9, weight decay 5e-4, BCE with logits; {STEPS - 3} timed steps after 3 warm-up steps.
TFLOP/s counts 3 × the convolutions' forward FLOPs per image (PaW: whole SNet3 + 40 SNet3 on {PART} px patches).

| net | what | img/s | vs PyTorch fp32 | TFLOP/s | share of peak |
|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n\nRaw output:\n\n```\n" + "\n".join(log) + "\n```\n"
os.makedirs(out_dir, exist_ok=True)
path = os.path.join(out_dir, f"{date}-{slug}.md")
open(path, "w").write(text)
print(text)
print("wrote", path)
