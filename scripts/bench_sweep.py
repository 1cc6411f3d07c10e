"""Sweep throughput: basic vs joblib launcher on a 4-job Fashion-MNIST sweep, and the per-job overhead.

Runs the launchers side by side, interleaved, `--repeats` times each, and prints the medians and their
ratio. The per-job overhead beyond training is measured differentially: a 5-job sweep minus a 1-job
sweep of the same config, per extra job, minus the training time the jobs report.
    python scripts/bench_sweep.py [--data-root ../shared/data] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEP = ["trainer.epochs=1", "activation=relu,tanh,mish,gelu", "logger=quiet", "logger.tensorboard=true"]


def sweep_seconds(launcher: str | None, data_root: str, sweep: list[str] = SWEEP) -> tuple[float, float]:
    """Wall seconds of the sweep, and the training seconds its jobs report (summed)."""
    args = [sys.executable, "-m", "nnlab", "train", "-m", "data=fashion_mnist", f"data.root={data_root}", *sweep]
    if launcher:
        args.append(f"hydra/launcher={launcher}")
    with tempfile.TemporaryDirectory() as cwd:
        t0 = time.perf_counter()
        subprocess.run(args, cwd=cwd, check=True, capture_output=True)
        wall = time.perf_counter() - t0
        train = sum(json.loads(p.read_text())["final/train_seconds"] for p in Path(cwd).glob("outputs/**/metrics.json"))
        return wall, train


def per_job_overhead(data_root: str) -> float:
    """(5-job sweep - 1-job sweep) / 4, minus the extra jobs' training time per job."""
    base = ["trainer.epochs=1", "data.limit_train=5000", "logger=quiet"]
    one_wall, one_train = sweep_seconds(None, data_root, [*base, "trainer.seed=0"])
    five_wall, five_train = sweep_seconds(None, data_root, [*base, "trainer.seed=0,1,2,3,4"])
    return ((five_wall - one_wall) - (five_train - one_train)) / 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"basic": [], "joblib": []}
    for _ in range(args.repeats):
        times["basic"].append(sweep_seconds(None, args.data_root)[0])
        times["joblib"].append(sweep_seconds("joblib", args.data_root)[0])
    basic, joblib = (statistics.median(times[k]) for k in ("basic", "joblib"))
    print(f"4-job sweep, medians of {args.repeats}: basic {basic:.1f} s, joblib {joblib:.1f} s")
    print(f"joblib speed-up over basic: {basic / joblib:.2f}x")
    overhead = statistics.median(per_job_overhead(args.data_root) for _ in range(args.repeats))
    print(f"per-job overhead beyond training (basic launcher): {overhead:.2f} s (target <= 0.3 s)")


if __name__ == "__main__":
    main()
