"""The inpainters evaluate scores: checkpoints, ONNX files and named methods, in variants.

Every one keeps the :class:`pconv_cli.inpainter.Inpainter` contract, so the runner reads
``batched``, ``backend`` and ``source`` from it directly. Model backends are imported here only
when a model is asked for: naming classical methods loads no torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..classical import CLASSICAL_METHODS, classical_inpainter
from ..errors import ConfigError
from ..inpainter import Inpainter
from ..routing import (
    AUTO,
    DEFAULT_THIN_WIDTH,
    RoutedInpainter,
    check_thin_width,
    parse_method,
)

KNOWN_METHODS = ("pconv", *CLASSICAL_METHODS)
# The model and a classical method routed by hole width (pconv_cli.routing): auto, auto:fsr, ...
ROUTED_METHODS = (AUTO, f"{AUTO}:NAME")


# --------------------------------------------------------------------------- parsing


def parse_methods(values: str | Sequence[str] | None) -> list[str]:
    """Method names from ``"telea,ns"`` (or several such strings), checked, duplicates dropped."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    names: list[str] = []
    for value in values:
        for name in (part.strip().lower() for part in value.split(",")):
            if not name:
                continue
            if is_routed(name):
                parse_method(name)  # a thin method that auto does not take is refused here
            elif name not in KNOWN_METHODS:
                raise ConfigError(
                    f"unknown method {name!r}; known methods: "
                    f"{', '.join((*KNOWN_METHODS, *ROUTED_METHODS))} "
                    "(a checkpoint goes to --model, an ONNX file to --onnx)"
                )
            if name not in names:
                names.append(name)
    return names


def is_routed(name: str) -> bool:
    """``auto`` or ``auto:NAME``: the bundled model with a classical method for thin holes."""
    return name.partition(":")[0] == AUTO


def _listed(value: str | float | Sequence) -> list:
    """``"1, 4"`` → ["1", "4"]; one number → [it]; a sequence → its items."""
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return list(value)


def parse_thin_widths(value: str | float | Sequence[float]) -> list[float]:
    """Thin-width thresholds (px) from ``"2,6"`` (or a number or a list), checked, duplicates
    dropped."""
    widths: list[float] = []
    for part in _listed(value):
        try:
            width = float(part)
        except ValueError:
            raise ConfigError(f"--thin-width {value}: give widths in pixels, such as 6 or "
                              "2,6,10") from None
        if check_thin_width(width) not in widths:
            widths.append(width)
    if not widths:
        raise ConfigError("--thin-width: give widths in pixels, such as 6 or 2,6,10")
    return widths


def parse_flips(value: str | int | Sequence[int]) -> list[int]:
    """Flip-ensemble sizes from ``"1,4"`` (or an int or a list), checked, duplicates dropped."""
    from ..inference import check_flips, ensemble_sizes

    flips: list[int] = []
    for part in _listed(value):
        try:
            number = int(part)
        except ValueError:
            raise ConfigError(
                f"--flips {value}: give 1, {ensemble_sizes()}, or a list such as 1,4") from None
        if check_flips(number) not in flips:
            flips.append(number)
    if not flips:
        raise ConfigError(f"--flips: give 1, {ensemble_sizes()}, or a list such as 1,4")
    return flips


def parse_blends(value: str | Sequence[str]) -> list[str]:
    """Seam-blending choices from ``"poisson,none"`` (or a list), checked, duplicates dropped."""
    from ..seams import check_blend

    parts = value.split(",") if isinstance(value, str) else list(value)
    blends: list[str] = []
    for part in (p.strip() for p in parts):
        if part and check_blend(part) not in blends:
            blends.append(part)
    if not blends:
        raise ConfigError("--blend: give poisson or none, or both as poisson,none")
    return blends


# --------------------------------------------------------------------------- names


def routed_name(name: str, thin_width: float) -> str:
    """An ``auto`` method's name in a report: ``-wN`` added where its thin width is not
    restore's default (``auto:fsr-w2``)."""
    return name if thin_width == DEFAULT_THIN_WIDTH else f"{name}-w{thin_width:g}"


def variant_name(name: str, flips: int, blend: str = "poisson") -> str:
    """A model's name in a report: ``pconv`` as restore runs it by default; ``-flips4`` for a
    4-flip ensemble, ``-noblend`` without seam blending (``pconv-flips4-noblend``)."""
    return name + (f"-flips{flips}" if flips > 1 else "") + ("-noblend" if blend == "none" else "")


def file_method_names(paths: Sequence[Path], reserved: Sequence[str] = ()) -> list[str]:
    """Names for model files: their stems, lengthened only as far as needed to differ."""
    paths = [Path(p) for p in paths]
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise ConfigError("the same model file is given twice")
    styles = (lambda p: p.stem, lambda p: p.name, lambda p: f"{p.parent.name}/{p.name}", str)
    for style in styles:
        names = [style(p) for p in paths]
        if len(set(names)) == len(names) and not set(names) & set(reserved):
            return names
    return [str(p) for p in resolved]


def default_methods() -> list[str]:
    """What evaluate scores when given no model and no method: the bundled model and the
    classical methods that are installed (telea and ns need OpenCV)."""
    try:
        import cv2  # noqa: F401
    except ImportError:
        opencv = []
    else:
        opencv = ["telea", "ns"]
    return ["pconv", *opencv, "biharmonic"]


# --------------------------------------------------------------------------- building


def build_methods(
    models: Sequence[str | os.PathLike] = (),
    onnx: Sequence[str | os.PathLike] = (),
    methods: Sequence[str] = (),
    device: str = "auto",
    flips: str | Sequence[int] = (1,),
    blend: str | Sequence[str] = ("poisson",),
    thin_width: str | float | Sequence[float] = (DEFAULT_THIN_WIDTH,),
) -> list[Inpainter]:
    """Inpainters for checkpoints, ONNX files and named methods (see :data:`KNOWN_METHODS`).

    Each model (a checkpoint, an ONNX file or ``pconv``) is scored once per combination of
    ``flips`` (a list, or ``"1,4"`` as ``--flips`` takes it: alone for 1, as a flip ensemble,
    ``inference.FLIP_ENSEMBLES``, for 2, 4 and 8) and ``blend`` (``"poisson,none"``: with and
    without seam blending, :mod:`pconv_cli.seams`), named by :func:`variant_name`. Classical
    methods are built first, so a missing optional dependency fails before any model is loaded.
    ``auto`` and ``auto:NAME`` (:mod:`pconv_cli.routing`) are the bundled model in each of
    those variants with a classical method for the hole regions up to each ``thin_width``
    (a list, or ``"2,6"``) px wide, named by :func:`routed_name` and :func:`variant_name`.
    Given nothing at all, it builds :func:`default_methods`.
    """
    names = parse_methods(list(methods))
    variants = [(f, b) for f in parse_flips(flips) for b in parse_blends(blend)]
    widths = parse_thin_widths(thin_width)
    if not (models or onnx or names):
        names = default_methods()
    classical = {n: classical_inpainter(n) for n in names if n in CLASSICAL_METHODS}
    thin = {n: classical_inpainter(parse_method(n)[1]) for n in names if is_routed(n)}
    files = [Path(p) for p in [*models, *onnx]]
    file_names = file_method_names(files, reserved=names)
    built: list[Inpainter] = []
    for i, (path, name) in enumerate(zip(files, file_names, strict=True)):
        make = _torch_inpainter if i < len(models) else _onnx_inpainter
        built += [make(path, device, variant_name(name, f, b), f, b) for f, b in variants]
    for name in names:
        if name == "pconv":
            from ..inference import default_model_path

            built += [_torch_inpainter(default_model_path(), device, variant_name("pconv", f, b),
                                       f, b) for f, b in variants]
        elif is_routed(name):
            from ..inference import default_model_path

            for f, b in variants:
                model = _torch_inpainter(default_model_path(), device, variant_name("pconv", f, b),
                                         f, b)
                built += [RoutedInpainter(model, thin[name], w,
                                          name=variant_name(routed_name(name, w), f, b))
                          for w in widths]
        else:
            built.append(classical[name])
    return built


def _torch_inpainter(path: Path, device: str, name: str, flips: int, blend: str) -> Inpainter:
    from ..inference import TorchInpainter

    return TorchInpainter.from_checkpoint(path, device, name=name, flips=flips, blend=blend)


def _onnx_inpainter(path: Path, device: str, name: str, flips: int, blend: str) -> Inpainter:
    from ..inference import OnnxInpainter  # it reports a missing ONNX Runtime itself

    return OnnxInpainter(path, device=device, name=name, flips=flips, blend=blend)
