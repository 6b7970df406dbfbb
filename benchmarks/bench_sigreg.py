"""SIGReg benchmark: training overhead and agreement with the published formula.

1. Training steps per second of the default JEPA (64x64 frames, batch 64 windows of 4 frames,
   256 SIGReg directions) with lambda = 0.1 against the same model with the prediction loss
   only (lambda = 0 skips SIGReg entirely). Blocks of steps alternate between the two so
   that load from other processes on a shared machine hits both alike.
2. The vectorised SIGReg against a direct transcription of the published formula (one
   direction and one grid point at a time, float64) on the same inputs and directions.

Prints the numbers; ``--out FILE`` also writes them there.

    python benchmarks/bench_sigreg.py [--steps 40] [--threads N]
    python benchmarks/bench_sigreg.py --smoke --out /tmp/s.md   # seconds: does it run?
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import torch
from _common import Run  # this script's folder is on sys.path

from geoprobe.jepa.model import JEPA, JEPAConfig
from geoprobe.sigreg import random_directions, sigreg, sigreg_reference as naive_sigreg


def time_training(steps: int, block: int, seed: int = 0, batch: int = 64,
                  size: int = 64) -> dict[float, float]:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (batch, 4, size, size, 3), dtype=torch.uint8, generator=g)
    actions = torch.rand(batch, 4, 2, generator=g) * 2 - 1
    nets = {}
    for lam in (0.1, 0.0):
        net = JEPA(JEPAConfig(lam=lam, batch=batch, image_size=size))
        nets[lam] = (net, torch.optim.AdamW(net.parameters(), 1e-3))
    spent = {lam: 0.0 for lam in nets}
    for lam, (net, opt) in nets.items():  # warm-up
        for _ in range(2):
            loss = net.losses(frames, actions, g)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
    for _ in range(steps // block):
        for lam, (net, opt) in nets.items():
            t0 = time.perf_counter()
            for _ in range(block):
                loss = net.losses(frames, actions, g)["loss"]
                opt.zero_grad()
                loss.backward()
                opt.step()
            spent[lam] += time.perf_counter() - t0
    return {lam: (steps // block * block) / s for lam, s in spent.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--block", type=int, default=5)
    run = Run(ap, "sigreg", default_out=False)
    args = ap.parse_args(argv)
    with run.threads(args):
        _main(args, run)


def _main(args, run) -> None:
    lines = []

    def say(text):
        print(text, flush=True)
        lines.append(text)

    say(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s)")

    # 2. agreement (first: cheap)
    g = torch.Generator().manual_seed(0)
    worst = 0.0
    cases = ((16, 8, 8),) if args.smoke else ((64, 32, 256), (256, 32, 64), (1024, 16, 32))
    for n, d, m in cases:
        z = torch.randn(n, d, generator=g, dtype=torch.float64) * 1.5 + 0.3
        A = random_directions(d, m, g, dtype=torch.float64)
        t0 = time.perf_counter()
        ours = float(sigreg(z, directions=A))
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = naive_sigreg(z.numpy(), A.numpy())
        t_ref = time.perf_counter() - t0
        z32, A32 = z.float(), A.float()
        ours32 = float(sigreg(z32, directions=A32))
        worst = max(worst, abs(ours - ref), abs(ours32 - ref) / max(abs(ref), 1))
        say(f"SIGReg N={n} D={d} M={m}: ours {ours:.10f} reference {ref:.10f} "
            f"|diff| {abs(ours - ref):.2e} (float32 rel {abs(ours32 - ref) / abs(ref):.2e}); "
            f"ours {t_ours * 1e3:.1f} ms vs loop {t_ref * 1e3:.0f} ms "
            f"({t_ref / max(t_ours, 1e-9):.0f}x)")
    say(f"max |ours - reference| (float64 abs / float32 rel): {worst:.2e} "
        f"({'within' if worst <= 1e-6 else 'OUTSIDE'} 1e-6)")

    # 1. training overhead
    rates = (time_training(1, 1, batch=2, size=16) if args.smoke
             else time_training(args.steps, args.block))
    say(f"training steps/s: with SIGReg {rates[0.1]:.3f}, prediction only {rates[0.0]:.3f}, "
        f"overhead ratio {rates[0.0] / rates[0.1]:.3f}x (aim <= 1.3x)")
    say(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    run.write(args, "# SIGReg / JEPA benchmark\n\n```\n" + "\n".join(lines) + "\n```")


if __name__ == "__main__":
    main()
