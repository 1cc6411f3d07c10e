"""What a SLURM cluster offers, asked before a sweep is submitted: its partitions, their CPUs, memory and GPUs.

`request_problems(params)` checks a submitit SLURM launcher's settings (hydra.launcher.*) against `sinfo`, so a
request the cluster can never satisfy (GPUs on a CPU partition, an unknown partition, more CPUs or memory than
a node has) is refused before anything is queued. No torch import.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Partition:
    name: str
    default: bool
    cpus: int  # per node (the largest node of the partition)
    mem_mb: int  # per node
    gpus: int  # per node


class ClusterUnreachable(Exception):
    """No SLURM commands here, or sinfo could not reach the controller: the message says which."""


def _gpus(gres: str) -> int:
    """GPUs in a GRES string: 'gpu:4', 'gpu:a100:4(S:0-1)', 'gpu:2,shard:8'; '(null)' has none."""
    return sum(int(n) for n in re.findall(r"\bgpu(?::[^:,(]+)?:(\d+)", gres))


def _int(text: str) -> int:
    match = re.match(r"\d+", text)
    return int(match.group()) if match else 0


def partitions() -> dict[str, Partition]:
    """Every partition sinfo lists, with the resources of its largest node."""
    if shutil.which("sinfo") is None:
        raise ClusterUnreachable("the SLURM commands (sinfo, sbatch) are not on PATH: run the sweep on the "
                                 "cluster's login node, or try it on this machine with hydra/launcher=local")
    out = subprocess.run(["sinfo", "-h", "-o", "%P|%c|%m|%G"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise ClusterUnreachable(f"sinfo failed: {out.stderr.strip() or out.stdout.strip()}")
    found: dict[str, Partition] = {}
    for line in out.stdout.splitlines():
        name, cpus, mem, gres = line.split("|")
        default, name = name.endswith("*"), name.rstrip("*")
        seen = found.get(name)
        part = Partition(name, default, _int(cpus), _int(mem), _gpus(gres))
        if seen:  # several node kinds in one partition: the largest of each
            part = Partition(name, default or seen.default, max(part.cpus, seen.cpus),
                             max(part.mem_mb, seen.mem_mb), max(part.gpus, seen.gpus))
        found[name] = part
    return found


def _described(parts: dict[str, Partition]) -> str:
    return ", ".join(f"{p.name} ({p.cpus} CPUs, {p.mem_mb // 1024} GB, {p.gpus} GPUs per node"
                     f"{', the default' if p.default else ''})" for p in parts.values())


def request_problems(params: dict[str, Any]) -> list[str]:
    """Every way the launcher's request cannot run on this cluster, as 'hydra.launcher.key=value: why' lines."""
    try:
        parts = partitions()
    except ClusterUnreachable as e:
        return [f"hydra/launcher=slurm: {e}"]
    name = params.get("partition")
    if name is None:
        defaults = [p for p in parts.values() if p.default]
        if not defaults:
            return [f"hydra.launcher.partition=null: the cluster has no default partition; set it to one of: "
                    f"{_described(parts)}"]
        part = defaults[0]
    elif name not in parts:
        return [f"hydra.launcher.partition={name}: no such partition; choose one of: {_described(parts)}"]
    else:
        part = parts[name]
    problems = []
    tasks = int(params.get("tasks_per_node") or 1)
    gpus = max(int(params.get("gpus_per_node") or 0), tasks * int(params.get("gpus_per_task") or 0),
               _gpus(str(params.get("gres") or "")))
    if gpus and not part.gpus:
        gpu_parts = {k: p for k, p in parts.items() if p.gpus}
        problems.append(f"hydra.launcher.gpus_per_node={gpus}: partition {part.name} has no GPUs; set "
                        f"hydra.launcher.gpus_per_node=null for a CPU job"
                        + (f", or choose a GPU partition: {_described(gpu_parts)}" if gpu_parts else ""))
    elif gpus > part.gpus:
        problems.append(f"hydra.launcher.gpus_per_node={gpus}: the nodes of partition {part.name} have at most "
                        f"{part.gpus} GPUs")
    cpus = tasks * int(params.get("cpus_per_task") or 1)
    if cpus > part.cpus:
        problems.append(f"hydra.launcher.cpus_per_task={params.get('cpus_per_task')} x tasks_per_node={tasks}: "
                        f"the nodes of partition {part.name} have {part.cpus} CPUs")
    mem_gb = params.get("mem_gb")
    if mem_gb and mem_gb * 1024 > part.mem_mb:
        problems.append(f"hydra.launcher.mem_gb={mem_gb}: the nodes of partition {part.name} have "
                        f"{part.mem_mb // 1024} GB ({part.mem_mb} MB) for jobs")
    return problems
