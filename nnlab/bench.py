"""`nnlab bench activations`: the chapter's activation benchmark done right.

Warm-up, repeated timing (torch.utils.benchmark, which synchronizes CUDA itself), forward and
forward+backward, and the memory autograd keeps for backward: native vs custom vs memory-efficient Swish.
"""

from __future__ import annotations

import argparse
import logging

import torch
from rich.table import Table

from nnlab.activations import activation_factory
from nnlab.devices import resolve_device
from nnlab.tracker import make_console

logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "no CUDA runtime" noise on CPU

DEFAULT = ("relu", "leaky_relu", "gelu", "elu", "sigmoid", "tanh", "mish", "silu", "swish", "swish_efficient")


def saved_bytes(module: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes autograd stores for backward (distinct storages), measured with saved-tensor hooks."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    x = x.detach().requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x)
    return sum(seen.values())


def time_ms(stmt: str, env: dict, min_run_time: float) -> float:
    from torch.utils import benchmark

    timer = benchmark.Timer(stmt=stmt, globals=env, num_threads=torch.get_num_threads())
    timer.timeit(3)  # warm-up (allocator, kernels, lazy init)
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def measure(name: str, x: torch.Tensor, min_run_time: float) -> dict[str, float]:
    act = activation_factory(name)()
    xg = x.detach().requires_grad_()
    grad = torch.ones_like(x)
    env = {"act": act, "x": x, "xg": xg, "grad": grad}
    with torch.no_grad():
        forward = time_ms("act(x)", env, min_run_time)
    both = time_ms("act(xg).backward(grad)", env, min_run_time)
    return {"forward_ms": forward, "fwd_bwd_ms": both, "saved_mb": saved_bytes(act, x) / 2**20}


def run(names: tuple[str, ...], numel: int, device: torch.device, min_run_time: float) -> dict[str, dict]:
    x = torch.randn(numel, device=device)
    return {name: measure(name, x, min_run_time) for name in names}


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
    parser = argparse.ArgumentParser(prog="nnlab bench", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["activations"])
    parser.add_argument("--numel", type=int, default=1_000_000, help="elements in the input tensor")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds of timing per measurement")
    parser.add_argument("--only", nargs="*", default=list(DEFAULT), help="activations to measure")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    results = run(tuple(args.only), args.numel, device, args.min_time)
    console = make_console()
    console.print(table(results, args.numel, device))
    if "swish" in results and "swish_efficient" in results:
        a, b = results["swish"]["saved_mb"], results["swish_efficient"]["saved_mb"]
        console.print(f"memory-efficient Swish keeps {b:.1f} MB for backward vs {a:.1f} MB for the plain module "
                      f"({a / max(b, 1e-9):.1f}x less)")
    return 0
