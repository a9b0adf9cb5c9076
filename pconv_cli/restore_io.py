"""Image I/O is :mod:`pconv_cli.imaging`'s. Only :mod:`pconv_cli.detection_eval` and its tests
still import these three names from here; this module goes once they import from
``pconv_cli.imaging``."""

from .imaging import model_rgb, native_color, read_image

__all__ = ["model_rgb", "native_color", "read_image"]
