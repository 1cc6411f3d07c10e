"""`nnlab <command>`: one module per command in this package; argv, exit codes and tables live only here.

No torch import on the fast paths (`--help`, `list`, `validate`, `compare`).
"""

from __future__ import annotations

import importlib
import os
import sys

USAGE = """usage: nnlab <command> [args]

commands:
  train [overrides]     train one run, or a sweep with -m (Hydra: --help, --cfg job, --info, -sc)
  validate [overrides]  check a configuration without loading data or torch
  list [group]          the choices of every config group (or of one); --config-dir DIR adds yours
  doctor [overrides]    the chapter's debugging protocol on the configured pipeline
  bench activations     time and memory of every activation, ratios against ReLU
  compare PATH...       the runs under PATH side by side, seeds pooled with 95% CIs
                        (--metric, --by KEY --baseline VALUE, --csv, --plot)
  board [PATH]          TensorBoard on the newest sweep or run (or PATH), on 127.0.0.1
  resume SWEEP          finish an interrupted sweep in its folder (--rerun-failed: failed jobs too)

examples:
  nnlab train model=mlp activation=mish init=kaiming_normal optimizer=adamw
  nnlab train -m activation=relu,mish init=kaiming_normal,xavier_uniform data=xor
  nnlab train -m data=xor activation=relu,tanh seeds=3
  nnlab list activation
"""

COMMANDS = ("train", "resume", "validate", "list", "doctor", "compare", "board", "bench")
HANDLERS = {  # command -> (module, function(argv) -> exit code); imported only when the command runs
    "resume": ("nnlab.cli.resume", "main"), "list": ("nnlab.cli.listing", "list_command"),
    "compare": ("nnlab.cli.compare", "main"), "board": ("nnlab.cli.board", "main"),
    "bench": ("nnlab.cli.bench", "main"), "doctor": ("nnlab.cli.doctor", "doctor_command"),
    "validate": ("nnlab.cli.validate", "validate_command"),
}


def main(argv: list[str] | None = None) -> None:
    """`nnlab ...`; with `argv` given (from Python), the same without the process-level fast exit."""
    from nnlab import _speedups

    args = sys.argv[1:] if argv is None else list(argv)
    try:
        with _speedups.process(args, whole_process=argv is None):
            _dispatch(args)
    except KeyboardInterrupt:  # Ctrl-C while a command starts (imports) or outside a training loop
        print("interrupted: stopped by Ctrl-C before any work began; nothing was written", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # `nnlab ... | head`: the reader has gone; say nothing more (Python's recipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


def _dispatch(args: list[str]) -> None:
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return
    command, rest = args[0], args[1:]
    if command in ("-sc", "--shell-completion") or command.startswith("--shell-completion="):
        if _complete_command():
            return
        from nnlab.cli import train

        train.main(args)  # the installed completion script calls `nnlab -sc query=bash`
    elif command == "train":
        from nnlab.cli import train

        train.main(rest)
    elif command in HANDLERS:
        from nnlab.cli.failures import ctrl_c_held

        module, function = HANDLERS[command]
        with ctrl_c_held():  # some commands import torch at the top (bench)
            handler = getattr(importlib.import_module(module), function)
        sys.exit(handler(rest))
    else:
        import difflib

        close = difflib.get_close_matches(command, COMMANDS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        print(f"nnlab: unknown command {command!r}; choose one of: {', '.join(COMMANDS)}{hint}\n", file=sys.stderr)
        print(USAGE, end="", file=sys.stderr)
        sys.exit(2)


def _complete_command() -> bool:
    """Shell completion of the command word itself (`nnlab tr<TAB>` -> train), or of a command other than
    train (which has no Hydra overrides to offer); False when Hydra should complete `nnlab train ...`."""
    import os

    line = os.environ.get("COMP_LINE")
    if line is None:
        return False
    words = line.split()
    if line.endswith(" "):
        words.append("")
    if len(words) <= 2:  # `nnlab <partial command>`
        print(" ".join(c for c in COMMANDS if c.startswith(words[1] if len(words) > 1 else "")))
        return True
    if words[1] == "list" and len(words) == 3:
        from nnlab.cli.listing import groups

        print(" ".join(g for g in groups() if g.startswith(words[2])))
        return True
    if words[1] != "train":
        print("")
        return True
    return False
