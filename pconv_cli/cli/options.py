"""Options that several commands take, declared once (each command picks its help panel)."""

from __future__ import annotations

from typing import Any

import typer

from ..detect import DEFAULT_TILE
from ..imaging import DEFAULT_MAX_PIXELS


def images_in_argument() -> Any:
    return typer.Argument(metavar="IN", help="Folder of damaged images (or one image).")


def device_option(panel: str) -> Any:
    return typer.Option(help="auto, cpu or cuda; cuda without a usable GPU is an error.",
                        rich_help_panel=panel)


def recursive_option(panel: str) -> Any:
    return typer.Option("--recursive", "-r", help="Include subfolders; OUT mirrors the tree.",
                        rich_help_panel=panel)


def max_pixels_option(panel: str) -> Any:
    return typer.Option(min=1, help="Refuse images with more pixels (decompression-bomb guard).",
                        rich_help_panel=panel)


def threshold_option(panel: str) -> Any:
    return typer.Option(help="Damage probability above which a pixel is a hole (lower: more "
                             "sensitive).", rich_help_panel=panel)


def min_area_option(panel: str) -> Any:
    return typer.Option("--min-area", metavar="PX", min=0,
                        help="Drop detected regions of fewer pixels (before --grow).",
                        rich_help_panel=panel)


def tile_option(panel: str) -> Any:
    return typer.Option(metavar="PX", min=1, help="Detection tile side: memory grows with its "
                        "square, not with the image; the masks are the same at any tile.",
                        rich_help_panel=panel)


def precision_option(panel: str) -> Any:
    return typer.Option(help="The torch detector's arithmetic: auto is bf16 where the CPU or "
                        "GPU computes it natively (about twice as fast; the detector was "
                        "trained in it), else fp32.", rich_help_panel=panel)


__all__ = ["DEFAULT_MAX_PIXELS", "DEFAULT_TILE", "device_option", "images_in_argument",
           "max_pixels_option", "min_area_option", "precision_option", "recursive_option",
           "threshold_option", "tile_option"]
