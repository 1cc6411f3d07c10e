"""Data-parallel training on torch.distributed: process group, rank facts, and agreeing on one run folder."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nnlab.checkpoint import write_text_atomic
from nnlab.registry import ConfigError

if TYPE_CHECKING:  # torch is imported lazily: the run-folder resolver uses this module before any job
    import torch


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def slurm_tasks() -> int:
    """Tasks of this SLURM job step (submitit starts one process per task)."""
    return int(os.environ.get("SLURM_STEP_NUM_TASKS", os.environ.get("SLURM_NTASKS", "1")))


def launched_processes() -> int:
    """How many processes the launcher started for this one run (torchrun's WORLD_SIZE, or SLURM's tasks)."""
    return int(os.environ["WORLD_SIZE"]) if launched_by_torchrun() else slurm_tasks()


def env_rank() -> int:
    """This process's rank as the launcher tells it (torchrun, or SLURM for multi-task submitit jobs)."""
    if "RANK" in os.environ:
        return int(os.environ["RANK"])
    return int(os.environ.get("SLURM_PROCID", "0")) if slurm_tasks() > 1 else 0


def setup(strategy: str, device: torch.device) -> tuple[Ranks, torch.device]:
    """Join the process group for strategy=ddp (NCCL on CUDA, gloo on CPU); the device of this rank."""
    if strategy != "ddp" and launched_processes() > 1:
        by = "torchrun" if launched_by_torchrun() else "SLURM (hydra/launcher=slurm_ddp or tasks_per_node > 1)"
        raise ConfigError(f"trainer.strategy={strategy} but {by} started {launched_processes()} processes for "
                          f"this run: each would train its own copy into the same folder. Use "
                          f"trainer.strategy=ddp to train one run on all of them, or start one process "
                          f"(hydra/launcher=slurm, or plain nnlab train)")
    if strategy != "ddp":
        return Ranks(), device
    if not launched_by_torchrun() and slurm_tasks() > 1:  # hydra/launcher=slurm_ddp: one submitit task per GPU
        from submitit.helpers import TorchDistributedEnvironment

        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    if not launched_by_torchrun():
        raise ConfigError("trainer.strategy=ddp needs one process per device, started by torchrun "
                          "(torchrun --nproc_per_node=N -m nnlab train trainer.strategy=ddp ...) or by a multi-task "
                          "SLURM job (hydra/launcher=slurm_ddp)")
    import torch
    import torch.distributed as dist

    ranks = Ranks(env_rank(), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        dist.barrier()  # every rank has read the run folder's name by now
        if ranks.is_main:
            _note(Path("outputs")).unlink(missing_ok=True)
    return ranks, device


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum each value over all ranks (identity without a process group)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def any_rank(flag: bool, device: torch.device) -> bool:
    return all_sum([float(flag)], device)[0] > 0


def teardown() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _note(root: Path) -> Path:
    """Where rank 0 announces the run folder: keyed by this launch's rendezvous id (or port + agent pid)."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "none")
    key = run_id if run_id not in ("", "none") else f"{os.environ.get('MASTER_PORT', '0')}-{os.getppid()}"
    return root / ".ddp" / f"{key}.run_dir"


def shared_run_dir(claim: Callable[[], Path], root: Path, timeout_s: float = 120.0) -> Path:
    """Under torchrun, rank 0 claims the run folder and the other ranks read its name from a file.

    """
    note = _note(root)
    if env_rank() == 0:
        path = claim()
        write_text_atomic(note, str(path))
        return path
    deadline = time.monotonic() + timeout_s
    while not note.is_file():
        if time.monotonic() > deadline:
            raise ConfigError(f"rank {env_rank()}: rank 0 did not announce the run folder in {note}")
        time.sleep(0.05)
    return Path(note.read_text())
