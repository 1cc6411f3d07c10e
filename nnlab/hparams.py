"""TensorBoard's HPARAMS data for nnlab: a run's flat hyperparameters, its session (grouped with the other
seeds of its configuration), and one experiment summary per sweep, swept keys first.

Builds protos only (TensorBoard's own api_pb2 / plugin_data_pb2); the tracker writes them. No torch import.

How TensorBoard reads them (tensorboard/plugins/hparams/backend_context.py, list_session_groups.py): the first
run holding `_hparams_/experiment` defines the columns (hparams sorted by `differs`, then name; a discrete
domain gives the column a value filter); each run holding `_hparams_/session_start_info` is a session, and
sessions with the same `group_name` form one row whose metrics are aggregated (mean by default).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.plugins.hparams.metadata import EXPERIMENT_TAG, SESSION_END_INFO_TAG, SESSION_START_INFO_TAG

SEED_KEY = "trainer.seed"
# (scalar tag, column title): learning curves first (the last epoch's value; "show metrics" draws the curve)
CURVES = (("Accuracy/val", "val acc (last epoch)"), ("Loss/val", "val loss (last epoch)"),
          ("Accuracy/train", "train acc (last epoch)"), ("Loss/train", "train loss (last epoch)"))
# final numbers, written once at the run's last global step (tracker.final)
FINALS = (("final/test_acc", "test acc"), ("final/test_loss", "test loss"), ("final/epochs", "epochs"),
          ("final/train_seconds", "train seconds"))


def final_scalars(metrics: Mapping[str, float]) -> dict[str, float]:
    """The final numbers a run writes as scalars for the HPARAMS table: test scores, best monitored, budget."""
    keep = {tag for tag, _ in FINALS} | {"trial/pruned"}  # a search's trials: 1 pruned, 0 finished
    return {k: float(v) for k, v in metrics.items() if k in keep or k.startswith("final/best_")}


def metric_infos(final_tags: Iterable[str]) -> list[api_pb2.MetricInfo]:
    """The declared metrics: learning curves, then the final numbers present (best_* by its monitor)."""
    titles = dict(FINALS)
    tags = [t for t, _ in CURVES] + sorted(set(final_tags), key=lambda t: (t not in titles, t))
    names = {**dict(CURVES), **titles}
    return [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=t),
                               display_name=names.get(t, t.removeprefix("final/").replace("_", " ")))
            for t in tags]


def plain_value(value: Any) -> bool | float | str:
    """A value TensorBoard can hold: bool, number or string (lists and None as their text)."""
    if isinstance(value, (bool, float, str)):
        return value
    if isinstance(value, int):
        return float(value)
    return str(value)


def _to_value(value: Any) -> Any:
    from google.protobuf import struct_pb2

    v = plain_value(value)
    if isinstance(v, bool):
        return struct_pb2.Value(bool_value=v)
    if isinstance(v, float):
        return struct_pb2.Value(number_value=v)
    return struct_pb2.Value(string_value=v)


def _summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> Summary:
    return Summary(value=[Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(data))])


def session_group(folder_name: str) -> str:
    """The session group (HPARAMS "Trial ID") of a sweep job: the values in its folder name, seed left out
    (`activation=relu,init=xavier_uniform,seed=1` -> `relu,xavier_uniform`): the seeds of one configuration
    share a row, and the name stays short enough to tell rows apart in TensorBoard's narrow column."""
    without_seed = re.sub(r"(^|,)seed=[^,]*", "", folder_name).strip(",")
    return re.sub(r"(^|,)[A-Za-z_+~][\w.+~/-]*=", r"\1", without_seed) or "all seeds"


def session_start(hparams: Mapping[str, Any], group: str = "", start_time: float = 0.0) -> Summary:
    info = plugin_data_pb2.SessionStartInfo(group_name=group, start_time_secs=start_time)
    for k, v in hparams.items():
        info.hparams[k].CopyFrom(_to_value(v))
    return _summary(SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=info))


def session_end(ok: bool, end_time: float = 0.0) -> Summary:
    status = api_pb2.STATUS_SUCCESS if ok else api_pb2.STATUS_FAILURE
    info = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=end_time)
    return _summary(SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=info))


def _type_of(values: list[Any]) -> int:
    kinds = {type(plain_value(v)) for v in values}
    if kinds == {bool}:
        return api_pb2.DATA_TYPE_BOOL
    if kinds == {float}:
        return api_pb2.DATA_TYPE_FLOAT64
    return api_pb2.DATA_TYPE_STRING


def hparam_info(name: str, values: list[Any], swept: bool) -> api_pb2.HParamInfo:
    """One column: type from the values, a discrete domain (the values seen), differs when they do."""
    kind = _type_of(values)
    plain = [plain_value(v) if kind != api_pb2.DATA_TYPE_STRING else str(plain_value(v)) for v in values]
    distinct = sorted(set(plain), key=lambda v: (isinstance(v, str), v))
    info = api_pb2.HParamInfo(name=name, type=kind, differs=len(distinct) > 1,
                              description="swept" if swept else "")
    info.domain_discrete.extend(distinct)
    return info


def experiment(jobs: list[Mapping[str, Any]], swept: list[str], final_tags: Iterable[str], description: str = "",
               time_created: float = 0.0) -> Summary:
    """One experiment for a set of jobs (their flat hparams): the swept keys (seed left out: seeds are grouped),
    then every other key any job has; each with its values as a discrete domain."""
    keys = list(dict.fromkeys([k for k in swept if k != SEED_KEY] +
                              sorted({k for job in jobs for k in job if k not in swept and k != SEED_KEY})))
    infos = [hparam_info(k, [job[k] for job in jobs if k in job], k in swept) for k in keys
             if any(k in job for job in jobs)]
    exp = api_pb2.Experiment(description=description, time_created_secs=time_created, hparam_infos=infos,
                             metric_infos=metric_infos(final_tags))
    return _summary(EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=exp))
