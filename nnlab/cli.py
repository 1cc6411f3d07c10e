"""`nnlab <command>`: dispatches to the Hydra app or to a tool. No torch import on the fast paths."""

from __future__ import annotations

import os
import sys

USAGE = """usage: nnlab <command> [args]

commands:
  train [overrides]     train one run, or a sweep with -m (Hydra: --help, --cfg job, --info, -sc)
  validate [overrides]  check a configuration without loading data or torch
  list [group]          the choices of every config group (or of one)
  doctor [overrides]    the chapter's debugging protocol on the configured pipeline
  bench activations     time and memory of every activation, ratios against ReLU
  compare PATH...       the runs under PATH side by side (--metric, --by, --csv, --plot)

examples:
  nnlab train model=mlp activation=mish init=kaiming_normal optimizer=adamw
  nnlab train -m activation=relu,mish init=kaiming_normal,xavier_uniform data=xor
  nnlab list activation
"""


COMMANDS = ("train", "validate", "list", "doctor", "compare", "bench")


def _name_jobs_by_swept_keys(args: list[str]) -> list[str]:
    """In a sweep, exclude the constant overrides from job folder names (Hydra's override_dirname).

    `-m activation=relu,mish data=xor` then names its jobs `activation=relu` and `activation=mish`.
    """
    if not {"-m", "--multirun"} & set(args):
        return args
    import yaml
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from nnlab.paths import config_dir

    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    if any(a.startswith("hydra.job.config.override_dirname.exclude_keys=") for a in overrides):
        return args
    parsed = OverridesParser.create().parse_overrides(overrides)
    constant = [o.get_key_element().lstrip("+~") for o in parsed if not o.is_sweep_override()]
    train = yaml.safe_load((config_dir() / "train.yaml").read_text())
    base = train["hydra"]["job"]["config"]["override_dirname"]["exclude_keys"]
    keys = ",".join(dict.fromkeys([*base, *constant]))
    at = args.index(overrides[0]) if overrides else len(args)  # beside the others: argparse wants them together
    return [*args[:at], f"hydra.job.config.override_dirname.exclude_keys=[{keys}]", *args[at:]]


def _sweep_if_experiment_sweeps(args: list[str]) -> list[str]:
    """`experiment=X` whose preset defines a sweep (hydra.sweeper.params) runs as a multirun without -m."""
    if {"-m", "--multirun"} & set(args):
        return args
    import yaml

    from nnlab.paths import config_dir

    for a in args:
        if a.startswith("experiment="):
            path = config_dir() / "experiment" / f"{a.split('=', 1)[1]}.yaml"
            preset = yaml.safe_load(path.read_text()) if path.is_file() else {}
            if (preset or {}).get("hydra", {}).get("sweeper", {}).get("params"):
                return ["-m", *args]
    return args


def _hydra_train(args: list[str]) -> None:
    """Hand `args` to the Hydra app, with `train` removed from argv (and from COMP_LINE for completion)."""
    line = os.environ.get("COMP_LINE")
    if line is not None:
        words = line.split(" ")
        if len(words) > 1 and words[1] == "train":
            os.environ["COMP_LINE"] = " ".join([words[0], *words[2:]])
            if "COMP_POINT" in os.environ:
                os.environ["COMP_POINT"] = str(max(0, int(os.environ["COMP_POINT"]) - len(" train")))
    if line is not None or any(a in ("-h", "--help", "--hydra-help") or a.startswith(("-sc", "--shell-completion"))
                               for a in args):
        from nnlab.group_listing import share_one_repository

        share_one_repository()  # help and completion list every group's options, each from a fresh repository
    if {"-m", "--multirun"} & set(args) and "hydra/launcher=joblib" in args:
        from nnlab.joblib_workers import start_forkserver

        start_forkserver()  # its imports overlap Hydra's start-up here
    sys.argv = [sys.argv[0], *_name_jobs_by_swept_keys(_sweep_if_experiment_sweeps(args))]
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)  # optuna's storage layer announces every plugin
    from nnlab.app import train
    from nnlab.callbacks import FAILED

    train()
    if FAILED:  # a sweep whose other jobs finished still reports failure
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    """`nnlab ...`; with `argv` given (from Python), the same without the process-level fast exit."""
    if argv is not None:
        return _run(list(argv))
    from nnlab import fastexit

    fastexit.install()
    try:
        _run(sys.argv[1:])
    except BaseException as e:
        fastexit.record(e)
        raise


def _run(args: list[str]) -> None:
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return
    command, rest = args[0], args[1:]
    if command in ("-sc", "--shell-completion") or command.startswith("--shell-completion="):
        _hydra_train(args)  # the installed completion script calls `nnlab -sc query=bash`
    elif command == "train":
        _hydra_train(rest)
    elif command == "list":
        from nnlab.listing import print_choices

        sys.exit(print_choices(rest[0] if rest else None))
    elif command == "compare":
        from nnlab.compare import main as compare_main

        sys.exit(compare_main(rest))
    elif command == "bench":
        from nnlab.bench import main as bench_main

        sys.exit(bench_main(rest))
    elif command == "doctor":
        from nnlab.doctor_cli import doctor_command

        sys.exit(doctor_command(rest))
    elif command == "validate":
        from nnlab.compose import validate_command

        sys.exit(validate_command(rest))
    else:
        print(f"nnlab: unknown command {command!r}; choose one of: {', '.join(COMMANDS)}\n", file=sys.stderr)
        print(USAGE, end="", file=sys.stderr)
        sys.exit(2)
