"""Per-layer times of TNet (or `NET=snet3`) at 64 px (or `SIZE=128`),
batch 32, in PyTorch eager on the CPU: conv + ReLU (+ 2x2 max pool),
forward and backward, median of 5 after one warm-up. The counterpart of
`cargo test --release --lib tnet_layer_times -- --ignored --nocapture`
(src/ops/flex.rs), which reads the same variables."""
import os
import time
import torch

torch.manual_seed(0)
size = int(os.environ.get("SIZE", "64"))
if os.environ.get("NET") == "snet3":
    layers = [(3, 16, size, True), (16, 32, size // 2, True), (32, 64, size // 4, True),
              (64, 128, size // 8, True)]
else:
    s = lambda d: size // d
    layers = [
        (3, 32, s(1), False), (32, 32, s(1), True), (32, 64, s(2), False), (64, 64, s(2), True),
        (64, 128, s(4), False), (128, 128, s(4), False), (128, 128, s(4), True),
        (128, 256, s(8), False), (256, 256, s(8), False), (256, 256, s(8), True),
        (256, 512, s(16), False), (512, 512, s(16), False), (512, 512, s(16), False),
        (512, 1280, s(16), False),
    ]
tf = tb = 0.0
print("layer\tforward ms\tbackward ms")
for cin, cout, side, pool in layers:
    conv = torch.nn.Conv2d(cin, cout, 3, padding=1)
    x = torch.ones(32, cin, side, side, requires_grad=True)
    f, b = [], []
    for rep in range(6):
        t = time.perf_counter()
        y = torch.relu(conv(x))
        if pool:
            y = torch.nn.functional.max_pool2d(y, 2)
        t1 = time.perf_counter() - t
        t = time.perf_counter()
        y.sum().backward()
        t2 = time.perf_counter() - t
        if rep > 0:
            f.append(t1)
            b.append(t2)
    f, b = sorted(f)[len(f) // 2] * 1e3, sorted(b)[len(b) // 2] * 1e3
    tf += f
    tb += b
    print(f"{cin}->{cout} @{side}{' +pool' if pool else ''}\t{f:.1f}\t{b:.1f}")
print(f"total\t{tf:.1f}\t{tb:.1f}")
