"""Wall time of one 4-job Fashion-MNIST sweep under Hydra's basic launcher vs the joblib launcher.

Runs the two side by side, interleaved, `--repeats` times each, and prints the medians and their ratio.
    python scripts/bench_sweep.py [--data-root ../shared/data] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEP = ["trainer.epochs=1", "activation=relu,tanh,mish,gelu", "logger=quiet", "logger.tensorboard=true"]


def sweep_seconds(launcher: str | None, data_root: str) -> float:
    args = [sys.executable, "-m", "nnlab", "train", "-m", "data=fashion_mnist", f"data.root={data_root}", *SWEEP]
    if launcher:
        args.append(f"hydra/launcher={launcher}")
    with tempfile.TemporaryDirectory() as cwd:
        t0 = time.perf_counter()
        subprocess.run(args, cwd=cwd, check=True, capture_output=True)
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"basic": [], "joblib": []}
    for _ in range(args.repeats):
        times["basic"].append(sweep_seconds(None, args.data_root))
        times["joblib"].append(sweep_seconds("joblib", args.data_root))
    basic, joblib = (statistics.median(times[k]) for k in ("basic", "joblib"))
    print(f"4-job sweep, medians of {args.repeats}: basic {basic:.1f} s, joblib {joblib:.1f} s")
    print(f"joblib speed-up over basic: {basic / joblib:.2f}x")


if __name__ == "__main__":
    main()
