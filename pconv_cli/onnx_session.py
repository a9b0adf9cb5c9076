"""Opening an exported model with ONNX Runtime: providers, threads and one-line errors.

Shared by the inpainter and the damage detector. ``onnxruntime-gpu`` imports and runs on a
machine without a GPU, but asking it for CUDA there prints errors and silently falls back to
the CPU; only ``session.get_providers()`` tells the truth, so an explicit ``cuda`` that did not
get the GPU is reported here as a :class:`DeviceError`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import CheckpointError, ConfigError, DeviceError, describe_exception

CUDA_PROVIDER = "CUDAExecutionProvider"


def open_session(path: str | os.PathLike, device: str = "auto", threads: int | None = None
                 ) -> tuple[Any, str]:
    """An ``onnxruntime.InferenceSession`` for ``path`` and the provider it really uses.

    ``device``: auto (CUDA where both ONNX Runtime and torch see a GPU), cpu, cuda or cuda:N.
    ``threads``: intra-op threads; default torch's count (which honours OMP_NUM_THREADS), so
    that both backends use the same share of the machine.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError("--onnx needs ONNX Runtime, which is not installed: pip install "
                          "onnxruntime (onnxruntime-gpu for CUDA)") from None
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: ONNX model not found")
    base, _, index = (device or "auto").lower().partition(":")
    if base not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"unknown device {device!r} for ONNX Runtime; use auto, cpu or cuda")
    has_cuda = CUDA_PROVIDER in ort.get_available_providers()
    if base == "cuda" and not has_cuda:
        raise DeviceError("--device cuda: this ONNX Runtime has no CUDA provider; install "
                          "onnxruntime-gpu or use --device cpu")
    # "auto" asks for CUDA only where torch sees a GPU: ONNX Runtime prints an error before
    # falling back when CUDA is requested on a machine without one.
    want_cuda = base == "cuda" or (base == "auto" and has_cuda and torch.cuda.is_available())
    providers: list = ["CPUExecutionProvider"]
    if want_cuda:
        providers.insert(0, (CUDA_PROVIDER, {"device_id": int(index or 0)}))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads or torch.get_num_threads()
    if want_cuda:
        # A CUDA provider that cannot start logs several lines before ORT falls back; the
        # fallback is detected below and reported in one line instead.
        ort.set_default_logger_severity(4)
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
        raise CheckpointError(f"{path}: cannot load ONNX model "
                              f"({describe_exception(exc, limit=200)})") from None
    finally:
        if want_cuda:
            ort.set_default_logger_severity(2)  # ONNX Runtime's default: warnings
    used = session.get_providers()
    if base == "cuda" and CUDA_PROVIDER not in used:
        raise DeviceError(f"--device cuda: ONNX Runtime could not use the GPU (providers in "
                          f"use: {', '.join(used)}); check the CUDA and cuDNN libraries or use "
                          "--device cpu")
    return session, used[0]
