"""Every known failure maps to its documented exit code and one paragraph; an unknown one stays a traceback.
Paths in hints survive Hydra's override parser unchanged."""

from __future__ import annotations

import errno

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from nnlab.cli.failures import classify, hydra_value
from nnlab.registry import ConfigError


def _resolver_error(exc: Exception) -> Exception:
    """The exception OmegaConf raises when a resolver (e.g. nnlab_run_dir) raises `exc`."""
    def boom():
        raise exc
    OmegaConf.register_new_resolver("nnlab_test_boom", boom, replace=True)
    try:
        OmegaConf.to_container(OmegaConf.create({"x": "${nnlab_test_boom:}"}), resolve=True)
    except Exception as e:  # noqa: BLE001
        return e
    raise AssertionError("no error")


def test_full_disk_is_a_failed_run_with_its_reason():
    code, title, message = classify(OSError(errno.ENOSPC, "No space left on device"))
    assert (code, title) == (1, "run failed") and "No space left on device" in message and "kept" in message


def test_resolver_errors_are_unwrapped():
    """resume=<bad> raises inside Hydra's composition: the ConfigError inside decides (exit 2); an OSError
    there (a folder that cannot be made) is a failed run (exit 1)."""
    assert classify(_resolver_error(ConfigError("resume=x: nothing")))[:2] == (2, "configuration error")
    assert classify(_resolver_error(NotADirectoryError(20, "Not a directory")))[0] == 1


def test_missing_config_is_a_configuration_error_although_hydra_makes_it_an_ioerror():
    assert classify(MissingConfigException("Could not find 'activation/relux'", "activation/relux"))[0] == 2


def test_interrupt_and_unknown_bugs():
    assert classify(KeyboardInterrupt())[0] == 130
    assert classify(RuntimeError("a bug"))[0] is None  # re-raised: a bug keeps its traceback


@pytest.mark.parametrize("path", ["outputs/2026-01-01/10-00-00", "outputs/multirun/x/activation=mish,init=zeros",
                                  "runs/my run (copy)", 'odd"quote', "back\\slash", "end\\", "q\\\"x", "null", "a:b"])
def test_hydra_reads_the_quoted_path_back_unchanged(path):
    [o] = OverridesParser.create().parse_overrides([f"resume={hydra_value(path)}"])
    assert o.value() == path
