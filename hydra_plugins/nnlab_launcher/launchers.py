"""hydra-submitit-launcher's launchers (hydra/launcher=slurm, slurm_ddp and local), with what a sweep on a real
cluster needs:

- the request is checked against `sinfo` before anything is queued (GPUs on a CPU partition, an unknown
  partition, more CPUs or memory than a node has): one paragraph, exit 2, nothing submitted;
- sbatch's own refusal becomes the same kind of paragraph, not submitit's traceback;
- a job with several tasks trains one DDP run (trainer.strategy=ddp) unless told otherwise;
- a job that ends without a result (killed, cancelled before it could save) is recorded in its folder and the
  sweep goes on to its summary table instead of ending in submitit's UncompletedJobError (local too).

Requeue on preemption and at the time limit is submitit's own: the launcher is its checkpointable callable
(BaseSubmititLauncher.checkpoint), and nnlab's job resumes from its folder's checkpoints/last.pt.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides, run_job, setup_globals
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher, LocalLauncher, SlurmLauncher
from omegaconf import OmegaConf, open_dict

from nnlab.registry import ConfigAbort

log = logging.getLogger(__name__)
STRATEGY_KEYS = ("trainer.strategy=", "+trainer.strategy=", "++trainer.strategy=")


class _Launcher(BaseSubmititLauncher):
    """What nnlab adds to both submitit launchers: ddp for several tasks, every job's result collected."""

    cluster = ""  # submitit's executor: "local" or "slurm"

    def _tasks(self) -> int:
        return int(self.params.get("nodes") or 1) * int(self.params.get("tasks_per_node") or 1)

    def __call__(self, sweep_overrides: list[str], job_dir_key: str, job_num: int, job_id: str,
                 singleton_state: dict[type, Singleton]) -> JobReturn:
        """One job on the cluster (BaseSubmititLauncher.__call__), with trainer.strategy=ddp for several tasks."""
        import submitit

        Singleton.set_state(singleton_state)
        setup_globals()
        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, sweep_overrides)
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = submitit.JobEnvironment().job_id
            sweep_config.hydra.job.num = job_num
            told = any(o.startswith(STRATEGY_KEYS) for o in sweep_config.hydra.overrides.task)
            if self._tasks() > 1 and not told:
                sweep_config.trainer.strategy = "ddp"
        return run_job(hydra_context=self.hydra_context, task_function=self.task_function, config=sweep_config,
                       job_dir_key=job_dir_key, job_subdir_key="hydra.sweep.subdir")

    def launch(self, job_overrides: list[list[str]], initial_job_idx: int) -> list[JobReturn]:
        problems = self._strategy_problems(job_overrides)
        if problems:
            raise refusal(problems, "launcher's request")
        jobs = self._submit(job_overrides, initial_job_idx)
        return self._results(jobs, job_overrides, initial_job_idx)

    def _results(self, jobs: list[Any], job_overrides: list[list[str]], initial_job_idx: int) -> list[JobReturn]:
        return [self._result(job, list(o), initial_job_idx + i) for i, (job, o) in enumerate(zip(jobs, job_overrides))]

    def _strategy_problems(self, job_overrides: list[list[str]]) -> list[str]:
        task = list(self.config.hydra.overrides.task) if self.config is not None else []
        given = [o for o in task + [o for job in job_overrides for o in job] if o.startswith(STRATEGY_KEYS)]
        single = [o for o in given if o.split("=", 1)[1] == "single"]
        if self._tasks() > 1 and single:
            return [f"{single[0].lstrip('+')}: hydra.launcher asks for {self._tasks()} tasks per job, which would "
                    f"train {self._tasks()} copies into one folder; drop the override (the launcher trains one "
                    f"DDP run over the tasks) or use hydra.launcher.tasks_per_node=1"]
        return []

    def _submit(self, job_overrides: list[list[str]], initial_job_idx: int) -> list[Any]:
        """BaseSubmititLauncher.launch up to the submission: the executor, its parameters, one array job."""
        import submitit

        params = dict(self.params)
        init = {f"{self.cluster}_{k}": params.pop(k) for k in ("max_num_timeout",) if k in params}
        executor = submitit.AutoExecutor(cluster=self.cluster, folder=params.pop("submitit_folder"), **init)
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base else f"{self.cluster}_{k}": v for k, v in params.items()})
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info(f"Submitit '{self.cluster}' sweep output dir : {sweep_dir}")
        job_params = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
        return executor.map_array(self, *zip(*job_params))

    def _result(self, job: Any, overrides: list[str], num: int) -> JobReturn:
        """The job's JobReturn; for a job that ended without one, a note in its folder and an empty result."""
        from submitit.core.utils import UncompletedJobError

        try:
            return job.results()[0]
        except UncompletedJobError:
            state = job.state
        folder = _job_folder(Path(str(self.config.hydra.sweep.dir)), num)
        cancelled = state.startswith("CANCELLED")
        what = "SLURM job" if self.cluster == "slurm" else "job"
        note = (f"{what} {job.job_id} was {state.lower()} before it could save a result"
                if cancelled else f"{what} {job.job_id} ended without a result (state {state})")
        if folder is not None and (folder / "checkpoints" / "last.pt").is_file():
            note += "; checkpoints/last.pt holds its last finished epoch"
        note += f"; its log: {job.paths.stderr}"
        log.error(f"#{num}: {note}")
        if folder is not None and not (folder / "metrics.json").is_file():
            (folder / ("interrupted.txt" if cancelled else "error.txt")).write_text(
                note if cancelled else f"job failed: {note}\n")
        ret = JobReturn(overrides=overrides, status=JobStatus.COMPLETED)
        ret.return_value = None
        return ret


class NnlabLocalLauncher(_Launcher, LocalLauncher):
    """hydra/launcher=local: each job its own process through submitit, on this machine."""

    cluster = "local"


class NnlabSlurmLauncher(_Launcher, SlurmLauncher):
    """hydra/launcher=slurm and slurm_ddp: the request checked against the cluster before anything is queued."""

    cluster = "slurm"

    def launch(self, job_overrides: list[list[str]], initial_job_idx: int) -> list[JobReturn]:
        from submitit.core.utils import FailedJobError

        from nnlab.cluster import request_problems

        problems = request_problems(self.params) + self._strategy_problems(job_overrides)
        if problems:
            raise refusal(problems)
        try:
            jobs = self._submit(job_overrides, initial_job_idx)
        except FailedJobError as e:
            sbatch = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
            raise refusal([f"sbatch refused the jobs ({sbatch}); check hydra.launcher.partition, gpus_per_node, "
                           f"cpus_per_task, mem_gb and additional_parameters"]) from None
        return self._results(jobs, job_overrides, initial_job_idx)


def _job_folder(sweep_dir: Path, num: int) -> Path | None:
    """The run folder of job number `num` (from each job's .hydra/hydra.yaml)."""
    for marker in sweep_dir.glob("*/.hydra/hydra.yaml"):
        if OmegaConf.load(marker).hydra.job.get("num") == num:
            return marker.parent.parent
    return None


def refusal(problems: list[str], what: str = "SLURM request") -> ConfigAbort:
    """A sweep the cluster cannot run: `nnlab train` prints this as one paragraph and exits 2, nothing submitted."""
    return ConfigAbort(f"{len(problems)} problem{'s' * (len(problems) > 1)} with the {what}; nothing was "
                       "submitted:\n  - " + "\n  - ".join(problems))
