"""One table of bad inputs and environment faults, every command, through the real CLI (the process boundary is
what is tested): each row exits with the documented code, names the problem, prints no traceback, and leaves
every file that existed before the call byte-identical (and no new run folder behind a refused run).

Exit codes: 0 ok, 1 run failed (OS errors, failed sweep jobs), 2 usage/configuration error, 3 diverged,
130 interrupted. The rows run side by side in threads (each its own folder); one test per row checks it.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from nnlab.data.idx import write_idx

pytestmark = pytest.mark.slow
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",  # a closed port: no download
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}
RUN = "outputs/run1"  # a finished 2-epoch XOR run with its checkpoint (made once, copied into every row's folder)
JOB = "outputs/multirun/s/activation=tanh,init=xavier_uniform"  # a sweep job's folder: '=' and ',' in its name
MNIST = "mnist/MNIST/raw"


@dataclass
class Row:
    id: str
    args: list[str]
    code: int
    says: list[str]
    setup: Callable[[Path], None] | None = None
    records: bool = False  # the failure is recorded in new run folders (sweep jobs' error.txt)
    absent: list[str] = field(default_factory=list)  # paths that must not exist afterwards
    env: dict[str, str] = field(default_factory=dict)
    sigint_after: float | None = None  # send SIGINT this many seconds after the start


# -- setups: each plants one fault in the row's own copy of the world --------------------------------------------
def _write(rel: str, data: bytes | str) -> Callable[[Path], None]:
    def setup(cwd: Path) -> None:
        path = cwd / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return setup


def _edit_checkpoint(edit: Callable[[dict], dict]) -> Callable[[Path], None]:
    def setup(cwd: Path) -> None:
        import torch

        path = cwd / RUN / "checkpoints" / "last.pt"
        state = torch.load(path, weights_only=True)
        torch.save(edit(state), path)
    return setup


def _wrong_shape(state: dict) -> dict:
    state["model"]["out.weight"] = state["model"]["out.weight"][:, :3].clone()
    return state


def _missing_key(state: dict) -> dict:
    del state["model"]["out.bias"]
    return state


def _pickle_payload(cwd: Path) -> None:
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {cwd / 'PWNED'}",))
    (cwd / RUN / "checkpoints" / "last.pt").write_bytes(pickle.dumps({"model": Payload()}))


def _copied_from_other_run(cwd: Path) -> None:
    other = cwd / "outputs" / "other"
    shutil.copytree(cwd / RUN, other)
    (other / ".run_id").write_text("0123456789abcdef\n")  # another run's folder, holding run1's last.pt


def _truncate(rel: str) -> Callable[[Path], None]:
    def setup(cwd: Path) -> None:
        data = (cwd / rel).read_bytes()
        (cwd / rel).write_bytes(data[: len(data) // 2])
    return setup


def _gz_labels(cwd: Path) -> None:  # the labels file as .gz instead of raw IDX
    raw = cwd / MNIST / "train-labels-idx1-ubyte"
    (raw.parent / (raw.name + ".gz")).write_bytes(gzip.compress(raw.read_bytes()))
    raw.unlink()


def _labels(values: np.ndarray) -> Callable[[Path], None]:
    def setup(cwd: Path) -> None:
        write_idx(cwd / MNIST / "train-labels-idx1-ubyte", values.astype(np.uint8))
    return setup


def _sweep_job(cwd: Path) -> None:
    shutil.copytree(cwd / RUN, cwd / JOB)


def _compare_world(cwd: Path) -> None:
    """Two readable runs (identical overrides) under cmp/."""
    for name, acc in (("a", 0.9), ("b", 0.8)):
        _write(f"cmp/{name}/.hydra/overrides.yaml", "- activation=relu\n- trainer.seed=0\n")(cwd)
        _write(f"cmp/{name}/metrics.json", json.dumps({"final/val_acc": acc, "final/test_acc": acc}))(cwd)


def _compare_with(rel: str, data: str) -> Callable[[Path], None]:
    """A third run, cmp/c, whose file `rel` is `data`."""
    def setup(cwd: Path) -> None:
        _compare_world(cwd)
        _write("cmp/c/.hydra/overrides.yaml", "- activation=tanh\n")(cwd)
        _write(f"cmp/{rel}", data)(cwd)
    return setup


def _outputs_is_a_file(cwd: Path) -> None:
    shutil.rmtree(cwd / "outputs")
    (cwd / "outputs").write_text("not a folder\n")


def _both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(cwd: Path) -> None:
        for s in setups:
            s(cwd)
    return setup


D = ["data=mnist", "data.root=mnist", "data.download=false", "trainer.epochs=1"]  # the small IDX files below
RESUME = f"resume={RUN}"
ROWS = [
    # nnlab train: overrides and values (validated before any data or torch)
    Row("train-unknown-key", ["train", "data=xor", "foo=1"], 2, ["foo: unknown key", "valid keys at the top level"]),
    Row("train-misspelt-key", ["train", "data=xor", "activaton=relu"], 2, ["did you mean activation?"]),
    Row("train-misspelt-group-value", ["train", "data=xor", "activation=relux"], 2,
        ["activation=relux: no such activation", "did you mean relu"]),
    Row("train-comma-list-without-m", ["train", "data=xor", "activation=relu,tanh"], 2, ["add -m"]),
    Row("train-append-unknown-key", ["train", "data=xor", "+foo=1"], 2, ["foo: unknown key"]),
    Row("train-append-misspelt-key", ["train", "data=xor", "+trainer.epoch=3"], 2, ["did you mean trainer.epochs?"]),
    Row("train-val-fraction-zero", ["train", *D, "data.val_fraction=0"], 2,
        ["data.val_fraction=0: must be a number > 0"]),
    Row("train-negative-lr", ["train", "data=xor", "optimizer.lr=-1"], 2, ["optimizer.lr=-1: must be a number > 0"]),
    Row("train-zero-epochs", ["train", "data=xor", "trainer.epochs=0"], 2, ["trainer.epochs=0"]),
    Row("train-batch-size-text", ["train", "data=xor", "trainer.batch_size=abc"], 2, ["trainer.batch_size='abc'"]),
    Row("train-negative-threads", ["train", "data=xor", "trainer.threads=-1"], 2, ["trainer.threads=-1"]),
    Row("train-cnn-on-xor", ["train", "data=xor", "model=cnn"], 2, ["convolutions need image data"]),
    Row("train-siamese-on-xor", ["train", "data=xor", "model=siamese"], 2, ["a siamese net compares pairs"]),
    Row("train-contrastive-without-pairs", ["train", "data=xor", "loss=contrastive"], 2, ["needs model=siamese"]),
    Row("train-clip-mode", ["train", "data=xor", "trainer.clip.mode=sometimes"], 2, ["trainer.clip.mode='sometimes'"]),
    Row("train-monitor", ["train", "data=xor", "regularizer.early_stopping.monitor=val/f1"], 2, ["val/f1"]),
    Row("train-onecycle-warmup", ["train", "data=xor", "scheduler=onecycle", "scheduler.warmup_epochs=1"], 2,
        ["warms up by itself"]),
    Row("train-unknown-experiment", ["train", "experiment=nope"], 2,
        ["experiment=nope: no such experiment", "init_depth"]),
    Row("train-unparsable-override", ["train", "data=xor", "activation=[relu"], 2, ["cannot read the override"]),
    Row("train-cuda-without-cuda", ["train", "data=xor", "device=cuda"], 2, ["no cuda device"]),
    Row("train-ddp-without-torchrun", ["train", "data=xor", "trainer.strategy=ddp"], 2, ["torchrun"]),
    # sweeps
    Row("sweep-unparsable-override", ["train", "-m", "data=xor", "activation=[relu,tanh"], 2,
        ["cannot read the override"]),
    Row("sweep-unknown-key", ["train", "-m", "data=xor", "foo=1,2"], 2, ["foo: unknown key"]),
    Row("sweep-misspelt-group-value", ["train", "-m", "data=xor", "activation=relu,relux"], 2, ["activation=relux"]),
    Row("sweep-every-job-invalid", ["train", "-m", "data=xor", "model=cnn", "trainer.seed=0,1"], 1,
        ["convolutions need image data"], records=True),
    Row("optuna-every-trial-fails", ["train", "-m", "hparams_search=optuna_lr", "data=xor", "model=cnn",
                                      "hydra.sweeper.n_trials=2"], 1, ["no trial of study optuna_lr completed"],
        records=True),
    # nnlab resume (a sweep) and nnlab board
    Row("resume-sweep-missing", ["resume", "no_such_sweep"], 2, ["no_such_sweep", "not a sweep folder"]),
    Row("resume-run-not-sweep", ["resume", "outputs"], 2, ["not a sweep folder", "multirun.yaml"]),
    Row("board-missing-path", ["board", "no_such_folder"], 2, ["no such folder", "no_such_folder"]),
    # resume
    Row("resume-missing-path", ["train", "resume=nowhere"], 2, ["resume=nowhere", "holds no checkpoints/last.pt"]),
    Row("resume-latest-without-runs", ["train", "resume=latest"], 2, ["no run with checkpoints/last.pt"],
        setup=lambda cwd: shutil.rmtree(cwd / "outputs")),
    Row("resume-folder-without-checkpoint", ["train", "resume=outputs"], 2, ["holds no checkpoints/last.pt"]),
    Row("resume-changes-model", ["train", RESUME, "model=residual"], 2, ["model (mlp -> residual)", "may change only"]),
    Row("resume-changes-seed", ["train", RESUME, "trainer.seed=5"], 2, ["trainer.seed (0 -> 5)"]),
    Row("resume-fewer-epochs", ["train", RESUME, "trainer.epochs=1"], 2, ["already trained 2 epochs"]),
    Row("resume-checkpoint-of-another-run", ["train", "resume=outputs/other"], 2, ["written by another run"],
        setup=_copied_from_other_run),
    Row("resume-garbage-checkpoint", ["train", RESUME], 2, ["corrupt or truncated"],
        setup=_write(f"{RUN}/checkpoints/last.pt", b"not a checkpoint at all")),
    Row("resume-truncated-checkpoint", ["train", RESUME], 2, ["corrupt or truncated"],
        setup=_truncate(f"{RUN}/checkpoints/last.pt")),
    Row("resume-checkpoint-wrong-structure", ["train", RESUME], 2, ["not a checkpoint nnlab can resume from"],
        setup=_edit_checkpoint(lambda s: {"weights": s["model"]})),
    Row("resume-checkpoint-missing-key", ["train", RESUME], 2, ["does not fit the model", "out.bias"],
        setup=_edit_checkpoint(_missing_key)),
    Row("resume-checkpoint-wrong-shape", ["train", RESUME], 2, ["does not fit the model", "out.weight"],
        setup=_edit_checkpoint(_wrong_shape)),
    Row("resume-pickle-payload", ["train", RESUME], 2, ["cannot be loaded"], setup=_pickle_payload),
    Row("resume-sweep-job-unquoted", ["train", f"resume={JOB}"], 2, ["cannot read the override", "quoted"],
        setup=_sweep_job),
    # never write over a run
    Row("run-dir-is-an-existing-run", ["train", "data=xor", f"hydra.run.dir={RUN}"], 2,
        ["already holds files", f"nnlab train resume={RUN}"]),
    Row("run-dir-is-an-existing-sweep-job", ["train", "data=xor", f"hydra.run.dir=\"{JOB}\""], 2,
        ["already holds files", "'resume=\""], setup=_sweep_job),
    Row("sweep-dir-is-an-existing-sweep", ["train", "-m", "data=xor", "hydra.sweep.dir=outputs",
                                            "activation=relu,tanh"], 2, ["already holds files"]),
    # data files
    Row("data-missing-no-download", ["train", *D, "data.root=empty"], 2, ["split not found", "data.root"]),
    Row("data-download-fails", ["train", "data=mnist", "data.root=fresh", "trainer.epochs=1"], 2,
        ["The download failed"], env=OFFLINE, absent=["fresh"]),
    Row("data-corrupt-gz", ["train", *D], 2, ["corrupt or truncated"],
        setup=_both(_gz_labels, _write(f"{MNIST}/train-labels-idx1-ubyte.gz", b"\x1f\x8b\x08\x00garbage"))),
    Row("data-truncated-gz", ["train", *D], 2, ["corrupt or truncated"], setup=_both(
        _gz_labels, _truncate(f"{MNIST}/train-labels-idx1-ubyte.gz"))),
    Row("data-bad-magic", ["train", *D], 2, ["bad magic number"],
        setup=_write(f"{MNIST}/train-images-idx3-ubyte", b"\x01\x02\x03\x04junk")),
    Row("data-truncated-idx", ["train", *D], 2, ["truncated or corrupt"],
        setup=_truncate(f"{MNIST}/train-images-idx3-ubyte")),
    Row("data-labels-out-of-range", ["train", *D], 2, ["labels lie outside 0..9"],
        setup=_labels(np.arange(120) % 12)),
    Row("data-count-mismatch", ["train", *D], 2, ["do not match"], setup=_labels(np.arange(50) % 10)),
    # --config-dir files
    Row("config-dir-invalid-yaml", ["train", "--config-dir", "extra", "data=xor", "model=mine"], 2,
        ["not valid YAML"], setup=_write("extra/model/mine.yaml", "name: mlp\nhidden: [64\n")),
    Row("config-dir-misspelt-key", ["train", "--config-dir", "extra", *D, "data.root=empty", "model=mine"], 2,
        ["model.hiden: unknown key", "did you mean model.hidden"],
        setup=_write("extra/model/mine.yaml", "name: mlp\nhiden: [64]\n")),
    Row("config-dir-missing", ["train", "--config-dir", "no_such_dir", "data=xor"], 2, ["no_such_dir"]),
    # environment faults
    Row("read-only-run-folder", ["train", "data=xor", "hydra.run.dir=/proc/nnlab-run"], 1, ["/proc/nnlab-run"]),
    Row("outputs-is-a-file", ["train", "data=xor"], 1, ["outputs", "Check that the folder is writable"],
        setup=_outputs_is_a_file),
    # SIGINT 0.5 s in lands in the imports; on a machine fast enough to be training by then, the run stops
    # after its step and keeps its folder: either way exit 130, "stopped by ...", no traceback
    Row("ctrl-c-during-start-up", ["train", "data=xor"], 130, ["stopped by"], sigint_after=0.5, records=True),
    # validate, doctor, list, unknown command
    Row("validate-unknown-key", ["validate", "+foo=1"], 2, ["foo: unknown key"]),
    Row("validate-misspelt-key", ["validate", "activaton=relu"], 2, ["activaton"]),
    Row("validate-unparsable", ["validate", "activation=[relu"], 2, ["[relu"]),
    Row("doctor-unknown-key", ["doctor", "data=xor", "foo=1"], 2, ["configuration error:", "foo"]),
    Row("doctor-corrupt-data", ["doctor", *D], 2, ["bad magic number"],
        setup=_write(f"{MNIST}/train-images-idx3-ubyte", b"\x01\x02\x03\x04junk")),
    Row("doctor-cuda-without-cuda", ["doctor", "data=xor", "device=cuda"], 2, ["no cuda device"]),
    Row("list-unknown-group", ["list", "actvation"], 2,
        ["unknown config group 'actvation'", "(did you mean activation?)"]),
    Row("unknown-command", ["trian"], 2, ["unknown command 'trian'", "(did you mean train?)"]),
    # compare: bad arguments exit 2; one bad run folder does not abort the table
    Row("compare-missing-path", ["compare", "nowhere"], 2, ["no such folder: nowhere"]),
    Row("compare-no-runs", ["compare", "mnist"], 2, ["no runs under mnist"]),
    Row("compare-unknown-metric", ["compare", "cmp", "--metric", "val_accuracy"], 2, ["did you mean val_acc?"],
        setup=_compare_world),
    Row("compare-unknown-by", ["compare", "cmp", "--by", "activaton"], 2, ["did you mean activation?"],
        setup=_compare_world),
    Row("compare-by-unswept-seed", ["compare", "outputs", "--by", "seed"], 2, ["trainer.seed", "default"]),
    Row("compare-csv-missing-folder", ["compare", "cmp", "--csv", "no/such/dir/t.csv"], 2, ["cannot write --csv"],
        setup=_compare_world),
    Row("compare-csv-full-disk", ["compare", "cmp", "--csv", "/dev/full"], 2, ["No space left on device"],
        setup=_compare_world),
    Row("compare-metrics-not-json", ["compare", "cmp"], 0, ["unreadable: metrics.json cannot be read", "0.9000"],
        setup=_compare_with("c/metrics.json", "{not json")),
    Row("compare-metrics-wrong-type", ["compare", "cmp"], 0, ["holds a list, not a mapping", "0.9000"],
        setup=_compare_with("c/metrics.json", "[1, 2]")),
    Row("compare-metric-not-a-number", ["compare", "cmp"], 0, ["final/val_acc not a number", "0.9000"],
        setup=_compare_with("c/metrics.json", '{"final/val_acc": "high"}')),
    Row("compare-overrides-not-yaml", ["compare", "cmp"], 0, ["overrides.yaml cannot be read", "0.9000"],
        setup=_compare_with("c/.hydra/overrides.yaml", "- [unclosed\n")),
    Row("compare-overrides-wrong-type", ["compare", "cmp"], 0, ["not a list of overrides", "0.9000"],
        setup=_compare_with("c/.hydra/overrides.yaml", "activation: relu\n")),
    # bench
    Row("bench-unknown-activation", ["bench", "activations", "--only", "nope"], 2,
        ["--only nope: unknown activation", "swish_efficient"]),
    Row("bench-misspelt-activation", ["bench", "activations", "--only", "mihs"], 2, ["did you mean mish?"]),
    Row("bench-cuda-without-cuda", ["bench", "activations", "--device", "cuda"], 2, ["no cuda device", "--device cpu"]),
    Row("bench-zero-numel", ["bench", "activations", "--numel", "0"], 2, ["--numel 0"]),
    Row("bench-unknown-what", ["bench", "everything"], 2, ["invalid choice: 'everything'"]),
]


# -- the world every row starts from --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A finished 2-epoch XOR run (made by the real CLI) and small MNIST IDX files."""
    root = tmp_path_factory.mktemp("world")
    r = _cli(["train", "data=xor", "trainer.epochs=2", "logger=quiet", f"hydra.run.dir={RUN}"], root)
    assert r.returncode == 0, r.stdout + r.stderr
    rng = np.random.default_rng(0)
    for split, n in (("train", 120), ("t10k", 40)):
        write_idx(root / MNIST / f"{split}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28), dtype=np.uint8))
        write_idx(root / MNIST / f"{split}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    (root / "empty").mkdir()
    return root


def _cli(args: list[str], cwd: Path, env: dict | None = None, sigint_after: float | None = None):
    env = {**os.environ, "COLUMNS": "200", "NNLAB_DATA": str(cwd / "data"), **(env or {})}
    p = subprocess.Popen([sys.executable, "-m", "nnlab", *args], cwd=cwd, env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if sigint_after is not None:
        time.sleep(sigint_after)
        p.send_signal(signal.SIGINT)
    try:
        out, err = p.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        p.kill()
        raise
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}


def _run_dirs(root: Path) -> set[str]:
    return {str(p.parent.parent.relative_to(root)) for p in root.rglob(".hydra/config.yaml")}


@pytest.fixture(scope="module")
def outcomes(world, tmp_path_factory, request) -> dict[str, tuple]:
    """Every selected row run once, four at a time: (result, files before, files after, run folders before,
    after, folder)."""
    selected = {item.callspec.id for item in request.session.items
                if item.name.startswith("test_bad_input[") and hasattr(item, "callspec")}

    def one(row: Row) -> tuple | Exception:
        try:
            return attempt(row)
        except Exception as e:  # noqa: BLE001  one row's trouble (a timeout, a setup error) fails that row only
            return e

    def attempt(row: Row) -> tuple:
        cwd = tmp_path_factory.mktemp(row.id)
        shutil.copytree(world, cwd, dirs_exist_ok=True)
        if row.setup:
            row.setup(cwd)
        before, runs_before = _snapshot(cwd), _run_dirs(cwd)
        r = _cli(row.args, cwd, row.env, row.sigint_after)
        return r, before, _snapshot(cwd), runs_before, _run_dirs(cwd), cwd

    rows = [r for r in ROWS if r.id in selected]
    with ThreadPoolExecutor(4) as pool:
        return dict(zip([r.id for r in rows], pool.map(one, rows)))


def test_the_table_is_large_and_distinct():
    """At least 60 distinct bad inputs, across every command."""
    assert len(ROWS) >= 60 and len({r.id for r in ROWS}) == len(ROWS)
    assert len({tuple(r.args) + (r.setup,) for r in ROWS}) == len(ROWS)
    from nnlab.cli import COMMANDS

    assert set(COMMANDS) <= {r.args[0] for r in ROWS}


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input(row, outcomes):
    """The documented exit code, a message naming the problem, no traceback, nothing already on disk changed,
    and no run folder left behind by a refused run."""
    if isinstance(outcomes[row.id], Exception):
        pytest.fail(f"the row could not run: {outcomes[row.id]!r}")
    r, before, after, runs_before, runs_after, cwd = outcomes[row.id]
    out = r.stdout + r.stderr
    assert r.returncode == row.code, out
    for text in row.says:
        assert text in out, out
    assert "Traceback" not in out, out
    assert "[bold red]" not in out and "[/]" not in out, out  # rich markup rendered, never printed raw
    changed = [f for f, data in before.items() if after.get(f) != data]
    assert not changed, f"changed or removed: {changed}"
    if row.code != 0 and not row.records:
        assert runs_after <= runs_before, f"left behind: {runs_after - runs_before}"
    assert not (cwd / "PWNED").exists()  # a pickle payload in a checkpoint is never executed
    for rel in row.absent:
        assert not (cwd / rel).exists(), f"{rel} left behind"
