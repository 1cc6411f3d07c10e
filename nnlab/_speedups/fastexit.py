"""Leave the `nnlab` process without CPython's module teardown once the command is done.

With torch and torch._dynamo loaded, the interpreter spends about a second (on 2 cores) tearing modules
down after the last atexit handler has run, and nothing of nnlab's is written then. `install()` registers
a handler before any other, so it runs last (atexit is last-in, first-out): after Hydra's, logging's,
multiprocessing's and joblib's own handlers; it flushes the standard streams and leaves with the
command's exit status. Only for the `nnlab` process itself, never when `main` is called from Python.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys

_status = 0


def install() -> bool:
    """Register the fast exit, unless some handler is already registered (it would be skipped)."""
    if getattr(atexit, "_ncallbacks", lambda: 1)():
        return False
    atexit.register(_leave)
    return True


def record(exc: BaseException) -> None:
    """The exit status Python gives the exception that ends the command."""
    global _status
    if isinstance(exc, SystemExit):
        code = exc.code
        _status = 0 if code is None else code if isinstance(code, int) else 1
    elif isinstance(exc, KeyboardInterrupt):
        _status = 128 + signal.SIGINT
    else:
        _status = 1


def _leave() -> None:
    if "logging" in sys.modules:
        import logging

        logging.shutdown()  # idempotent: already done by its own handler, which ran before this one
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe
            pass
    os._exit(_status & 0xFF)
