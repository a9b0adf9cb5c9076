"""The one contract every inpainting backend keeps: the torch and ONNX Runtime models
(:mod:`pconv_cli.inference`), the classical methods (:mod:`pconv_cli.classical`) and the router
that sends thin holes to one and the rest to the other (:mod:`pconv_cli.routing`).

evaluate and restore read these attributes to decide how to run a backend; none of them is
optional, so nothing downstream guesses with ``getattr``. Kept free of torch, so that the
classical methods and the CLI's help can import it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

BUILT_IN = "built in"  # the source of a method that has no weights file


@runtime_checkable
class Inpainter(Protocol):
    name: str  # shown in reports and progress lines
    backend: str  # what runs it: "torch cpu", "onnxruntime CUDAExecutionProvider", …
    source: str  # the weights file it was loaded from, or BUILT_IN
    # True: one call takes a whole batch (evaluate batches it); False: one image at a time,
    # worth a process pool.
    batched: bool
    multiple: int  # native sizes are multiples of this (inputs are padded to it); 1 = any
    # (height, width) of a fixed-size model: the largest region it can take; None = any size
    fixed_size: tuple[int, int] | None
    flips: int  # the flip self-ensemble's size; 1 = a single pass
    blend: str | None  # the seam blend after the fill ("poisson", "none"); None = no such step

    def inpaint(self, images: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """N×H×W×3 images in [0, 1] and N×H×W bool masks (True = valid) → the composite: the
        known pixels are the input's own, the holes filled. The model backends and the router
        also take uint8 images and single images (see ``_ModelInpainter.inpaint``)."""
        ...
