"""nnlab's SLURM launcher (hydra/launcher=slurm and slurm_ddp), where Hydra's plugin discovery looks for it."""
