"""Reading (and, for tests and tooling, writing) the IDX files MNIST-style datasets ship as."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from nnlab.registry import ConfigError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> torch.Tensor:
    """The tensor stored in an IDX file (optionally .gz); a clear ConfigError if it is corrupt."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError; a cut .gz ends in EOFError
        what = "cannot be read" if isinstance(e, PermissionError) else "is corrupt or truncated"
        raise ConfigError(f"{path} {what} ({type(e).__name__}: {e}); delete it and place the original "
                          "(or let nnlab download it again)") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise ConfigError(f"{path} is not an IDX file (bad magic number); delete it and place the original")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header]) if len(raw) >= header else ()
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize if shape else -1
    if len(raw) - header != expected:
        raise ConfigError(
            f"{path} is truncated or corrupt: its header promises shape {tuple(shape)} "
            f"({expected} bytes of data) but it holds {len(raw) - header}; delete it and place the original"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return torch.from_numpy(array.astype(array.dtype.newbyteorder("=")))


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write `array` (uint8) as an uncompressed IDX file."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())
