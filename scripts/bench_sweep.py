"""Sweep throughput: the basic launcher vs joblib on the 4-job Fashion-MNIST sweep, and the per-job overhead.

Each round runs every variant once, in turn (this machine is shared and noisy); the ratios printed are
medians of the per-round ratios. Variants: the basic launcher (jobs one after another in this process's
child, 2 threads each), joblib as nnlab runs it (workers forked from a server that imported torch
once), and joblib with loky's default fresh-interpreter workers (NNLAB_SPEEDUPS=-forkserver).
The per-job overhead beyond training is measured differentially: a 9-job sweep minus a 1-job sweep of
the same config, per extra job, minus the training time the jobs report; once for a sweep over seeds
(values: the jobs share one composition) and once over activations (each job its own composition).
    python scripts/bench_sweep.py [--data-root ../shared/data] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEP = ["trainer.epochs=1", "activation=relu,tanh,mish,gelu", "logger=quiet", "logger.tensorboard=true"]
VARIANTS = {
    "basic": ([], {}),
    "joblib": (["hydra/launcher=joblib"], {}),
    "joblib, fresh workers": (["hydra/launcher=joblib"], {"NNLAB_SPEEDUPS": "-forkserver"}),
}


def sweep_seconds(data_root: str, sweep: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds of `nnlab train -m ...` until it exits, and the training seconds its jobs report."""
    args = [sys.executable, "-m", "nnlab", "train", "-m", "data=fashion_mnist", f"data.root={data_root}", *sweep]
    with tempfile.TemporaryDirectory() as cwd:
        t0 = time.perf_counter()
        subprocess.run(args, cwd=cwd, check=True, capture_output=True, env={**os.environ, **(env or {})})
        wall = time.perf_counter() - t0
        train = sum(json.loads(p.read_text())["final/train_seconds"] for p in Path(cwd).glob("outputs/**/metrics.json"))
        return wall, train


ACTIVATIONS = "relu,tanh,sigmoid,gelu,elu,silu,mish,leaky_relu,softplus"  # 9 config-group choices


def per_job_overhead(data_root: str, swept: str) -> float:
    """(wall of a 9-job sweep - wall of its first job alone - the extra training time) / 8, basic launcher:
    what each further job costs beyond its training, Hydra's composing included. `swept`: `seeds` (values:
    one composition serves every job) or `activations` (config-group choices: one composition per job)."""
    base = ["trainer.epochs=1", "data.limit_train=5000", "logger=quiet"]
    key, values = ("trainer.seed", ",".join(map(str, range(9)))) if swept == "seeds" else ("activation", ACTIVATIONS)
    one_wall, one_train = sweep_seconds(data_root, [*base, f"{key}={values.split(',')[0]}"])
    many_wall, many_train = sweep_seconds(data_root, [*base, f"{key}={values}"])
    return ((many_wall - one_wall) - (many_train - one_train)) / 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    overheads: dict[str, list[float]] = {"seeds": [], "activations": []}
    for _ in range(args.repeats):
        for name, (extra, env) in VARIANTS.items():
            times[name].append(sweep_seconds(args.data_root, [*SWEEP, *extra], env)[0])
        for swept, measured in overheads.items():
            measured.append(per_job_overhead(args.data_root, swept))
    print(f"4-job sweep ({' '.join(SWEEP)}), {os.cpu_count()} cores, medians of {args.repeats} rounds:")
    for name, t in times.items():
        ratio = statistics.median(b / j for b, j in zip(times["basic"], t))
        rounds = " ".join(f"{b / j:.2f}" for b, j in zip(times["basic"], t))
        print(f"  {name:<22} {statistics.median(t):5.1f} s   speed-up over basic {ratio:.2f}x   (rounds: {rounds})")
    for swept, measured in overheads.items():
        print(f"per-job overhead beyond training, 9 jobs over {swept} (basic launcher): "
              f"{statistics.median(measured):.2f} s (rounds: {' '.join(f'{x:.2f}' for x in measured)}; "
              f"target <= 0.3 s)")


if __name__ == "__main__":
    main()
