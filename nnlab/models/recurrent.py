"""LSTM and GRU classifiers: read a sequence step by step, classify from the last hidden state."""

from __future__ import annotations

from torch import Tensor, nn

from nnlab.models.blocks import ActFactory
from nnlab.registry import ConfigError

CELLS: dict[str, type[nn.LSTM] | type[nn.GRU]] = {"lstm": nn.LSTM, "gru": nn.GRU}
GATES = {"lstm": 4, "gru": 3}  # weight rows per layer: LSTM i, f, g, o; GRU r, z, n


def sequence_shape(input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(steps, features) of one sample: (T, F) as is, an image (C, H, W) as H rows of C*W, a vector as T x 1."""
    if len(input_shape) == 2:
        return input_shape[0], input_shape[1]
    if len(input_shape) == 3:
        return input_shape[1], input_shape[0] * input_shape[2]
    if len(input_shape) == 1:
        return input_shape[0], 1
    raise ConfigError(f"a recurrent model needs sequences (T, F); this data's samples have shape {input_shape}")


class RecurrentClassifier(nn.Module):
    """`cell` (lstm | gru) over the time steps, then a linear head on the last layer's final hidden state
    (both directions when bidirectional). The activation choice does not apply: the gates have their own."""

    def __init__(self, input_shape: tuple[int, ...], out_units: int, act: ActFactory, *, cell: str,
                 hidden_size: int = 128, layers: int = 1, dropout: float = 0.0, bidirectional: bool = False) -> None:
        super().__init__()
        _, features = sequence_shape(input_shape)
        self.cell, self.directions = cell, 2 if bidirectional else 1
        self.rnn = CELLS[cell](features, hidden_size, num_layers=layers, batch_first=True,
                               dropout=dropout if layers > 1 else 0.0, bidirectional=bidirectional)
        self.head = nn.Linear(hidden_size * self.directions, out_units)

    def forward(self, x: Tensor) -> Tensor:  # (B, T, F) -> (B, out_units)
        if x.ndim == 4:  # (B, C, H, W) -> (B, H, C*W): one image row per step
            x = x.permute(0, 2, 1, 3).flatten(2)
        elif x.ndim == 2:
            x = x.unsqueeze(-1)
        _, state = self.rnn(x)
        h_n = state[0] if self.cell == "lstm" else state  # (layers * directions, B, hidden)
        return self.head(h_n[-self.directions:].transpose(0, 1).flatten(1))


def lstm(input_shape: tuple[int, ...], out_units: int, act: ActFactory, **kw: object) -> RecurrentClassifier:
    return RecurrentClassifier(input_shape, out_units, act, cell="lstm", **kw)  # type: ignore[arg-type]


def gru(input_shape: tuple[int, ...], out_units: int, act: ActFactory, **kw: object) -> RecurrentClassifier:
    return RecurrentClassifier(input_shape, out_units, act, cell="gru", **kw)  # type: ignore[arg-type]
