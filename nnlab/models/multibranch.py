"""3.3 multi-branch networks: Inception-style blocks that look at the same input at several scales at once."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nnlab.models.blocks import ActFactory, classifier_head
from nnlab.registry import ConfigError

BRANCHES = ("1x1", "3x3", "5x5", "dilated", "pool")


def conv_unit(c_in: int, c_out: int, kernel: int, act: ActFactory, *, batchnorm: bool,
              dilation: int = 1) -> list[nn.Module]:
    """conv (same padding) -> [BN] -> act; no conv bias under BN (BN's shift replaces it)."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, padding=dilation * (kernel // 2), dilation=dilation,
                                         bias=not batchnorm)]
    return layers + ([nn.BatchNorm2d(c_out)] if batchnorm else []) + [act()]


def branch(kind: str, c_in: int, c_out: int, act: ActFactory, batchnorm: bool) -> nn.Sequential:
    """One path: a 1x1 conv alone, a 1x1 reduction then a 3x3 / 5x5 / dilated 3x3 (5x5 field, 3x3 weights),
    or 3x3 max pooling then a 1x1 projection. Every path keeps H and W."""
    if kind == "1x1":
        return nn.Sequential(*conv_unit(c_in, c_out, 1, act, batchnorm=batchnorm))
    if kind == "pool":
        return nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), *conv_unit(c_in, c_out, 1, act, batchnorm=batchnorm))
    kernel, dilation = {"3x3": (3, 1), "5x5": (5, 1), "dilated": (3, 2)}[kind]
    return nn.Sequential(*conv_unit(c_in, c_out, 1, act, batchnorm=batchnorm),
                         *conv_unit(c_out, c_out, kernel, act, batchnorm=batchnorm, dilation=dilation))


class MultiBranchBlock(nn.Module):
    """The paths run in parallel on the same input; their outputs are concatenated on the channel axis."""

    def __init__(self, c_in: int, c_out: int, branches: list[str], act: ActFactory, *, batchnorm: bool) -> None:
        super().__init__()
        each = c_out // len(branches)
        self.paths = nn.ModuleList(branch(kind, c_in, each, act, batchnorm) for kind in branches)

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, H, W) -> (B, C_out, H, W)
        return torch.cat([path(x) for path in self.paths], dim=1)


class MultiBranchCNN(nn.Module):
    """Stages of one multi-branch block then 2x2 max pooling (`channels` = each block's concatenated width),
    then the CNN's dense head."""

    def __init__(self, input_shape: tuple[int, ...], out_units: int, act: ActFactory, *, channels: list[int],
                 branches: list[str], head: int = 128, dropout: float = 0.0, batchnorm: bool = True) -> None:
        super().__init__()
        unknown = [b for b in branches if b not in BRANCHES]
        if unknown or not branches:
            raise ConfigError(f"model.branches={branches!r}: each path must be one of {', '.join(BRANCHES)}")
        uneven = [c for c in channels if c % len(branches)]
        if uneven:
            raise ConfigError(f"model.channels={channels!r}: each block's width is split evenly between its "
                              f"{len(branches)} paths, so it must be a multiple of {len(branches)} ({uneven} are not)")
        c_in, h, w = input_shape
        stages: list[nn.Module] = []
        for c_out in channels:
            stages += [MultiBranchBlock(c_in, c_out, branches, act, batchnorm=batchnorm), nn.MaxPool2d(2)]
            c_in, h, w = c_out, h // 2, w // 2
        self.features = nn.Sequential(*stages)
        self.head = classifier_head(c_in * h * w, head, out_units, act, dropout)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, out_units)
        return self.head(self.features(x))
