"""Batch damage detection: a folder of images in, a folder of hole masks out.

``pconv detect IN OUT`` writes, for every image under IN, ``OUT/<relative folder>/<stem>.png``:
an 8-bit mask, white = hole (damage), the size of the image as ``restore`` reads it (EXIF
orientation applied). The masks can be checked, edited and handed to ``restore --masks OUT``.
``restore`` without a mask option detects its masks the same way (:func:`find_damage`).

Files are found, read and reported as by ``restore`` (:mod:`pconv_cli.restore`): the same
discovery, formats, ``failures.csv``, skip-existing, settings record and exit codes. Memory is
bounded by the tile, not the image: the image is decoded to its native pixels (8-bit stays
8-bit) and converted to float one tile window at a time.

This module imports torch only where a detector is loaded or run.
"""

from __future__ import annotations

import csv
import io
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import CheckpointError, ConfigError, InputError, WeightsUnavailableError
from .fileio import atomic_path, atomic_write_text
from .imaging import DEFAULT_MAX_PIXELS, ImageFile, model_rgb, pixel_limit, read_image
from .onnx_session import open_session
from .restore import (
    PREVIEW_DIR,
    FileResult,
    RestoreOptions,
    RestoreReport,
    RestoreTask,
    check_output_settings,
    failure_result,
    file_digest,
    plan,
    write_failures,
)

if TYPE_CHECKING:
    from .detection import DamageRegions

DEFAULT_DETECTOR_PATH = Path(__file__).parent / "weights" / "detector.pt"
# pconv_cli.detection.DEFAULT_TILE, written out because that module loads torch (a test keeps
# the two equal).
DEFAULT_TILE = 768
DEFAULT_THRESHOLD = 0.5
# pconv_cli.detection.PRECISIONS, for the same reason: auto = bf16 where computed natively.
PRECISIONS = ("auto", "fp32", "bf16")
DEFAULT_PRECISION = "auto"
DETECT_RECORD = ".pconv-detect.json"  # in OUT: the settings its masks were detected with
DETECT_CSV = "detect.csv"
CSV_COLUMNS = ("file", "mask", "width", "height", "damaged_fraction", "regions")
OVERLAY_COLOR = (255, 0, 255)  # magenta: rare in photographs, plain on any of them
OVERLAY_SIDE = 2048  # longest side of a preview; damage is max-pooled, so a hair stays visible


# ----------------------------------------------------------------------------- detectors


def bundled_detector_installed() -> bool:
    return DEFAULT_DETECTOR_PATH.is_file()


def default_detector_path(option: str = "--detector CKPT") -> Path:
    """The bundled detector; where none is installed, one line naming ``option``."""
    if not bundled_detector_installed():
        raise WeightsUnavailableError(f"no bundled detector is installed; pass {option} "
                                      "(a detector checkpoint from pconv train --task detect)")
    return DEFAULT_DETECTOR_PATH


class _Detector:
    """What the torch and ONNX Runtime detectors share: tiling over native pixels.

    One detection runs at a time (a lock): restore calls it from its reader threads, and the
    memory it needs is that of one tile.
    """

    name: str
    backend: str
    multiple: int
    margin: int
    sha256: str | None = None
    precision = "fp32"  # what it computes in: "fp32" or "bf16"

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def _window(self, rgb: np.ndarray) -> np.ndarray:  # h×w×3 float32 → h×w probabilities
        raise NotImplementedError

    def probabilities(self, image: ImageFile | np.ndarray, *, tile: int = DEFAULT_TILE
                      ) -> np.ndarray:
        """Damage probability per pixel (H×W float32) of an :class:`ImageFile` (any mode,
        8 or 16 bits) or an H×W×3 RGB array (uint8, uint16 or float in [0, 1])."""
        from .detection import tiled_probabilities

        if isinstance(image, ImageFile):
            pixels, mode = image.pixels, image.mode
        else:
            pixels, mode = np.asarray(image), "RGB"
            if pixels.ndim != 3 or pixels.shape[2] != 3:
                raise InputError(f"expected an H×W×3 image, got shape {pixels.shape}")
            if np.issubdtype(pixels.dtype, np.floating):
                pixels = pixels.astype(np.float32, copy=False)

        def to_rgb(window: np.ndarray) -> np.ndarray:
            if window.dtype == np.float32:
                return window
            return model_rgb(window, mode)

        with self._lock:
            return tiled_probabilities(self._window, pixels, tile=tile, multiple=self.multiple,
                                       margin=self.margin, to_rgb=to_rgb)


class TorchDetector(_Detector):
    """A :class:`~pconv_cli.core.detector.DamageDetector` in eval mode on one device."""

    def __init__(self, model, device: str = "cpu", name: str = "detector",  # noqa: ANN001
                 precision: str = "fp32") -> None:
        super().__init__()
        import torch

        from .detection import resolve_precision, tile_margin
        from .devices import resolve_device

        self.device = resolve_device(device) if isinstance(device, str) else device
        self.model = model.eval().to(self.device, memory_format=torch.channels_last)
        self.multiple = model.config.multiple
        self.margin = tile_margin(model)
        self.name = name
        self.precision = resolve_precision(precision, self.device)  # "fp32" or "bf16"
        self.backend = f"torch {self.device.type}" + (", bf16" if self.precision == "bf16"
                                                     else "")

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str = "auto",
                        precision: str = "fp32") -> TorchDetector:
        from .checkpoint import load_detector

        detector = cls(load_detector(path), device, Path(path).stem, precision)
        detector.sha256 = file_digest(path)
        return detector

    def _window(self, rgb: np.ndarray) -> np.ndarray:
        from .detection import _probabilities_of_window

        return _probabilities_of_window(self.model, rgb, self.device, self.precision)


class OnnxDetector(_Detector):
    """A detector exported by ``pconv export DETECTOR.pt --onnx``, run with ONNX Runtime.

    The graph takes ``image`` (N×3×H×W in [0, 1], sides multiples of ``multiple``) and returns
    ``damage`` (N×1×H×W probabilities); windows are padded by repeating their last row and
    column, as the torch detector pads them, so the two give the same masks.
    """

    def __init__(self, path: str | os.PathLike, device: str = "auto",
                 threads: int | None = None) -> None:
        super().__init__()
        path = Path(path)
        self.session, provider = open_session(path, device, threads)
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        kind = meta.get("model_kind", "inpainter" if "multiple" in meta else None)
        if kind is None:
            raise CheckpointError(f"{path}: not a pconv ONNX model (no pconv metadata); export "
                                  "it with pconv export")
        if kind != "detector":
            raise CheckpointError(f"{path} holds an inpainting model (fills holes), but a damage "
                                  "detector (finds holes) is needed here")
        try:
            self.multiple, self.margin = int(meta["multiple"]), int(meta["tile_margin"])
        except (KeyError, ValueError):
            raise CheckpointError(f"{path}: detector metadata without 'multiple' and "
                                  "'tile_margin'; export it again with pconv export") from None
        self._dtype = (np.float16 if self.session.get_inputs()[0].type == "tensor(float16)"
                       else np.float32)
        self.metadata = meta
        self.name = path.stem
        self.sha256 = file_digest(path)
        self.backend = f"onnxruntime {provider}"

    def _window(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        padded = np.pad(rgb, ((0, (-h) % self.multiple), (0, (-w) % self.multiple), (0, 0)),
                        mode="edge")
        batch = np.ascontiguousarray(padded.transpose(2, 0, 1)[None], dtype=self._dtype)
        (out,) = self.session.run(None, {"image": batch})
        return out[0, 0, :h, :w].astype(np.float32)


def load_damage_detector(model: str | os.PathLike | None = None,
                         onnx: str | os.PathLike | None = None, device: str = "auto", *,
                         option: str = "--detector CKPT", precision: str = "fp32") -> _Detector:
    """The detector for a checkpoint (``model``) or an ONNX file; the bundled one without
    either (``option`` is what the error names when none is installed). A ``model`` ending in
    ``.onnx`` is run with ONNX Runtime. ``precision`` (``auto``, ``fp32``, ``bf16``) is the
    torch detector's; an ONNX file runs in the precision it was exported in."""
    if model is not None and onnx is not None:
        raise ConfigError("give --model or --onnx, not both")
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision}: choose {', '.join(PRECISIONS)}")
    if onnx is None and model is not None and Path(model).suffix.lower() == ".onnx":
        model, onnx = None, model
    if onnx is not None:
        if precision == "bf16":
            raise ConfigError("--precision bf16 is for a detector checkpoint; an ONNX file "
                              "runs in the precision it was exported in")
        return OnnxDetector(onnx, device)
    return TorchDetector.from_checkpoint(model if model is not None
                                         else default_detector_path(option), device, precision)


def check_detection_settings(threshold: float, grow: int, min_area: int, tile: int) -> None:
    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"--threshold {threshold:g}: must be between 0 and 1 (exclusive)")
    if grow < 0:
        raise ConfigError("--grow must be ≥ 0")
    if min_area < 0:
        raise ConfigError("--min-area must be ≥ 0")
    if tile < 1:
        raise ConfigError("--tile must be at least 1")


def find_damage(detector: _Detector, image: ImageFile, *, threshold: float = DEFAULT_THRESHOLD,
                grow: int = 0, min_area: int = 0, tile: int = DEFAULT_TILE) -> DamageRegions:
    """The damage mask of one decoded image (True = damage), with its regions counted."""
    from .detection import damage_mask

    probabilities = detector.probabilities(image, tile=tile)
    return damage_mask(probabilities, threshold=threshold, min_area=min_area, grow=grow)


# ----------------------------------------------------------------------------- previews


def overlay(image: ImageFile, damage: np.ndarray, side: int = OVERLAY_SIDE) -> np.ndarray:
    """The image (8-bit RGB, longest side at most ``side``) with the damage tinted magenta.

    The image is subsampled, the damage max-pooled over the same blocks: a 1-pixel hair on a
    24 MP scan still shows.
    """
    step = max(1, -(-max(image.height, image.width) // side))
    rgb = np.rint(model_rgb(image.pixels[::step, ::step], image.mode) * 255).astype(np.uint8)
    h, w = rgb.shape[:2]
    padded = np.zeros((h * step, w * step), dtype=bool)
    padded[:damage.shape[0], :damage.shape[1]] = damage
    pooled = padded.reshape(h, step, w, step).any(axis=(1, 3))
    tinted = rgb.copy()
    color = np.array(OVERLAY_COLOR, dtype=np.float32)
    tinted[pooled] = np.rint(0.35 * rgb[pooled] + 0.65 * color).astype(np.uint8)
    return tinted


def write_overlay(path: Path, image: ImageFile, damage: np.ndarray) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(overlay(image, damage)).save(buffer, format="JPEG", quality=90)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def write_mask(path: Path, damage: np.ndarray) -> None:
    """An 8-bit PNG, white (255) = damage / hole, written atomically."""
    from .imaging import save_mask

    save_mask(path, ~damage)


# ----------------------------------------------------------------------------- batches


@dataclass
class DetectOptions:
    """Everything ``pconv detect`` can be told; the defaults are the CLI's."""

    threshold: float = DEFAULT_THRESHOLD
    grow: int = 0
    min_area: int = 0
    tile: int = DEFAULT_TILE
    precision: str = DEFAULT_PRECISION
    preview: bool = False
    recursive: bool = False
    skip_existing: bool = True
    max_pixels: int | None = DEFAULT_MAX_PIXELS

    def validate(self) -> None:
        check_detection_settings(self.threshold, self.grow, self.min_area, self.tile)
        if self.max_pixels is not None and self.max_pixels < 1:
            raise ConfigError("--max-pixels must be positive")


@dataclass
class DetectReport(RestoreReport):
    csv_path: Path | None = None

    @property
    def files_per_second(self) -> float:
        done = self.count("detected")
        return done / self.seconds if self.seconds > 0 else 0.0


def detect_settings(options: DetectOptions, detector: _Detector) -> dict:
    """The settings that decide a mask, keyed by their CLI option (not --tile: tiles give the
    same masks; not --device, --recursive, --max-pixels, --preview)."""
    return {"model": detector.name, "model-sha256": detector.sha256,
            "threshold": options.threshold, "grow": options.grow, "min-area": options.min_area,
            "precision": detector.precision}


def _read_rows(path: Path) -> dict[str, dict]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return {row["file"]: row for row in csv.DictReader(handle) if row.get("file")}
    except (OSError, csv.Error, KeyError, UnicodeDecodeError):
        return {}


def _write_rows(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


class DetectRun:
    """One detect run: planning on construction (IN, OUT, the file list; writes nothing, loads
    no model), then :meth:`execute`."""

    def __init__(self, input_path: str | os.PathLike, output: str | os.PathLike,
                 options: DetectOptions | None = None) -> None:
        self.options = options or DetectOptions()
        self.options.validate()
        self.input_path, self.output = Path(input_path), Path(output)
        # Planned as restore plans a run into PNG files: the same listing and checks, and the
        # output names are the mask names restore pairs with (a.png; a.jpg.png beside a.png).
        planning = RestoreOptions(format="png", recursive=self.options.recursive,
                                  max_pixels=self.options.max_pixels,
                                  concat=self.options.preview)
        with pixel_limit(self.options.max_pixels):
            self.tasks, self.failures, self.ignored, self.notes = plan(
                self.input_path, self.output, planning, command="detect")

    def _preview(self, task: RestoreTask) -> Path | None:
        if not self.options.preview:
            return None
        rel = task.output.relative_to(self.output)
        return self.output / PREVIEW_DIR / rel.with_suffix(".jpg")

    def _is_done(self, task: RestoreTask) -> bool:
        preview = self._preview(task)
        return task.output.exists() and (preview is None or preview.exists())

    def execute(self, detector: _Detector, *,
                on_start: Callable[[int, int], None] | None = None,
                on_result: Callable[[FileResult], None] | None = None) -> DetectReport:
        options = self.options
        started = time.perf_counter()
        check_output_settings(self.output, detect_settings(options, detector),
                              overwrite=not options.skip_existing, record_name=DETECT_RECORD,
                              made="masks detected")
        csv_path = self.output / DETECT_CSV
        old_rows = _read_rows(csv_path)
        rows: dict[str, dict] = {}
        results: list[FileResult] = []

        def emit(result: FileResult) -> None:
            results.append(result)
            if on_result is not None:
                on_result(result)

        interrupted, remaining = False, 0
        with pixel_limit(options.max_pixels):
            skip = [options.skip_existing and self._is_done(t) for t in self.tasks]
            todo = [t for t, done in zip(self.tasks, skip, strict=True) if not done]
            if on_start is not None:
                on_start(len(self.tasks) + len(self.failures), len(todo))
            for failure in self.failures:
                emit(failure)
            for task, done in zip(self.tasks, skip, strict=True):
                if done:
                    rel = task.relative.as_posix()
                    if rel in old_rows:
                        rows[rel] = old_rows[rel]
                    emit(FileResult(rel, "skipped", "mask exists", task.output))
            # Decode the next image while this one is detected: two images in memory at most.
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pconv-read")
            reading: Future | None = None
            try:
                for i, task in enumerate(todo):
                    if reading is None:
                        reading = pool.submit(read_image, task.source,
                                              max_pixels=options.max_pixels)
                    current, reading = reading, None
                    if i + 1 < len(todo):
                        reading = pool.submit(read_image, todo[i + 1].source,
                                              max_pixels=options.max_pixels)
                    result, row = self._detect_one(detector, task, current)
                    if row is not None:
                        rows[row["file"]] = row
                    emit(result)
            except KeyboardInterrupt:
                interrupted = True
                handled = {r.relative for r in results}
                remaining = sum(t.relative.as_posix() not in handled for t in todo)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        order = [t.relative.as_posix() for t in self.tasks]
        _write_rows(csv_path, [rows[f] for f in order if f in rows])
        report = DetectReport(results=results, backend=detector.backend,
                              seconds=time.perf_counter() - started, interrupted=interrupted,
                              remaining=remaining, ignored=self.ignored, notes=self.notes,
                              csv_path=csv_path)
        report.failures_csv = write_failures(self.output, report.failed, None)
        return report

    def _detect_one(self, detector: _Detector, task: RestoreTask, reading: Future
                    ) -> tuple[FileResult, dict | None]:
        options = self.options
        rel = task.relative.as_posix()
        try:
            image = reading.result()
            regions = find_damage(detector, image, threshold=options.threshold,
                                  grow=options.grow, min_area=options.min_area,
                                  tile=options.tile)
            write_mask(task.output, regions.mask)
            preview = self._preview(task)
            if preview is not None:
                write_overlay(preview, image, regions.mask)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
            return failure_result(task, exc), None
        row = {"file": rel, "mask": task.output.relative_to(self.output).as_posix(),
               "width": image.width, "height": image.height,
               "damaged_fraction": f"{regions.fraction:.6f}", "regions": regions.regions}
        return FileResult(rel, "detected", "", task.output), row


def detect_folder(input_path: str | os.PathLike, output: str | os.PathLike,
                  detector: _Detector, options: DetectOptions | None = None, *,
                  on_start: Callable[[int, int], None] | None = None,
                  on_result: Callable[[FileResult], None] | None = None) -> DetectReport:
    """Write the damage mask of every image under ``input_path`` into ``output``."""
    return DetectRun(input_path, output, options).execute(detector, on_start=on_start,
                                                          on_result=on_result)
