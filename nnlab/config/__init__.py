"""The configuration before any job runs: compose it as `nnlab train` would, validate it (torch-free), and
name its run and sweep folders (the OmegaConf resolvers train.yaml uses; resume=latest)."""
