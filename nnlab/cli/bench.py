"""`nnlab bench activations`: the table of what nnlab.bench measures, ratios against ReLU."""

from __future__ import annotations

import argparse
import difflib

import torch
from rich.table import Table

from nnlab.activations import ACTIVATIONS
from nnlab.bench import DEFAULT, run
from nnlab.devices import resolve_device
from nnlab.registry import ConfigError
from nnlab.tracker import make_console


def table(results: dict[str, dict], numel: int, device: torch.device) -> Table:
    base = results.get("relu") or next(iter(results.values()))
    t = Table(title=f"activations on {numel:,} floats ({device}, {torch.get_num_threads()} threads); "
                    "ratios against ReLU")
    for col in ("activation", "forward ms", "× relu", "fwd+bwd ms", "× relu", "saved for backward MB", "× relu"):
        t.add_column(col, justify="left" if col == "activation" else "right")
    for name, r in results.items():
        t.add_row(name, f"{r['forward_ms']:.3f}", f"{r['forward_ms'] / base['forward_ms']:.2f}",
                  f"{r['fwd_bwd_ms']:.3f}", f"{r['fwd_bwd_ms'] / base['fwd_bwd_ms']:.2f}",
                  f"{r['saved_mb']:.1f}", f"{r['saved_mb'] / max(base['saved_mb'], 1e-9):.2f}")
    return t


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nnlab bench",
                                     description="time and memory of every activation, ratios against ReLU")
    parser.add_argument("what", choices=["activations"])
    parser.add_argument("--numel", type=int, default=1_000_000, help="elements in the input tensor")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds of timing per measurement")
    parser.add_argument("--only", nargs="*", default=list(DEFAULT), help="activations to measure")
    args = parser.parse_args(argv)
    console = make_console()
    problems = [f"--only {n}: unknown activation" + (f" (did you mean {' or '.join(c)}?)" if (
        c := difflib.get_close_matches(n, list(ACTIVATIONS))) else "") for n in args.only if n not in ACTIVATIONS]
    if problems:
        problems.append(f"choose from: {', '.join(ACTIVATIONS)}")
    if not args.only:
        problems.append(f"--only needs at least one activation; choose from: {', '.join(ACTIVATIONS)}")
    if args.numel < 1:
        problems.append(f"--numel {args.numel}: must be a positive number of elements")
    if not args.min_time > 0:
        problems.append(f"--min-time {args.min_time}: must be a positive number of seconds")
    try:
        device = resolve_device(args.device)
    except ConfigError as e:
        problems.append(str(e).replace("device=", "--device "))
    if problems:
        console.print(f"nnlab bench: {'; '.join(problems)}", soft_wrap=True, markup=False, highlight=False)
        return 2
    results = run(tuple(args.only), args.numel, device, args.min_time)
    console.print(table(results, args.numel, device))
    if "swish" in results and "swish_efficient" in results:
        a, b = results["swish"]["saved_mb"], results["swish_efficient"]["saved_mb"]
        console.print(f"memory-efficient Swish keeps {b:.1f} MB for backward vs {a:.1f} MB for the plain module "
                      f"({a / max(b, 1e-9):.1f}x less)")
    return 0
