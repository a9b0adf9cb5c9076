"""What ``pconv restore`` can be told (:class:`RestoreOptions`, checked before any file is
read), and how a run is split into shares between machines and torchrun ranks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..imaging import DEFAULT_MAX_PIXELS, FORMAT_CHOICES, parse_color

STRATEGIES = ("crop", "resize", "original")
MASK_SOURCES = ("masks", "alpha", "detect")


@dataclass
class RestoreOptions:
    """Everything ``pconv restore`` can be told; the defaults are the CLI's.

    Masks come from exactly one of: ``masks`` (a folder mirroring the input tree, paired by
    relative path and stem), ``mask`` (one file for every image), ``mask_from="alpha"`` (the
    image's transparent pixels), ``mask_from="detect"`` (found by the damage detector:
    ``detector``, else the bundled one; ``threshold``, ``grow``, ``min_area`` and ``tile`` as
    in ``pconv detect``; the masks used are kept in ``OUT/_masks``). Without any of them the
    detector is used where one is available (:meth:`validate` sets ``mask_from``).

    ``mask_color`` (with ``masks`` or ``mask``): the mask files are painted copies of the
    images, the pixels within ``color_tolerance`` (8-bit RGB distance) of that colour being
    the holes.

    Large images: when the longest side exceeds ``hd_trigger``, ``hd_strategy`` decides:
    ``crop`` inpaints a crop around each hole region with ``hd_margin`` pixels of context, at
    the image's own resolution; a crop longer than ``hd_size`` is split into overlapping tiles
    of at most ``hd_size`` (each keeps the fill of its own part, read with ``hd_margin`` of
    context around it), so a hair-thin hole is never shrunk away. ``resize`` infers a copy
    whose longest side is ``hd_size`` (the one strategy that changes the resolution, for users
    who ask for it), ``original`` the whole image in one pass. Only hole pixels are replaced.

    A model call holds at most ``batch_size`` same-size inputs and at most ``hd_size``²
    pixels (a single larger input, an image under the trigger, still runs on its own): the
    model's memory, which grows with the pixels of a call, stays that of one hd_size input.
    """

    masks: Path | None = None
    mask: Path | None = None
    mask_from: str = "masks"
    invert_mask: bool = False
    resize_masks: bool = False
    grow_mask: int = 0  # pixels each hole is grown by (after resizing)
    recursive: bool = False
    format: str = "keep"
    quality: int | None = None
    hd_strategy: str = "crop"
    hd_trigger: int = 1024
    hd_margin: int = 128
    hd_size: int = 768
    batch_size: int = 4
    workers: int = 4
    skip_existing: bool = True
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    shard: tuple[int, int] | None = None  # (k, n): the k-th of n shares, 1 ≤ k ≤ n
    concat: bool = False
    detector: Path | None = None  # a detector checkpoint (or .onnx); None: the bundled one
    threshold: float = 0.5
    grow: int = 0  # pixels detected damage is grown by (part of the kept mask)
    min_area: int = 0
    tile: int = 768  # detection.DEFAULT_TILE
    precision: str = "auto"  # the detector's (detect.DEFAULT_PRECISION): bf16 where native
    mask_color: str | None = None
    color_tolerance: float = 40.0

    def validate(self) -> None:
        """Raise :class:`ConfigError` for settings that cannot work together, before any file
        is read; where no mask source is given and a detector is at hand, choose detection."""
        self._check_mask_source()
        if self.mask_color is not None:
            self._check_painted_masks()
        if self.format not in FORMAT_CHOICES:
            choices = ", ".join(FORMAT_CHOICES)
            raise ConfigError(f"--format {self.format!r}: choose one of {choices}")
        if self.quality is not None and not 1 <= self.quality <= 100:
            raise ConfigError(f"--quality {self.quality}: must be between 1 and 100")
        if self.hd_strategy not in STRATEGIES:
            raise ConfigError(
                f"--hd-strategy {self.hd_strategy!r}: choose one of {', '.join(STRATEGIES)}"
            )
        for name in ("hd_trigger", "hd_size", "batch_size", "workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if self.hd_margin < 0:
            raise ConfigError("--hd-margin must be ≥ 0")
        if self.grow_mask < 0:
            raise ConfigError("--grow-mask must be ≥ 0")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise ConfigError("--max-pixels must be positive")
        if self.shard is not None:
            k, n = self.shard
            if not 1 <= k <= n:
                raise ConfigError(f"--shard {k}/{n}: K must be between 1 and N")

    def _check_mask_source(self) -> None:
        """Exactly one mask source, or none where the detector can stand in."""
        from ..detect import bundled_detector_installed, check_detection_settings

        if self.mask_from not in MASK_SOURCES:
            raise ConfigError(f"--mask-from {self.mask_from!r}: choose masks, alpha or detect")
        sources = [self.masks is not None, self.mask is not None, self.mask_from == "alpha",
                   self.mask_from == "detect"]
        if sum(sources) > 1:
            raise ConfigError("give only one of --masks DIR, --mask FILE, --mask-from alpha and "
                              "--mask-from detect")
        can_detect = self.detector is not None or bundled_detector_installed()
        if sum(sources) == 0:
            if not can_detect:
                raise ConfigError("no masks given: pass --masks DIR, --mask FILE or --mask-from "
                                  "alpha, or --detector CKPT to find the damage (no bundled "
                                  "detector is installed)")
            self.mask_from = "detect"
        if self.mask_from == "detect":
            if not can_detect:
                raise ConfigError("--mask-from detect: no bundled detector is installed; pass "
                                  "--detector CKPT")
            check_detection_settings(self.threshold, self.grow, self.min_area, self.tile)
        elif self.detector is not None:
            raise ConfigError("--detector finds the masks: it does not go with --masks, --mask "
                              "or --mask-from alpha")

    def _check_painted_masks(self) -> None:
        """--mask-color: painted copies of the images, given as mask files."""
        if self.masks is None and self.mask is None:
            raise ConfigError("--mask-color reads painted copies of the images given with "
                              "--masks DIR (or --mask FILE)")
        if self.invert_mask:
            raise ConfigError("--invert-mask does not apply to painted masks (--mask-color): "
                              "the painted pixels are the holes")
        parse_color(self.mask_color)
        if not 0 <= self.color_tolerance <= 442:
            raise ConfigError(f"--color-tolerance {self.color_tolerance:g}: must be between "
                              "0 and 442 (the RGB distance from black to white)")


# ----------------------------------------------------------------------------- sharding


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/8"`` → (2, 8): the second of eight shares."""
    try:
        k, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: expected K/N, e.g. 1/4") from None
    if not 1 <= k <= n:
        raise ConfigError(f"--shard {text}: K must be between 1 and N")
    return k, n


def shard_for_rank(shard: tuple[int, int] | None,
                   environ: Mapping[str, str] = os.environ) -> tuple[int, int] | None:
    """Combine ``--shard K/N`` with a torchrun rank (RANK / WORLD_SIZE in the environment).

    Under torchrun each rank takes its own share of the given shard (or of everything), so
    ``--shard 2/3`` on three machines × four GPUs splits the folder into twelve shares, each
    file in exactly one.
    """
    try:
        world = int(environ.get("WORLD_SIZE", "1"))
        rank = int(environ.get("RANK", "0"))
    except ValueError:
        raise ConfigError("RANK / WORLD_SIZE in the environment are not integers") from None
    if world <= 1:
        return shard
    if not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} is outside WORLD_SIZE={world}")
    k, n = shard or (1, 1)
    return (k - 1) * world + rank + 1, n * world


def in_shard(index: int, shard: tuple[int, int] | None) -> bool:
    """File ``index`` (in sorted relative-path order) is in shard k of n if index ≡ k-1 mod n."""
    return shard is None or index % shard[1] == shard[0] - 1


def rank_device(device: str, environ: Mapping[str, str] = os.environ) -> str:
    """Under torchrun, ``auto``/``cuda`` means this rank's own GPU (LOCAL_RANK)."""
    import torch

    local = environ.get("LOCAL_RANK")
    if local is None or device not in ("auto", "cuda") or not torch.cuda.is_available():
        return device
    return f"cuda:{int(local) % torch.cuda.device_count()}"
