"""The file boundary for images and masks: every image and mask file pconv reads or writes
goes through this package.

* ``files``: what counts as an image file (by suffix), listing a folder's images;
* ``read``: decoding: :func:`read_image` to native pixels (8- or 16-bit, EXIF orientation
  applied, metadata kept in an :class:`ImageFile`), :func:`load_image` to float RGB, and the
  one opener that turns every unusable file into one clear line;
* ``write``: encoding: :func:`write_image` (an :class:`ImageFile` back in its own format or
  another, 16-bit and metadata kept), :func:`save_image` (a plain array);
* ``masks``: mask files (:func:`load_mask`, :func:`save_mask`), painted and alpha masks,
  nearest-neighbour resizing, growing holes;
* ``colour``: float ↔ integer pixels, native colour modes ↔ the model's RGB, luma weights.

On disk a mask is an 8-bit image with **white (255) = hole** (as in other inpainting tools).
Inside pconv a mask is **True = valid, False = hole** (as in the paper). ``masks`` is the only
place that converts between the two; everything else sees library masks.

Only numpy and Pillow load with the package; SciPy (growing holes), OpenCV and tifffile
(16-bit colour) load when they are used.
"""

from .colour import LUMA_601, full_scale, model_rgb, native_color, to_uint8
from .files import (
    FORMAT_SUFFIX,
    IMAGE_SUFFIXES,
    SUFFIX_FORMATS,
    UNSUPPORTED_SUFFIXES,
    is_image_file,
    list_images,
    suffix_format,
)
from .masks import (
    MASK_THRESHOLD,
    alpha_mask,
    grow_holes,
    hole_file_to_valid,
    load_mask,
    parse_color,
    read_painted_mask,
    resize_mask,
    save_mask,
    valid_to_hole_file,
)
from .read import (
    DEFAULT_MAX_PIXELS,
    INPUT_FORMATS,
    ImageFile,
    apply_orientation,
    load_image,
    pixel_limit,
    read_image,
)
from .write import DEFAULT_QUALITY, FORMAT_CHOICES, output_format, save_image, write_image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_QUALITY",
    "FORMAT_CHOICES",
    "FORMAT_SUFFIX",
    "IMAGE_SUFFIXES",
    "INPUT_FORMATS",
    "LUMA_601",
    "MASK_THRESHOLD",
    "SUFFIX_FORMATS",
    "UNSUPPORTED_SUFFIXES",
    "ImageFile",
    "alpha_mask",
    "apply_orientation",
    "full_scale",
    "grow_holes",
    "hole_file_to_valid",
    "is_image_file",
    "list_images",
    "load_image",
    "load_mask",
    "model_rgb",
    "native_color",
    "output_format",
    "parse_color",
    "pixel_limit",
    "read_image",
    "read_painted_mask",
    "resize_mask",
    "save_image",
    "save_mask",
    "suffix_format",
    "to_uint8",
    "valid_to_hole_file",
    "write_image",
]
