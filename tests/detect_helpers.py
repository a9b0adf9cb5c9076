"""Detectors and damaged pictures for the detect and restore-by-detection tests.

A trained detector does not belong in a test: ``bright_detector`` is a real
:class:`DamageDetector` whose weights are set by hand so that it marks exactly the pixels
brighter than 0.7 (mean of R, G, B), and ``scratched`` draws white scratches on a dark picture,
so that the right mask is known.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pconv_cli.checkpoint import save_checkpoint
from pconv_cli.core.detector import DamageDetector, DetectorConfig

CONFIG = DetectorConfig(depth=2, width=4)


def bright_detector(config: DetectorConfig = CONFIG) -> DamageDetector:
    """logit = 100·relu(mean(RGB) − 0.5) − 20: damage where the mean is above 0.7."""
    model = DamageDetector(config).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.zero_()
        model.stem[0][0].weight[0, :, 1, 1] = 1 / 3  # the input is image − 0.5
        model.stem[1][0].weight[0, 0, 1, 1] = 1.0
        skip = config.level_channels()[1]  # up[0] sees [upsampled level 1, level 0]
        model.up[0][0].weight[0, skip, 1, 1] = 1.0
        model.head.weight[0, 0] = 100.0
        model.head.bias.fill_(-20.0)
    return model


def random_detector(seed: int = 0, config: DetectorConfig = CONFIG) -> DamageDetector:
    """Random weights with a random head: probabilities that vary everywhere."""
    torch.manual_seed(seed)
    model = DamageDetector(config)
    torch.nn.init.normal_(model.head.weight, std=1.0)
    torch.nn.init.zeros_(model.head.bias)
    return model.eval()


def save_detector(path: Path, model: DamageDetector) -> Path:
    save_checkpoint(path, model.config, model.state_dict())
    return path


def scratched(size=(48, 64), seed: int = 0, scratches=((10, 5, 40), (30, 20, 60))
              ) -> tuple[np.ndarray, np.ndarray]:
    """A dark noisy RGB picture (uint8, values below 0.5) with white horizontal scratches
    (row, first column, end column; 2 px high); and the scratch mask, True = damage."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(20, 110, (*size, 3), dtype=np.uint8)
    damage = np.zeros(size, dtype=bool)
    for row, start, stop in scratches:
        damage[row:row + 2, start:stop] = True
    pixels[damage] = 250
    return pixels, damage
