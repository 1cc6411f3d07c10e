"""Cheap joblib workers: forked from a server that imported torch once, instead of fresh interpreters.

A loky worker normally starts as a new interpreter that imports torch (~2 s on 2 cores), torch._dynamo
(~1 s: every `optimizer.step()` imports it) and TensorBoard before its first job, and tears them down
again (~1 s) at the end while the main process waits. With loky's `forkserver` start method and those
modules preloaded, one server pays the imports, started early and alongside the main process's own
Hydra work; each worker is a fork of it and exits without teardown. NNLAB_SPEEDUPS=-forkserver turns it off.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import signal

PRELOAD = ["torch", "torch._dynamo", "torch.utils.tensorboard", "nnlab.runner", "nnlab.cli.train",
           "hydra_plugins.hydra_joblib_launcher._core"]
_started = False


def start() -> None:
    """Switch loky to the forkserver start method with nnlab's imports preloaded; start the server now."""
    global _started
    if _started or "forkserver" not in multiprocessing.get_all_start_methods():
        return
    from multiprocessing import forkserver

    from joblib.externals.loky.backend.context import set_start_method

    set_start_method("forkserver", force=True)
    multiprocessing.set_forkserver_preload(PRELOAD)
    forkserver.ensure_running()
    atexit.register(_stop_forkserver)
    _started = True


def _stop_forkserver() -> None:
    """At exit (joblib has stopped its workers by then): end the server at once. Left alone, it notices
    the main process is gone and tears its modules down, about a second during which it still holds the
    terminal's (or a caller's pipe's) stdout and stderr open."""
    from multiprocessing import forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    if pid:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
