"""Small things a user reads or types: wording of counts and steps, --info, completion of command names."""

from __future__ import annotations

import pytest

from nnlab.loop import _steps
from nnlab.tracker import _epochs

from helpers import nnlab


def test_counts_read_as_english():
    """"final metrics (1 epoch, ...)" and "non-finite loss at step 30", not "1 epochs" / "between 30 and 30"."""
    assert _epochs(1.0) == "1 epoch" and _epochs(3.0) == "3 epochs"
    assert _steps(30, 30) == "at step 30" and _steps(21, 30) == "between steps 21 and 30"


def test_info_works_before_overrides(tmp_path):
    """`nnlab train --info data=xor` prints Hydra's info (as `--info all`) and exits 0."""
    r = nnlab("train", "--info", "data=xor", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Defaults List" in r.stdout and "data: xor" in r.stdout


@pytest.mark.slow
def test_completion_of_the_command_word(tmp_path):
    """`nnlab tr<TAB>` offers the command train, not the config group trainer."""
    for line, want in (("nnlab tr", "train"), ("nnlab ", "train resume validate list doctor compare board bench"),
                       ("nnlab list act", "activation")):
        r = nnlab("-sc", "query=bash", cwd=tmp_path, env={"COMP_LINE": line, "COMP_POINT": str(len(line))})
        assert r.returncode == 0 and r.stdout.strip() == want, (line, r.stdout, r.stderr)
    r = nnlab("-sc", "query=bash", cwd=tmp_path, env={"COMP_LINE": "nnlab train activation=re"})
    assert "activation=relu" in r.stdout.split()
