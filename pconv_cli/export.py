"""Export a checkpoint to ONNX, and prove that the file computes what torch computes.

The exported graph takes ``image`` (N×3×H×W float in [0, 1]) and ``mask`` (N×1×H×W,
1 = valid, 0 = hole) and returns the composite in [0, 1]. Batch, height and width are dynamic
(multiples of 2^depth) unless a static size is asked for.

The legacy TorchScript exporter is used on purpose: the dynamo exporter fixes size-1 dims and
its optimiser folds away epsilons (an all-NaN model for a partial conv written with ``+eps``).
Every export is checked numerically, at the traced size *and* a second, different size (a
frozen shape shows up there), before it is moved into place.

A damage-detector checkpoint exports to a graph that takes ``image`` alone and returns
``damage``: N×1×H×W probabilities (the sigmoid of the logits), H and W multiples of 2^depth
and dynamic; ``pconv detect --onnx`` runs it in tiles, as the torch detector.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import __version__
from .checkpoint import DETECTOR, load_checkpoint
from .core import PConvUNet, composite, nearest_valid_size
from .errors import ConfigError, ExportError, describe_exception
from .fileio import atomic_path

DEFAULT_OPSET = 17
# The goal for fp32 is 1e-4 (trained models land near 1e-6); the export fails only above 1e-3,
# since an untrained network's raw outputs reach the hundreds before the clamp to [0, 1] and
# float32 rounding grows with them.
FP32_GOAL = 1e-4
FP32_TOLERANCE = 1e-3
# fp16 carries ~3 decimal digits: a few 1e-3 on a trained model; NaN/inf is the real failure.
FP16_TOLERANCE = 5e-2
ONNX_FORMAT = "pconv-onnx"
ONNX_FORMAT_VERSION = "1"
MASK_CONVENTION = "1 = valid, 0 = hole"
INPAINTER_TITLE = "Partial-convolution inpainting (Liu et al., ECCV 2018)"
# Training state that is not configuration (tensors, optimiser moments, RNG states).
_TRAIN_STATE_KEYS = {"optimizer", "scaler", "rng", "ema", "model", "scheduler"}


class DamageProbability(nn.Module):
    """What an exported detector computes: the damage probability of every pixel."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(image))


class CompositeModel(nn.Module):
    """What the ONNX file computes: the network's prediction pasted into the holes, in [0, 1]."""

    def __init__(self, model: PConvUNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        output = self.model(image, mask).clamp(0, 1)
        return composite(image, output, mask).clamp(0, 1)


@dataclass
class ParityCheck:
    """ONNX Runtime against torch (fp32) on one input shape."""

    batch: int
    height: int
    width: int
    max_abs_diff: float
    finite: bool

    @property
    def shape(self) -> str:
        return f"{self.batch}×3×{self.height}×{self.width}"


@dataclass
class ExportResult:
    path: Path
    opset: int
    precision: str  # "fp32" or "fp16"
    static_size: tuple[int, int] | None
    multiple: int
    provider: str
    tolerance: float
    checks: list[ParityCheck]
    metadata: dict[str, str] = field(default_factory=dict)
    kind: str = "inpainter"  # or "detector"

    @property
    def max_abs_diff(self) -> float:
        return max(c.max_abs_diff for c in self.checks)


def export_onnx(
    checkpoint: str | os.PathLike,
    output: str | os.PathLike,
    *,
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
    static_size: tuple[int, int] | None = None,
    tolerance: float | None = None,
    device: str = "cpu",
) -> ExportResult:
    """Export ``checkpoint`` to ``output`` and verify it; nothing is written if it fails.

    ``static_size``: (height, width) of a fixed-size export (``--static WxH`` parsed by
    :func:`pconv_cli.masks.parse_size`), None for dynamic sizes.

    The file is checked with ``onnx.checker`` and then run with ONNX Runtime on ``device``
    against the fp32 torch model at the traced size and at a second size (batch 2, another
    non-square multiple of 2^depth; for a static export the same size at batch 2). A max abs
    difference above ``tolerance`` (default 1e-3 in fp32, 5e-2 in fp16) or any NaN/inf raises
    :class:`ExportError`.
    """
    try:
        import onnx  # noqa: F401  (checked here, used by the steps below)
    except ImportError:
        raise ExportError("export needs the onnx package, which is not installed: "
                          "pip install onnx") from None

    if opset < 13:
        raise ConfigError(f"--opset {opset}: pconv needs opset 13 or newer (17 is tested)")
    ckpt = load_checkpoint(checkpoint)
    if ckpt.kind == DETECTOR:
        return _export_detector(ckpt, output, opset=opset, fp16=fp16, static_size=static_size,
                                tolerance=tolerance, device=device)
    model = CompositeModel(ckpt.build_model("cpu")).eval()
    multiple = ckpt.model_config.multiple
    if static_size is not None:
        _check_static_size(static_size, multiple, ckpt.model_config.depth)
    trace_size = static_size or (2 * multiple, 2 * multiple)
    second_size = static_size or (multiple, 3 * multiple)
    tolerance, output = _checked_tolerance_and_output(tolerance, fp16, output)

    metadata = _metadata(ckpt, fp16=fp16, static_size=static_size, opset=opset)
    with tempfile.TemporaryDirectory(prefix="pconv-export-") as scratch:
        traced = Path(scratch) / "traced.onnx"
        _trace(model, traced, trace_size, opset, dynamic=static_size is None)
        checks, provider = _check_and_write(
            traced, output, fp16=fp16, metadata=metadata, tolerance=tolerance,
            verify=lambda candidate: verify_onnx(
                candidate, model, [(1, *trace_size), (2, *second_size)], device=device),
        )
    return ExportResult(
        path=output, opset=opset, precision="fp16" if fp16 else "fp32",
        static_size=static_size, multiple=multiple, provider=provider, tolerance=tolerance,
        checks=checks, metadata=metadata,
    )


def _export_detector(ckpt: Any, output: str | os.PathLike, *, opset: int, fp16: bool,
                     static_size: tuple[int, int] | None, tolerance: float | None,
                     device: str) -> ExportResult:
    """:func:`export_onnx` for a damage detector: dynamic batch, height and width, checked
    against torch at two sizes."""
    from .detection import tile_margin

    if static_size is not None:
        raise ConfigError("--static: a detector runs on tiles of any size; export it without "
                          "--static")
    network = ckpt.build_model("cpu")
    model = DamageProbability(network).eval()
    multiple = ckpt.model_config.multiple
    tolerance, output = _checked_tolerance_and_output(tolerance, fp16, output)
    metadata = {
        **_common_metadata(ckpt, fp16=fp16, opset=opset),
        "model_kind": DETECTOR,
        "tile_margin": str(tile_margin(network)),
        "inputs": f"image: N×3×H×W float32 RGB in [0,1]; H, W multiples of {multiple} (pad "
                  "by repeating the last row and column)",
        "output": "damage: N×1×H×W float32, the probability that each pixel is damaged "
                  "(a hole to fill)",
        "static_size": "",
    }
    shapes = [(1, 2 * multiple, 2 * multiple), (2, multiple, 3 * multiple)]
    with tempfile.TemporaryDirectory(prefix="pconv-export-") as scratch:
        traced = Path(scratch) / "traced.onnx"
        image = torch.rand(1, 3, 2 * multiple, 2 * multiple,
                           generator=torch.Generator().manual_seed(0))
        _trace(model, traced, (image,), opset, dynamic=True, input_names=["image"],
               output_names=["damage"])
        checks, provider = _check_and_write(
            traced, output, fp16=fp16, metadata=metadata, tolerance=tolerance,
            title="Damage detector for pconv (finds the holes to inpaint)",
            verify=lambda candidate: verify_detector_onnx(candidate, model, shapes,
                                                          device=device),
        )
    return ExportResult(path=output, opset=opset, precision="fp16" if fp16 else "fp32",
                        static_size=None, multiple=multiple, provider=provider,
                        tolerance=tolerance, checks=checks, metadata=metadata, kind=DETECTOR)


def verify_detector_onnx(path: str | os.PathLike, reference: nn.Module,
                         shapes: list[tuple[int, int, int]], *, device: str = "cpu"
                         ) -> tuple[list[ParityCheck], str]:
    """An exported detector against ``reference`` (fp32 torch probabilities) on each (N, H, W)
    shape, with seeded random images; and the execution provider used."""
    from .detect import OnnxDetector

    session = OnnxDetector(path, device).session
    checks = []
    for batch, height, width in shapes:
        image = np.random.default_rng(height * 1000 + width).random(
            (batch, 3, height, width), dtype=np.float32)
        with torch.inference_mode():
            expected = reference(torch.from_numpy(image)).numpy()
        checks.append(_parity(session, {"image": image}, expected, batch, height, width))
    return checks, session.get_providers()[0]


def _check_static_size(size: tuple[int, int], multiple: int, depth: int) -> None:
    height, width = size
    if height % multiple or width % multiple:
        raise ConfigError(
            f"--static {width}x{height}: sides must be multiples of {multiple} (2^depth, depth "
            f"{depth}); nearest valid size {nearest_valid_size(width, multiple)}x"
            f"{nearest_valid_size(height, multiple)}"
        )


def _trace(model: nn.Module, path: Path, size: tuple[int, int] | tuple[torch.Tensor, ...],
           opset: int, *, dynamic: bool, input_names: list[str] | None = None,
           output_names: list[str] | None = None) -> None:
    """Trace ``model`` to ``path``: at ``size`` (an image and a mask), or with the given
    example inputs (then named by ``input_names``)."""
    if isinstance(size[0], torch.Tensor):
        inputs = tuple(size)
    else:
        height, width = size
        generator = torch.Generator().manual_seed(0)
        image = torch.rand(1, 3, height, width, generator=generator)
        mask = (torch.rand(1, 1, height, width, generator=generator) > 0.3).float()
        inputs = (image, mask)
    input_names = input_names or ["image", "mask"]
    output_names = output_names or ["composite"]
    spatial = {0: "batch", 2: "height", 3: "width"} if dynamic else {0: "batch"}
    axes = {name: spatial for name in [*input_names, *output_names]}
    with warnings.catch_warnings():
        # Shape checks in forward() are Python conditionals the tracer records as constants:
        # that is intended (they guard the caller, not the graph), so its warnings are noise.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            torch.onnx.export(
                model, inputs, str(path), dynamo=False, opset_version=opset,
                input_names=input_names, output_names=output_names, dynamic_axes=axes,
                do_constant_folding=True,
            )
        except Exception as exc:  # noqa: BLE001 - the exporter raises many unrelated types
            raise ExportError(f"torch.onnx.export failed at opset {opset}: "
                              f"{describe_exception(exc, limit=200)}") from None


def _to_fp16(proto: Any) -> Any:
    """Weights and compute in fp16; inputs and output stay fp32, so callers need not change."""
    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16
        from onnxruntime.transformers.onnx_model import OnnxModel
    except ImportError:
        raise ExportError("--fp16 needs onnxruntime's float16 converter; reinstall "
                          "onnxruntime") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        # max_finite_val: the window sizes sum(1) of wide layers exceed the converter's default
        # clamp of 1e4; fp16 itself holds up to 65504.
        converted = convert_float_to_float16(proto, keep_io_types=True, max_finite_val=65504.0)
    # The converter appends its input casts at the end of the node list; ONNX wants every
    # node after the producers of its inputs.
    try:
        OnnxModel.graph_topological_sort(converted.graph, is_deterministic=True)
    except RuntimeError:
        raise ExportError("the fp16 graph has a cycle or a missing input; export without "
                          "--fp16") from None
    return converted


def _check_and_write(traced: Path, output: Path, *, fp16: bool, metadata: dict[str, str],
                     tolerance: float, verify: Callable[[Path], tuple[list[ParityCheck], str]],
                     title: str = INPAINTER_TITLE) -> tuple[list[ParityCheck], str]:
    """The traced graph → (fp16) → metadata → ``onnx.checker`` → ``verify`` against torch
    within ``tolerance`` → ``output``, written only if every step passed; returns the checks
    and the execution provider."""
    import onnx

    proto = onnx.load(str(traced))
    if fp16:
        proto = _to_fp16(proto)
    _set_metadata(proto, metadata, title=title)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported graph is invalid: {describe_exception(exc)}"
                          ) from None
    candidate = traced.with_name("model.onnx")
    onnx.save(proto, str(candidate))
    checks, provider = verify(candidate)
    _enforce(checks, tolerance, fp16)
    with atomic_path(output) as tmp:
        tmp.write_bytes(candidate.read_bytes())
    return checks, provider


def _common_metadata(ckpt: Any, *, fp16: bool, opset: int) -> dict[str, str]:
    """What every pconv ONNX file records: format, versions, the model's shape and training."""
    config = ckpt.model_config
    meta = {
        "pconv_format": ONNX_FORMAT,
        "pconv_format_version": ONNX_FORMAT_VERSION,
        "pconv_version": __version__,
        "checkpoint_pconv_version": ckpt.pconv_version,
        "depth": str(config.depth),
        "width": str(config.width),
        "multiple": str(config.multiple),
        "value_range": "[0,1]",
        "precision": "fp16" if fp16 else "fp32",
        "opset": str(opset),
        "model_config": json.dumps(config.to_dict(), sort_keys=True),
    }
    train = _training_config(ckpt.train)
    if train:
        meta["train_config"] = json.dumps(train, sort_keys=True, default=str)
    return meta


def _metadata(ckpt: Any, *, fp16: bool, static_size: tuple[int, int] | None,
              opset: int) -> dict[str, str]:
    multiple = ckpt.model_config.multiple
    return {
        **_common_metadata(ckpt, fp16=fp16, opset=opset),
        "mask_convention": MASK_CONVENTION,
        "inputs": "image: N×3×H×W float32 in [0,1]; mask: N×1×H×W float32, "
                  f"{MASK_CONVENTION}; H, W multiples of {multiple}",
        "output": "composite: N×3×H×W float32 in [0,1] (known pixels kept, holes predicted)",
        "static_size": f"{static_size[1]}x{static_size[0]}" if static_size else "",  # WxH
    }


def _training_config(train: dict[str, Any]) -> dict[str, Any]:
    """The JSON-representable part of a checkpoint's training record (no tensors or states)."""
    kept: dict[str, Any] = {}
    for key, value in (train or {}).items():
        if key in _TRAIN_STATE_KEYS:
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        kept[key] = value
    return kept


def _set_metadata(proto: Any, metadata: dict[str, str], *, title: str) -> None:
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "pconv"
    proto.producer_version = __version__
    proto.doc_string = title + ". " + metadata["inputs"] + ". Output " + metadata["output"] + "."


def verification_inputs(batch: int, height: int, width: int,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded test inputs: random pixels and a mask with rectangular holes and speckles.

    The large holes make whole windows invalid in the deep layers (the ``sum(M) = 0`` branch),
    the speckles exercise partial windows everywhere.
    """
    rng = np.random.default_rng(seed)
    image = rng.random((batch, 3, height, width), dtype=np.float32)
    mask = (rng.random((batch, 1, height, width)) > 0.1).astype(np.float32)
    for n in range(batch):
        for _ in range(3):
            h = rng.integers(height // 8, height // 2 + 1)
            w = rng.integers(width // 8, width // 2 + 1)
            top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
            mask[n, 0, top:top + h, left:left + w] = 0
    return image, mask


def verify_onnx(
    path: str | os.PathLike,
    reference: nn.Module,
    shapes: list[tuple[int, int, int]],
    *,
    device: str = "cpu",
) -> tuple[list[ParityCheck], str]:
    """Run ``path`` with ONNX Runtime and ``reference`` (fp32 torch) on each (N, H, W) shape.

    Returns one :class:`ParityCheck` per shape and the execution provider actually used.
    """
    from .inference import OnnxInpainter

    session = OnnxInpainter(path, device).session
    provider = session.get_providers()[0]
    checks = []
    for batch, height, width in shapes:
        image, mask = verification_inputs(batch, height, width)
        with torch.inference_mode():
            expected = reference(torch.from_numpy(image), torch.from_numpy(mask)).numpy()
        checks.append(_parity(session, {"image": image, "mask": mask}, expected, batch, height,
                              width))
    return checks, provider


def _checked_tolerance_and_output(tolerance: float | None, fp16: bool,
                                  output: str | os.PathLike) -> tuple[float, Path]:
    """The parity tolerance (its default follows the precision) and the .onnx path."""
    tolerance = tolerance if tolerance is not None else (FP16_TOLERANCE if fp16 else FP32_TOLERANCE)
    if tolerance < 0:
        raise ConfigError("tolerance must be ≥ 0")
    output = Path(output)
    if output.suffix.lower() != ".onnx":
        raise ConfigError(f"{output}: the output name should end in .onnx")
    return tolerance, output


def _parity(session, feeds: dict[str, np.ndarray], expected: np.ndarray,  # noqa: ANN001
            batch: int, height: int, width: int) -> ParityCheck:
    """Run the exported graph on ``feeds`` and measure it against torch's ``expected``."""
    try:
        (got,) = session.run(None, feeds)
    except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
        raise ExportError(
            f"ONNX Runtime failed at {batch}×3×{height}×{width}: {describe_exception(exc)}"
        ) from None
    got = got.astype(np.float32)
    finite = bool(np.isfinite(got).all())
    diff = float(np.abs(np.nan_to_num(got, nan=np.inf) - expected).max())
    return ParityCheck(batch, height, width, diff, finite)


def _enforce(checks: list[ParityCheck], tolerance: float, fp16: bool) -> None:
    for check in checks:
        if not check.finite:
            raise ExportError(
                f"the exported model gives NaN/inf at {check.shape}"
                + (" in fp16 (a value overflows fp16; export without --fp16)" if fp16 else "")
            )
        if check.max_abs_diff > tolerance:
            raise ExportError(
                f"ONNX Runtime differs from torch by {check.max_abs_diff:.3g} at {check.shape} "
                f"(tolerance {tolerance:g}); the file was not written"
            )
