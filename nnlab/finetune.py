"""3.4 pretrained weights, new head: start a run from another run's weights (`init.from_run`), keep what
fits, re-initialize what does not, and optionally train only the head (`init.freeze=body`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from nnlab.checkpoint import load_checkpoint
from nnlab.registry import ConfigError


@dataclass
class Transfer:
    source: Path
    loaded: list[str] = field(default_factory=list)
    reinitialized: list[str] = field(default_factory=list)  # in the model, absent or another shape in the source
    unused: list[str] = field(default_factory=list)  # in the source, not in the model


def checkpoint_of(where: str | Path) -> Path:
    """A checkpoint file as given, or a run folder's checkpoints/best.pt (else last.pt)."""
    path = Path(where).expanduser()
    if path.is_file():
        return path
    for name in ("best.pt", "last.pt"):
        if (path / "checkpoints" / name).is_file():
            return path / "checkpoints" / name
    what = "folder has no checkpoints/best.pt or checkpoints/last.pt" if path.is_dir() else "path does not exist"
    raise ConfigError(f"init.from_run={str(where)!r}: this {what}; give a run folder (e.g. outputs/runs/<date>/"
                      "<time>) whose training saved checkpoints, or a .pt checkpoint file")


def load_matching(model: nn.Module, where: str | Path, *, new_head: bool = False) -> Transfer:
    """Copy every parameter and buffer whose name and shape match from the checkpoint at `where` into `model`
    (except the output layer with `new_head`: the chapter's 'pretrained weights, new head'); the others keep
    the fresh initialization. ConfigError when nothing matches."""
    path = checkpoint_of(where)
    state = load_checkpoint(path)
    weights = state.get("model", state) if isinstance(state, dict) else None
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise ConfigError(f"init.from_run: {path} holds no model weights (neither an nnlab checkpoint nor a "
                          "state dict)")
    t = Transfer(path)
    own = model.state_dict()
    head = set(head_parameters(model)) if new_head else set()
    for name, value in own.items():
        src = weights.get(name)
        if src is not None and src.shape == value.shape and name not in head:
            t.loaded.append(name)
        else:
            t.reinitialized.append(name)
    t.unused = [name for name in weights if name not in own]
    if not t.loaded:
        theirs, ours = ", ".join(list(weights)[:4]), ", ".join(list(own)[:4])
        raise ConfigError(f"init.from_run: nothing in {path} matches this model: its {len(weights)} tensors "
                          f"({theirs}, ...) and the model's {len(own)} ({ours}, ...) share no name with the same "
                          "shape; was it trained with another model= or other model sizes?")
    model.load_state_dict({n: weights[n] for n in t.loaded}, strict=False)
    return t


def head_parameters(model: nn.Module) -> list[str]:
    """The output layer's parameter names: every exit head of a multi-exit model, else the last Linear layer."""
    if getattr(model, "multi_exit", False):
        return [n for n, _ in model.named_parameters() if n.startswith("exits.")]
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError("init.freeze=body: this model has no Linear output layer to keep training")
    return [f"{linears[-1]}.{n}" for n, _ in model.get_submodule(linears[-1]).named_parameters()]


def freeze_body(model: nn.Module, keep: list[str]) -> list[str]:
    """requires_grad=False on every parameter except the head and `keep`; returns the trainable names.
    (BatchNorm running statistics still follow the new data in train mode.)"""
    trainable = set(head_parameters(model)) | set(keep)
    for name, q in model.named_parameters():
        q.requires_grad_(name in trainable)
    return [n for n, _ in model.named_parameters() if n in trainable]
