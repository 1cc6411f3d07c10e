"""TensorBoard shows the sweep: the experiment summary (unit), then the real thing: a sweep, the real
`tensorboard` started by `nnlab board` on a free loopback port, its HPARAMS HTTP API, the printed hints run
through bash, and Debian's chromium (selenium, headless) on the HPARAMS tab."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from tensorboard.plugins.hparams import plugin_data_pb2

from nnlab.cli import board
from nnlab.hparams import experiment, session_group

from helpers import REPO, nnlab

BIN = str(Path(sys.executable).parent)  # where `nnlab` and `tensorboard` are installed
SWEEP = ["-m", "data=xor", "activation=relu,tanh", "init=kaiming_normal,xavier_uniform", "trainer.seed=0,1",
         "trainer.epochs=2", "logger=quiet"]
GROUPS = {"relu,kaiming_normal", "relu,xavier_uniform", "tanh,kaiming_normal", "tanh,xavier_uniform"}
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1700,900"]


# -- the experiment summary, unit ------------------------------------------------------------------------------
def _parse(summary) -> plugin_data_pb2.HParamsPluginData:
    return plugin_data_pb2.HParamsPluginData.FromString(summary.value[0].metadata.plugin_data.content)


def test_experiment_lists_swept_keys_first_with_domains():
    """Swept keys first, discrete domain = their values, differs; the seed left out; every other key (the union,
    also one only some jobs have); metrics declared, learning curves first."""
    jobs = [{"activation": a, "trainer.seed": s, "optimizer.lr": 0.001, "model.hidden": "[64]"}
            for a in ("relu", "tanh") for s in (0, 1)]
    jobs[0]["optimizer.momentum"] = 0.9
    exp = _parse(experiment(jobs, ["activation", "trainer.seed"], ["final/test_acc"])).experiment
    infos = {i.name: i for i in exp.hparam_infos}
    assert [i.name for i in exp.hparam_infos][0] == "activation" and "trainer.seed" not in infos
    assert list(infos["activation"].domain_discrete) == ["relu", "tanh"] and infos["activation"].differs
    assert not infos["optimizer.lr"].differs and list(infos["optimizer.lr"].domain_discrete) == [0.001]
    assert "optimizer.momentum" in infos
    assert [m.name.tag for m in exp.metric_infos] == ["Accuracy/val", "Loss/val", "Accuracy/train", "Loss/train",
                                                       "final/test_acc"]


@pytest.mark.parametrize(("folder", "group"), [("activation=relu,init=xavier_uniform,seed=1", "relu,xavier_uniform"),
                                               ("seed=3", "all seeds"), ("model.hidden=[64,64],seed=0", "[64,64]")])
def test_session_group_is_the_folder_without_seed(folder, group):
    assert session_group(folder) == group


def test_sweep_start_declares_the_swept_columns(tmp_path):
    """Before any job ran, the sweep root holds an experiment with the swept keys (command line and the preset's
    sweeper params) and their values; the seed is left out (seeds are grouped)."""
    from omegaconf import OmegaConf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from nnlab.cli.sweep_summary import SweepSummary

    cfg = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)},
                                      "sweeper": {"params": {"trainer.seed": "0,1,2", "activation": "relu,tanh"}},
                                      "overrides": {"task": ["init=kaiming_normal,xavier_uniform", "data=xor"]}}})
    SweepSummary().on_multirun_start(cfg)
    ea = EventAccumulator(str(tmp_path))
    ea.Reload()
    exp = plugin_data_pb2.HParamsPluginData.FromString(
        ea.PluginTagToContent("hparams")["_hparams_/experiment"]).experiment
    assert {i.name: list(i.domain_discrete) for i in exp.hparam_infos} == {
        "activation": ["relu", "tanh"], "init": ["kaiming_normal", "xavier_uniform"]}


def test_board_finds_the_newest_sweep_or_run(tmp_path):
    """`nnlab board` without PATH: the most recently started sweep or single run under outputs/."""
    old = tmp_path / "multirun" / "2026-01-01" / "10-00-00"
    new = tmp_path / "2026-01-02" / "09-00-00"
    old.mkdir(parents=True)
    (new / ".hydra").mkdir(parents=True)
    os.utime(old, (1, 1))
    assert board.newest(tmp_path) == new
    assert board.newest(tmp_path / "nothing") is None


def test_board_without_runs_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert board.main([]) == 2 and "no sweep or run" in capsys.readouterr().err
    assert board.main([str(tmp_path / "missing")]) == 2


# -- the real thing ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The issue's acceptance sweep: activation x init x 2 seeds on XOR (8 jobs)."""
    root = tmp_path_factory.mktemp("board")
    r = nnlab("train", *SWEEP, cwd=root)
    assert r.returncode == 0, r.stderr[-3000:]
    [folder] = list(root.glob("outputs/multirun/*/*"))
    return root, folder, r.stdout


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def start_board(command: str, cwd: Path) -> tuple[subprocess.Popen, str]:
    """Run a `nnlab board ...` line through bash; returns the process and the URL it printed, once TensorBoard
    answers the HPARAMS experiment route with columns."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    line = proc.stdout.readline()
    assert "http://127.0.0.1:" in line, line
    url = line.split(": ", 1)[1].split()[0]
    deadline = time.monotonic() + 120
    while True:
        try:
            if _post(url + "data/plugin/hparams/experiment", {"experimentName": ""}).get("hparamInfos"):
                return proc, url
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            stop(proc)
            raise AssertionError(f"TensorBoard did not serve the HPARAMS experiment at {url}")
        time.sleep(0.5)


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)  # bash, nnlab board and its tensorboard: the group this test started
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def served(sweep):
    root, folder, _ = sweep
    proc, url = start_board(f"nnlab board {folder} --port {board.free_port(0)}", root)
    yield url
    stop(proc)


@pytest.mark.slow
def test_hparams_api_shows_the_sweep(served):
    """TensorBoard's own API: activation and init differ with their domains, seeds grouped (8 runs, 4 groups),
    every session with its metrics."""
    exp = _post(served + "data/plugin/hparams/experiment", {"experimentName": ""})
    infos = {i["name"]: i for i in exp["hparamInfos"]}
    assert [i["name"] for i in exp["hparamInfos"]][:2] == ["activation", "init"]
    assert infos["activation"]["differs"] and infos["init"]["differs"]
    assert infos["activation"]["domainDiscrete"] == ["relu", "tanh"]
    assert infos["init"]["domainDiscrete"] == ["kaiming_normal", "xavier_uniform"]
    assert "trainer.seed" not in infos and not infos["optimizer.lr"]["differs"]
    groups = _post(served + "data/plugin/hparams/session_groups", {
        "experimentName": "", "startIndex": 0, "sliceSize": 100, "aggregationType": "AGGREGATION_AVG",
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]})
    assert {g["name"] for g in groups["sessionGroups"]} == GROUPS
    assert all(len(g["sessions"]) == 2 for g in groups["sessionGroups"])
    for g in groups["sessionGroups"]:
        assert {"Accuracy/val", "Loss/val", "final/test_acc", "final/epochs"} <= {
            m["name"]["tag"] for m in g["metricValues"]}
        for s in g["sessions"]:
            assert s["status"] == "STATUS_SUCCESS" and {m["name"]["tag"] for m in s["metricValues"]} >= {
                "Accuracy/val", "final/test_acc"}


@pytest.mark.slow
def test_sweep_hints_work_in_a_shell(sweep):
    """The sweep's closing hints, pasted into bash: `nnlab board ...` serves the sweep, `nnlab compare ...`
    shows the seed-pooled statistics."""
    root, folder, stdout = sweep
    hints = {ln.split(": ", 1)[0]: ln.split(": ", 1)[1] for ln in stdout.splitlines()
             if ln.startswith(("look: ", "compare: "))}
    assert hints["look"].startswith("nnlab board ") and hints["compare"].startswith("nnlab compare ")
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "COLUMNS": "200"}
    r = subprocess.run(["bash", "-c", hints["compare"]], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "95% CI" in r.stdout and "by activation" in r.stdout
    proc, url = start_board(hints["look"], root)
    try:
        exp = _post(url + "data/plugin/hparams/experiment", {"experimentName": ""})
        assert exp["hparamInfos"][0]["name"] == "activation"
    finally:
        stop(proc)


@pytest.mark.slow
def test_compare_baseline_and_plot_bands(sweep, tmp_path):
    """`compare --by activation --baseline relu --plot`: n and 95% CI per activation, the Welch difference with
    its Holm p-value, and one band per activation in the plot."""
    from nnlab.curves import plot_groups
    from nnlab.runs import by_value, find_runs

    root, folder, _ = sweep
    png = tmp_path / "curves.png"
    r = nnlab("compare", str(folder), "--by", "activation", "--baseline", "relu", "--plot", str(png), cwd=root)
    assert r.returncode == 0, r.stderr
    assert "95% CI" in r.stdout and "p (Holm)" in r.stdout and "baseline" in r.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = plot_groups(by_value(find_runs([folder]), "activation"), tmp_path / "again.png", "activation")
    assert labels == ["activation=relu (n=4)", "activation=tanh (n=4)"]
    bad = nnlab("compare", str(folder), "--by", "activation", "--baseline", "elu", cwd=root)
    assert bad.returncode == 2 and "relu, tanh" in bad.stdout + bad.stderr


def _browser() -> tuple[str, str]:
    """Debian's chromium and chromedriver, installed by scripts/install_browser.sh where missing (as root)."""
    chromium, driver = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or \
        "/usr/bin/chromedriver"
    if not (Path(chromium).exists() and Path(driver).exists()) and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["bash", str(REPO / "scripts" / "install_browser.sh")], capture_output=True, timeout=900)
    if not (Path(chromium).exists() and Path(driver).exists()):
        pytest.skip("chromium and chromium-driver are not installed and could not be installed here "
                    "(run scripts/install_browser.sh as root)")
    pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[dev]'")
    return chromium, driver


VISIBLE_TEXT = """
const out = [];
function walk(root) {
  for (const el of root.querySelectorAll('*')) { if (el.shadowRoot) walk(el.shadowRoot); }
  for (const el of root.querySelectorAll('*')) {
    if (el.children.length === 0 && el.offsetParent !== null && el.textContent.trim()) out.push(el.textContent.trim());
  }
}
walk(document);
return out;
"""


@pytest.mark.slow
def test_browser_shows_the_swept_columns(served, tmp_path):
    """Headless chromium on the HPARAMS tab: the swept keys are visible table columns, one row per configuration;
    a screenshot is saved (and copied to $NNLAB_SCREENSHOT when set, e.g. docs/tensorboard-hparams.png)."""
    chromium, driver_path = _browser()
    from selenium import webdriver
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROME_FLAGS, f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    try:
        driver.get(served + "#hparams")
        texts: list[str] = []

        def table_shown(d) -> bool:
            texts[:] = d.execute_script(VISIBLE_TEXT)
            return "Trial ID" in texts and "tanh,xavier_uniform" in texts

        WebDriverWait(driver, 90, poll_frequency=1).until(table_shown)
        header = texts[texts.index("Trial ID"):]
        assert {"activation", "init"} <= set(header[:6])  # swept columns lead, shown by default
        assert "Number of matching session groups: 4" in texts
        shot = tmp_path / "hparams.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 20_000
        if os.environ.get("NNLAB_SCREENSHOT"):
            shutil.copy(shot, os.environ["NNLAB_SCREENSHOT"])
    finally:
        driver.quit()


@pytest.mark.slow
def test_stopping_board_stops_tensorboard(sweep):
    """SIGTERM to `nnlab board` ends its TensorBoard as well (no server left behind on the port)."""
    root, folder, _ = sweep
    port = board.free_port(0)
    proc = subprocess.Popen([sys.executable, "-m", "nnlab", "board", str(folder), "--port", str(port)], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = proc.stdout.readline().split(": ", 1)[1].split()[0]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            break
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    proc.wait(timeout=30)
    time.sleep(1)
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=5)


def test_hints_quote_paths_for_the_shell(tmp_path, monkeypatch):
    """A sweep folder with a space and a quote: bash hands `nnlab` the folder as one argument."""
    from nnlab.cli.sweep_summary import look_hints
    from nnlab.runs import RunRecord

    folder = tmp_path / "it's a sweep"
    runs = [RunRecord(folder / f"activation={a}", {"activation": a}) for a in ("relu", "tanh")]
    for hint in look_hints(folder, runs):
        line = hint.split(": ", 1)[1].replace("nnlab ", "printf '%s\\n' ", 1)
        out = subprocess.run(["bash", "-c", line], capture_output=True, text=True, check=True).stdout.splitlines()
        assert out[1] == str(folder)
