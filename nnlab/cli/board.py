"""`nnlab board [PATH]`: TensorBoard on a sweep or run folder (default: the newest under outputs/).

It listens on 127.0.0.1 only and prints its URL first; Ctrl-C (or SIGTERM) stops it."""

from __future__ import annotations

import argparse
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

OUTPUTS = Path("outputs")


def newest(root: Path = OUTPUTS) -> Path | None:
    """The most recently started sweep (outputs/multirun/<date>/<time>) or single run (outputs/<date>/<time>)."""
    sweeps = [p for p in root.glob("multirun/*/*") if p.is_dir()]
    runs = [p for p in root.glob("*/*") if p.is_dir() and p.parent.name != "multirun" and (p / ".hydra").is_dir()]
    found = sweeps + runs
    return max(found, key=lambda p: (p.stat().st_mtime, str(p))) if found else None


def free_port(preferred: int) -> int:
    """`preferred` if it is free on 127.0.0.1, else one the system picks."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free port on 127.0.0.1")


def tensorboard_command(logdir: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
            "--port", str(port), "--reload_interval", "5"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nnlab board", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("path", nargs="?", type=Path, help="a sweep or run folder (default: the newest under "
                        "outputs/)")
    parser.add_argument("--port", type=int, default=6006, help="port on 127.0.0.1 (default 6006, or a free one)")
    args = parser.parse_args(argv)
    path = args.path or newest()
    if path is None:
        print(f"nnlab board: no sweep or run under {OUTPUTS.resolve()}; train first (nnlab train data=xor), "
              "or give a folder: nnlab board PATH", file=sys.stderr)
        return 2
    if not path.is_dir():
        print(f"nnlab board: no such folder: {path}", file=sys.stderr)
        return 2
    if not 0 <= args.port < 65536:
        print(f"nnlab board: --port {args.port}: a port number 0-65535", file=sys.stderr)
        return 2
    port = free_port(args.port)
    url = f"http://127.0.0.1:{port}/"
    print(f"TensorBoard on {shlex.quote(str(path))}: {url}  (HPARAMS tab: {url}#hparams; Ctrl-C stops it)",
          flush=True)
    proc = subprocess.Popen(tensorboard_command(path, port))

    def forward(signum: int, _frame: object) -> None:  # `kill <board>` or a closed terminal stops TensorBoard too
        proc.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        proc.wait()
        return 0
