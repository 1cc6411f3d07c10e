from __future__ import annotations

from torch import Tensor, nn

from nnlab.models.blocks import ActFactory, classifier_head


class BasicBlock(nn.Module):
    """act(x + BN(conv(act(BN(conv(x)))))): the chapter's skip connection for conv layers."""

    def __init__(self, channels: int, act: ActFactory) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.act1, self.act2 = act(), act()

    def forward(self, x: Tensor) -> Tensor:
        return self.act2(x + self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))))


class CNN(nn.Module):
    """Conv stages (conv3x3 -> [BN] -> act -> `blocks` residual blocks -> maxpool), then a dense head."""

    def __init__(self, input_shape: tuple[int, ...], out_units: int, act: ActFactory, *,
                 channels: list[int], blocks: int = 0, head: int = 128, dropout: float = 0.0,
                 batchnorm: bool = True) -> None:
        super().__init__()
        c_in, h, w = input_shape
        stages: list[nn.Module] = []
        for c_out in channels:
            stages += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batchnorm)]
            stages += [nn.BatchNorm2d(c_out)] if batchnorm else []
            stages += [act(), *(BasicBlock(c_out, act) for _ in range(blocks)), nn.MaxPool2d(2)]
            c_in, h, w = c_out, h // 2, w // 2
        self.features = nn.Sequential(*stages)
        self.head = classifier_head(c_in * h * w, head, out_units, act, dropout)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, out_units)
        return self.head(self.features(x))
