"""`nnlab train`: the Hydra application. Imports no torch until a job actually runs."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from nnlab.paths import config_dir
from nnlab.resolvers import register

register()


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def train(cfg: DictConfig) -> float | None:
    from nnlab.job import run_job

    return run_job(cfg)
