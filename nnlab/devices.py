"""Device choice and mixed precision (autocast + GradScaler) as one small policy object."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nnlab.registry import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit choice must be available."""
    if name not in DEVICES:
        raise ConfigError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)}")
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise ConfigError(f"device={name} was asked for but PyTorch sees no {name} device here; "
                          f"use device=auto or device=cpu")
    return torch.device(name)


def cpu_has_bf16() -> bool:
    """Native bf16 arithmetic (AVX512-BF16 or AMX); without it CPU autocast emulates bf16 slowly."""
    if sys.platform != "linux":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@dataclass
class Precision:
    """What `amp=true` means on this device: dtype for autocast, and whether a GradScaler is needed."""

    device: torch.device
    dtype: torch.dtype | None  # None: full fp32
    scaler: torch.amp.GradScaler = field(init=False)
    note: str = ""

    def __post_init__(self) -> None:
        fp16 = self.dtype == torch.float16
        self.scaler = torch.amp.GradScaler(self.device.type if fp16 else "cpu", enabled=fp16)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    @property
    def label(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast + GradScaler"}[
            self.dtype]


def build_precision(amp: bool, device: torch.device) -> Precision:
    if not amp:
        return Precision(device, None)
    if device.type == "cuda":
        # fp16 + GradScaler is the classic recipe; bf16 needs no scaler where the GPU has it.
        return Precision(device, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    if device.type == "cpu":
        if cpu_has_bf16():
            return Precision(device, torch.bfloat16)
        return Precision(device, None, note="amp=true: this CPU has no native bf16 (AVX512-BF16/AMX), "
                                            "so autocast would be slower than fp32; training in fp32")
    return Precision(device, torch.float16)
