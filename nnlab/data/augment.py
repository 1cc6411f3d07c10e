"""Batch-wise augmentation on tensors: one affine warp per sample, no per-sample PIL work."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def random_affine(x: Tensor, generator: torch.Generator, *, degrees: float = 10.0,
                  translate: float = 0.08, hflip: bool = False) -> Tensor:
    """Rotate by up to ±`degrees`, shift by up to ±`translate` of the size, optionally flip; x is (B, C, H, W)."""
    b = x.shape[0]
    u = torch.rand(b, 4, generator=generator, device=generator.device).to(x.device) * 2 - 1
    angle = u[:, 0] * math.radians(degrees)
    cos, sin = torch.cos(angle), torch.sin(angle)
    flip = torch.where(u[:, 3] > 0, -1.0, 1.0) if hflip else torch.ones_like(cos)
    theta = torch.stack([
        torch.stack([cos * flip, -sin, u[:, 1] * translate * 2], dim=1),
        torch.stack([sin * flip, cos, u[:, 2] * translate * 2], dim=1),
    ], dim=1).to(x.dtype)  # (B, 2, 3), translation in [-1, 1] grid units
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
