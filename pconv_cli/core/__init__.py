"""The core of pconv: the partial convolution layer, the U-Net and the loss.

A reader who knows the paper starts here: ``layer.py`` (§3.1), ``network.py`` (§3.2),
``loss.py`` (§3.3). Masks are 1 = valid, 0 = hole throughout.
"""

from .layer import PartialConv2d
from .loss import InpaintingLoss, LossWeights, gram_matrix, hole_border_region, total_variation
from .network import (
    PConvUNet,
    UNetConfig,
    composite,
    crop_to,
    freeze_encoder_bn,
    nearest_valid_size,
    pad_to_multiple,
)
from .vgg import VGG16_FILE, VGG_WEIGHTS_ENV, VGG16Features, load_vgg16

__all__ = [
    "PartialConv2d", "PConvUNet", "UNetConfig", "InpaintingLoss", "LossWeights",
    "composite", "crop_to", "pad_to_multiple", "freeze_encoder_bn", "nearest_valid_size",
    "gram_matrix", "hole_border_region", "total_variation",
    "VGG16Features", "load_vgg16", "VGG16_FILE", "VGG_WEIGHTS_ENV",
]
