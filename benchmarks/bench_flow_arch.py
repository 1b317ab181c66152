"""Seconds per Adam step of the two flows the ``flow`` method offers, side by side.

zuko's masked autoregressive flow (``maf``, the default) and neural spline flow (``nsf``),
3 transforms, two hidden layers of 64, 16 features (the method's defaults), one torch
thread, batches of 512 and 2048 standard-normal rows; 3 warm-up steps, then the mean of
20. Prints ms per step and µs per row.

    python benchmarks/bench_flow_arch.py

Results: benchmarks/NOTES_distribution.md.
"""

from __future__ import annotations

import time

import torch
import zuko


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    print("| flow | batch | ms per step | µs per row |")
    print("|---|---:|---:|---:|")
    for name, build in (("maf", zuko.flows.MAF), ("nsf", zuko.flows.NSF)):
        for batch in (512, 2048):
            flow = build(16, transforms=3, hidden_features=(64, 64))
            opt = torch.optim.Adam(flow.parameters(), 1e-3)
            x = torch.randn(batch, 16)
            for step in range(23):
                if step == 3:
                    start = time.perf_counter()
                loss = -flow().log_prob(x).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            dt = (time.perf_counter() - start) / 20
            print(f"| {name} | {batch} | {dt * 1e3:.1f} | {dt / batch * 1e6:.1f} |")


if __name__ == "__main__":
    main()
