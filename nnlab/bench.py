"""The chapter's activation benchmark done right (`nnlab bench activations` prints it).

Warm-up, repeated timing (torch.utils.benchmark, which synchronizes CUDA itself), forward and
forward+backward, and the memory autograd keeps for backward: native vs custom vs memory-efficient Swish.
"""

from __future__ import annotations

import logging

import torch

from nnlab.activations import activation_factory

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
