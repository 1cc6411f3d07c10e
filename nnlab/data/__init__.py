"""DATASETS: name -> loader returning an in-memory DataBundle."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from nnlab.data.bundle import DataBundle, Split, ordered_batches, shuffled_batches
from nnlab.data.pairs import load_pairs
from nnlab.data.synthetic import load_gate
from nnlab.data.vision import load_vision
from nnlab.errors import ConfigError, choose

DATASETS: dict[str, Callable[..., DataBundle]] = {
    "mnist": partial(load_vision, "mnist"),
    "fashion_mnist": partial(load_vision, "fashion_mnist"),
    "xor": partial(load_gate, "xor"),
    "gates": load_gate,
    "mnist_pairs": partial(load_pairs, "mnist"),
    "fashion_pairs": partial(load_pairs, "fashion_mnist"),
}


def build_data(name: str, **params: Any) -> DataBundle:
    loader = choose(DATASETS, name, "data")
    try:
        return loader(**params)
    except TypeError as e:
        raise ConfigError(f"data {name!r}: {e}") from None


__all__ = ["DATASETS", "DataBundle", "Split", "build_data", "ordered_batches", "shuffled_batches"]
