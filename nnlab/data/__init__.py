"""DATASETS: name -> loader returning an in-memory DataBundle."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from nnlab.data.bundle import DataBundle, Split, ordered_batches, shuffled_batches
from nnlab.data.memory import load_adding
from nnlab.data.pairs import load_pairs
from nnlab.data.synthetic import load_gate
from nnlab.data.vision import load_sequence, load_vision
from nnlab.registry import ConfigError, choose, register

DATASETS: dict[str, Callable[..., DataBundle]] = {
    "mnist": partial(load_vision, "mnist"),
    "fashion_mnist": partial(load_vision, "fashion_mnist"),
    "xor": partial(load_gate, "xor"),
    "gates": load_gate,
    "mnist_pairs": partial(load_pairs, "mnist"),
    "fashion_pairs": partial(load_pairs, "fashion_mnist"),
    "fashion_mnist_seq": partial(load_sequence, "fashion_mnist"),
    "adding": load_adding,
}


_CACHE: dict[str, DataBundle] = {}


def register_data(name: str) -> Callable[[Callable[..., DataBundle]], Callable[..., DataBundle]]:
    """Decorator: `@register_data("mine")` on a loader returning a DataBundle (its keyword arguments come from
    the data config) makes `data=mine` choose it."""
    return lambda loader: register(DATASETS, "data", name, loader)


def build_data(name: str, **params: Any) -> DataBundle:
    """The dataset `name`; the last one loaded is kept, so sweep jobs sharing a process load it once."""
    loader = choose(DATASETS, name, "data")
    key = repr((name, sorted(params.items())))
    if key not in _CACHE:
        try:
            bundle = loader(**params)
        except TypeError as e:
            raise ConfigError(f"data {name!r}: {e}") from None
        _CACHE.clear()
        _CACHE[key] = bundle
    return _CACHE[key]


__all__ = ["DATASETS", "DataBundle", "Split", "build_data", "ordered_batches", "register_data", "shuffled_batches"]
