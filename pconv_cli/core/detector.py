"""The damage detector: a light U-Net that marks damaged pixels (dust, hair, scratches, cracks).

Unlike the inpainting network its input has no holes, so it is built from ordinary
convolutions. It is made for full-resolution CPU inference on scans: few channels at full
resolution (thin damage is only visible there), more at the coarser levels that see context
(a hair against a textured background). It outputs one logit per pixel; sigmoid > threshold
marks damage. Large images are run in overlapping tiles (``pconv_cli.detection``); the tiles
agree with the whole image because every level's grid is aligned and the overlap covers
:meth:`DetectorConfig.receptive_radius`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..loss_weights import DetectionLossWeights  # plain numbers, kept where --help reads them


@dataclass(frozen=True)
class DetectorConfig:
    """Shape of a :class:`DamageDetector`.

    depth: levels below full resolution, each halving it (4: the coarsest sees 1/16).
    width: channels at full resolution; they double per level up to ``max_width_factor``·width.
    """

    depth: int = 4
    width: int = 12
    max_width_factor: int = 6
    image_channels: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.depth <= 8:
            raise ConfigError(f"detector depth must be between 1 and 8, got {self.depth}")
        if self.width < 1 or self.max_width_factor < 1 or self.image_channels < 1:
            raise ConfigError("detector width, max_width_factor and image_channels must be "
                              "positive")

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (each level halves them)."""
        return 2**self.depth

    def level_channels(self) -> list[int]:
        """Channels at full resolution (level 0) and at each coarser level."""
        return [self.width * min(2**i, self.max_width_factor) for i in range(self.depth + 1)]

    def receptive_radius(self) -> int:
        """Pixels on each side that can influence one output pixel.

        Full resolution: two 3×3 convs (radius 1 each). Level i (scale s = 2^i input pixels
        per feature pixel): a stride-2 3×3 conv on the finer grid (s/2) and a 3×3 conv (s); on
        the way up a bilinear upsample (its two nearest coarse pixels: s) and a 3×3 conv on
        the finer grid (s/2).
        """
        radius = 2
        for i in range(1, self.depth + 1):
            s = 2**i
            radius += s // 2 + s  # down
            radius += s + s // 2  # up
        return radius

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DetectorConfig:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown detector settings {sorted(unknown)}: made by a newer "
                              "pconv?")
        return cls(**data)


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class DamageDetector(nn.Module):
    """``forward(image) -> logits``: image N×C×H×W in [0, 1], logits N×1×H×W.

    H and W must be multiples of ``config.multiple`` (``pconv_cli.detection`` pads and tiles).
    """

    def __init__(self, config: DetectorConfig | None = None) -> None:
        super().__init__()
        self.config = config or DetectorConfig()
        chans = self.config.level_channels()
        self.stem = nn.Sequential(_conv_bn_relu(self.config.image_channels, chans[0]),
                                  _conv_bn_relu(chans[0], chans[0]))
        self.down = nn.ModuleList(
            nn.Sequential(_conv_bn_relu(chans[i - 1], chans[i], stride=2),
                          _conv_bn_relu(chans[i], chans[i]))
            for i in range(1, self.config.depth + 1)
        )
        # up[i] brings level i+1 to level i: upsample, concatenate the skip, one conv.
        self.up = nn.ModuleList(
            _conv_bn_relu(chans[i + 1] + chans[i], chans[i]) for i in range(self.config.depth)
        )
        self.head = nn.Conv2d(chans[0], 1, 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        # Damage is rare: start from a low prior (about 1 % of pixels) so that the first steps
        # do not spend themselves unlearning "everything is damage".
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, -4.6)

    def check_size(self, height: int, width: int) -> None:
        m = self.config.multiple
        if height % m or width % m or height < m or width < m:
            raise ConfigError(f"detector input size {width}x{height} is not a multiple of {m} "
                              f"(2^depth, depth {self.config.depth}); pad it first")

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        self.check_size(image.shape[-2], image.shape[-1])
        x = self.stem(image - 0.5)
        skips = [x]
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for block in reversed(self.up):
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


class DetectionLoss(nn.Module):
    """BCE (with ``positive_weight`` on damaged pixels) + soft Dice over the batch.

    ``forward(logits, target) -> dict`` with ``total``, ``bce``, ``dice``; target N×1×H×W,
    1 = damage. Dice is computed over the whole batch, not per image: an image without damage
    has no Dice of its own, and its false alarms still raise the batch's denominator.
    """

    def __init__(self, weights: DetectionLossWeights | None = None) -> None:
        super().__init__()
        self.weights = weights or DetectionLossWeights()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        target = target.to(logits.dtype)
        w = self.weights
        pos_weight = torch.tensor(w.positive_weight, dtype=logits.dtype, device=logits.device)
        bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)
        prob = torch.sigmoid(logits)
        overlap = (prob * target).sum()
        dice = 1 - (2 * overlap + 1) / (prob.sum() + target.sum() + 1)
        return {"total": w.bce * bce + w.dice * dice, "bce": bce, "dice": dice}
