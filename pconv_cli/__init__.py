"""pconv: batch image restoration with partial-convolution inpainting."""

__version__ = "0.1.0"
