"""Start-up time of nnlab's fast commands next to `python -c "import torch"` (medians of --repeats runs).

None of these commands imports torch; the script also checks that.
    python scripts/bench_cli.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "nnlab --help": [sys.executable, "-m", "nnlab", "--help"],
    "nnlab list": [sys.executable, "-m", "nnlab", "list"],
    "nnlab train --help": [sys.executable, "-m", "nnlab", "train", "--help"],
    "nnlab validate": [sys.executable, "-m", "nnlab", "validate"],
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
}
NO_TORCH = ("import sys, runpy; sys.argv = {argv!r}; "
            "exec('try:\\n runpy.run_module(\"nnlab\", run_name=\"__main__\")\\nexcept SystemExit: pass'); "
            "assert 'torch' not in sys.modules, 'torch imported'")


def seconds(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):  # interleaved
        for name, cmd in COMMANDS.items():
            times[name].append(seconds(cmd))
    torch_s = statistics.median(times['python -c "import torch"'])
    for name, ts in times.items():
        print(f"{name:<28} {statistics.median(ts):6.3f} s   ({statistics.median(ts) / torch_s:.2f}x import torch)")
    for name, cmd in COMMANDS.items():
        if name.startswith("nnlab"):
            code = NO_TORCH.format(argv=["nnlab", *cmd[3:]])
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    print("checked: none of the nnlab commands above imports torch")


if __name__ == "__main__":
    main()
